"""Every bad input named in the Foundation issue gives a one-line error, exit code 2, no output."""

from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import toy_pair, write_toy_folder


def _run(capsys, *args):
    from srredsim.cli import main

    rc = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return rc, err


def _assert_one_line_error(rc, err, match):
    """The error is one line, the last; before it only progress lines of ours may stand (the first
    use of a model on a machine measures its engines, "choosing the fastest ...", "  measuring ...",
    and the context it needs, "measuring the context ...")."""
    assert rc == 2, err
    lines = err.splitlines()
    assert "Traceback" not in err and "error:" in lines[-1], err
    assert all(line.startswith(("choosing the fastest", "  measuring ", "measuring the context ")) for line in lines[:-1]), err
    assert match in lines[-1], err


@pytest.fixture
def raw_file(tmp_path):
    from srredsim.tiff import write_tiff

    raw, _ = toy_pair(np.random.default_rng(0), size=32)
    write_tiff(tmp_path / "raw.tif", raw)
    return tmp_path / "raw.tif"


def test_wrong_frame_count(tmp_path, capsys, trained_run):
    from srredsim.tiff import write_tiff

    write_tiff(tmp_path / "nine.tif", np.ones((9, 16, 16), np.uint16))
    rc, err = _run(capsys, "predict", trained_run, tmp_path / "nine.tif", "-o", tmp_path / "o.tif")
    _assert_one_line_error(rc, err, "has 9 frames, expected 15")
    assert not (tmp_path / "o.tif").exists()


def test_2d_file_where_a_stack_is_expected(tmp_path, capsys, trained_run):
    from srredsim.tiff import write_tiff

    write_tiff(tmp_path / "flat.tif", np.ones((16, 16), np.uint16))
    rc, err = _run(capsys, "predict", trained_run, tmp_path / "flat.tif", "-o", tmp_path / "o.tif")
    _assert_one_line_error(rc, err, "expected a raw SIM stack")


def test_corrupt_and_non_tiff(tmp_path, capsys, trained_run):
    (tmp_path / "bad.tif").write_bytes(b"this is not a tiff")
    rc, err = _run(capsys, "predict", trained_run, tmp_path / "bad.tif", "-o", tmp_path / "o.tif")
    _assert_one_line_error(rc, err, "not a readable TIFF")


def test_nan_values(tmp_path, capsys, trained_run):
    import tifffile

    a = np.ones((15, 16, 16), np.float32)
    a[0, 0, 0] = np.inf
    tifffile.imwrite(tmp_path / "inf.tif", a)
    rc, err = _run(capsys, "predict", trained_run, tmp_path / "inf.tif", "-o", tmp_path / "o.tif")
    _assert_one_line_error(rc, err, "NaN/Inf")


def test_reference_not_twice_the_raw(tmp_path, capsys):
    from srredsim.tiff import write_tiff

    data = write_toy_folder(tmp_path / "d", n_train=2, size=16)
    write_tiff(data / "trainy" / "img000.tif", np.zeros((16, 16), np.float32))
    rc, err = _run(capsys, "train", data, "-o", tmp_path / "run", "--epochs", 1)
    _assert_one_line_error(rc, err, "expected 2x the raw size")


def test_unpaired_training_files(tmp_path, capsys):
    data = write_toy_folder(tmp_path / "d", n_train=2, size=16)
    os.remove(data / "trainy" / "img001.tif")
    rc, err = _run(capsys, "train", data, "-o", tmp_path / "run")
    _assert_one_line_error(rc, err, "img001.tif")


def test_empty_folder(tmp_path, capsys, trained_run):
    (tmp_path / "empty").mkdir()
    rc, err = _run(capsys, "predict", trained_run, tmp_path / "empty", "-o", tmp_path / "out")
    _assert_one_line_error(rc, err, "no TIFF files")
    rc, err = _run(capsys, "train", tmp_path / "empty", "-o", tmp_path / "run")
    _assert_one_line_error(rc, err, "missing folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; permission bits do not stop it")
def test_output_not_writable(tmp_path, capsys, trained_run, raw_file):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    rc, err = _run(capsys, "predict", trained_run, raw_file, "-o", ro / "o.tif")
    _assert_one_line_error(rc, err, "not writable")


def test_output_under_a_file(tmp_path, capsys, trained_run, raw_file):
    """An output path that cannot be created (its parent is a file) -- works as root too."""
    (tmp_path / "afile").write_text("x")
    rc, err = _run(capsys, "predict", trained_run, raw_file, "-o", tmp_path / "afile" / "o.tif")
    _assert_one_line_error(rc, err, "cannot create output folder")


def test_run_folder_that_is_not_a_model(tmp_path, capsys, raw_file):
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "x.weights.h5").write_bytes(b"")
    rc, err = _run(capsys, "predict", tmp_path / "notamodel", raw_file, "-o", tmp_path / "o.tif")
    _assert_one_line_error(rc, err, "not a model folder")
    rc, err = _run(capsys, "info", tmp_path / "notamodel")
    _assert_one_line_error(rc, err, "not a model folder")


def test_model_folder_without_weights(tmp_path, capsys, raw_file):
    from srredsim.config import RunConfig
    from srredsim.runfolder import save_run_skeleton

    save_run_skeleton(tmp_path / "untrained", RunConfig())
    rc, err = _run(capsys, "predict", tmp_path / "untrained", raw_file, "-o", tmp_path / "o.tif")
    _assert_one_line_error(rc, err, "has no weights")


def test_bad_config_file(tmp_path, capsys):
    data = write_toy_folder(tmp_path / "d", n_train=2, size=16)
    (tmp_path / "c.yaml").write_text("train:\n  epochs: -3\n")
    rc, err = _run(capsys, "train", data, "-o", tmp_path / "run", "--config", tmp_path / "c.yaml")
    _assert_one_line_error(rc, err, "train.epochs")
