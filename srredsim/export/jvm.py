"""Run an exported bioimage.io package on DeepImageJ's own engines, in a JVM.

DeepImageJ 3 (through its engine library JDLL) runs ``tensorflow_saved_model_bundle`` weights on
TensorFlow Java 0.5.0 (= TF 2.10.1) and ``onnx`` weights on ONNX Runtime Java 1.13.1. DeepImageJ
itself, JDLL and Fiji are published only on the SciJava Maven repository, which CI cannot reach;
the engines, ImageJ 1.x and SnakeYAML are on Maven Central. The Maven project shipped inside the
package (``srredsim/_jvm``, package data, so a wheel install has it) therefore reproduces what JDLL does with a package (parse rdf.yaml, unzip the weights, load the
SavedModel with tag ``serve`` / signature ``serving_default`` or the ONNX file with basic
optimisation, apply the RDF's pre/post-processing, run the test input, compare with the test
output within the RDF tolerance) on exactly those engines: an *engine-equivalent* check, not a
run of DeepImageJ (see docs/fiji.md for what that does and does not prove).

This module builds that project once into the per-user cache (:func:`srredsim.cache.cache_dir`:
``<cache>/jvm/<hash of the sources>/``, never inside the installed package; ``SRREDSIM_CACHE_DIR``
moves the cache, ``SRREDSIM_JVM_JAR`` names a prebuilt jar), runs it, and parses its
machine-readable result lines (``SRREDSIM_JVM_RESULT {json}``).

Public API: :func:`run_jvm_checks` (used by ``srredsim validate --jvm``; rows of
:class:`srredsim.export.checks.CheckResult`), :func:`check_package`, :func:`predict_tiff`,
:func:`build_jar`, :func:`find_tools`, :class:`JvmResult`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from srredsim.errors import SrredsimError
from srredsim.export.checks import FAIL, PASS, SKIP, CheckResult

RESULT_PREFIX = "SRREDSIM_JVM_RESULT "
JAR_NAME = "srredsim-jvm.jar"
# Engines and libraries the harness is pinned to (srredsim/_jvm/pom.xml): for reports and docs.
ENGINES = {
    "tensorflow_saved_model_bundle": "TensorFlow Java 0.5.0 (TensorFlow 2.10.1)",
    "onnx": "ONNX Runtime Java 1.13.1",
}
BUILD_TIMEOUT_S = 1800  # a cold build downloads ~230 MB from Maven Central
RUN_TIMEOUT_S = 600


@dataclasses.dataclass
class JvmResult:
    """One result line of the harness, parsed."""

    kind: str  # "check", "predict", "info", "package", "usage"
    status: str  # "passed", "failed", "error", "skipped"
    ok: bool
    engine: str | None
    weights_format: str | None
    detail: str
    data: dict[str, Any]

    @property
    def max_abs_diff(self) -> float | None:
        v = self.data.get("max_abs_diff")
        return None if v is None else float(v)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "JvmResult":
        return cls(kind=str(d.get("kind")), status=str(d.get("status")), ok=bool(d.get("ok")),
                   engine=d.get("engine"), weights_format=d.get("weights_format"),
                   detail=str(d.get("detail") or ""), data=d)


@dataclasses.dataclass
class JvmRun:
    """A finished run of the harness: exit code, parsed results and the raw output."""

    returncode: int
    results: list[JvmResult]
    stdout: str
    stderr: str
    seconds: float


# ---- locating the tools and the sources ---------------------------------------------------------

def source_dir() -> Path:
    """The Maven project: ``srredsim/_jvm`` (package data); ``SRREDSIM_JVM_SOURCE`` overrides."""
    env = os.environ.get("SRREDSIM_JVM_SOURCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "_jvm"


def cache_root(create: bool = True) -> Path:
    """Where built harness jars live: ``<srredsim cache>/jvm`` (see :mod:`srredsim.cache`)."""
    from srredsim.cache import cache_dir

    return cache_dir("jvm", create=create)


def _java_from_home() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return None


def java_version(java: str) -> int | None:
    """Major version of ``java`` (17 for "17.0.15"), or None if it cannot be run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    import re

    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def find_tools(need_maven: bool = True) -> dict[str, str]:
    """Paths of ``java`` (17 or newer) and ``mvn``; a clear :class:`SrredsimError` if missing."""
    java = _java_from_home() or shutil.which("java")
    missing = []
    if not java:
        missing.append("Java 17 (no `java` on PATH and no JAVA_HOME; install e.g. "
                       "`apt-get install openjdk-17-jdk-headless`)")
    else:
        v = java_version(java)
        if v is None or v < 17:
            missing.append(f"Java 17 or newer ({java} is Java {v or 'of unknown version'}; "
                           "set JAVA_HOME to a JDK 17)")
    mvn = shutil.which("mvn")
    if need_maven and not mvn:
        missing.append("Maven 3.8+ (no `mvn` on PATH; install e.g. `apt-get install maven`) "
                       "to build the JVM harness once, or set SRREDSIM_JVM_JAR to a jar built elsewhere")
    if missing:
        raise SrredsimError("the JVM check needs " + " and ".join(missing))
    tools = {"java": java}
    if mvn:
        tools["mvn"] = mvn
    return tools


def source_hash(src: Path | None = None) -> str:
    """SHA-256 over pom.xml and src/ (paths and contents): the cache key of a build."""
    src = Path(src or source_dir())
    files = [src / "pom.xml"] + sorted(p for p in (src / "src").rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        if not f.exists():
            raise SrredsimError(f"{src}: not the srredsim JVM project (no {f.relative_to(src)})")
        h.update(str(f.relative_to(src)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_jar() -> Path | None:
    """The jar for the current sources if it is already built, else None."""
    env = os.environ.get("SRREDSIM_JVM_JAR")
    if env:
        return Path(env) if Path(env).is_file() else None
    try:
        jar = cache_root(create=False) / source_hash() / JAR_NAME
    except SrredsimError:
        return None
    return jar if jar.is_file() else None


def build_jar(force: bool = False, maven_repo: str | os.PathLike | None = None, offline: bool = False,
              log=None) -> Path:
    """Build the JVM harness once and return the cached runnable jar (``lib/`` beside it).

    The build runs in a temporary copy of the sources (the checkout stays clean) with
    ``mvn -B -q package``; ``maven_repo`` sets ``-Dmaven.repo.local`` (a clean one measures a
    cold build). A cold build downloads about 230 MB from Maven Central (40-70 s on 2 cores) (TF Java's native library
    is ~117 MB, ONNX Runtime's jar ~63 MB).
    """
    env_jar = os.environ.get("SRREDSIM_JVM_JAR")
    if env_jar:
        if not Path(env_jar).is_file():
            raise SrredsimError(f"SRREDSIM_JVM_JAR={env_jar}: no such jar")
        return Path(env_jar)
    src = source_dir()
    if not (src / "pom.xml").is_file():
        raise SrredsimError(f"the JVM harness sources are missing ({src}/pom.xml): this installation of "
                            "srredsim is incomplete (reinstall it), or set SRREDSIM_JVM_SOURCE / SRREDSIM_JVM_JAR")
    key = source_hash(src)
    target = cache_root() / key
    jar = target / JAR_NAME
    if jar.is_file() and not force:
        return jar
    tools = find_tools(need_maven=True)
    with _lock(cache_root() / f".{key}.lock"):
        if jar.is_file() and not force:
            return jar
        with tempfile.TemporaryDirectory(prefix="srredsim-jvm-build-") as tmp:
            work = Path(tmp) / "jvm"
            shutil.copytree(src, work, ignore=shutil.ignore_patterns("target"))
            cmd = [tools["mvn"], "-B", "-q", "package"]
            if offline:
                cmd.insert(1, "-o")
            if maven_repo:
                cmd.append(f"-Dmaven.repo.local={Path(maven_repo).resolve()}")
            if log:
                log(f"building the JVM harness ({' '.join(cmd[1:])}) - the first build downloads ~230 MB")
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                                      env=_java_env())
            except subprocess.TimeoutExpired:
                raise SrredsimError(f"building the JVM harness took longer than {BUILD_TIMEOUT_S} s") from None
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                hint = ""
                if "Could not transfer" in tail or "Could not resolve" in tail or "UnknownHost" in tail:
                    hint = " (Maven Central could not be reached: the first build needs network access)"
                raise SrredsimError(f"building the JVM harness failed{hint}:\n{tail}")
            built = work / "target"
            staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_root()))
            try:
                shutil.copy2(built / JAR_NAME, staging / JAR_NAME)
                shutil.copytree(built / "lib", staging / "lib")
                (staging / "build.json").write_text(json.dumps(
                    {"source_hash": key, "seconds": round(time.perf_counter() - t0, 1),
                     "command": cmd[1:]}, indent=1))
                if target.exists():
                    shutil.rmtree(target)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    return jar


def _java_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF Java's native logging
    return env


def parse_results(stdout: str) -> list[JvmResult]:
    out = []
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            try:
                out.append(JvmResult.from_json(json.loads(line[len(RESULT_PREFIX):])))
            except json.JSONDecodeError:
                continue
    return out


def run_harness(args: list[str], timeout: float = RUN_TIMEOUT_S, jar: Path | None = None) -> JvmRun:
    """Run ``java -jar srredsim-jvm.jar ARGS`` (building it first if needed) and parse its results."""
    tools = find_tools(need_maven=False)
    jar = jar or build_jar()
    opts = os.environ.get("SRREDSIM_JVM_OPTS", "").split()
    cmd = [tools["java"], "-Djava.awt.headless=true", *opts, "-jar", str(jar), *map(str, args)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_java_env())
    except subprocess.TimeoutExpired:
        raise SrredsimError(f"the JVM harness did not finish within {timeout:.0f} s") from None
    return JvmRun(returncode=proc.returncode, results=parse_results(proc.stdout), stdout=proc.stdout,
                  stderr=proc.stderr, seconds=time.perf_counter() - t0)


def _package_arg(package: str | os.PathLike) -> Path:
    p = Path(package)
    if not p.exists():
        raise SrredsimError(f"{p}: no such package")
    return p.resolve()


def check_package(package: str | os.PathLike, weights: list[str] | None = None,
                  save_outputs: str | os.PathLike | None = None, timeout: float = RUN_TIMEOUT_S) -> JvmRun:
    """Run the package's test tensors on DeepImageJ's engines (all formats it runs, or ``weights``).

    With ``save_outputs`` the harness writes, per engine ``E`` and tensor ``T``,
    ``E-T-preprocessed.npy`` (inputs after pre-processing), ``E-T-model.npy`` (raw model output)
    and ``E-T.npy`` (after post-processing).
    """
    args = ["check", _package_arg(package)]
    if weights:
        args += ["--weights", ",".join(weights)]
    if save_outputs:
        args += ["--save-outputs", Path(save_outputs).resolve()]
    return run_harness(args, timeout=timeout)


def predict_tiff(package: str | os.PathLike, raw_tif: str | os.PathLike, out_tif: str | os.PathLike,
                 weights: str | None = None, save_outputs: str | os.PathLike | None = None,
                 timeout: float = RUN_TIMEOUT_S) -> JvmResult:
    """Open ``raw_tif`` with ImageJ 1.x, run the package on it in the JVM, save an ImageJ TIFF.

    The result's pixel size is the input's divided by the model's scale (2 for SR-REDSIM, 1 for a
    RED-fairSIM package, whose input is one reconstructed image). Raises
    :class:`SrredsimError` when the run fails.
    """
    raw_tif = Path(raw_tif)
    if not raw_tif.is_file():
        raise SrredsimError(f"{raw_tif}: no such file")
    args = ["predict", _package_arg(package), raw_tif.resolve(), Path(out_tif).resolve()]
    if weights:
        args += ["--weights", weights]
    if save_outputs:
        args += ["--save-outputs", Path(save_outputs).resolve()]
    run = run_harness(args, timeout=timeout)
    res = [r for r in run.results if r.kind in ("predict", "package", "usage")]
    if not res:
        raise SrredsimError(f"the JVM harness gave no result (exit {run.returncode}): "
                            f"{(run.stderr or run.stdout).strip()[-500:]}")
    if not res[0].ok:
        raise SrredsimError(f"the JVM run on {raw_tif} failed: {res[0].detail}")
    return res[0]


def run_jvm_checks(package_path: str | os.PathLike) -> list[CheckResult]:
    """Engine-equivalent DeepImageJ checks of a package, one :class:`CheckResult` per weight format.

    Names are ``jvm.<weights format>`` (e.g. ``jvm.onnx``); a package-level problem is reported as
    ``jvm.package``. Java/Maven missing or a failed build raises :class:`SrredsimError` with what
    to install.
    """
    run = check_package(package_path)
    out = []
    for r in run.results:
        secs = float(r.data.get("seconds") or 0.0)
        if r.kind == "check":
            fmt = r.weights_format or "?"
            if r.status == "skipped":
                out.append(CheckResult(f"jvm.{fmt}", SKIP, r.detail, secs))
                continue
            engine = r.data.get("engine_version") or ENGINES.get(fmt, "")
            prefix = f"on {engine} (as in DeepImageJ): " if engine else ""
            out.append(CheckResult(f"jvm.{fmt}", PASS if r.ok else FAIL, prefix + r.detail, secs))
        elif r.kind in ("package", "usage"):
            out.append(CheckResult("jvm.package", FAIL, r.detail, secs))
    if not out:
        tail = (run.stderr or run.stdout).strip()[-800:]
        out.append(CheckResult("jvm.harness", FAIL, f"the JVM harness exited {run.returncode} without a "
                               f"result: {tail}", run.seconds))
    return out
