"""ImageJ 1.x from Python through scyjava: open, convert, save and run macros headless.

ImageJ 1.x (``net.imagej:ij`` from Maven Central, pinned to :data:`IJ1_VERSION`) runs in a JVM
started by scyjava: open a TIFF the way ImageJ does, numpy <-> ``ImagePlus`` with pixel size and
unit, save ImageJ TIFFs, run macros. This is the part of Fiji that needs no Fiji installation, so
it runs in CI; :mod:`srredsim.fiji` drives a real Fiji (DeepImageJ, fairSIM) through pyimagej.
:func:`imagej1_jar` finds the jar (``SRREDSIM_IJ_JAR``, the local Maven repository, the per-user
cache of :mod:`srredsim.cache`) or fetches it once with Maven.

Only one JVM can live in a Python process (JPype): use this module or :mod:`srredsim.fiji`, not
both, in one process. Java is taken from the system (scyjava ``fetch_java="auto"``: JAVA_HOME /
PATH, downloading a JDK only when none exists).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from srredsim.errors import SrredsimError

IJ1_VERSION = "1.54p"  # Maven Central net.imagej:ij; Debian's 1.53t has a Z-project averaging bug
IJ1_ARTIFACT = f"net.imagej:ij:{IJ1_VERSION}"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"


def imagej1_jar(fetch: bool = True) -> Path:
    """Path of the ImageJ 1.x jar (``net.imagej:ij:1.54p``), fetched once with Maven if needed."""
    from srredsim.cache import cache_dir

    env = os.environ.get("SRREDSIM_IJ_JAR")
    if env:
        if not Path(env).is_file():
            raise SrredsimError(f"SRREDSIM_IJ_JAR={env}: no such file")
        return Path(env)
    name = f"ij-{IJ1_VERSION}.jar"
    candidates = [Path.home() / ".m2" / "repository" / "net" / "imagej" / "ij" / IJ1_VERSION / name,
                  cache_dir("ij", create=False) / name]
    candidates += sorted(cache_dir("jvm", create=False).glob(f"*/lib/{name}"))  # the JVM harness's copy
    for c in candidates:
        if c.is_file():
            return c
    if not fetch:
        raise SrredsimError(f"ImageJ {IJ1_VERSION} jar not found (looked in {', '.join(map(str, candidates[:2]))})")
    mvn = shutil.which("mvn")
    if not mvn:
        raise SrredsimError(f"ImageJ {IJ1_VERSION} is needed from Maven Central ({IJ1_ARTIFACT}); install Maven "
                            "(`apt-get install maven`) or set SRREDSIM_IJ_JAR to an ij.jar")
    dest = cache_dir("ij")
    cmd = [mvn, "-B", "-q", f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={IJ1_ARTIFACT}", f"-DoutputDirectory={dest}"]
    with tempfile.TemporaryDirectory() as tmp:  # no pom.xml around: run outside any project
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not (dest / name).is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise SrredsimError(f"fetching {IJ1_ARTIFACT} with Maven failed:\n{tail}")
    return dest / name


def _scyjava():
    try:
        import scyjava
    except ImportError:
        raise SrredsimError("ImageJ from Python needs scyjava: pip install 'srredsim[fiji]' (or scyjava)") from None
    return scyjava


def start_imagej1(jar: str | os.PathLike | None = None):
    """Start a headless JVM with ImageJ 1.x on its class path (once per process); return ``ij.IJ``."""
    sj = _scyjava()
    if sj.jvm_started():
        try:
            return sj.jimport("ij.IJ")
        except Exception:
            raise SrredsimError("a JVM is already running in this process without ImageJ 1.x on its class path "
                                "(only one JVM per Python process)") from None
    jar = Path(jar) if jar else imagej1_jar()
    sj.config.set_java_constraints(fetch="auto")
    sj.config.add_classpath(str(jar))
    sj.config.add_option("-Djava.awt.headless=true")
    try:
        sj.start_jvm()
    except Exception as exc:
        raise SrredsimError(f"cannot start a JVM for ImageJ ({type(exc).__name__}: {exc}); install Java 11+ "
                            "or set JAVA_HOME") from None
    return sj.jimport("ij.IJ")


def _jclass(name: str):
    return _scyjava().jimport(name)


def numpy_to_imageplus(arr: np.ndarray, title: str = "image", pixel_size_um: float | None = None,
                       unit: str = "micron"):
    """A ``(Y, X)`` or ``(Z, Y, X)`` array (uint8, uint16 or float) as an ImageJ ``ImagePlus``.

    uint8/uint16 stay 8/16-bit; everything else becomes 32-bit float. The stack dimension is
    ImageJ's slice (z) dimension; ``pixel_size_um`` sets the calibration in ``unit``.
    """
    import jpype

    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise SrredsimError(f"expected a 2-D or 3-D array, got shape {a.shape}")
    n, h, w = a.shape
    ImageStack = _jclass("ij.ImageStack")
    ImagePlus = _jclass("ij.ImagePlus")
    stack = ImageStack(int(w), int(h))
    for i in range(n):
        plane = np.ascontiguousarray(a[i])
        if plane.dtype == np.uint8:
            ip = _jclass("ij.process.ByteProcessor")(int(w), int(h), jpype.JArray(jpype.JByte)(plane.view(np.int8).ravel()))
        elif plane.dtype == np.uint16:
            ip = _jclass("ij.process.ShortProcessor")(int(w), int(h),
                                                      jpype.JArray(jpype.JShort)(plane.view(np.int16).ravel()), None)
        else:
            ip = _jclass("ij.process.FloatProcessor")(int(w), int(h),
                                                      jpype.JArray(jpype.JFloat)(plane.astype(np.float32).ravel()))
        stack.addSlice(f"{title}-{i + 1}", ip)
    imp = ImagePlus(title, stack)
    if pixel_size_um is not None:
        cal = imp.getCalibration()
        cal.pixelWidth = float(pixel_size_um)
        cal.pixelHeight = float(pixel_size_um)
        cal.setUnit(unit)
    return imp


def imageplus_to_numpy(imp) -> tuple[np.ndarray, dict[str, Any]]:
    """Pixels ``(N, Y, X)`` (N = all planes in stack order) and metadata of an ``ImagePlus``.

    Metadata: ``pixel_size_um`` (None if uncalibrated or not in a length unit), ``unit``,
    ``channels``, ``slices``, ``frames``, ``bit_depth``.
    """
    w, h, n = int(imp.getWidth()), int(imp.getHeight()), int(imp.getStackSize())
    bit = int(imp.getBitDepth())
    dtype = {8: np.uint8, 16: np.uint16}.get(bit, np.float32)
    out = np.empty((n, h, w), dtype)
    stack = imp.getStack()
    for i in range(n):
        ip = stack.getProcessor(i + 1)
        if bit == 24:
            ip = ip.convertToFloatProcessor()
        px = np.asarray(ip.getPixels())
        if bit == 8:
            px = px.view(np.uint8)
        elif bit == 16:
            px = px.view(np.uint16)
        out[i] = px.reshape(h, w)
    cal = imp.getCalibration()
    unit = str(cal.getUnit())
    from srredsim.tiff import _UNIT_TO_UM

    scale = _UNIT_TO_UM.get(unit) or {"micron": 1.0, "microns": 1.0}.get(unit)
    size = float(cal.pixelWidth) * scale if scale and cal.scaled() else None
    meta = {"pixel_size_um": size, "unit": unit, "channels": int(imp.getNChannels()),
            "slices": int(imp.getNSlices()), "frames": int(imp.getNFrames()), "bit_depth": bit}
    return out, meta


def open_image(path: str | os.PathLike):
    """Open a file with ImageJ 1.x (``IJ.openImage``); SrredsimError if ImageJ cannot."""
    IJ = start_imagej1()
    path = Path(path)
    if not path.is_file():
        raise SrredsimError(f"{path}: no such file")
    imp = IJ.openImage(str(path))
    if imp is None:
        raise SrredsimError(f"{path}: ImageJ cannot open this file")
    return imp


def save_tiff(imp, path: str | os.PathLike) -> Path:
    """Save an ``ImagePlus`` as an ImageJ TIFF (calibration and stack layout included)."""
    start_imagej1()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _jclass("ij.io.FileSaver")(imp).saveAsTiff(str(path)):
        raise SrredsimError(f"{path}: ImageJ could not save the image")
    return path


def run_macro(code: str, arg: str = "", image=None) -> str | None:
    """Run an ImageJ 1.x macro headless; return what the macro returns (``return "...";``).

    ``image`` (an ``ImagePlus``) becomes the macro's current image. Plain ImageJ 1.x cannot run
    menu commands headless (``open()``, ``run("Z Project...")`` build AWT menus and throw
    ``HeadlessException``; Fiji's imagej-legacy patches that): macros here use built-in functions
    (getPixel, setPixel, newImage, getPixelSize, saveAs, ...), and images are opened from Python.
    """
    IJ = start_imagej1()
    if image is not None:
        _jclass("ij.WindowManager").setTempCurrentImage(image)
    try:
        res = IJ.runMacro(code, arg)
    finally:
        if image is not None:
            _jclass("ij.WindowManager").setTempCurrentImage(None)
    return None if res is None else str(res)
