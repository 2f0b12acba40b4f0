"""ImageJ 1.x from Python (scyjava + net.imagej:ij 1.54p from Maven Central), for real.

numpy <-> ImagePlus, our TIFFs opened by ImageJ with pixel size / unit / stack intact, ImageJ's
TIFFs read back by srredsim.tiff, and a headless macro (Z-projection average, the operation
Debian's ImageJ 1.53t gets wrong), through srredsim.imagej. Skipped with the reason when scyjava, Java or the ImageJ jar
(fetched once with Maven) is unavailable. One JVM per process: all of it runs in this module's JVM.
"""

from __future__ import annotations

import numpy as np
import pytest

from srredsim.errors import SrredsimError


def _why_not() -> str | None:
    try:
        import scyjava  # noqa: F401
    except ImportError:
        return "scyjava is not installed (pip install 'srredsim[test]')"
    import shutil

    if not shutil.which("java") and not __import__("os").environ.get("JAVA_HOME"):
        return "no Java on PATH / JAVA_HOME"
    try:
        from srredsim.imagej import imagej1_jar

        imagej1_jar()
    except SrredsimError as exc:
        return str(exc)
    return None


_REASON = _why_not()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"ImageJ 1.x unavailable: {_REASON}")


@pytest.fixture(scope="module")
def IJ():
    from srredsim import imagej

    return imagej.start_imagej1()


@pytest.fixture
def raw_stack():
    rng = np.random.default_rng(7)
    return rng.integers(0, 4000, size=(15, 40, 48)).astype(np.uint16)


def test_version_is_the_pinned_one(IJ):
    from srredsim.imagej import IJ1_VERSION

    assert str(IJ.getVersion()).startswith(IJ1_VERSION)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_numpy_imageplus_round_trip(IJ, dtype):
    from srredsim.imagej import imageplus_to_numpy, numpy_to_imageplus

    rng = np.random.default_rng(1)
    a = (rng.random((3, 20, 30)) * 200).astype(dtype)
    imp = numpy_to_imageplus(a, "t", pixel_size_um=0.04)
    assert (imp.getWidth(), imp.getHeight(), imp.getStackSize()) == (30, 20, 3)
    back, meta = imageplus_to_numpy(imp)
    assert back.dtype == a.dtype and np.array_equal(back, a)
    assert meta["pixel_size_um"] == pytest.approx(0.04)


def test_imagej_opens_our_raw_tiff_with_metadata(IJ, raw_stack, tmp_path):
    from srredsim.imagej import imageplus_to_numpy, open_image
    from srredsim.tiff import write_tiff

    path = write_tiff(tmp_path / "raw.tif", raw_stack, pixel_size_um=0.08)
    imp = open_image(path)
    assert imp.getBitDepth() == 16 and imp.getStackSize() == 15
    cal = imp.getCalibration()
    assert cal.pixelWidth == pytest.approx(0.08) and cal.pixelHeight == pytest.approx(0.08)
    assert str(cal.getUnit()) in ("µm", "micron", "um")
    back, meta = imageplus_to_numpy(imp)
    assert np.array_equal(back, raw_stack)
    assert meta["pixel_size_um"] == pytest.approx(0.08)


def test_imagej_tiff_reads_back_in_python(IJ, tmp_path):
    """An SR image made in ImageJ (float, half pixel size) survives the trip to srredsim.tiff."""
    from srredsim.imagej import numpy_to_imageplus, save_tiff
    from srredsim.tiff import read_reference, read_tiff

    rng = np.random.default_rng(3)
    sr = rng.random((80, 96)).astype(np.float32)
    path = save_tiff(numpy_to_imageplus(sr, "sr", pixel_size_um=0.04), tmp_path / "sr.tif")
    data, meta = read_tiff(path)
    assert meta.axes == "YX" and meta.pixel_size_um == pytest.approx(0.04)
    ref, meta2 = read_reference(path)
    assert np.array_equal(ref, sr) and meta2.pixel_size_um == pytest.approx(0.04)


def test_stack_round_trip_python_imagej_python(IJ, raw_stack, tmp_path):
    from srredsim.imagej import open_image, save_tiff
    from srredsim.tiff import read_raw_stack, write_tiff

    src = write_tiff(tmp_path / "in.tif", raw_stack, pixel_size_um=0.08)
    out = save_tiff(open_image(src), tmp_path / "out.tif")
    data, meta = read_raw_stack(out, frames=15)
    assert data.dtype == np.uint16 and np.array_equal(data, raw_stack)
    assert meta.pixel_size_um == pytest.approx(0.08)
    assert len(meta.axes) == 3 and meta.axes.endswith("YX")


def test_headless_macro_average_and_metadata(IJ, raw_stack, tmp_path):
    """A macro run headless on an image opened by ImageJ: average over the stack, saved, read back."""
    from srredsim.imagej import open_image, run_macro
    from srredsim.tiff import read_reference, write_tiff

    src = write_tiff(tmp_path / "raw.tif", raw_stack, pixel_size_um=0.08)
    out = tmp_path / "avg.tif"
    macro = f"""
    setBatchMode(true);
    w = getWidth(); h = getHeight(); n = nSlices;
    getPixelSize(unit, pw, ph);
    acc = newArray(w * h);
    for (z = 1; z <= n; z++) {{
        setSlice(z);
        for (y = 0; y < h; y++) for (x = 0; x < w; x++) acc[y * w + x] += getPixel(x, y) / n;
    }}
    newImage("avg", "32-bit black", w, h, 1);
    for (y = 0; y < h; y++) for (x = 0; x < w; x++) setPixel(x, y, acc[y * w + x]);
    setVoxelSize(pw, ph, 1, unit);
    saveAs("Tiff", "{out}");
    return "" + n + " " + pw + " " + unit;
    """
    res = run_macro(macro, image=open_image(src))
    assert res is not None
    n, pw, unit = res.split(" ", 2)
    assert int(n) == 15 and float(pw) == pytest.approx(0.08) and unit in ("µm", "micron", "um")
    avg, meta = read_reference(out)
    assert meta.pixel_size_um == pytest.approx(0.08)
    np.testing.assert_allclose(avg, raw_stack.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-3)


def test_z_project_average(IJ, raw_stack):
    """ImageJ's ZProjector (behind "Z Project... > Average Intensity") against numpy's mean.

    Float stacks: exact. 16-bit stacks: ImageJ 1.54p returns a 16-bit projection, i.e. the mean
    rounded to integers (observed here) -- convert to 32-bit first when averages matter.
    """
    from srredsim.imagej import _jclass, imageplus_to_numpy, numpy_to_imageplus

    ZProjector = _jclass("ij.plugin.ZProjector")
    mean = raw_stack.astype(np.float64).mean(axis=0)
    avg = ZProjector.run(numpy_to_imageplus(raw_stack.astype(np.float32), pixel_size_um=0.08), "avg")
    data, meta = imageplus_to_numpy(avg)
    assert data.shape == (1, 40, 48) and meta["pixel_size_um"] == pytest.approx(0.08)
    np.testing.assert_allclose(data[0], mean, rtol=1e-6, atol=1e-3)
    data16, _ = imageplus_to_numpy(ZProjector.run(numpy_to_imageplus(raw_stack), "avg"))
    assert np.max(np.abs(data16[0] - mean)) <= 0.5 + 1e-9


def test_macro_with_argument(IJ):
    from srredsim.imagej import run_macro

    assert run_macro('a = getArgument(); return "got " + a;', "x=1") == "got x=1"


def test_unreadable_file_is_a_clear_error(IJ, tmp_path):
    from srredsim.imagej import open_image

    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(SrredsimError, match="ImageJ cannot open"):
        open_image(bad)
    with pytest.raises(SrredsimError, match="no such file"):
        open_image(tmp_path / "missing.tif")
