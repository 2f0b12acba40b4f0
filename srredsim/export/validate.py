"""``validate_package``: is a bioimage.io package correct, reproducible and runnable in DeepImageJ?

Checks, in order (each gives one :class:`CheckResult` row; names are stable for scripts):

``package``            the zip opens, is not truncated, has no unsafe member (zip-slip), has rdf.yaml
``rdf``                rdf.yaml parses; format_version 0.4/0.5 (what DeepImageJ reads)
``spec``               bioimageio.spec validation with file checks (hashes, test tensors vs axes)
``dij.weights``        at least one weight format DeepImageJ runs (TF SavedModel bundle or ONNX)
``dij.axes``           axis types batch/channel/space only, space axes named x/y(/z)
``dij.channel_names``  every channel axis names its channels, uniquely, one per channel
``dij.processing``     pre/post-processing uses only operations DeepImageJ implements
``dij.onnx.opset``     ONNX opset <= 17 (ONNX Runtime 1.13.1 in JDLL), RDF opset_version matches the file
``dij.onnx.ir``        ONNX IR version <= 8
``dij.onnx.io``        ONNX input/output names equal the RDF tensor ids; the ONNX checker passes
``dij.tf.zip``         TF weights are a zip with saved_model.pb and variables/ at its root
``dij.tf.signature``   tag ``serve``; signature ``serving_default`` whose input/output keys are the tensor ids
``core.tf.serve``      the ``serve`` endpoint returns a dict keyed by the output id (bioimageio.core)
``dij.tf.version``     tensorflow_version is 2.x (a warning above 2.10: JDLL then runs TF 2.10.1)
``matched``            a microscope-matched package (srredsim.export.matched): fixed input size as recorded,
                       test input of that size, no halo, no tiling
``core.<format>``      bioimageio.core's ``test_model`` for each weight format (offline)
``parity.<a>~<b>``     engines agree on the test input: max |a - b| <= 1e-4 of the output's range
``jvm.*``              with ``jvm=True``: the package on DeepImageJ's engines in a JVM (srredsim.export.jvm)
``dij.*``, ``agree.*`` with ``deepimagej=True``: DeepImageJ's own code runs the package, headless and
                       offline, per weight format JDLL runs, and equals ``srredsim predict`` to 1e-4;
                       bioimageio.core's prediction too (srredsim.export.deepimagej). A RED-fairSIM
                       package (scale 1) reads a float reconstruction, on which JDLL's percentile rule
                       differs from numpy's: a difference it alone explains warns up to 1e-3

Every check reads the package as it is: a RED-fairSIM package (``config.srredsim.scale`` 1, input
``image``, one reconstructed image) goes through the same rows as an SR-REDSIM one.

bioimageio.core unzips TensorFlow weights into the working directory, so its tests run in a
temporary working directory; downloads are impossible by construction (no URLs in our
packages) and ``BIOIMAGEIO_HTTP_TIMEOUT`` is set low for packages made elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.export import ONNX_MAX_IR, ONNX_OPSET, SERVE_ENDPOINT, SIGNATURE
from srredsim.export.checks import CheckResult

# DeepImageJ / JDLL implement these (docs/fiji.md, "What DeepImageJ needs"); ensure_dtype is added by
# the spec itself.
DIJ_PROCESSING = ("binarize", "clip", "ensure_dtype", "fixed_zero_mean_unit_variance", "scale_linear",
                  "scale_range", "sigmoid", "zero_mean_unit_variance")
DIJ_SPACE_AXES = ("x", "y", "z")
DIJ_TF_MAX_NATIVE = (2, 10)
PARITY_TOL = 1e-4
CORE_FORMATS = ("keras_hdf5", "tensorflow_saved_model_bundle", "onnx")


def _env_offline() -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("BIOIMAGEIO_HTTP_TIMEOUT", "3")
    os.environ.setdefault("BIOIMAGEIO_LOG_WARNINGS", "false")
    try:  # settings are read when bioimageio.spec is first imported; lower the timeout if it came earlier
        from bioimageio.spec import settings

        if settings.http_timeout > 3:
            settings.http_timeout = 3.0
    except Exception:  # pragma: no cover
        pass


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence progress bars and library logging while a check runs."""
    import logging

    try:
        from loguru import logger

        logger.disable("bioimageio")
    except Exception:  # pragma: no cover
        logger = None
    names = ("absl", "tensorflow")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        for n in names:
            logging.getLogger(n).setLevel(levels[n])
        if logger is not None:
            logger.enable("bioimageio")


@contextlib.contextmanager
def _in_temp_cwd() -> Iterator[Path]:
    old = os.getcwd()
    tmp = tempfile.mkdtemp(prefix="srredsim-validate-cwd-")
    os.chdir(tmp)
    try:
        yield Path(tmp)
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)


def _timed(name: str, fn: Callable[[], tuple[str, str]]) -> CheckResult:
    t = time.perf_counter()
    try:
        status, detail = fn()
    except SrredsimError as exc:
        status, detail = "fail", str(exc)
    except Exception as exc:  # a check must never crash the table
        if type(exc).__module__.startswith("httpx"):
            from srredsim.export.bioimageio_package import network_hint

            status, detail = "fail", network_hint(exc)
        else:
            status, detail = "fail", f"{type(exc).__name__}: {exc}"
    return CheckResult(name, status, detail, time.perf_counter() - t)


# ---- opening ----------------------------------------------------------------------------------
def _open(path: Path, tmp: Path) -> tuple[Path, Path | None]:
    """(folder with rdf.yaml, zip or None)."""
    from srredsim.runtime.package import RDF_NAMES
    from srredsim.export.safezip import safe_extract

    if not path.exists():
        raise SrredsimError(f"{path}: no such package")
    if path.is_dir():
        if not any((path / n).is_file() for n in RDF_NAMES):
            raise SrredsimError(f"{path}: folder has no rdf.yaml (not a bioimage.io package)")
        return path, None
    if not zipfile.is_zipfile(path):
        raise SrredsimError(f"{path}: not a readable zip archive (truncated or corrupt)")
    safe_extract(path, tmp)
    if not any((tmp / n).is_file() for n in RDF_NAMES):
        raise SrredsimError(f"{path}: zip has no rdf.yaml at its root (not a bioimage.io package)")
    return tmp, path


def _rdf_file(folder: Path) -> Path:
    from srredsim.runtime.package import RDF_NAMES

    return next(folder / n for n in RDF_NAMES if (folder / n).is_file())


def _local(folder: Path, entry: Any) -> Path | None:
    src = entry.get("source") if isinstance(entry, dict) else entry
    if not isinstance(src, str) or "://" in src:
        return None
    p = (folder / src).resolve()
    return p if p.is_file() and folder.resolve() in p.parents else None


# ---- spec and core ----------------------------------------------------------------------------
def _summary_errors(summary, limit: int = 3) -> str:
    msgs = []
    for d in summary.details:
        for e in d.errors:
            loc = ".".join(str(x) for x in e.loc) if e.loc else ""
            msgs.append((f"{loc}: " if loc else "") + str(e.msg).strip().splitlines()[0][:300])
    return "; ".join(msgs[:limit]) + (f" (+{len(msgs) - limit} more)" if len(msgs) > limit else "")


def _check_spec(source: Path) -> tuple[str, str]:
    import bioimageio.spec
    from bioimageio.spec import load_description

    with _quiet():
        descr = load_description(str(source), perform_io_checks=True)
    summary = descr.validation_summary
    if summary.status in ("valid-format", "passed"):
        nwarn = sum(len(d.warnings) for d in summary.details)
        return "pass", f"bioimageio.spec {bioimageio.spec.__version__}: valid format {getattr(descr, 'format_version', '?')}" + (
            f" ({nwarn} warnings)" if nwarn else "")
    return "fail", _summary_errors(summary) or f"status {summary.status}"


def _check_core(source: Path, weight_format: str) -> tuple[str, str]:
    from bioimageio.core import test_model

    with _quiet(), _in_temp_cwd():
        summary = test_model(str(source), weight_format=weight_format)
    tests = [d for d in summary.details if d.loc and tuple(d.loc)[:1] == ("weights",)]
    if summary.status == "passed":
        return "pass", f"{len(tests)} bioimageio.core tests passed (test output reproduced, sizes n=0..2, batch 1-2)"
    return "fail", _summary_errors(summary) or f"status {summary.status}"


# ---- DeepImageJ lint --------------------------------------------------------------------------
def _tensors(rdf: dict) -> list[tuple[str, dict]]:
    out = []
    for kind in ("inputs", "outputs"):
        for t in rdf.get(kind) or []:
            if isinstance(t, dict):
                out.append((kind, t))
    return out


def _lint_axes(rdf: dict) -> tuple[str, str]:
    bad = []
    for kind, t in _tensors(rdf):
        axes = t.get("axes")
        if isinstance(axes, str):  # format 0.4: "byxc"
            bad += [f"{t.get('name')}: axis {a!r}" for a in axes if a not in "bczyx"]
            continue
        for ax in axes or []:
            typ, aid = ax.get("type"), ax.get("id")
            if typ not in ("batch", "channel", "space"):
                bad.append(f"{t.get('id')}: {typ} axis {aid!r} (DeepImageJ handles batch, channel and space axes)")
            elif typ == "space" and aid not in DIJ_SPACE_AXES:
                bad.append(f"{t.get('id')}: space axis id {aid!r} (must be x, y or z)")
    return ("fail", "; ".join(bad)) if bad else ("pass", "axes are batch/channel/space with space ids x/y")


def _lint_channel_names(rdf: dict, folder: Path) -> tuple[str, str]:
    bad, seen = [], 0
    for kind, t in _tensors(rdf):
        axes = t.get("axes")
        if not isinstance(axes, list):
            continue
        for i, ax in enumerate(axes):
            if ax.get("type") != "channel":
                continue
            seen += 1
            names = ax.get("channel_names")
            tid = t.get("id")
            if not isinstance(names, list) or not names:
                bad.append(f"{kind} {tid!r}: channel axis without channel_names")
                continue
            if any(not isinstance(n, str) or not n.strip() for n in names):
                bad.append(f"{kind} {tid!r}: empty channel name")
            if len(set(names)) != len(names):
                bad.append(f"{kind} {tid!r}: duplicate channel names")
            arr = _local(folder, t.get("test_tensor"))
            if arr is not None:
                try:
                    shape = np.load(arr, mmap_mode="r", allow_pickle=False).shape
                except Exception:
                    shape = None
                if shape is not None and len(shape) == len(axes) and shape[i] != len(names):
                    bad.append(f"{kind} {tid!r}: {len(names)} channel names but the test tensor has "
                               f"{shape[i]} channels (missing channel name?)")
    if bad:
        return "fail", "; ".join(bad)
    return "pass", f"{seen} channel axes, every channel named"


def _lint_processing(rdf: dict) -> tuple[str, str]:
    used, bad = [], []
    for kind, t in _tensors(rdf):
        for key in ("preprocessing", "postprocessing"):
            for p in t.get(key) or []:
                op = p.get("id") or p.get("name")
                used.append(op)
                if op not in DIJ_PROCESSING:
                    bad.append(f"{t.get('id')}.{key}: {op!r}")
    if bad:
        return "fail", "not supported by DeepImageJ: " + ", ".join(bad)
    return "pass", "uses " + (", ".join(sorted(set(used))) or "no processing")


def _lint_weights(rdf: dict) -> tuple[str, str]:
    w = rdf.get("weights") or {}
    runnable = [k for k in ("tensorflow_saved_model_bundle", "onnx") if k in w]
    if not runnable:
        return "fail", f"no weights DeepImageJ can run (has {sorted(w)}; needs tensorflow_saved_model_bundle or onnx)"
    originals = [k for k, v in w.items() if isinstance(v, dict) and not v.get("parent")]
    status = "pass" if len(originals) == 1 else "warn"
    return status, f"DeepImageJ can run {', '.join(runnable)}; original: {', '.join(originals) or 'none marked'}"


def _tensor_ids(rdf: dict) -> tuple[list[str], list[str]]:
    ids = lambda ts: [str(t.get("id") or t.get("name")) for t in ts or []]  # noqa: E731
    return ids(rdf.get("inputs")), ids(rdf.get("outputs"))


def _lint_onnx(rdf: dict, folder: Path) -> list[CheckResult]:
    entry = (rdf.get("weights") or {}).get("onnx")
    if entry is None:
        return [CheckResult("dij.onnx", "skip", "no onnx weights")]
    path = _local(folder, entry)
    if path is None:
        return [CheckResult("dij.onnx", "fail", f"onnx weights file {entry.get('source')!r} missing from the package")]
    from srredsim.export.onnx_export import check_onnx, onnx_info

    results = []
    try:
        info = onnx_info(path)
    except SrredsimError as exc:
        return [CheckResult("dij.onnx", "fail", str(exc))]
    declared = entry.get("opset_version")
    opset = info["opset"]
    if opset > ONNX_OPSET:
        results.append(CheckResult("dij.onnx.opset", "fail", f"opset {opset} > {ONNX_OPSET}: ONNX Runtime 1.13.1 "
                                   "(DeepImageJ/JDLL) cannot load it; export with opset 17"))
    elif declared is not None and int(declared) != opset:
        results.append(CheckResult("dij.onnx.opset", "fail", f"rdf says opset_version {declared}, the file has {opset}"))
    else:
        results.append(CheckResult("dij.onnx.opset", "pass", f"opset {opset} (<= {ONNX_OPSET})"))
    ir = info["ir_version"]
    results.append(CheckResult("dij.onnx.ir", "fail" if ir > ONNX_MAX_IR else "pass",
                               f"IR version {ir}" + (f" > {ONNX_MAX_IR}: ONNX Runtime 1.13.1 rejects it" if ir > ONNX_MAX_IR
                                                     else f" (<= {ONNX_MAX_IR})")))
    ins, outs = _tensor_ids(rdf)
    problems = []
    if list(info["inputs"]) != ins:
        problems.append(f"inputs {list(info['inputs'])} != tensor ids {ins}")
    if list(info["outputs"]) != outs:
        problems.append(f"outputs {list(info['outputs'])} != tensor ids {outs}")
    try:
        check_onnx(path)
    except SrredsimError as exc:
        problems.append(str(exc))
    results.append(CheckResult("dij.onnx.io", "fail" if problems else "pass",
                               "; ".join(problems) or f"inputs {ins}, outputs {outs}; ONNX checker passes"))
    return results


def _lint_tf(rdf: dict, folder: Path, tmp: Path) -> list[CheckResult]:
    entry = (rdf.get("weights") or {}).get("tensorflow_saved_model_bundle")
    if entry is None:
        return [CheckResult("dij.tf", "skip", "no tensorflow_saved_model_bundle weights")]
    path = _local(folder, entry)
    if path is None:
        return [CheckResult("dij.tf.zip", "fail", f"TF weights file {entry.get('source')!r} missing from the package")]
    from srredsim.export.safezip import check_zip, open_zip, safe_extract
    from srredsim.export.savedmodel import read_signatures

    results = []
    try:
        with open_zip(path) as zf:
            names = [i.filename for i in check_zip(zf, path)]
    except SrredsimError as exc:
        return [CheckResult("dij.tf.zip", "fail", f"TF weights must be a zip with saved_model.pb and variables/ "
                                                  f"at its root: {exc}")]
    has_pb = "saved_model.pb" in names
    has_vars = any(n.startswith("variables/") for n in names)
    if not (has_pb and has_vars):
        nested = [n for n in names if n.endswith("/saved_model.pb")]
        hint = f" (found {nested[0]!r}: the folder itself was zipped)" if nested else ""
        results.append(CheckResult("dij.tf.zip", "fail", "TF zip must have saved_model.pb and variables/ at its root"
                                   + hint))
        return results
    results.append(CheckResult("dij.tf.zip", "pass", "saved_model.pb and variables/ at the zip root"))
    sm = tmp / "tf_lint"
    safe_extract(path, sm)
    info = read_signatures(sm)
    sigs = info["signatures"]
    ins, outs = _tensor_ids(rdf)
    problems = []
    if not any("serve" in tags for tags in info["tags"]):
        problems.append(f"no meta graph with tag 'serve' (tags {info['tags']})")
    sig = sigs.get(SIGNATURE)
    if sig is None:
        problems.append(f"no signature {SIGNATURE!r} (has {sorted(sigs)}); TensorFlow Java loads {SIGNATURE!r}")
    else:
        if sorted(sig["inputs"]) != sorted(ins):
            problems.append(f"{SIGNATURE} inputs {sorted(sig['inputs'])} != tensor ids {ins}")
        if sorted(sig["outputs"]) != sorted(outs):
            problems.append(f"{SIGNATURE} outputs {sorted(sig['outputs'])} != tensor ids {outs}")
    results.append(CheckResult("dij.tf.signature", "fail" if problems else "pass",
                               "; ".join(problems) or f"tag serve, {SIGNATURE}: {ins} -> {outs}"))
    serve = sigs.get(SERVE_ENDPOINT)
    if serve is None:
        results.append(CheckResult("core.tf.serve", "warn", f"no {SERVE_ENDPOINT!r} endpoint; bioimageio.core falls back "
                                                            f"to {SIGNATURE!r}"))
    elif sorted(serve["outputs"]) != sorted(outs):
        results.append(CheckResult("core.tf.serve", "fail", f"{SERVE_ENDPOINT!r} returns {sorted(serve['outputs'])}, "
                                                            f"bioimageio.core needs a dict keyed {outs}"))
    else:
        results.append(CheckResult("core.tf.serve", "pass", f"{SERVE_ENDPOINT!r} returns a dict keyed {outs}"))
    ver = str(entry.get("tensorflow_version") or "")
    try:
        major, minor = (int(v) for v in ver.split(".")[:2])
    except ValueError:
        results.append(CheckResult("dij.tf.version", "warn", f"tensorflow_version {ver!r} not understood"))
    else:
        if major not in (1, 2):
            results.append(CheckResult("dij.tf.version", "fail", f"tensorflow_version {ver}: JDLL runs TF 1.x and 2.x"))
        elif (major, minor) > DIJ_TF_MAX_NATIVE:
            results.append(CheckResult("dij.tf.version", "warn", f"tensorflow_version {ver}: JDLL runs it with TF 2.10.1 "
                                       "(the JVM check runs the weights on that engine)"))
        else:
            results.append(CheckResult("dij.tf.version", "pass", f"tensorflow_version {ver}"))
    return results


# ---- parity -----------------------------------------------------------------------------------
def _parity(folder: Path, rdf: dict, tol: float) -> list[CheckResult]:
    from srredsim.metrics import max_difference
    from srredsim.normalization import normalize_raw
    from srredsim.runtime import open_model

    weights = rdf.get("weights") or {}
    engines = [e for e, w in (("keras", "keras_hdf5"), ("onnx", "onnx"),
                              ("savedmodel", "tensorflow_saved_model_bundle")) if w in weights]
    if len(engines) < 2:
        return [CheckResult("parity", "skip", f"only {engines} present")]
    test = _local(folder, (rdf.get("inputs") or [{}])[0].get("test_tensor"))
    if test is None:
        return [CheckResult("parity", "fail", "no test input in the package")]
    x_raw = np.load(test, allow_pickle=False)
    outs: dict[str, np.ndarray] = {}
    errors: list[CheckResult] = []
    for e in engines:
        t = time.perf_counter()
        try:
            with _quiet():
                with open_model(folder, engine=e, precision="fp32") as art:
                    x = normalize_raw(x_raw, art.normalization)
                    outs[e] = np.asarray(art.predict_fn(x), np.float32)
        except Exception as exc:
            errors.append(CheckResult(f"parity.{e}", "fail", f"cannot run the {e} engine: {exc}",
                                      time.perf_counter() - t))
    results = list(errors)
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if outs[a].shape != outs[b].shape:
                results.append(CheckResult(f"parity.{a}~{b}", "fail", f"shapes {outs[a].shape} vs {outs[b].shape}"))
                continue
            d, rel = max_difference(outs[b], outs[a])
            results.append(CheckResult(f"parity.{a}~{b}", "pass" if rel <= tol else "fail",
                                       f"max |diff| {d:.2e}, {rel:.2e} of the output range "
                                       f"(tolerance {tol:g} of the range)"))
    return results


# ---- driver -----------------------------------------------------------------------------------
def validate_package(path: str | os.PathLike, jvm: bool = False, *, core: bool = True, parity: bool = True,
                     weight_formats: tuple[str, ...] | None = None, tolerance: float = PARITY_TOL,
                     progress: Callable[[CheckResult], None] | None = None, deepimagej: bool = False,
                     vendor: str | os.PathLike | None = None,
                     log: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Run every check on a package (zip or folder); never raises for a bad package.

    With ``deepimagej`` the vendor folder (``vendor``, see :func:`srredsim.export.deepimagej.find_vendor`),
    Java 17 and Maven must exist: a :class:`SrredsimError` says what is missing before anything runs."""
    if deepimagej:
        from srredsim.export.deepimagej_build import find_vendor, java_tools

        vendor = find_vendor(vendor)
        java_tools(need_maven=True)
    _env_offline()
    path = Path(path).absolute()  # core's tests run in a temporary working directory
    results: list[CheckResult] = []

    def add(r: CheckResult | list[CheckResult]) -> None:
        for x in r if isinstance(r, list) else [r]:
            results.append(x)
            if progress:
                progress(x)

    tmp = Path(tempfile.mkdtemp(prefix="srredsim-validate-"))
    try:
        holder: dict[str, Any] = {}

        def _do_open():
            folder, zpath = _open(path, tmp / "pkg")
            holder["folder"], holder["zip"] = folder, zpath
            return "pass", f"{'zip' if zpath else 'folder'}: {len(list(folder.rglob('*')))} files, no unsafe member"

        add(_timed("package", _do_open))
        if results[-1].failed:
            return results
        folder: Path = holder["folder"]
        source = holder["zip"] or _rdf_file(folder)

        def _do_rdf():
            from srredsim.runtime.package import read_rdf

            holder["rdf"] = read_rdf(folder)
            fv = str(holder["rdf"].get("format_version", ""))
            if holder["rdf"].get("type") != "model":
                return "fail", f"type {holder['rdf'].get('type')!r}, expected 'model'"
            if not (fv.startswith("0.5") or fv.startswith("0.4")):
                return "fail", f"format_version {fv!r}: DeepImageJ reads 0.4 and 0.5"
            return "pass", f"model, format_version {fv}"

        add(_timed("rdf", _do_rdf))
        if results[-1].failed:
            return results
        rdf = holder["rdf"]
        add(_timed("spec", lambda: _check_spec(source)))
        add(_timed("dij.weights", lambda: _lint_weights(rdf)))
        add(_timed("dij.axes", lambda: _lint_axes(rdf)))
        add(_timed("dij.channel_names", lambda: _lint_channel_names(rdf, folder)))
        add(_timed("dij.processing", lambda: _lint_processing(rdf)))
        for lint in (lambda: _lint_onnx(rdf, folder), lambda: _lint_tf(rdf, folder, tmp)):
            t = time.perf_counter()
            try:
                rows = lint()
            except Exception as exc:
                rows = [CheckResult("dij.lint", "fail", f"{type(exc).__name__}: {exc}")]
            rows[0].seconds = time.perf_counter() - t
            add(rows)
        from srredsim.export.matched import validate_rows as matched_rows

        add(matched_rows(rdf, folder))  # one row for a microscope-matched package, none otherwise
        if core:
            present = [w for w in CORE_FORMATS if w in (rdf.get("weights") or {})]
            for wf in weight_formats or present:
                if wf not in present:
                    add(CheckResult(f"core.{wf}", "fail", f"package has no {wf} weights"))
                    continue
                add(_timed(f"core.{wf}", lambda wf=wf: _check_core(source, wf)))
        if parity:
            t = time.perf_counter()
            try:
                rows = _parity(folder, rdf, tolerance)
            except Exception as exc:
                rows = [CheckResult("parity", "fail", f"{type(exc).__name__}: {exc}")]
            rows[0].seconds += time.perf_counter() - t
            add(rows)
        if jvm:
            add(_jvm_checks(holder["zip"] or folder))
        if deepimagej:
            from srredsim.export.deepimagej import check_package as deepimagej_checks

            dij_formats = tuple(w for w in (weight_formats or ()) if w != "keras_hdf5") or None
            try:
                add(deepimagej_checks(holder["zip"] or folder, vendor=vendor, weight_formats=dij_formats, log=log))
            except SrredsimError as exc:
                add(CheckResult("dij", "fail", str(exc)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _jvm_checks(package: Path) -> list[CheckResult]:
    from srredsim.export.jvm import run_jvm_checks

    t = time.perf_counter()
    try:
        rows = run_jvm_checks(package)
    except SrredsimError as exc:  # Java/Maven missing, a failed build: one row that says what to install
        return [CheckResult("jvm", "fail", str(exc), time.perf_counter() - t)]
    return rows or [CheckResult("jvm", "fail", "the JVM harness returned no result", time.perf_counter() - t)]
