"""``--engine auto`` / ``--precision auto``: the fastest engine and precision that stays within
the model's tolerance of fp32, measured once per model and machine.

Candidates: the engines in :data:`AUTO_ENGINES` that can run the model (ONNX Runtime, and
OpenVINO when installed), each in fp32 and -- where the hardware computes bfloat16 natively --
bf16. Not int8 (``--precision int8``, :mod:`srredsim.runtime.quantize`): it fails the tolerance
below on every model measured (56-59 dB against fp32 on the test tensors of ``default``'s
full-size network and ``sim-3x5``), and measuring it would quantise the network at first use.
Keras and SavedModel are not candidates: they need TensorFlow, whose import alone takes
seconds before the first pixel; they stay available by name. Each candidate predicts the model's
own test tensor (the test input of its bioimage.io package, or for a run folder the synthetic
stack ``srredsim export`` would package: :func:`srredsim.export.testdata.synthetic_raw_stack`),
which decides whether it qualifies; its speed is the best of :data:`TIMED_CALLS` calls after a
warm-up call on a stack of at least ``TIMING_SIZE``^2 pixels (the test tensor if it is that
large): engines rank differently on tiny inputs, where per-call overheads dominate.

Tolerance. A reduced-precision candidate qualifies when its output on the test tensor has a
PSNR of at least :data:`MIN_PSNR_DB` against the same engine's fp32 output (data range of the
fp32 output) and no pixel differs by more than :data:`MAX_REL_DIFF` of that range. Why 65 dB: an
error independent of the model's own error adds to its mean square, so a model scoring P dB
against a truth loses ``10 log10(1 + 10^((P - E)/10))`` dB when its arithmetic adds an error of E
dB; for E = 65 that is <= 0.05 dB for every model scoring up to 45.6 dB (srredsim's models score
31-41 dB on the held-out stacks). The bioimage.io reproducibility tolerance of the packages
(relative 1e-3) is the wrong yardstick here: it checks that a weight format reproduces the same
arithmetic, and bf16 deliberately does not.

The result is stored as JSON under ``cache_dir("precision")``, named by the model's content hash
and a hash of what makes the measurement machine-specific (CPU model and features, usable cores,
engine versions, the tolerance), so it is measured again when any of those change.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from srredsim.cache import cache_dir
from srredsim.errors import SrredsimError, atomic_path

AUTO_ENGINES = ("openvino", "onnx")
MIN_PSNR_DB = 65.0
MAX_REL_DIFF = 0.02
TIMED_CALLS = 2
RECORD_VERSION = 2


@dataclass
class Choice:
    engine: str
    precision: str
    reason: str
    adapter: object | None = None  # an engine left open by the measurement
    measurements: dict = field(default_factory=dict)


def engine_precisions(engine: str) -> tuple[str, ...]:
    from srredsim.runtime.keras_engine import KerasEngine
    from srredsim.runtime.onnx_engine import OnnxEngine
    from srredsim.runtime.openvino_engine import OpenVinoEngine
    from srredsim.runtime.savedmodel_engine import SavedModelEngine

    return {c.name: c.precisions for c in (KerasEngine, SavedModelEngine, OnnxEngine, OpenVinoEngine)}[engine]


def fast_bf16(engine: str) -> bool:
    """Whether ``engine`` computes bf16 natively here (else bf16 is emulated and slower)."""
    from srredsim.hardware import cpu_has_fast_bf16

    if engine == "openvino":
        from srredsim.runtime.openvino_engine import supports_bf16

        return supports_bf16()
    if engine == "keras":
        from srredsim.hardware import _gpu_compute_capability

        cc = _gpu_compute_capability()
        return cc >= (8, 0) if cc is not None else cpu_has_fast_bf16()
    return False


def engine_usable(engine: str) -> bool:
    if engine == "openvino":
        from srredsim.runtime.openvino_engine import available

        return available()
    return True


def candidates(source_engines: tuple[str, ...], engine: str | None, precision: str | None) -> list[tuple[str, str]]:
    """(engine, precision) pairs to consider, fp32 of an engine before its bf16 (the reference); int8
    only when asked for by name."""
    if engine is not None:
        if engine not in source_engines:
            raise SrredsimError(f"this model cannot run on the {engine} engine (it can: {', '.join(source_engines)})")
        engines = [engine]
    else:
        engines = [e for e in AUTO_ENGINES if e in source_engines and engine_usable(e)]
        if not engines:  # e.g. a SavedModel: the first engine that runs it
            engines = [next(e for e in ("onnx", "openvino", "savedmodel", "keras") if e in source_engines)]
    out = []
    for e in engines:
        supported = engine_precisions(e)
        if precision is not None:
            if precision in supported:
                out.append((e, precision))
            elif engine is not None:
                from srredsim.runtime.base import check_precision_for

                check_precision_for(e, precision, supported)  # raises the one-line error
            continue
        out += [(e, p) for p in supported if p == "fp32" or (p == "bf16" and fast_bf16(e))]
    if not out:
        raise SrredsimError(f"no engine runs this model in {precision} here (engines: {', '.join(engines)})")
    return out


def package_version(dist: str) -> str:
    """The installed version of a distribution, "-" when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def machine_facts() -> dict[str, str]:
    from srredsim.hardware import cpu_flags, cpu_model, cpu_path

    flags = sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512", "avx2", "fma")))
    return {"cpu": cpu_model(), "cpu_path": cpu_path(), "flags": " ".join(flags),
            "cores": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
            "onnxruntime": package_version("onnxruntime") if package_version("onnxruntime") != "-"
            else package_version("onnxruntime-gpu"),
            "openvino": package_version("openvino"),
            "tensorflow": package_version("tensorflow-cpu") + "/" + package_version("tensorflow"),
            "tolerance": f"{MIN_PSNR_DB:g} dB, {MAX_REL_DIFF:g}", "record": str(RECORD_VERSION)}


def record_path(model_key: str) -> Path:
    facts = json.dumps(machine_facts(), sort_keys=True).encode()
    return cache_dir("precision") / f"{model_key}-{hashlib.sha256(facts).hexdigest()[:12]}.json"


def read_record(model_key: str) -> dict:
    path = record_path(model_key)
    try:
        rec = json.loads(path.read_text())
        return rec if isinstance(rec, dict) and isinstance(rec.get("candidates"), dict) else {}
    except (OSError, ValueError):
        return {}


def _write_record(model_key: str, rec: dict) -> None:
    path = record_path(model_key)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(rec, indent=1))
    except (OSError, SrredsimError):
        pass  # a read-only cache only costs a new measurement next time


def _label(engine: str, precision: str) -> str:
    return f"{engine}/{precision}"


def psnr_db(y: np.ndarray, ref: np.ndarray) -> float:
    rng = float(ref.max() - ref.min()) or 1.0
    mse = float(np.mean((np.asarray(y, np.float64) - ref) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(rng * rng / mse)


def measure(open_engine: Callable[[str, str], object], batch: np.ndarray, pairs: list[tuple[str, str]],
            log: Callable[[str], None] | None = None,
            timing_batch: np.ndarray | None = None) -> tuple[dict, object | None, str | None]:
    """Compare each (engine, precision)'s output on ``batch`` with its engine's fp32 output and time
    it on ``timing_batch`` (default ``batch``).

    Returns (measurements by label, the fastest qualifying engine still open, its label).
    """
    timing = batch if timing_batch is None else timing_batch
    results: dict[str, dict] = {}
    outputs: dict[str, np.ndarray] = {}
    best, best_label = None, None
    for engine, precision in pairs:
        label = _label(engine, precision)
        if log:
            log(f"  measuring {engine} {precision} ...")
        try:
            adapter = open_engine(engine, precision)
        except Exception as exc:  # one engine that cannot run here must not stop the others
            results[label] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            continue
        try:
            y = np.asarray(adapter.predict(batch), np.float32)  # the output compared
            if timing is not batch:
                adapter.predict(timing)  # warm-up at the timing shape
            times = []
            for _ in range(TIMED_CALLS):
                t = time.perf_counter()
                adapter.predict(timing)
                times.append(time.perf_counter() - t)
        except Exception as exc:
            adapter.close()
            results[label] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            continue
        row = {"seconds": min(times)}
        ref = outputs.get(_label(engine, "fp32"))
        if precision == "fp32":
            outputs[label] = y
            row.update(ok=bool(np.all(np.isfinite(y))))
        elif ref is not None:
            span = float(ref.max() - ref.min()) or 1.0
            p = psnr_db(y, ref)
            rel = float(np.max(np.abs(y - ref))) / span
            row.update(psnr_db=p, max_rel_diff=rel, ok=bool(np.all(np.isfinite(y)) and p >= MIN_PSNR_DB
                                                            and rel <= MAX_REL_DIFF))
        else:
            row.update(ok=True, note="no fp32 reference: asked for explicitly")
        results[label] = row
        if row["ok"] and (best is None or row["seconds"] < results[best_label]["seconds"]):
            if best is not None:
                best.close()
            best, best_label = adapter, label
        else:
            adapter.close()
    return results, best, best_label


def choose(source, engine: str | None, precision: str | None, log: Callable[[str], None] | None = None) -> Choice:
    """The engine and precision to run ``source`` on (see the module docstring)."""
    pairs = candidates(source.engines, engine, precision)
    if len(pairs) == 1:
        e, p = pairs[0]
        why = "as asked" if engine is not None or precision is not None else "the only candidate here"
        return Choice(e, p, why)
    key = source.key()
    rec = read_record(key)
    known = rec.get("candidates", {})
    missing = any(_label(*pr) not in known for pr in pairs)
    adapter = None
    if missing:  # measure the whole set: a bf16 row needs its engine's fp32 output in the same run
        if log:
            log(f"choosing the fastest engine and precision for this model on this machine (once; "
                f"kept in {record_path(key).parent})")
        batch, timing = source.test_batch(), source.timing_batch()
        measured, adapter, _ = measure(source.open_engine, batch, pairs, log, timing)
        known = {**known, **measured}
        rec = {"version": RECORD_VERSION, "model": str(source.path), "machine": machine_facts(),
               "measured": datetime.datetime.now().isoformat(timespec="seconds"), "test_tensor": list(batch.shape),
               "timing_tensor": list((batch if timing is None else timing).shape), "candidates": known}
        _write_record(key, rec)
    usable = [(known[_label(*pr)]["seconds"], pr) for pr in pairs if known[_label(*pr)].get("ok")]
    if not usable:
        errors = [f"{_label(*pr)}: {known[_label(*pr)]['error']}" for pr in pairs if "error" in known[_label(*pr)]]
        raise SrredsimError("no engine could run the model's test tensor"
                            + (f" ({errors[0]})" if errors else " to a finite output"))
    _, (e, p) = min(usable)
    row = known[_label(e, p)]
    base = ("onnx", "fp32") if ("onnx", "fp32") in pairs else (e, "fp32")
    parts = [f"auto: fastest of {', '.join(' '.join(pr) for pr in pairs)}"]
    if (e, p) != base and _label(*base) in known:
        parts.append(f"{known[_label(*base)]['seconds'] / row['seconds']:.2f}x {' '.join(base)}")
    if "psnr_db" in row:
        parts.append(f"{row['psnr_db']:.0f} dB PSNR vs fp32")
    parts.append("measured now" if missing else f"measured {rec.get('measured', '?')[:10]}")
    if adapter is not None and (getattr(adapter, "name", None), getattr(adapter, "precision", None)) != (e, p):
        adapter.close()
        adapter = None
    return Choice(e, p, "; ".join(parts), adapter=adapter, measurements=known)


def cached_choice_line(source) -> str:
    """What ``auto`` would pick for ``source`` from the cache alone (nothing is measured)."""
    try:
        pairs = candidates(source.engines, None, None)
    except SrredsimError as exc:
        return str(exc)
    if len(pairs) == 1:
        return f"{pairs[0][0]} {pairs[0][1]} (the only candidate here)"
    rec = read_record(source.key())
    known = rec.get("candidates", {})
    usable = [(known[_label(*pr)]["seconds"], pr) for pr in pairs if known.get(_label(*pr), {}).get("ok")]
    if not usable or any(_label(*pr) not in known for pr in pairs):
        return (f"one of {', '.join(' '.join(pr) for pr in pairs)}: not measured on this machine yet "
                "(the first predict measures it, once)")
    _, (e, p) = min(usable)
    return f"{e} {p} (auto: fastest of {', '.join(' '.join(pr) for pr in pairs)}; measured {rec.get('measured', '?')[:10]})"
