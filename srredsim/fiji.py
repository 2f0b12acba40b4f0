"""ImageJ and Fiji from Python: ImageJ 1.x through scyjava, Fiji (DeepImageJ, fairSIM) through pyimagej.

Two levels, because only the first can run on machines without a Fiji installation:

* **ImageJ 1.x** (``net.imagej:ij`` from Maven Central, pinned to :data:`IJ1_VERSION`) in a JVM
  started by scyjava: open a TIFF the way ImageJ does, numpy <-> ``ImagePlus`` with pixel size
  and unit, save ImageJ TIFFs, run macros. :func:`imagej1_jar` finds the jar (``SRREDSIM_IJ_JAR``,
  the local Maven repository, srredsim's cache) or fetches it once with Maven.
* **Fiji** (a local ``Fiji.app`` with DeepImageJ 3 and fairSIM) through pyimagej, headless:
  :func:`fiji_status` says exactly what an installation lacks; :func:`start_fiji`,
  :func:`run_deepimagej` and :func:`run_fairsim` drive it (``srredsim fiji-check``).

Only one JVM can live in a Python process (JPype): use one of the two levels per process.
Java is taken from the system (scyjava ``fetch_java="auto"``: JAVA_HOME / PATH, downloading a
JDK only when none exists); Fiji's own bundled Java is preferred when Fiji ships one.
"""

from __future__ import annotations

import dataclasses
import os
import re
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
FAIRSIM_SCRIPT = "fairsim_reconstruct.py"
DEEPIMAGEJ_MACRO = "deepimagej_run.ijm"

# DeepImageJ's macro keys by version (export/fiji/README.md documents them):
#   3.1+     run("DeepImageJ Run", "model_path=[...] input_path=[...] output_folder=[...] display_output=null")
#   3.0.x    run("DeepImageJ Run", "modelPath=[...] inputPath=[...] outputFolder=[...] displayOutput=null")
#   2.x      run("DeepImageJ Run", "model=[name] format=Tensorflow preprocessing=[...] postprocessing=[...]
#                                   axes=Y,X,C tile=... logging=normal [model_dir=...]")  (no bioimage.io 0.5)
DIJ_KEYS = {
    "3.1": ("model_path", "input_path", "output_folder", "display_output"),
    "3.0": ("modelPath", "inputPath", "outputFolder", "displayOutput"),
}


# ---- ImageJ 1.x through scyjava ------------------------------------------------------------------

def _cache_dir() -> Path:
    env = os.environ.get("SRREDSIM_CACHE_DIR")
    return Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srredsim"


def imagej1_jar(fetch: bool = True) -> Path:
    """Path of the ImageJ 1.x jar (``net.imagej:ij:1.54p``), fetched once with Maven if needed."""
    env = os.environ.get("SRREDSIM_IJ_JAR")
    if env:
        if not Path(env).is_file():
            raise SrredsimError(f"SRREDSIM_IJ_JAR={env}: no such file")
        return Path(env)
    name = f"ij-{IJ1_VERSION}.jar"
    candidates = [Path.home() / ".m2" / "repository" / "net" / "imagej" / "ij" / IJ1_VERSION / name,
                  _cache_dir() / "ij" / name]
    candidates += sorted((_cache_dir() / "jvm").glob(f"*/lib/{name}"))
    for c in candidates:
        if c.is_file():
            return c
    if not fetch:
        raise SrredsimError(f"ImageJ {IJ1_VERSION} jar not found (looked in {', '.join(map(str, candidates[:2]))})")
    mvn = shutil.which("mvn")
    if not mvn:
        raise SrredsimError(f"ImageJ {IJ1_VERSION} is needed from Maven Central ({IJ1_ARTIFACT}); install Maven "
                            "(`apt-get install maven`) or set SRREDSIM_IJ_JAR to an ij.jar")
    dest = _cache_dir() / "ij"
    dest.mkdir(parents=True, exist_ok=True)
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


# ---- Fiji through pyimagej ----------------------------------------------------------------------

@dataclasses.dataclass
class FijiStatus:
    """What a Fiji installation has for ``srredsim fiji-check`` and what it lacks."""

    fiji_dir: Path | None
    launcher: Path | None = None
    deepimagej: list[Path] = dataclasses.field(default_factory=list)
    deepimagej_version: str | None = None
    engines: list[str] = dataclasses.field(default_factory=list)
    fairsim: list[Path] = dataclasses.field(default_factory=list)
    jython: bool = False
    java_home: Path | None = None
    pyimagej: str | None = None
    missing: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def lines(self) -> list[str]:
        out = [f"Fiji folder     {self.fiji_dir or '(none given: --fiji or FIJI_DIR)'}"]
        if self.fiji_dir:
            out.append(f"launcher        {self.launcher or 'missing'}")
            out.append(f"DeepImageJ      {', '.join(p.name for p in self.deepimagej) or 'missing'}"
                       + (f" (version {self.deepimagej_version})" if self.deepimagej_version else ""))
            out.append(f"DIJ engines     {', '.join(self.engines) or 'none installed in Fiji.app/engines'}")
            out.append(f"fairSIM         {', '.join(p.name for p in self.fairsim) or 'missing'}")
            out.append(f"Jython          {'yes' if self.jython else 'missing'}")
            out.append(f"Java            {self.java_home or 'system Java (scyjava fetch_java=auto)'}")
        out.append(f"pyimagej        {self.pyimagej or 'not installed'}")
        out += [f"MISSING         {m}" for m in self.missing]
        out += [f"warning         {w}" for w in self.warnings]
        return out


def _version_of(jar: Path) -> str | None:
    m = re.search(r"(\d+\.\d+\.\d+(?:-[A-Za-z0-9]+)?)", jar.stem)
    return m.group(1) if m else None


def fiji_status(fiji_dir: str | os.PathLike | None) -> FijiStatus:
    """Inspect a Fiji installation (nothing is started) and list exactly what is missing."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    try:  # not imported here: importing pyimagej touches a running JVM
        pyij = version("pyimagej") if importlib.util.find_spec("imagej") else None
    except PackageNotFoundError:
        pyij = None
    st = FijiStatus(fiji_dir=Path(fiji_dir) if fiji_dir else None, pyimagej=pyij)
    if pyij is None:
        st.missing.append("pyimagej (pip install 'srredsim[fiji]')")
    if st.fiji_dir is None:
        st.missing.append("a Fiji installation: pass --fiji /path/to/Fiji.app or set FIJI_DIR "
                          "(download Fiji from https://fiji.sc and add DeepImageJ and fairSIM, see docs/fiji.md)")
        return st
    d = st.fiji_dir
    if not d.is_dir():
        st.missing.append(f"{d}: no such folder (expected a Fiji.app folder)")
        return st
    if not (d / "jars").is_dir():
        st.missing.append(f"{d}/jars: not a Fiji.app folder (no jars/)")
    for name in ("fiji-linux-x64", "ImageJ-linux64", "fiji", "ImageJ-win64.exe", "Contents/MacOS/ImageJ-macosx",
                 "fiji-macos"):
        if (d / name).exists():
            st.launcher = d / name
            break
    jars = [p for sub in ("plugins", "jars") if (d / sub).is_dir() for p in (d / sub).rglob("*.jar")]
    st.deepimagej = sorted(p for p in jars if re.match(r"(?i)deepimagej[-_]?\d", p.name) or p.name.lower() == "deepimagej.jar")
    st.fairsim = sorted(p for p in jars if p.name.lower().startswith("fairsim"))
    st.jython = any(p.name.lower().startswith("jython") for p in jars)
    if st.deepimagej:
        st.deepimagej_version = _version_of(st.deepimagej[-1])
    if not st.deepimagej:
        st.missing.append("DeepImageJ (Fiji: Help > Update > Manage update sites > tick 'DeepImageJ', or put "
                          "DeepImageJ-3.x.jar into Fiji.app/plugins)")
    elif st.deepimagej_version and st.deepimagej_version.split(".")[0] in ("1", "2"):
        st.missing.append(f"DeepImageJ 3 (found {st.deepimagej_version}: DeepImageJ 1/2 cannot read bioimage.io "
                          "format 0.5 packages)")
    if not st.fairsim:
        st.missing.append("fairSIM (fairSIM_plugin_*.jar from the fairSIM release page into Fiji.app/plugins; "
                          "GPL-2.0, not on any registry)")
    if not st.jython:
        st.missing.append("Jython (Fiji's scripting; Help > Update, 'Jython' is part of Fiji) to run "
                          f"export/fiji/{FAIRSIM_SCRIPT}")
    eng = d / "engines"
    if eng.is_dir():
        st.engines = sorted(p.name for p in eng.iterdir() if p.is_dir())
    if not any(e.lower().startswith(("tensorflow", "onnx")) for e in st.engines):
        st.warnings.append("no TensorFlow/ONNX engine in Fiji.app/engines: DeepImageJ downloads one on first use "
                           "(needs network), or install it from DeepImageJ's engine installer")
    st.java_home = fiji_java_home(d)
    return st


def fiji_java_home(fiji_dir: Path) -> Path | None:
    """The JDK/JRE bundled with Fiji (Fiji.app/java/<platform>/<jdk>/), if any."""
    java_root = Path(fiji_dir) / "java"
    if not java_root.is_dir():
        return None
    for java in sorted(java_root.rglob("bin/java")):
        home = java.parent.parent
        if home.name == "jre" and (home.parent / "bin" / "java").exists():
            continue
        return home
    return None


def start_fiji(fiji_dir: str | os.PathLike):
    """Start Fiji headless through pyimagej (``fetch_java="auto"``, Fiji's own Java if bundled)."""
    st = fiji_status(fiji_dir)
    hard = [m for m in st.missing if not m.startswith(("fairSIM", "Jython"))]  # needed only for fairSIM
    if hard:
        raise SrredsimError("cannot start Fiji: missing " + "; ".join(hard))
    sj = _scyjava()
    if sj.jvm_started():
        raise SrredsimError("a JVM already runs in this process; start Fiji in a fresh Python process")
    if st.java_home and not os.environ.get("SRREDSIM_KEEP_JAVA_HOME"):
        os.environ["JAVA_HOME"] = str(st.java_home)
    sj.config.set_java_constraints(fetch="auto")
    import imagej

    try:
        return imagej.init(str(st.fiji_dir), mode="headless")
    except Exception as exc:
        raise SrredsimError(f"pyimagej could not start Fiji at {st.fiji_dir}: {type(exc).__name__}: {exc}") from None


def fiji_files_dir() -> Path:
    """``export/fiji`` of the source checkout (macros, the fairSIM script, the guide)."""
    env = os.environ.get("SRREDSIM_FIJI_FILES")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "export" / "fiji"


def deepimagej_macro(model_dir: str | os.PathLike, input_path: str | os.PathLike,
                     output_folder: str | os.PathLike, version: str | None = "3.1") -> str:
    """The ``run("DeepImageJ Run", ...)`` line for DeepImageJ 3.1+ (``version="3.0"``: camelCase keys)."""
    keys = DIJ_KEYS["3.0" if (version or "3.1").startswith("3.0") else "3.1"]
    vals = (Path(model_dir).resolve(), Path(input_path).resolve(), Path(output_folder).resolve(), "null")
    args = " ".join(f"{k}=[{v}]" if i < 3 else f"{k}={v}" for i, (k, v) in enumerate(zip(keys, vals)))
    return f'run("DeepImageJ Run", "{args}");'


def run_deepimagej(ij, model_dir: Path, raw_tif: Path, out_dir: Path, version: str | None = None) -> Path:
    """Run DeepImageJ headless on ``raw_tif`` with the unpacked package ``model_dir``; return the output TIFF.

    DeepImageJ 3 saves ``<input title>_<output tensor id>.tif`` into ``output_folder``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.tif"))
    macro = deepimagej_macro(model_dir, raw_tif, out_dir, version)
    try:
        ij.py.run_macro(macro)
    except Exception as exc:
        raise SrredsimError(f"DeepImageJ failed ({macro}): {type(exc).__name__}: {exc}") from None
    made = sorted(set(out_dir.glob("*.tif")) - before)
    if not made:
        raise SrredsimError(f"DeepImageJ wrote nothing into {out_dir} (macro: {macro}); see Fiji's console output")
    return made[0]


def run_fairsim(ij, raw_tif: Path, out_tif: Path, optics, wiener: float = 0.05,
                otf_a: float = 0.31, script: Path | None = None) -> Path:
    """Reconstruct ``raw_tif`` with fairSIM in Fiji (export/fiji/fairsim_reconstruct.py, Jython)."""
    script = Path(script or fiji_files_dir() / FAIRSIM_SCRIPT)
    if not script.is_file():
        raise SrredsimError(f"{script}: the fairSIM script is missing")
    args = {"raw": str(Path(raw_tif).resolve()), "output": str(Path(out_tif).resolve()),
            "angles": int(optics.angles), "phases": int(optics.phases), "bands": int(optics.beams),
            "na": float(optics.na), "wavelength_nm": float(optics.wavelength_nm),
            "pixel_size_um": float(optics.pixel_size_um), "otf_a": float(otf_a), "wiener": float(wiener)}
    try:
        ij.py.run_script("python", script.read_text(), args)
    except Exception as exc:
        raise SrredsimError(f"fairSIM ({script.name}) failed: {type(exc).__name__}: {exc}") from None
    if not Path(out_tif).is_file():
        raise SrredsimError(f"fairSIM wrote no result to {out_tif}")
    return Path(out_tif)
