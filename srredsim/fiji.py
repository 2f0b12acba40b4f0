"""Fiji from Python through pyimagej: what an installation lacks, DeepImageJ and fairSIM headless.

:func:`fiji_status` inspects a local ``Fiji.app`` (nothing is started) and says exactly what is
missing for ``srredsim fiji-check``; :func:`start_fiji` starts it headless through pyimagej;
:func:`run_deepimagej` and :func:`run_fairsim` drive DeepImageJ 3 and fairSIM in it. The macros and
the fairSIM script ship inside the package (``srredsim/_fiji``, :func:`fiji_files_dir`).
ImageJ 1.x alone (no Fiji needed) lives in :mod:`srredsim.imagej`; only one JVM can live in a
Python process, so use one of the two per process. Fiji's own bundled Java is preferred when Fiji
ships one.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from srredsim.errors import SrredsimError

FAIRSIM_SCRIPT = "fairsim_reconstruct.py"
DEEPIMAGEJ_MACRO = "deepimagej_run.ijm"

# DeepImageJ's macro keys by version (srredsim/_fiji/README.md documents them):
#   3.1+     run("DeepImageJ Run", "model_path=[...] input_path=[...] output_folder=[...] display_output=null")
#   3.0.x    run("DeepImageJ Run", "modelPath=[...] inputPath=[...] outputFolder=[...] displayOutput=null")
#   2.x      run("DeepImageJ Run", "model=[name] format=Tensorflow preprocessing=[...] postprocessing=[...]
#                                   axes=Y,X,C tile=... logging=normal [model_dir=...]")  (no bioimage.io 0.5)
DIJ_KEYS = {
    "3.1": ("model_path", "input_path", "output_folder", "display_output"),
    "3.0": ("modelPath", "inputPath", "outputFolder", "displayOutput"),
}


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
                          f"{FAIRSIM_SCRIPT} (shipped in srredsim/_fiji)")
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
    from srredsim.imagej import _scyjava

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
    """The Fiji files shipped in the package, ``srredsim/_fiji`` (macros, the fairSIM script, a guide).

    ``SRREDSIM_FIJI_FILES`` points at another copy.
    """
    env = os.environ.get("SRREDSIM_FIJI_FILES")
    return Path(env) if env else Path(__file__).resolve().parent / "_fiji"


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
    """Reconstruct ``raw_tif`` with fairSIM in Fiji (srredsim/_fiji/fairsim_reconstruct.py, Jython)."""
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
