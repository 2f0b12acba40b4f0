"""Build what ``srredsim validate --deepimagej`` runs: DeepImageJ's driver, JDLL's engines, the patched adapters.

* :func:`find_vendor`: the *vendor folder* — DeepImageJ 3.1 and JDLL 0.6.1 (published only on the
  SciJava Maven repository) built from their public sources into a file Maven repository
  (``<vendor>/maven``; in this project's workspace ``../shared/vendor``).
* :func:`build_driver`: the Maven project in ``deepimagej_driver/`` (package data) built against that
  repository and Maven Central (cached).
* :func:`engine_plans` / :func:`prepare_engines`: JDLL is asked (``--engines-for``) which engine its
  ``load(true)`` would install for each weight format of a package, from its own catalogue; those
  jars come from Maven Central into ``<cache>/engines/<framework>-<python version>-<version>-<os>-cpu/``,
  placed by hand as JDLL expects them, so nothing is downloaded when DeepImageJ runs.
* :func:`build_patched_adapter`: the engine adapters JDLL would fetch from SciJava
  (``dl-modelrunner-onnx`` / ``-tensorflow-2c`` 0.4.2), compiled from their published sources with
  one line changed each (:data:`ADAPTER_PATCHES`; the stock 0.4.2 adapters crash or return zeros
  with JDLL 0.6.1, see docs/fiji.md).

Everything is cached under ``cache_dir("deepimagej")`` (``SRREDSIM_CACHE_DIR`` moves it); the first
build downloads about 250 MB from Maven Central, later runs reuse it.
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
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

from srredsim.errors import SrredsimError

DRIVER_DIR = Path(__file__).with_name("deepimagej_driver")
DRIVER_JAR = "srredsim-deepimagej.jar"
RESULT_PREFIX = "SRREDSIM_DIJ_RESULT "
VENDOR_ENV = "SRREDSIM_DEEPIMAGEJ_VENDOR"
BUILD_TIMEOUT_S = 1800
DEEPIMAGEJ_VERSION = "3.1.0-SNAPSHOT"
JDLL_VERSION = "0.6.1"
ADAPTER_VERSION = "0.4.2"
CENTRAL_PREFIX = "https://maven-central.invalid/maven2/"  # JDLL's catalogue, as the vendor build rewrote it
CENTRAL_PREFIXES = (CENTRAL_PREFIX, "https://repo1.maven.org/maven2/", "https://repo.maven.apache.org/maven2/")
ADAPTERS = ("dl-modelrunner-onnx", "dl-modelrunner-tensorflow-2c")

# What the vendor folder must hold (relative paths) and what each file is.
VENDOR_FILES = {
    f"maven/io/github/deepimagej/DeepImageJ/{DEEPIMAGEJ_VERSION}/DeepImageJ-{DEEPIMAGEJ_VERSION}.jar":
        f"DeepImageJ {DEEPIMAGEJ_VERSION}",
    f"maven/io/github/deepimagej/DeepImageJ/{DEEPIMAGEJ_VERSION}/DeepImageJ-{DEEPIMAGEJ_VERSION}.pom":
        "DeepImageJ's pom",
    f"maven/io/bioimage/dl-modelrunner/{JDLL_VERSION}/dl-modelrunner-{JDLL_VERSION}.jar": f"JDLL {JDLL_VERSION}",
    **{f"maven/io/bioimage/{a}/{ADAPTER_VERSION}/{a}-{ADAPTER_VERSION}-sources.jar": f"{a} {ADAPTER_VERSION} sources"
       for a in ADAPTERS},
    **{f"maven/io/bioimage/{a}/{ADAPTER_VERSION}/{a}-{ADAPTER_VERSION}.jar": f"{a} {ADAPTER_VERSION}"
       for a in ADAPTERS},
}


@dataclasses.dataclass(frozen=True)
class AdapterPatch:
    """One source line of a JDLL engine adapter, changed (``new`` None: removed)."""

    artifact: str
    path: str
    line: int
    old: str
    new: str | None
    why: str


ADAPTER_PATCHES = (
    AdapterPatch(
        "dl-modelrunner-onnx", "io/bioimage/modelrunner/onnx/OnnxInterface.java", 232,
        "onnxTensors.get(cc).close();", None,
        "fillOutputTensors closes each output OnnxValue and run() then closes the Result, which closes "
        "them again: a double free in ONNX Runtime's native code (SIGSEGV). Result.close() alone frees them."),
    AdapterPatch(
        "dl-modelrunner-tensorflow-2c", "io/bioimage/modelrunner/tensorflow/v2/api050/Tensorflow2Interface.java",
        446, 'Task task = runner.task("inference", args);', 'Task task = runner.task("run", args);',
        "runInterprocessing(inputs, outputs) asks the worker for task 'inference', which writes the result to "
        "new shared memory, but then reads the pre-allocated output buffers: all zeros. Task 'run' "
        "(runFromShmas) fills those buffers."),
)


# ---- the vendor folder ---------------------------------------------------------------------------

def vendor_candidates(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where the vendor folder is looked for: ``explicit``, else ``$SRREDSIM_DEEPIMAGEJ_VENDOR``,
    else ``shared/vendor`` beside or above the current folder and the source checkout."""
    if explicit is not None:
        return [Path(explicit).expanduser().absolute()]
    env = os.environ.get(VENDOR_ENV)
    if env:
        return [Path(env).expanduser().absolute()]
    roots = [Path.cwd(), Path(__file__).resolve().parents[2]]
    out: list[Path] = []
    for root in roots:
        for rel in ("../shared/vendor", "shared/vendor"):
            p = (root / rel).resolve()
            if p not in out:
                out.append(p)
    return out


def missing_vendor_files(folder: Path) -> list[str]:
    return [f"{what} ({rel})" for rel, what in VENDOR_FILES.items() if not (folder / rel).is_file()]


def find_vendor(explicit: str | os.PathLike | None = None) -> Path:
    """The vendor folder, or a :class:`SrredsimError` saying what is missing where."""
    problems = []
    for folder in vendor_candidates(explicit):
        if not folder.is_dir():
            problems.append(f"{folder}: no such folder")
            continue
        missing = missing_vendor_files(folder)
        if not missing:
            return folder
        problems.append(f"{folder}: missing {', '.join(missing)}")
    raise SrredsimError(
        "the DeepImageJ check needs DeepImageJ 3.1 and JDLL 0.6.1 built from source as a file Maven "
        f"repository (a vendor folder holding maven/; see docs/fiji.md): {'; '.join(problems)}. "
        f"Name it with --vendor PATH or {VENDOR_ENV}=PATH.")


# ---- tools, cache, locks -------------------------------------------------------------------------

def java_tools(need_maven: bool = True) -> dict[str, str]:
    from srredsim.export.jvm import find_tools

    tools = find_tools(need_maven=need_maven)
    javac = Path(tools["java"]).resolve().with_name("javac")
    found = str(javac) if javac.is_file() else shutil.which("javac")
    if not found:
        raise SrredsimError("the DeepImageJ check needs a Java 17 JDK (javac: it compiles the engine adapters); "
                            "install e.g. `apt-get install openjdk-17-jdk-headless`")
    tools["javac"] = found
    return tools


def cache() -> Path:
    from srredsim.cache import cache_dir

    return cache_dir("deepimagej")


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    import fcntl

    path = cache() / f".{name}.lock"
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], *, cwd: Path | None = None, timeout: float, what: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=env or java_env())
    except subprocess.TimeoutExpired:
        raise SrredsimError(f"{what} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        hint = ""
        if any(s in tail for s in ("Could not transfer", "Could not resolve", "UnknownHost")):
            hint = " (Maven Central could not be reached: the first build needs network access)"
        raise SrredsimError(f"{what} failed{hint}:\n{tail}")
    return proc


def java_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


# ---- the driver build ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DriverBuild:
    folder: Path
    vendor: Path

    @property
    def jar(self) -> Path:
        return self.folder / DRIVER_JAR

    @property
    def lib(self) -> Path:
        return self.folder / "lib"

    @property
    def adapters(self) -> Path:
        return self.folder / "adapters"

    def lib_jar(self, prefix: str) -> Path:
        hits = sorted(p for p in self.lib.glob(f"{prefix}-*.jar") if p.name[len(prefix) + 1:][:1].isdigit())
        if not hits:
            raise SrredsimError(f"{self.lib}: no {prefix} jar (incomplete build)")
        return hits[0]


def driver_key(vendor: Path) -> str:
    """Cache key: the driver's sources, the vendor artifacts it builds on, the adapter patches."""
    h = hashlib.sha256()
    files = [DRIVER_DIR / "pom.xml"] + sorted(p for p in (DRIVER_DIR / "src").rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(DRIVER_DIR)).encode() + b"\0" + f.read_bytes() + b"\0")
    for rel in sorted(VENDOR_FILES):
        h.update(rel.encode() + b"\0" + _sha256(vendor / rel).encode() + b"\0")
    h.update(repr(ADAPTER_PATCHES).encode())
    return h.hexdigest()[:16]


def build_driver(vendor: Path, log: Callable[[str], None] | None = None, force: bool = False) -> DriverBuild:
    """Build the driver jar (cached); returns where it and its libraries are."""
    if not (DRIVER_DIR / "pom.xml").is_file():
        raise SrredsimError(f"the DeepImageJ driver sources are missing ({DRIVER_DIR}); reinstall srredsim")
    key = driver_key(vendor)
    target = cache() / f"driver-{key}"
    if (target / "build.json").is_file() and not force:
        return DriverBuild(target, vendor)
    tools = java_tools(need_maven=True)
    with _lock(f"driver-{key}"):
        if (target / "build.json").is_file() and not force:
            return DriverBuild(target, vendor)
        with tempfile.TemporaryDirectory(prefix="srredsim-dij-build-") as tmp:
            work = Path(tmp) / "driver"
            shutil.copytree(DRIVER_DIR, work, ignore=shutil.ignore_patterns("target"))
            cmd = [tools["mvn"], "-B", "-q", "package", f"-Dvendor.repo.url={(vendor / 'maven').as_uri()}"]
            if log:
                log(f"building the DeepImageJ driver against {vendor} (the first build downloads from Maven Central)")
            t0 = time.perf_counter()
            _run(cmd, cwd=work, timeout=BUILD_TIMEOUT_S, what="building the DeepImageJ driver")
            staging = Path(tempfile.mkdtemp(prefix=f".driver-{key}.", dir=cache()))
            try:
                built = work / "target"
                shutil.copy2(built / DRIVER_JAR, staging / DRIVER_JAR)
                shutil.copytree(built / "lib", staging / "lib")
                shutil.copytree(built / "adapters", staging / "adapters")
                (staging / "build.json").write_text(json.dumps(
                    {"key": key, "vendor": str(vendor), "seconds": round(time.perf_counter() - t0, 1),
                     "command": cmd[1:]}, indent=1))
                if target.exists():
                    shutil.rmtree(target)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    return DriverBuild(target, vendor)


# ---- the network namespace -----------------------------------------------------------------------

_NETNS: list[str] | None = None


def netns_prefix() -> list[str]:
    """``["unshare", "-rn"]`` when an empty user + network namespace can be made here, else []."""
    global _NETNS
    if _NETNS is None:
        unshare = shutil.which("unshare")
        ok = False
        if unshare:
            try:
                ok = subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=30).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        _NETNS = [unshare, "-rn"] if ok and unshare else []
    return list(_NETNS)


def parse_results(stdout: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            try:
                out.append(json.loads(line[len(RESULT_PREFIX):]))
            except json.JSONDecodeError:
                continue
    return out


def java_cmd(build: DriverBuild, *args: str) -> list[str]:
    tools = java_tools(need_maven=False)
    opts = os.environ.get("SRREDSIM_DEEPIMAGEJ_JVM_OPTS", "").split()
    return netns_prefix() + [tools["java"], "-Djava.awt.headless=true", "-Djava.security.manager=allow", *opts,
                             "-jar", str(build.jar), *args]


# ---- engines -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class EnginePlan:
    """One engine JDLL's ``load(true)`` installs for a weight format (from JDLL's catalogue)."""

    weights: str
    weights_version: str
    framework: str
    version: str
    folder: str
    jars: tuple[str, ...]
    jdll_downloads: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "EnginePlan":
        return cls(weights=d["weights"], weights_version=str(d.get("weights_version")), framework=d["framework"],
                   version=d["version"], folder=d["folder"], jars=tuple(d["jars"]),
                   jdll_downloads=str(d.get("jdll_downloads") or d["folder"]))


def engine_plans(build: DriverBuild, model_dir: Path) -> tuple[list[EnginePlan], list[str]]:
    """(engines for the weight formats JDLL can run, notes on those it cannot)."""
    proc = subprocess.run(java_cmd(build, "--engines-for", str(model_dir)), capture_output=True, text=True,
                          timeout=300, env=java_env())
    rows = [r for r in parse_results(proc.stdout) if r.get("kind") == "engine"]
    if not rows:
        raise SrredsimError(f"JDLL could not read {model_dir}/rdf.yaml: {(proc.stderr or proc.stdout).strip()[-600:]}")
    unread = [r for r in rows if not r.get("ok") and "weights" not in r]
    if unread:
        raise SrredsimError(f"JDLL {JDLL_VERSION} cannot read the package's rdf.yaml: {unread[0].get('detail')}")
    plans, notes = [], []
    for r in rows:
        if r.get("ok"):
            plans.append(EnginePlan.from_json(r))
        else:
            notes.append(str(r.get("detail")))
    return plans, notes


def maven_coordinates(url: str) -> tuple[str, str, str, str | None, str]:
    """(group, artifact, version, classifier, file name) of a Maven Central jar URL in JDLL's catalogue."""
    for prefix in CENTRAL_PREFIXES:
        if url.startswith(prefix):
            rel = url[len(prefix):]
            break
    else:
        raise SrredsimError(f"not a Maven Central URL: {url}")
    parts = rel.split("/")
    group, artifact, version, name = ".".join(parts[:-3]), parts[-3], parts[-2], parts[-1]
    stem = name[:-len(".jar")]
    base = f"{artifact}-{version}"
    if not stem.startswith(base):
        raise SrredsimError(f"unexpected jar name {name} for {artifact} {version}")
    classifier = stem[len(base) + 1:] or None
    return group, artifact, version, classifier, name


def _engines_pom(items: list[tuple[tuple[str, str, str, str | None, str], Path]]) -> str:
    art = []
    for (g, a, v, c, name), out in items:
        art.append(f"""        <artifactItem><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>
          {f'<classifier>{c}</classifier>' if c else ''}<type>jar</type>
          <outputDirectory>{out}</outputDirectory><destFileName>{name}</destFileName></artifactItem>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.srredsim</groupId><artifactId>srredsim-deepimagej-engines</artifactId><version>0</version>
  <packaging>pom</packaging>
  <build><plugins><plugin>
    <artifactId>maven-dependency-plugin</artifactId><version>3.6.1</version>
    <executions><execution><id>engines</id><phase>package</phase><goals><goal>copy</goal></goals>
      <configuration><artifactItems>
{chr(10).join(art)}
      </artifactItems></configuration>
    </execution></executions>
  </plugin></plugins></build>
</project>
"""


def prepare_engines(build: DriverBuild, plans: list[EnginePlan], log: Callable[[str], None] | None = None) -> Path:
    """Every engine of ``plans`` complete under ``<cache>/engines/``; returns that folder.

    Maven Central jars are copied by Maven; the SciJava adapter jar is replaced by the patched
    build of its sources, under the file name JDLL checks for."""
    root = cache() / "engines"
    root.mkdir(parents=True, exist_ok=True)
    with _lock("engines"):
        todo = [p for p in plans if not _engine_complete(root / p.folder, p)]
        central = []
        for p in todo:
            (root / p.folder).mkdir(exist_ok=True)
            for url in p.jars:
                if not _is_adapter(url):
                    central.append((maven_coordinates(url), root / p.folder))
        if central:
            if log:
                log("fetching engine jars from Maven Central: " + ", ".join(sorted({c[0][4] for c in central})))
            tools = java_tools(need_maven=True)
            with tempfile.TemporaryDirectory(prefix="srredsim-dij-engines-") as tmp:
                (Path(tmp) / "pom.xml").write_text(_engines_pom(central))
                _run([tools["mvn"], "-B", "-q", "package"], cwd=Path(tmp), timeout=BUILD_TIMEOUT_S,
                     what="fetching the engines from Maven Central")
        for p in todo:
            folder = root / p.folder
            extra = [folder / maven_coordinates(u)[4] for u in p.jars if not _is_adapter(u)]
            for url in p.jars:
                if _is_adapter(url):
                    name = url.rsplit("/", 1)[1]
                    artifact = name[: -len(f"-{ADAPTER_VERSION}.jar")]
                    jar = build_patched_adapter(build, artifact, extra, log)
                    shutil.copy2(jar, folder / name)
            (folder / ".srredsim-engine.json").write_text(json.dumps(
                {**dataclasses.asdict(p), "adapter_patches": [dataclasses.asdict(a) for a in ADAPTER_PATCHES
                                                              if any(a.artifact in u for u in p.jars)]}, indent=1))
    return root


def _is_adapter(url: str) -> bool:
    return any(f"/{a}/" in url for a in ADAPTERS)


def _engine_complete(folder: Path, plan: EnginePlan) -> bool:
    marker = folder / ".srredsim-engine.json"
    if not marker.is_file():
        return False
    return all((folder / u.rsplit("/", 1)[1]).is_file() for u in plan.jars)


# ---- the patched adapters ------------------------------------------------------------------------

def apply_patches(src_root: Path, patches: list[AdapterPatch]) -> None:
    """Change each patched line after checking it reads as expected (a different source fails loudly)."""
    for p in patches:
        f = src_root / p.path
        if not f.is_file():
            raise SrredsimError(f"{p.artifact}: {p.path} not in its sources jar")
        lines = f.read_text(encoding="utf-8").split("\n")
        if len(lines) < p.line or lines[p.line - 1].strip() != p.old:
            found = lines[p.line - 1].strip() if len(lines) >= p.line else "(file too short)"
            raise SrredsimError(f"{p.artifact} {p.path}:{p.line} reads {found!r}, expected {p.old!r}: "
                                "not the adapter source this patch is for")
        indent = lines[p.line - 1][: len(lines[p.line - 1]) - len(lines[p.line - 1].lstrip())]
        lines[p.line - 1] = (indent + p.new) if p.new is not None else indent + "// srredsim: removed: " + p.old
        f.write_text("\n".join(lines), encoding="utf-8")


def _class_release(jar: Path) -> int:
    """The Java release the stock jar's classes were compiled for (major 52 -> 8, 55 -> 11)."""
    with zipfile.ZipFile(jar) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".class"))
        head = zf.read(name)[:8]
    return int.from_bytes(head[6:8], "big") - 44


def build_patched_adapter(build: DriverBuild, artifact: str, engine_jars: list[Path],
                          log: Callable[[str], None] | None = None) -> Path:
    """Compile ``artifact``'s published sources with :data:`ADAPTER_PATCHES` applied; returns the jar."""
    stock = build.adapters / f"{artifact}-{ADAPTER_VERSION}.jar"
    sources = build.adapters / f"{artifact}-{ADAPTER_VERSION}-sources.jar"
    patches = [p for p in ADAPTER_PATCHES if p.artifact == artifact]
    h = hashlib.sha256(_sha256(stock).encode() + _sha256(sources).encode() + repr(patches).encode())
    out = cache() / "adapters" / f"{artifact}-{ADAPTER_VERSION}-srredsim-{h.hexdigest()[:12]}.jar"
    if out.is_file():
        return out
    tools = java_tools(need_maven=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    if log:
        log(f"compiling {artifact} {ADAPTER_VERSION} from its sources with {len(patches)} line(s) changed")
    with tempfile.TemporaryDirectory(prefix="srredsim-dij-adapter-") as tmp:
        src, classes = Path(tmp) / "src", Path(tmp) / "classes"
        with zipfile.ZipFile(sources) as zf:
            from srredsim.export.safezip import safe_extract

            safe_extract(zf, src)
        apply_patches(src, patches)
        java_files = sorted(str(p) for p in src.rglob("*.java"))
        cp = os.pathsep.join([str(p) for p in sorted(build.lib.glob("*.jar"))] + [str(p) for p in engine_jars])
        argfile = Path(tmp) / "sources.txt"
        argfile.write_text("\n".join(f'"{f}"' for f in java_files))
        _run([tools["javac"], "-nowarn", "-encoding", "UTF-8", "--release", str(max(8, _class_release(stock))),
              "-cp", cp, "-d", str(classes), f"@{argfile}"], timeout=600, what=f"compiling {artifact}")
        built = {str(p.relative_to(classes)) for p in classes.rglob("*.class")}
        with zipfile.ZipFile(stock) as zf:
            stock_classes = {n for n in zf.namelist() if n.endswith(".class")}
            if built != stock_classes:
                raise SrredsimError(f"{artifact}: the compiled classes differ from the published jar's "
                                    f"({sorted(built ^ stock_classes)[:5]})")
            part = out.with_name(out.name + ".part")
            with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as dst:
                for info in zf.infolist():
                    if info.filename.endswith(".class"):
                        continue
                    data = zf.read(info)
                    if info.filename == "META-INF/MANIFEST.MF":
                        text = data.decode("utf-8").rstrip("\r\n")
                        note = "; ".join(f"{p.path.rsplit('/', 1)[1]}:{p.line}" for p in patches)
                        data = (text + f"\r\nSrredsim-Patched: {note} (srredsim.export.deepimagej)\r\n\r\n").encode()
                    dst.writestr(info, data)
                for name in sorted(built):
                    dst.write(classes / name, name)
        os.replace(part, out)
    return out
