"""Stack I/O with ImageJ metadata (srredsim/tiff.py)."""

from __future__ import annotations

import numpy as np
import pytest

from srredsim.errors import SrredsimError


def test_raw_and_sr_roundtrip_with_pixel_size(tmp_path):
    from srredsim.tiff import read_raw_stack, read_reference, write_sr_image, write_tiff

    raw = np.random.default_rng(0).integers(0, 4000, (15, 20, 24), dtype=np.uint16)
    write_tiff(tmp_path / "raw.tif", raw, pixel_size_um=0.08)
    back, meta = read_raw_stack(tmp_path / "raw.tif", frames=15)
    np.testing.assert_array_equal(back, raw)
    assert back.dtype == np.uint16 and meta.pixel_size_um == pytest.approx(0.08, rel=1e-6)

    sr = np.random.default_rng(1).random((40, 48)).astype(np.float32)
    write_sr_image(tmp_path / "sr.tif", sr[None], raw_pixel_size_um=0.08)
    back, meta = read_reference(tmp_path / "sr.tif")
    np.testing.assert_array_equal(back, sr)
    assert meta.pixel_size_um == pytest.approx(0.04, rel=1e-6)
    # ImageJ can read the axes and unit back
    import tifffile

    with tifffile.TiffFile(tmp_path / "sr.tif") as t:
        assert t.is_imagej and t.imagej_metadata["unit"] == "um"


def test_hyperstack_angles_phases_are_flattened_angle_major(tmp_path):
    import tifffile

    from srredsim.tiff import read_raw_stack

    a = np.arange(3 * 5 * 4 * 4, dtype=np.uint16).reshape(3, 5, 4, 4)
    tifffile.imwrite(tmp_path / "h.tif", a, imagej=True, metadata={"axes": "TZYX"})
    raw, _ = read_raw_stack(tmp_path / "h.tif")
    assert raw.shape == (15, 4, 4)
    np.testing.assert_array_equal(raw[1 * 5 + 2], a[1, 2])


def _bad_stack(path, case):
    """Write the bad raw stack ``case`` to ``path`` ("missing": write nothing)."""
    import tifffile

    from srredsim.tiff import write_tiff

    if case == "2d":
        write_tiff(path, np.ones((8, 8), np.uint16))
    elif case == "frames":
        write_tiff(path, np.ones((9, 8, 8), np.uint16))
    elif case == "corrupt":
        path.write_bytes(b"II*\x00garbage" * 10)
    elif case == "nan":
        a = np.ones((15, 8, 8), np.float32)
        a[3, 2, 2] = np.nan
        tifffile.imwrite(path, a)
    return path


@pytest.mark.parametrize("case,match", [
    ("2d", "expected a raw SIM stack"),
    ("frames", "has 9 frames, expected 15"),
    ("corrupt", "not a readable TIFF"),
    ("nan", "NaN/Inf"),
    ("missing", "no such file"),
])
def test_bad_raw_inputs(tmp_path, case, match):
    from srredsim.tiff import read_raw_stack

    with pytest.raises(SrredsimError, match=match):
        read_raw_stack(_bad_stack(tmp_path / "x.tif", case), frames=15)


@pytest.mark.parametrize("case,match", [
    ("2d", "expected a raw SIM stack"),
    ("frames", "has 9 frames, expected 15"),
    ("corrupt", "not a readable TIFF"),
    ("missing", "no such file"),
])
def test_header_check_reads_no_pixels_and_fails_like_a_full_read(tmp_path, case, match):
    from srredsim.tiff import read_stack_header

    with pytest.raises(SrredsimError, match=match):
        read_stack_header(_bad_stack(tmp_path / "x.tif", case), frames=15)


def test_header_of_a_stack_and_a_hyperstack(tmp_path):
    import tifffile

    from srredsim.tiff import read_stack_header, write_tiff

    write_tiff(tmp_path / "raw.tif", np.zeros((15, 20, 24), np.uint16), pixel_size_um=0.08)
    h = read_stack_header(tmp_path / "raw.tif", frames=15)
    assert h.shape == (15, 20, 24) and h.dtype == np.uint16
    assert h.meta.pixel_size_um == pytest.approx(0.08, rel=1e-6)
    tifffile.imwrite(tmp_path / "h.tif", np.zeros((3, 3, 4, 4), np.float32), imagej=True, metadata={"axes": "TZYX"})
    assert read_stack_header(tmp_path / "h.tif").shape == (9, 4, 4)
