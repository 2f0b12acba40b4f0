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
