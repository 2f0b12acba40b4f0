"""Run a bioimage.io package through DeepImageJ's own code, headless and offline, and compare its
result with ``srredsim predict``.

DeepImageJ 3.1 and JDLL 0.6.1 (the library DeepImageJ runs models with) are built from source
(:mod:`srredsim.export.deepimagej_build`: the vendor folder, the driver jar, JDLL's engines placed by
hand, the two engine adapters compiled from their sources with one line changed each). Then:

1. **Driver**: its one class starts ImageJ's macro interpreter, registers DeepImageJ's commands from
   DeepImageJ's own ``plugins.config`` (what Fiji's imagej-legacy does headless) and runs
   ``run("DeepImageJ Run", "model_path=... input_path=... output_folder=... display_output=null")``
   — or a whole macro file — so that ``DeepImageJ_Run.runMacro()`` → ``Runner.create`` →
   ``load(true)`` → ``run`` → ``IJ.saveAsTiff`` execute unchanged.
2. **Engines**: those JDLL's ``load(true)`` would install for the package (JDLL's own catalogue),
   already in place, so nothing is downloaded.
3. **Run** (:func:`run_deepimagej`): a Fiji-like folder (``engines/``, ``models/``) is the JVM's
   working directory (DeepImageJ takes its Fiji folder from there); the package is copied into
   ``models/`` with its ``weights`` narrowed to one format, so that JDLL runs that one. The JVM
   runs in an empty network namespace (``unshare -rn``) where the system allows it, and a
   security manager inside records and refuses every name lookup or connection.
4. **Check** (:func:`check_package`): the package's test input, written as DeepImageJ reads a raw
   stack (an ImageJ hyperstack with the frames as channels), through DeepImageJ for every weight
   format JDLL runs, compared with ``srredsim predict`` on the same stack over the whole image
   (relative max difference: max |DeepImageJ - srredsim| / max |srredsim|, at most
   :data:`TOLERANCE`); and the Fiji macro workflow: a plain 15-page stack, as cameras write
   it, through ``deepimagej_run.ijm``, which turns the pages into channels and calls DeepImageJ.
   A RED-fairSIM package (``config.srredsim.scale`` 1) is checked the same way on its test input,
   one classical reconstruction: the image DeepImageJ reads and writes has the input's size and
   pixel size (half the raw one).

Builds are cached under ``cache_dir("deepimagej")``; the first one downloads about 250 MB from Maven
Central (ONNX Runtime, TensorFlow Java and its native library, ImageJ, ImgLib2).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.export.meta import scale_of
from srredsim.export.deepimagej_build import (ADAPTER_PATCHES, DEEPIMAGEJ_VERSION, JDLL_VERSION, DriverBuild,
                                              EnginePlan, build_driver, engine_plans, find_vendor, java_cmd,
                                              java_env, netns_prefix, parse_results, prepare_engines, java_tools)

TOLERANCE = 1e-4  # relative max difference, DeepImageJ vs srredsim predict
# RED-Net packages read a float reconstruction: JDLL's percentile rule (no interpolation, docs/fiji.md)
# then differs from numpy's on every image (no ties, unlike camera counts): a difference it explains
# entirely is a warning up to this bound (measured: 5e-4 on the 256^2 default test input, 5e-5 at 512^2)
FLOAT_INPUT_PERCENTILE_BOUND = 1e-3
RUN_TIMEOUT_S = 1200
MACRO_NAME = "deepimagej_run.ijm"


# ---- one DeepImageJ run --------------------------------------------------------------------------

@dataclasses.dataclass
class DeepImageJRun:
    """What a DeepImageJ run did: its result lines, the output images, the raw logs."""

    ok: bool
    detail: str
    outputs: list[Path]
    environment: dict[str, Any]
    run: dict[str, Any]
    returncode: int
    seconds: float
    netns: bool
    stdout: str
    stderr: str

    @property
    def engine(self) -> str:
        j = self.environment.get("jdll") or {}
        if not j.get("engine"):
            return "no engine"
        folder = Path(str(j.get("engine_dir"))).name  # <framework>-<python version>-<version>-<os>-cpu
        parts = folder.split("-")
        name = {"onnx": "ONNX Runtime", "tensorflow": "TensorFlow Java"}.get(parts[0], parts[0])
        version = parts[2] if len(parts) > 2 else "?"
        if parts[0] == "tensorflow" and len(parts) > 1:
            version += f" = TensorFlow {parts[1]}"
        return f"{name} {version} (engines/{folder})"

    @property
    def network_attempts(self) -> list[str]:
        return list(self.run.get("network_attempts") or [])


def stage_model(package_dir: Path, models: Path, weights_format: str | None) -> Path:
    """Copy the package into ``models/`` (JDLL unpacks TF weights beside them) with only
    ``weights_format`` in its RDF, so that JDLL runs that one."""
    import yaml

    rdf = yaml.safe_load((package_dir / "rdf.yaml").read_text(encoding="utf-8"))
    name = str(rdf.get("id") or package_dir.name).replace("/", "_")
    dest = models / name
    shutil.copytree(package_dir, dest)
    if weights_format is not None:
        weights = rdf.get("weights") or {}
        if weights_format not in weights:
            raise SrredsimError(f"the package has no {weights_format} weights (has {sorted(weights)})")
        entry = dict(weights[weights_format])
        entry.pop("parent", None)  # its parent is no longer in the file
        rdf["weights"] = {weights_format: entry}
        (dest / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True, width=100),
                                       encoding="utf-8")
    return dest


def run_deepimagej(build: DriverBuild, engines: Path, package_dir: Path, workdir: Path, *,
                   input_path: Path | None = None, macro: Path | None = None, macro_arg: str = "",
                   weights_format: str | None = None, timeout: float = RUN_TIMEOUT_S) -> DeepImageJRun:
    """Run DeepImageJ on ``input_path`` (``run("DeepImageJ Run", ...)``) or run ``macro``.

    ``workdir`` becomes the Fiji folder: ``engines/`` (links to the prepared engines),
    ``models/<id>/`` (the package) and ``out/`` (DeepImageJ's output folder). In a macro
    ``macro_arg`` may use ``{model}`` and ``{output}`` for those two paths."""
    fiji = workdir
    (fiji / "engines").mkdir(parents=True, exist_ok=True)
    for eng in sorted(p for p in engines.iterdir() if p.is_dir()):
        link = fiji / "engines" / eng.name
        if not link.exists():
            link.symlink_to(eng, target_is_directory=True)
    model_dir = stage_model(package_dir, fiji / "models", weights_format)
    out = fiji / "out"
    out.mkdir(exist_ok=True)
    if macro is None:
        if input_path is None:
            raise SrredsimError("run_deepimagej needs an input image or a macro")
        options = (f"model_path=[{model_dir}] input_path=[{input_path}] output_folder=[{out}] "
                   "display_output=null")
        args = ["--model", str(model_dir), "--run", options]
    else:
        args = ["--model", str(model_dir), "--macro", str(macro),
                "--macro-arg", macro_arg.format(model=model_dir, output=out)]
    cmd = java_cmd(build, *args)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=fiji, capture_output=True, text=True, timeout=timeout, env=java_env())
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        rc = -1
        stderr += f"\n(timed out after {timeout:.0f} s)"
    seconds = time.perf_counter() - t0
    (fiji / "stdout.txt").write_text(stdout)
    (fiji / "stderr.txt").write_text(stderr)
    results = parse_results(stdout)
    env = next((r for r in results if r.get("kind") == "environment"), {})
    run = next((r for r in results if r.get("kind") == "run"), {})
    outputs = sorted(p for p in out.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    ok = bool(run.get("ok")) and rc == 0 and bool(outputs)
    if run.get("ok") is False or not run:
        detail = str(run.get("detail") or _last_error(stdout + "\n" + stderr, rc))
    elif not outputs:
        detail = "DeepImageJ wrote no image into the output folder: " + _last_error(stdout + "\n" + stderr, rc)
    else:
        detail = "ok"
    return DeepImageJRun(ok=ok, detail=detail, outputs=outputs, environment=env, run=run, returncode=rc,
                         seconds=seconds, netns=bool(netns_prefix()), stdout=stdout, stderr=stderr)


def _last_error(text: str, rc: int) -> str:
    """The first Java exception in the JVM's output (ImageJ prints the ones DeepImageJ throws) and where it
    was thrown, else the last lines."""
    import re

    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if re.match(r"^(Caused by: )?[\w.$]+(Exception|Error)\b", ln.strip()):
            where = next((f.strip()[3:] for f in lines[i + 1:i + 4] if f.strip().startswith("at ")), "")
            return ln.strip()[:400] + (f" (at {where})" if where else "")
    tail = [ln for ln in lines if not ln.startswith(("WARNING:", "SRREDSIM_DIJ_RESULT"))][-3:]
    return f"exit {rc}: " + " | ".join(tail)[-600:] if tail else f"exit {rc}"


# ---- images as DeepImageJ reads and writes them --------------------------------------------------

def write_hyperstack(raw: np.ndarray, path: Path, pixel_size_um: float | None = None) -> Path:
    """A raw ``(frames, H, W)`` stack as DeepImageJ reads it: an ImageJ hyperstack, frames as channels."""
    from srredsim.tiff import write_tiff

    return write_tiff(path, np.asarray(raw, np.float32), pixel_size_um=pixel_size_um, axes="CYX")


def write_plain_stack(raw: np.ndarray, path: Path, pixel_size_um: float | None = None) -> Path:
    """The same stack as a camera writes it: one page per frame (ImageJ opens it as z-slices)."""
    from srredsim.tiff import write_tiff

    return write_tiff(path, np.asarray(raw, np.float32), pixel_size_um=pixel_size_um, axes="ZYX")


def read_output(path: Path) -> np.ndarray:
    import tifffile

    img = np.asarray(tifffile.imread(path), np.float32)
    while img.ndim > 2 and img.shape[0] == 1:
        img = img[0]
    return np.squeeze(img)


def compare(actual: np.ndarray, reference: np.ndarray, halo: int, scale: int = 2) -> dict[str, float]:
    """Max |difference| over the whole image and within one output halo (``scale * halo`` output
    pixels for an input halo of ``halo``) of the border, relative to the reference's peak."""
    d = np.abs(np.asarray(actual, np.float64) - np.asarray(reference, np.float64))
    peak = float(np.abs(reference).max()) or 1.0
    b = max(1, scale * halo)
    border = np.ones_like(d, bool)
    border[b:-b, b:-b] = False
    return {"max_abs": float(d.max()), "rel": float(d.max()) / peak, "peak": peak,
            "border_rel": float(d[border].max()) / peak if border.any() else 0.0,
            "interior_rel": float(d[~border].max()) / peak if (~border).any() else 0.0}


def fiji_macro_path() -> Path | None:
    """The Fiji macro srredsim ships (``deepimagej_run.ijm`` in :func:`srredsim.fiji.fiji_files_dir`)."""
    from srredsim.fiji import fiji_files_dir

    cand = fiji_files_dir() / MACRO_NAME
    return cand if cand.is_file() else None


# ---- the check -----------------------------------------------------------------------------------

def check_package(package: str | os.PathLike, vendor: str | os.PathLike | None = None,
                  weight_formats: tuple[str, ...] | None = None, macro: bool = True,
                  tolerance: float = TOLERANCE, keep: str | os.PathLike | None = None,
                  log: Callable[[str], None] | None = None) -> list:
    """DeepImageJ's own code on the package, per weight format JDLL runs, against ``srredsim predict``.

    Rows (``srredsim.export.validate.CheckResult``): ``dij.build``, ``dij.engines``,
    ``dij.<weights format>`` for each format, ``dij.fiji_macro`` and ``dij.network``. Raises
    :class:`SrredsimError` only when the vendor folder, Java or Maven is missing."""
    from srredsim.export.checks import CheckResult

    vendor_dir = find_vendor(vendor)
    java_tools(need_maven=True)
    rows: list[CheckResult] = []
    t = time.perf_counter()
    try:
        build = build_driver(vendor_dir, log)
    except SrredsimError as exc:
        return [CheckResult("dij.build", "fail", str(exc), time.perf_counter() - t)]
    rows.append(CheckResult("dij.build", "pass", f"DeepImageJ {DEEPIMAGEJ_VERSION} + JDLL {JDLL_VERSION} from "
                            f"{vendor_dir} (built from source), driver {build.folder.name}", time.perf_counter() - t))
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="srredsim-dij-", dir=keep))
    try:
        rows += _check_in(Path(package), build, work, weight_formats, macro, tolerance, log)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def _open_package(package: Path, dest: Path) -> Path:
    from srredsim.export.safezip import safe_extract

    if not package.exists():
        raise SrredsimError(f"{package}: no such package")
    if package.is_dir():
        shutil.copytree(package, dest)
        return dest
    safe_extract(package, dest)
    return dest


def _check_in(package: Path, build: DriverBuild, work: Path, weight_formats, macro: bool, tolerance: float,
              log) -> list:
    import yaml

    from srredsim.export.checks import CheckResult
    from srredsim.runtime import open_model

    rows: list[CheckResult] = []
    t = time.perf_counter()
    pkg = _open_package(package, work / "package")
    rdf = yaml.safe_load((pkg / "rdf.yaml").read_text(encoding="utf-8"))
    test = (rdf.get("inputs") or [{}])[0].get("test_tensor")
    test_src = test.get("source") if isinstance(test, dict) else test
    x = np.load(pkg / str(test_src), allow_pickle=False)
    raw = np.moveaxis(x[0], -1, 0)  # (1, H, W, C) -> (C, H, W): a raw stack, or RED-Net's one image
    meta = (rdf.get("config") or {}).get("srredsim") or {}
    scale = scale_of(meta)
    px = meta.get("pixel_size_um")  # the raw camera pixel
    # the network input's pixel: the raw one, or the reconstruction's (half of it) for a scale-1 RED-Net
    in_px = px * scale / 2 if px else None

    # the reference: srredsim predict on the same input (whole image, as the CLI does up to 1024 px)
    from srredsim.export import matched

    if matched.is_matched(rdf):  # fixed size, run whole; its graph normalises again (srredsim.export.matched)
        model, reference = matched.reference_prediction(package, raw)
        halo, explain = 0, None
        ref_note = f"srredsim predict ({model.engine} engine)"
    else:  # fp32: the reference is the network's own arithmetic (auto may pick bf16, ~1e-3 away)
        model = open_model(package, precision="fp32")
        reference, ref_note = predict_reference(model, raw, scale)
        halo = int(model.halo)
        explain = jdll_percentile_reference(model, raw, scale)
    bound = FLOAT_INPUT_PERCENTILE_BOUND if scale == 1 else None

    try:
        plans, notes = engine_plans(build, pkg)
    except SrredsimError as exc:
        return [CheckResult("dij.rdf", "fail", str(exc), time.perf_counter() - t)]
    rows.append(CheckResult("dij.rdf", "pass", f"JDLL {JDLL_VERSION} reads rdf.yaml (format "
                            f"{rdf.get('format_version')}, id {rdf.get('id')!r})"))
    present = [p for p in plans if p.weights in (rdf.get("weights") or {})]
    if weight_formats:
        present = [p for p in present if p.weights in weight_formats]
        for wf in weight_formats:
            if not any(p.weights == wf for p in plans):
                rows.append(CheckResult(f"dij.{wf}", "fail", f"JDLL {JDLL_VERSION} cannot run {wf} weights "
                                        "(or the package has none)"))
    if not present:
        rows.append(CheckResult("dij.engines", "fail", "JDLL runs none of the package's weight formats: "
                                + "; ".join(notes)))
        return rows
    try:
        engines = prepare_engines(build, present, log)
    except SrredsimError as exc:
        rows.append(CheckResult("dij.engines", "fail", str(exc), time.perf_counter() - t))
        return rows
    rows.append(CheckResult("dij.engines", "pass", "; ".join(
        f"{p.weights} {p.weights_version} -> engines/{p.folder} (JDLL's choice; it would download "
        f"{p.jdll_downloads}), adapter compiled from source with "
        f"{sum(1 for a in ADAPTER_PATCHES if any(a.artifact in u for u in p.jars))} line(s) changed"
        for p in present), time.perf_counter() - t))

    stack = write_hyperstack(raw, work / "test_input_hyperstack.tif", in_px)
    runs: list[DeepImageJRun] = []
    for p in present:
        t = time.perf_counter()
        if log:
            log(f"running DeepImageJ on {p.weights} ({p.framework} {p.version})")
        r = run_deepimagej(build, engines, pkg, work / f"fiji-{p.weights}", input_path=stack,
                           weights_format=p.weights)
        runs.append(r)
        rows.append(_compare_row(f"dij.{p.weights}", r, reference, halo, tolerance, ref_note,
                                 time.perf_counter() - t, expect_engine=p, explain=explain, scale=scale,
                                 percentile_bound=bound))
    if macro:
        t = time.perf_counter()
        path = fiji_macro_path()
        if path is None:
            rows.append(CheckResult("dij.fiji_macro", "skip", f"{MACRO_NAME} is not in this installation"))
        else:
            plain = write_plain_stack(raw, work / "raw_plain_stack.tif", in_px)
            p = next((q for q in present if q.weights == "onnx"), present[0])
            what = (f"a plain {raw.shape[0]}-page stack" if raw.shape[0] > 1 else "a one-image TIFF")
            if log:
                log(f"running the Fiji macro {path.name} on {what}")
            r = run_deepimagej(build, engines, pkg, work / "fiji-macro", macro=path, weights_format=p.weights,
                               macro_arg=f"model={{model}},input={plain},output={{output}},batch=true")
            runs.append(r)
            how = " (made channels by the macro)" if raw.shape[0] > 1 else ""
            rows.append(_compare_row("dij.fiji_macro", r, reference, halo, tolerance, ref_note,
                                     time.perf_counter() - t, prefix=f"{path.name} on {what}{how}, {p.weights}: ",
                                     pixel_size_um=in_px / scale if in_px else None,
                                     pixel_note="half the raw one" if scale == 2 else "the input's", explain=explain,
                                     scale=scale, percentile_bound=bound))
    rows += core_agreement(pkg, x, reference, list((rdf.get("weights") or {})), tolerance)
    attempts = sorted({a for r in runs for a in r.network_attempts})
    ifaces = sorted({i for r in runs for i in (r.environment.get("interfaces") or [])})
    netns = all(r.netns for r in runs)
    if attempts:
        status, detail = "fail", f"network access attempted: {attempts}"
    elif netns:
        status, detail = "pass", (f"{len(runs)} DeepImageJ runs in an empty network namespace (unshare -rn; "
                                  f"interfaces {ifaces}); no name lookup or connection attempted")
    else:
        status, detail = "warn", (f"no empty network namespace here (unshare -rn refused); no name lookup or "
                                  f"connection attempted in {len(runs)} runs (interfaces {ifaces})")
    rows.append(CheckResult("dij.network", status, detail))
    return rows


def core_agreement(pkg: Path, x: np.ndarray, reference: np.ndarray, weights: list[str], tolerance: float) -> list:
    """bioimageio.core's prediction of the test input against ``srredsim predict`` (the same reference).

    ``agree.core_blocks``: core's tiled path with one block (the whole test input): sample statistics
    first, then the halo padding the RDF declares, as JDLL and srredsim do. ``agree.core_default``:
    core's default ``predict`` pads *before* the pre-processing, so sample statistics (scale_range
    percentiles) include the padding: reported, a warning when it differs (an upstream matter)."""
    from srredsim.export.checks import CheckResult
    from srredsim.export.validate import _in_temp_cwd, _quiet

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    wf = next((w for w in ("onnx", "tensorflow_saved_model_bundle", "keras_hdf5") if w in weights), None)
    if wf is None:
        return [CheckResult("agree.core_blocks", "skip", "no weight format bioimageio.core runs")]
    t = time.perf_counter()
    old = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        from bioimageio.core import create_prediction_pipeline, load_description, predict

        with _quiet(), _in_temp_cwd():
            md = load_description(str(pkg / "rdf.yaml"), perform_io_checks=False)
            ipt, out = md.inputs[0], md.outputs[0]
            block = {ipt.id: {a.id: int(x.shape[i]) for i, a in enumerate(ipt.axes)}}
            pp = create_prediction_pipeline(md, weight_format=wf)
            blocks = predict(model=pp, inputs={ipt.id: x}, input_block_shape=block).members[out.id]
            plain = predict(model=pp, inputs={ipt.id: x}).members[out.id]
    except Exception as exc:  # core's own failure is a finding, not a crash of the check
        return [CheckResult("agree.core_blocks", "fail", f"bioimageio.core could not predict: "
                            f"{type(exc).__name__}: {exc}", time.perf_counter() - t)]
    finally:
        if old is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old
    rows = []
    for name, y, what in (("agree.core_blocks", blocks, "predict(input_block_shape=the whole input: one block)"),
                          ("agree.core_default", plain, "predict() (its default, no blocks)")):
        y = np.squeeze(np.asarray(y.data, np.float32))
        if y.shape != reference.shape:
            rows.append(CheckResult(name, "fail", f"bioimageio.core {what} on {wf}: output {y.shape}, srredsim "
                                    f"predict {reference.shape}"))
            continue
        c = compare(y, reference, 0)
        ok = c["rel"] <= tolerance
        detail = f"bioimageio.core {what} on {wf} = srredsim predict to {c['rel']:.1e} of its peak"
        if name == "agree.core_default" and not ok:
            detail += (" (bioimageio.core pads before the pre-processing, so the sample statistics of scale_range "
                       "include the padding; JDLL, srredsim and core's own tiled path normalise first: docs/fiji.md)")
            rows.append(CheckResult(name, "warn", detail))
        else:
            rows.append(CheckResult(name, "pass" if ok else "fail", detail + f" (tolerance {tolerance:g})"))
    rows[0].seconds = time.perf_counter() - t
    return rows


def jdll_percentile(a: np.ndarray, percentile: float) -> float:
    """A percentile as JDLL 0.6.1 takes it (ScaleRangeTransformation.findPercentileValue): the sorted
    value at index floor(N * p), no interpolation (numpy and bioimageio.core interpolate linearly)."""
    flat = np.sort(np.asarray(a, np.float64).ravel())
    return float(flat[min(int(flat.size * (percentile / 100.0)), flat.size - 1)])


def predict_reference(model, raw: np.ndarray, scale: int = 2) -> tuple[np.ndarray, str]:
    """``srredsim predict`` on the network input ``raw`` ``(C, H, W)`` (a raw stack, or a scale-1
    RED-Net's one reconstruction ``(1, H, W)``), and what computed it: the handle's own
    ``predict`` (whole image up to 1024 px, as the command runs it)."""
    if getattr(model, "scale", 2) != scale:
        raise SrredsimError(f"the package's axes say scale {scale}, the model handle {model.scale}")
    return model.predict(raw), f"srredsim predict ({model.engine} engine)"


def jdll_percentile_reference(model, raw: np.ndarray, scale: int = 2) -> dict[str, Any] | None:
    """``srredsim predict`` with JDLL's percentile rule, when that rule gives other percentiles than
    numpy's for this stack (else None): explains a difference DeepImageJ shows for that reason alone."""
    from srredsim.normalization import EPS, percentile_range
    from srredsim.predict import predict_normalized, stack_to_hwc

    norm = model.normalization
    if norm.mode != "percentile":
        return None
    lo, hi = percentile_range(raw, norm.low_percentile, norm.high_percentile)
    jlo, jhi = jdll_percentile(raw, norm.low_percentile), jdll_percentile(raw, norm.high_percentile)
    if (jlo, jhi) == (np.float32(lo), np.float32(hi)):
        return None
    x = (np.asarray(raw, np.float32) - np.float32(jlo)) / np.float32(jhi - jlo + EPS)
    image = predict_normalized(model.predict_fn, stack_to_hwc(x), halo=model.halo, multiple=model.size_multiple,
                               scale=scale)
    return {"numpy": (lo, hi), "jdll": (jlo, jhi), "image": image}


def _compare_row(name: str, r: DeepImageJRun, reference: np.ndarray, halo: int, tolerance: float, ref_note: str,
                 seconds: float, expect_engine: EnginePlan | None = None, prefix: str = "",
                 pixel_size_um: float | None = None, explain: dict[str, Any] | None = None,
                 pixel_note: str = "half the raw one", scale: int = 2, percentile_bound: float | None = None):
    """One ``dij.*`` row. ``percentile_bound``: for float inputs (RED-Net's reconstructions), a
    difference above ``tolerance`` that JDLL's percentile rule explains entirely (srredsim with JDLL's
    percentiles = DeepImageJ within ``tolerance``) and that stays within this bound is a warning."""
    from srredsim.export.checks import CheckResult

    where = prefix + f"DeepImageJ {DEEPIMAGEJ_VERSION} (JDLL {JDLL_VERSION}) on {r.engine}"
    if not r.ok:
        return CheckResult(name, "fail", f"{where}: {r.detail}", seconds)
    jdll = r.environment.get("jdll") or {}
    chosen = Path(str(jdll.get("engine_dir") or "")).name
    if expect_engine is not None and (jdll.get("weights") != expect_engine.weights or chosen != expect_engine.folder):
        return CheckResult(name, "fail", f"{where}: JDLL chose {jdll.get('weights')} on engines/{chosen}, "
                                         f"expected {expect_engine.weights} on engines/{expect_engine.folder}", seconds)
    out = read_output(r.outputs[0])
    if out.shape != reference.shape:
        return CheckResult(name, "fail", f"{where}: output {out.shape}, {ref_note} {reference.shape}", seconds)
    c = compare(out, reference, halo, scale)
    ok = c["rel"] <= tolerance
    status = "pass" if ok else "fail"
    detail = (f"{where}: {out.shape[1]}x{out.shape[0]} image = {ref_note} to {c['rel']:.1e} of its peak "
              f"(max |diff| {c['max_abs']:.2e}; within {scale * halo} output px of the border {c['border_rel']:.1e}, "
              f"inside {c['interior_rel']:.1e}; tolerance {tolerance:g}); DeepImageJ {r.seconds:.0f} s")
    if not ok and explain is not None and explain["image"].shape == out.shape:
        e = compare(out, explain["image"], halo, scale)
        detail += (f". JDLL takes scale_range percentiles without interpolation (sorted value at floor(N*p)): "
                   f"{explain['jdll'][0]:g}/{explain['jdll'][1]:g} here, numpy and bioimageio.core "
                   f"{explain['numpy'][0]:g}/{explain['numpy'][1]:g}; srredsim with JDLL's percentiles = "
                   f"DeepImageJ to {e['rel']:.1e} (docs/fiji.md)")
        if percentile_bound is not None and e["rel"] <= tolerance and c["rel"] <= percentile_bound:
            status = "warn"
            detail += (f"; a float input has no ties, so the two percentile rules differ by design: within the "
                       f"bound {percentile_bound:g} for float inputs")
    if pixel_size_um:
        from srredsim.tiff import read_reference

        got = read_reference(r.outputs[0])[1].pixel_size_um
        if got is None or abs(got - pixel_size_um) > 1e-6 * pixel_size_um:
            status = "fail"
            detail += f"; pixel size {got} um, expected {pixel_size_um:g} um ({pixel_note})"
        else:
            detail += f"; pixel size {got:g} um ({pixel_note})"
    return CheckResult(name, status, detail, seconds)
