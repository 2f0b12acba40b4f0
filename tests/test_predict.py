"""Prediction: tiling equals whole-image prediction, the CLI writes correct TIFFs, bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import toy_pair


def test_tiled_equals_whole_image(trained_run):
    from srredsim.runtime import open_model
    from srredsim.predict import count_tiles, predict_stack

    m = open_model(trained_run)
    raw, _ = toy_pair(np.random.default_rng(9), size=96)
    raw = raw[:, :90, :]  # not square, not a multiple of anything
    whole = predict_stack(m.predict_fn, raw, m.normalization)
    assert count_tiles(raw.shape[1:], 48, m.halo, 8) > 4
    tiled = predict_stack(m.predict_fn, raw, m.normalization, tile=48, halo=m.halo, batch_size=3)
    assert tiled.shape == whole.shape == (180, 192)
    assert np.abs(tiled - whole).max() < 1e-3 * max(1.0, float(np.abs(whole).max()))


def test_tiles_without_enough_context_are_still_seamless(trained_run):
    """With a halo far below the receptive radius, blending keeps the error small and bounded."""
    from srredsim.runtime import open_model
    from srredsim.predict import predict_stack

    m = open_model(trained_run)
    raw, _ = toy_pair(np.random.default_rng(2), size=64)
    whole = predict_stack(m.predict_fn, raw, m.normalization)
    tiled = predict_stack(m.predict_fn, raw, m.normalization, tile=32, halo=4, blend=8)
    assert np.isfinite(tiled).all()
    assert np.abs(tiled - whole).mean() < 0.05 * np.abs(whole).mean() + 1e-6


def test_unet_tiles_respect_size_multiple():
    from srredsim.config import ModelConfig
    from srredsim.models import build_model
    from srredsim.predict import predict_normalized
    from srredsim.runtime.keras_engine import keras_predict_fn

    model = build_model(ModelConfig(architecture="unet", unet_levels=2, unet_base_filters=4))
    x = np.random.default_rng(0).random((50, 37, 15)).astype(np.float32)
    fn = keras_predict_fn(model)
    whole = predict_normalized(fn, x, multiple=4)
    assert whole.shape == (100, 74)
    tiled = predict_normalized(fn, x, tile=32, halo=8, blend=4, multiple=4)
    assert tiled.shape == (100, 74)


def test_cli_predicts_file_and_folder(tmp_path, trained_run):
    from srredsim.cli import main
    from srredsim.tiff import read_reference, write_tiff

    raw, _ = toy_pair(np.random.default_rng(1), size=40)
    inp = tmp_path / "in"
    inp.mkdir()
    write_tiff(inp / "a.tif", raw, pixel_size_um=0.1)
    write_tiff(inp / "b.tif", raw[:, :32, :36], pixel_size_um=0.1)
    assert main(["predict", str(trained_run), str(inp / "a.tif"), "-o", str(tmp_path / "a_sr.tif")]) == 0
    sr, meta = read_reference(tmp_path / "a_sr.tif")
    assert sr.shape == (80, 80) and sr.dtype == np.float32
    assert meta.pixel_size_um == pytest.approx(0.05, rel=1e-6)
    # refuses to overwrite, then overwrites when asked
    assert main(["predict", str(trained_run), str(inp / "a.tif"), "-o", str(tmp_path / "a_sr.tif")]) == 2
    assert main(["predict", str(trained_run), str(inp / "a.tif"), "-o", str(tmp_path / "a_sr.tif"),
                 "--overwrite", "--tile", "24"]) == 2  # too small for the halo
    assert main(["predict", str(trained_run), str(inp / "a.tif"), "-o", str(tmp_path / "a_sr.tif"),
                 "--overwrite", "--tile", "48"]) == 0
    assert main(["predict", str(trained_run), str(inp), "-o", str(tmp_path / "outdir")]) == 0
    assert read_reference(tmp_path / "outdir" / "b_sr.tif")[0].shape == (64, 72)


def test_info_reports_parameters(trained_run, capsys):
    from srredsim.cli import main

    assert main(["info", str(trained_run)]) == 0
    out = capsys.readouterr().out
    from srredsim.runfolder import load_run

    n = load_run(trained_run).load_model().count_params()
    assert f"{n:,} parameters" in out and "history:" in out


def test_installed_console_script_runs():
    """Smoke test of the *installed* entry point, in a fresh process."""
    import shutil

    exe = shutil.which("srredsim") or os.path.join(os.path.dirname(sys.executable), "srredsim")
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "train" in res.stdout and "predict" in res.stdout
    res = subprocess.run([exe, "info", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "run folder" in res.stdout


def test_library_callers_tile_by_default(trained_run, monkeypatch):
    """The tiling policy lives in srredsim.predict: tile=None (every caller's default) tiles large images."""
    from srredsim import predict
    from srredsim.runtime import open_model

    m = open_model(trained_run)
    raw, _ = toy_pair(np.random.default_rng(4), size=96)
    calls = []

    def counting(batch):
        calls.append(batch.shape)
        return m.predict_fn(batch)

    monkeypatch.setattr(predict, "WHOLE_IMAGE_MAX", 64)  # shrink the policy to this small image
    monkeypatch.setattr(predict, "DEFAULT_TILE", 48)
    assert predict.default_tile(96, 96) == 48 and predict.default_tile(64, 60) is None
    tiled = predict.predict_stack(counting, raw, m.normalization, halo=m.halo)
    n_tiled = len(calls)
    calls.clear()
    whole = predict.predict_stack(counting, raw, m.normalization, tile=0, halo=m.halo)
    assert n_tiled == predict.count_tiles((96, 96), None, m.halo) > 1 and len(calls) == 1
    assert np.abs(tiled - whole).max() < 1e-3 * max(1.0, float(np.abs(whole).max()))


def test_a_folder_is_predicted_one_stack_at_a_time(tmp_path, monkeypatch):
    """Headers of all stacks are checked first; then each stack is read, predicted and written before the next."""
    from srredsim import tiff
    from srredsim.errors import SrredsimError
    from srredsim.predict import predict_files

    events = []

    class Model:
        frames, halo, size_multiple, pixel_size_um = 15, 4, 1, 0.08

        def predict(self, raw, tile=None, halo=None, batch_size=1, progress=None, border="symmetric"):
            events.append("predict")
            return np.zeros((2 * raw.shape[1], 2 * raw.shape[2]), np.float32)

    names = ["a", "b", "c"]
    for i, n in enumerate(names):
        tiff.write_tiff(tmp_path / f"{n}.tif", np.full((15, 16, 16), i + 1, np.uint16))
    real_read, real_write = tiff.read_raw_stack, tiff.write_sr_image
    monkeypatch.setattr(tiff, "read_raw_stack", lambda p, frames=None: (events.append(f"read {p.stem}"),
                                                                           real_read(p, frames))[1])
    monkeypatch.setattr(tiff, "write_sr_image", lambda p, *a, **k: (events.append(f"write {p.stem}"),
                                                                    real_write(p, *a, **k))[1])
    ins = [tmp_path / f"{n}.tif" for n in names]
    outs = [tmp_path / f"{n}_sr.tif" for n in names]
    done = [r[0].stem for r in predict_files(Model(), ins, outs)]
    assert done == names
    assert events == [e for n in names for e in (f"read {n}", "predict", f"write {n}_sr")]
    # a bad stack anywhere fails before the first prediction, and nothing is written
    events.clear()
    tiff.write_tiff(tmp_path / "bad.tif", np.ones((9, 16, 16), np.uint16))
    with pytest.raises(SrredsimError, match="9 frames"):
        list(predict_files(Model(), ins + [tmp_path / "bad.tif"], [tmp_path / f"x{i}.tif" for i in range(4)]))
    assert events == [] and not list(tmp_path.glob("x*.tif"))


def test_predict_optics_flags(tmp_path, trained_run, capsys):
    from srredsim.cli import main
    from srredsim.config import OpticsConfig
    from srredsim.simulate import SimulationConfig, simulate_stack
    from srredsim.tiff import read_reference, write_tiff

    raw = simulate_stack(SimulationConfig(size=64, photons=100.0, optics=OpticsConfig()), seed=4, targets=[]).raw
    write_tiff(tmp_path / "raw.tif", raw)  # no pixel size in the file: the model's (0.08 um) is assumed
    assert main(["predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "a.tif")]) == 0
    cap = capsys.readouterr()
    assert "warning" not in cap.err and "no optics given: assuming the model's" in cap.out
    assert read_reference(tmp_path / "a.tif")[1].pixel_size_um == pytest.approx(0.04, rel=1e-6)
    # other optics than the model's: resampled to the model's sampling, said in the result line, and the
    # output carries half the given pixel size
    assert main(["predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "b.tif"),
                 "--na", "1.2", "--wavelength", "610", "--pixel-size", "0.065", "--refractive-index", "1.33"]) == 0
    cap = capsys.readouterr()
    assert "resampled 64x64 -> " in cap.out
    assert read_reference(tmp_path / "b.tif")[1].pixel_size_um == pytest.approx(0.0325, rel=1e-6)
    # a frame layout the model does not take, or unphysical optics: one-line errors, nothing written
    for bad, msg in ((["--angles", "3", "--phases", "3"], "the model takes 15"),
                     (["--na", "1.6"], "smaller than the refractive index")):
        assert main(["predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "c.tif"),
                     *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "c.tif").exists()


@pytest.mark.parametrize("engine", ["auto", "keras"])
def test_predict_prints_no_engine_log_lines(tmp_path, trained_run, engine):
    """What a user sees from `srredsim predict`: our lines only, no TensorFlow/absl/oneDNN/ONNX Runtime logs."""
    from conftest import srredsim_cli
    from srredsim.tiff import write_tiff

    raw, _ = toy_pair(np.random.default_rng(5), size=32)
    write_tiff(tmp_path / "raw.tif", raw, pixel_size_um=0.08)
    proc = srredsim_cli("predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "sr.tif"),
                        "--engine", engine)
    assert proc.returncode == 0, proc.stderr
    out, err = proc.stdout.strip().splitlines(), proc.stderr.strip().splitlines()
    # stderr: the progress line (no bar: not a terminal), after the auto choice's own lines the first
    # time this model is measured on this machine; stdout: the result line
    err = [line for line in err if not line.startswith(("choosing the fastest", "  measuring "))]
    assert len(err) == 1 and "1 stack(s), 1 tile(s)" in err[0], err
    assert len(out) == 1 and "raw.tif -> " in out[0], out
    if engine == "keras":  # --verbose lets TensorFlow speak again (the lines we hide by default do exist)
        verbose = srredsim_cli("predict", str(trained_run), str(tmp_path / "raw.tif"), "-o",
                               str(tmp_path / "sr.tif"), "--engine", "keras", "--overwrite", "--verbose")
        assert verbose.returncode == 0, verbose.stderr
        assert "oneDNN" in verbose.stderr or "absl" in verbose.stderr, verbose.stderr


def test_predict_unpacks_a_zipped_package_once_and_removes_it(tmp_path, monkeypatch):
    """`srredsim predict PACKAGE.zip` unpacked the zip twice: once to check the inputs against what
    the model reads, again to open it. One unpacking serves both, and it is gone afterwards."""
    from pathlib import Path

    from conftest import make_tiny_run
    from srredsim.cli import main
    from srredsim.config import OpticsConfig
    from srredsim.export import safezip
    from srredsim.export.api import export_run
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.tiff import read_reference, write_tiff

    run = make_tiny_run(tmp_path / "tiny", depth=1, positive_biases=True)
    package = tmp_path / "tiny.bioimageio.zip"
    export_run(run, "bioimageio", package, test_size=32)
    write_tiff(tmp_path / "raw.tif", synthetic_raw_stack(OpticsConfig(), 64, seed=0), pixel_size_um=0.08)

    unpacked = []  # where each unpacking of the package went
    extract = safezip.safe_extract

    def counting_extract(archive, dest):
        if isinstance(archive, (str, os.PathLike)) and Path(archive).resolve() == package.resolve():
            unpacked.append(Path(dest))
        return extract(archive, dest)

    monkeypatch.setattr(safezip, "safe_extract", counting_extract)  # the runtime imports it at call time
    argv = ["predict", str(package), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "sr.tif"), "--engine", "onnx",
            "--precision", "fp32", "--quiet"]
    assert main(argv) == 0
    assert len(unpacked) == 1, unpacked
    assert not unpacked[0].exists()  # the temporary folder is removed once the model is open
    sr, _ = read_reference(tmp_path / "sr.tif")
    assert sr.shape == (128, 128) and np.isfinite(sr).all()

    # the API: an artifact dropped without close() removes its files too; a closed one says so
    import gc

    from srredsim.errors import SrredsimError
    from srredsim.runtime import read_model

    unpacked.clear()
    assert read_model(package).io.frames == 15
    gc.collect()
    assert len(unpacked) == 1 and not unpacked[0].exists()
    with read_model(package) as artifact:
        pass
    with pytest.raises(SrredsimError, match="artifact was closed"):
        artifact.open(engine="onnx", precision="fp32")


def test_predict_looks_at_the_stack_without_importing_scipy(tmp_path, trained_run):
    """The first look before every prediction (the classical pattern estimator) runs on numpy alone
    (srredsim.classical.ops): importing scipy.fft and scipy.ndimage took longer than the look
    itself, on the command's critical path (benchmarks/classical_ops.py). Once the model's
    conversion and measurements are cached, a `srredsim predict` process imports no scipy."""
    from srredsim.cli import main
    from srredsim.tiff import write_tiff

    raw, _ = toy_pair(np.random.default_rng(3), size=64)
    write_tiff(tmp_path / "raw.tif", raw)  # no pixel size: the model's optics, which it samples well
    args = ["predict", str(trained_run), str(tmp_path / "raw.tif"), "-o", str(tmp_path / "sr.tif"), "--overwrite"]
    assert main(args) == 0  # converts and measures once, into the session's cache
    code = ("import sys\nfrom srredsim.cli import main\n"
            f"rc = main({args!r})\n"
            "print('looked' if 'srredsim.classical.core' in sys.modules else 'no look')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    looked, modules = proc.stdout.strip().splitlines()[-2:]
    assert looked == "looked"
    assert modules == "[]", f"imported by srredsim predict: {modules}"
