"""The runnable examples in examples/: they run, write what they promise, and tell the truth.

The end-to-end runs are slow (a TensorFlow start-up, training, export and validation each); the
fast tests check the command lines, the README and the bioimageio.core example's helpers.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SEED_WORKFLOW = EXAMPLES / "seed_workflow.py"
BIOIMAGEIO_EXAMPLE = EXAMPLES / "run_package_with_bioimageio_core.py"


def run_script(script: Path, *args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg",
               BIOIMAGEIO_HTTP_TIMEOUT="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env=env)


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- fast -------------------------------------------------------------------------------------
def test_readme_names_every_example_and_its_command():
    readme = (EXAMPLES / "README.md").read_text()
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["run_package_with_bioimageio_core.py", "seed_workflow.py"]
    for name in scripts:
        assert f"python examples/{name}" in readme, name


@pytest.mark.parametrize("script", [SEED_WORKFLOW, BIOIMAGEIO_EXAMPLE], ids=lambda p: p.name)
def test_help(script):
    res = run_script(script, "--help", timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout


def test_seed_workflow_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("not ours")
    res = run_script(SEED_WORKFLOW, "-o", str(tmp_path), "--quick", "--overwrite", timeout=120)
    assert res.returncode != 0
    assert "only replaces a folder written by this script" in res.stderr
    assert (tmp_path / "precious.txt").read_text() == "not ours"


def test_seed_workflow_presets():
    mod = load_module(SEED_WORKFLOW)
    full = mod.PRESETS["full"]
    assert (full["filters"], full["depth"], full["batch"], full["epochs"]) == (64, 10, 1, 100)  # the paper's
    quick = mod.PRESETS["quick"]
    assert (quick["filters"], quick["depth"], quick["size"]) == (8, 2, 64)
    args = mod.parse_args(["-o", "x", "--quick", "--epochs", "1"])
    assert args.quick and not args.full and args.epochs == 1 and args.normalization == "percentile"
    with pytest.raises(SystemExit):
        mod.parse_args(["-o", "x", "--quick", "--full"])


def test_bioimageio_example_helpers():
    mod = load_module(BIOIMAGEIO_EXAMPLE)
    axis = SimpleNamespace(size=SimpleNamespace(min=112, step=16))
    assert [mod.valid_size(axis, w) for w in (10, 112, 113, 128, 129)] == [112, 112, 128, 128, 144]
    assert mod.valid_size(SimpleNamespace(size=64), 200) == 64
    axes = [SimpleNamespace(type="batch", id="batch"), SimpleNamespace(type="space", id="y"),
            SimpleNamespace(type="space", id="x"), SimpleNamespace(type="channel", id="channel")]
    raw = np.arange(15 * 4 * 6, dtype=np.uint16).reshape(15, 4, 6)
    arr, dims = mod.to_input_layout(raw, axes)
    assert dims == ["batch", "y", "x", "channel"] and arr.shape == (1, 4, 6, 15) and arr.dtype == np.float32
    assert np.array_equal(arr[0, 2, 3], raw[:, 2, 3])
    # channels-first packages work too
    arr, dims = mod.to_input_layout(raw, [axes[0], axes[3], axes[1], axes[2]])
    assert dims == ["batch", "channel", "y", "x"] and arr.shape == (1, 15, 4, 6)
    assert np.array_equal(arr[0], raw)


# ---- slow: the examples end to end --------------------------------------------------------------
@pytest.mark.slow
def test_seed_workflow_quick(tmp_path):
    from srredsim.tiff import read_reference

    out = tmp_path / "example"
    res = run_script(SEED_WORKFLOW, "-o", str(out), "--quick")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for n in range(1, 10):  # the narrative names every step
        assert f"[{n}/9]" in res.stdout
    for rel in ("data/trainx", "data/trainy", "data/testx", "data/testy", "data/truth", "run/config.json",
                "run/weights_best.weights.h5", "run/history.csv", "result.png", "spectra.png", "scores.csv",
                "scores.md", "sr-redsim.tif", "classical.tif", "sr-redsim-example.bioimageio.zip",
                "validation.txt", "summary.json"):
        assert (out / rel).exists(), rel
    assert len(list((out / "data/trainx").glob("*.tif"))) == 8
    assert (out / "result.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "quick" and summary["validation_failed"] == []
    assert summary["prediction"]["shape"] == [128, 128] and summary["prediction"]["finite"]

    # the trained network does something sensible: finite, not constant, resembles the truth
    sr, _ = read_reference(out / "sr-redsim.tif")
    truth, _ = read_reference(out / "data/truth" / (summary["test_stack"]))
    assert sr.shape == truth.shape == (128, 128)
    assert np.all(np.isfinite(sr)) and float(sr.std()) > 0
    assert np.corrcoef(sr.ravel(), truth.ravel())[0, 1] > 0.3
    with open(out / "run/history.csv") as fh:
        hist = list(csv.DictReader(fh))
    assert len(hist) == 3 and float(hist[-1]["loss"]) < float(hist[0]["loss"])
    scores = {r["name"]: r for r in summary["scores"]}
    assert set(scores) == {"widefield", "classical", "SR-REDSIM"}
    assert all(np.isfinite(r["psnr"]) and r["psnr"] > 10 for r in scores.values())


@pytest.mark.slow
def test_bioimageio_core_example_on_a_tiny_package(tmp_path):
    from conftest import make_tiny_run

    from srredsim.export.api import export_run

    run = make_tiny_run(tmp_path / "tiny", depth=1, positive_biases=True)
    package = tmp_path / "tiny.bioimageio.zip"
    export_run(run, "bioimageio", package, test_size=32)
    out = tmp_path / "out"
    res = run_script(BIOIMAGEIO_EXAMPLE, str(package), "--size", "64", "-o", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # the example's claim (its docstring, examples/README.md): in one block bioimageio.core normalises
    # first and pads by the package's halo (pad: symmetric) as srredsim predict does -- the same numbers
    assert "bioimageio.core in one block, whole image" in res.stdout
    from srredsim.tiff import read_raw_stack, read_reference

    raw, _ = read_raw_stack(out / "raw.tif")
    core, _ = read_reference(out / "sr_bioimageio_core.tif")
    block, _ = read_reference(out / "sr_bioimageio_core_block.tif")
    ours, _ = read_reference(out / "sr_srredsim.tif")
    assert raw.shape == (15, 64, 64) and core.shape == block.shape == ours.shape == (128, 128)
    peak = float(np.abs(ours).max())
    assert peak > 0
    # one block agrees with srredsim over the whole image, border included (the same weights, engine and border)
    assert float(np.abs(block - ours).max()) <= 1e-5 * peak
    # predict() as it comes normalises the padded stack (percentiles shift a little): close everywhere
    assert float(np.abs(core - ours).max()) <= 0.02 * peak
    # nothing left in the working directory (bioimageio.core ran in a temporary one)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny", "tiny.bioimageio.zip"]
