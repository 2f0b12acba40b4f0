"""Training: a learnable toy task improves, seeded runs repeat, killed runs resume exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config, write_toy_folder


def _weights(run_dir: Path, which="weights_last.weights.h5"):
    import h5py

    out = {}
    with h5py.File(run_dir / which, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
    return out


@pytest.mark.timeout(1800)  # 57 s measured here; over 10 minutes while 3 other trainings shared the 2 cores
def test_readme_training_with_every_default(tmp_path):
    """The README's path, as a new user runs it: `srredsim simulate`, then `srredsim train` with the default
    configuration (the paper's network, bf16 where the CPU has it, TensorBoard logs, checkpoints, ...). Only
    the data are tiny and one epoch is asked for; no feature is switched off. (This is the test that would
    have caught the TensorBoard crash: tensorflow-cpu does not bring TensorBoard.)"""
    from srredsim.config import RunConfig
    from srredsim.train import read_history

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell
    sim = subprocess.run(_cli("simulate", "-o", tmp_path / "data", "--count", 2, "--size", 32),
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert sim.returncode == 0, sim.stderr[-3000:]
    res = subprocess.run(_cli("train", tmp_path / "data", "-o", tmp_path / "run", "--epochs", 1),
                         capture_output=True, text=True, timeout=1700, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    cfg = RunConfig.load(run)
    assert cfg.model_dump(exclude={"train": {"epochs"}}) == RunConfig().model_dump(exclude={"train": {"epochs"}})
    assert len(read_history(run / "history.csv")) == 1
    for name in ("weights_best.weights.h5", "weights_last.weights.h5", "training_curve.png", "backup"):
        assert (run / name).exists(), name
    assert any((run / "logs").rglob("events.out.tfevents.*")), "no TensorBoard event files"
    for noise in ("absl::InitializeLog", "oneDNN", "cpu_feature_guard", "I0000 ", "W0000 "):
        assert noise not in res.stderr + res.stdout, f"engine log line on a default run: {noise}"


def test_overwrite_replaces_a_run_folder_but_nothing_else(tmp_path, toy_data, capsys):
    from srredsim.cli import main

    run = tmp_path / "run"
    args = ["train", str(toy_data), "-o", str(run), "--epochs", "1", "--filters", "4", "--depth", "1",
            "--patch-size", "16", "--quiet"]
    assert main(args) == 0
    (run / "marker").write_text("old run")
    assert main(args) == 2 and "--resume" in capsys.readouterr().err  # refused without --overwrite
    assert main(args + ["--overwrite"]) == 0
    assert not (run / "marker").exists() and (run / "config.json").is_file()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.txt").write_text("keep me")
    assert main(["train", str(toy_data), "-o", str(other), "--overwrite", "--quiet"]) == 2
    assert "not a run folder" in capsys.readouterr().err and (other / "thesis.txt").exists()


def test_training_lowers_validation_loss_and_writes_run_folder(tmp_path, toy_data):
    from srredsim.train import read_history, train

    cfg = tiny_config(**{"train.epochs": 4})
    run = train(toy_data, tmp_path / "run", cfg, verbose=0)
    hist = read_history(run.path / "history.csv")
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert min(r["val_psnr"] for r in hist) < max(r["val_psnr"] for r in hist)
    for name in ("config.json", "weights_best.weights.h5", "weights_last.weights.h5", "training_curve.png"):
        assert (run.path / name).exists(), name
    # the saved config is the one used, and the model reloads from it
    assert run.config.model.filters == 8
    model = run.load_model()
    assert model.count_params() > 0


def test_seeded_runs_are_reproducible(tmp_path, toy_data):
    from srredsim.train import train

    cfg = tiny_config(**{"train.epochs": 1})
    a = train(toy_data, tmp_path / "a", cfg, verbose=0)
    b = train(toy_data, tmp_path / "b", cfg, verbose=0)
    wa, wb = _weights(a.path), _weights(b.path)
    assert wa.keys() == wb.keys() and len(wa) > 0
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_out_folder_is_not_overwritten(tmp_path, toy_data):
    from srredsim.errors import SrredsimError
    from srredsim.train import train

    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(SrredsimError, match="--resume"):
        train(toy_data, out, tiny_config(), verbose=0)
    assert (out / "precious.txt").read_text() == "keep me"


def test_interrupted_run_resumes_at_the_right_epoch(tmp_path, toy_data):
    """Stop training inside epoch 3 of 4 and resume: epochs 3-4 follow, weights equal an
    uninterrupted run (optimizer state and patch sequence restored)."""
    import keras

    from srredsim.train import read_history, train

    class Crash(Exception):
        pass

    class CrashInEpoch3(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations.numpy() > 2 * self.params["steps"] + 1:
                raise Crash()

    cfg = tiny_config(**{"train.epochs": 4})
    ref = train(toy_data, tmp_path / "ref", cfg, verbose=0)
    with pytest.raises(Crash):
        train(toy_data, tmp_path / "run", cfg, verbose=0, callbacks=[CrashInEpoch3()])
    assert [r["epoch"] for r in read_history(tmp_path / "run" / "history.csv")] == [1, 2]
    run = train(toy_data, tmp_path / "run", cfg, resume=True, verbose=0)
    assert [r["epoch"] for r in read_history(run.path / "history.csv")] == [1, 2, 3, 4]
    wr, wo = _weights(ref.path), _weights(run.path)
    for k in wr:
        np.testing.assert_allclose(wo[k], wr[k], rtol=0, atol=1e-6)


def _cli(*args, env=None):
    return [sys.executable, "-m", "srredsim", *map(str, args)]


@pytest.mark.slow
def test_killed_run_resumes_at_the_right_epoch_and_matches_uninterrupted(tmp_path):
    """Kill `srredsim train` after epoch 2 of 4, resume: same weights as one uninterrupted run."""
    data = write_toy_folder(tmp_path / "data", n_train=3, n_test=1, size=24)
    common = ["--filters", 8, "--depth", 2, "--patch-size", 16, "--batch-size", 2, "--seed", 3,
              "--set", "data.patches_per_image=8", "--quiet"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    ref = subprocess.run(_cli("train", data, "-o", tmp_path / "ref", "--epochs", 4, *common),
                         env=env, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "run"
    # a long run (many epochs) so that the kill surely lands mid-training
    proc = subprocess.Popen(_cli("train", data, "-o", out, "--epochs", 200, *common), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    meta = out / "backup" / "training_metadata.json"
    deadline = time.time() + 240
    import json

    while time.time() < deadline:
        if meta.exists():
            try:
                if json.loads(meta.read_text())["epoch"] >= 2:
                    break
            except (ValueError, KeyError):
                pass
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(meta.read_text())["epoch"]
    assert 2 <= done < 200

    res = subprocess.run(_cli("train", data, "-o", out, "--resume", "--epochs", 4), env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    from srredsim.train import read_history

    hist = read_history(out / "history.csv")
    if done < 4:
        assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
        wr, wo = _weights(tmp_path / "ref"), _weights(out)
        for k in wr:
            np.testing.assert_allclose(wo[k], wr[k], rtol=0, atol=1e-6)
    # resuming a finished run does nothing and says so
    again = subprocess.run(_cli("train", data, "-o", out, "--resume", "--epochs", 4), env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already trained" in again.stdout
    # --resume without --epochs keeps the run's own epoch count (it once fell back to the default 100)
    again = subprocess.run(_cli("train", data, "-o", out, "--resume"), env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and "already trained for 4 epochs (asked for 4)" in again.stdout, again.stdout


def test_resume_refuses_other_overrides(tmp_path, toy_data):
    from srredsim.cli import main

    rc = main(["train", str(toy_data), "-o", str(tmp_path / "r"), "--resume", "--filters", "4"])
    assert rc == 2


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    """MirroredStrategy over 2 logical CPU devices trains (fresh process: devices are set at start)."""
    data = write_toy_folder(tmp_path / "data", n_train=2, n_test=1, size=24)
    res = subprocess.run(
        _cli("train", data, "-o", tmp_path / "run", "--epochs", 2, "--filters", 4, "--depth", 1,
             "--patch-size", 16, "--batch-size", 2, "--strategy", "mirrored", "--set", "train.cpu_devices=2"),
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "2 devices" in res.stdout
    from srredsim.train import read_history

    assert len(read_history(tmp_path / "run" / "history.csv")) == 2


def test_mirrored_strategy_rejects_indivisible_batch(tmp_path):
    data = write_toy_folder(tmp_path / "data", n_train=2, size=24)
    res = subprocess.run(
        _cli("train", data, "-o", tmp_path / "run", "--epochs", 1, "--filters", 4, "--depth", 1,
             "--batch-size", 1, "--strategy", "mirrored", "--set", "train.cpu_devices=2"),
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "multiple of the 2 devices" in res.stderr


def _free_ports(n):
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multiworker_training_on_loopback(tmp_path):
    """Two worker processes, TF_CONFIG on 127.0.0.1: they train in sync, only the chief writes."""
    import json

    data = write_toy_folder(tmp_path / "data", n_train=2, n_test=1, size=24)
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen(
            _cli("train", data, "-o", tmp_path / f"run{i}", "--epochs", 2, "--filters", 4, "--depth", 1,
                 "--patch-size", 16, "--batch-size", 2),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "2 devices" in outs[0][0]
    from srredsim.train import read_history

    hist = read_history(tmp_path / "run0" / "history.csv")
    assert [r["epoch"] for r in hist] == [1, 2]
    assert (tmp_path / "run0" / "weights_best.weights.h5").exists()
    assert not (tmp_path / "run1").exists()  # the non-chief worker writes nothing there
