"""The context a network really needs per tile side: its measured halo.

A model's declared halo (``srredsim.export.meta.halo``: the architecture's receptive radius plus a
margin, 48 raw pixels for the full SR-REDSIM, 28 for the 32/5 networks) bounds how far an output
pixel can look. How far it *does* look is a property of the trained weights: for the full network
the influence of the pixels beyond a width falls from 3e-2 of the output range at 8 px to 6e-4 at
16 px and reaches float32 round-off (2e-7) at 28 px (docs/runtime.md). Prediction extends the
image by the halo on every side (``srredsim.predict``: mirrored, as DeepImageJ does) and overlaps
tiles by it, so mirroring 48 px where 28 px give the same result computes
(512 + 96)^2 / (512 + 56)^2 = 1.15x more pixels than needed on a whole 512^2 stack.

:func:`measured_halo` finds the smallest border width (a multiple of :data:`STEP`, aligned with
the network's size rule) whose prediction of the model's test tensor (its central :data:`SIZE`^2
at most; and the same lifted by 1, so that a dark border band cannot hide the network's reach)
equals the declared-halo prediction within :data:`TOLERANCE` of the output range everywhere,
borders included, in fp32 on the engine that will run the model. That keeps "one result in
srredsim, DeepImageJ and bioimageio.core" (they mirror by the declared halo; their gate is 1e-3)
and makes the width a measurement, not a guess. It runs once per model (on whichever engine opens
it first); the answer is kept as JSON under ``cache_dir("halo")``, named by the model's content
hash and its declared halo. When no width qualifies, or the model takes one input size only, the
declared halo stays. ``--halo`` still overrides (and nothing is measured).

Reduced precision (bf16, int8) takes the narrowest measured width within
:data:`REDUCED_TOLERANCE` (1e-4) instead (:func:`width_for`; read from the same record, nothing
more is measured): such an engine's output already differs from fp32 by up to 5e-3 of the range
at single pixels (bf16, the full network on a simulated 512² stack), and by up to 1.2e-3 from itself
when nothing but the padding width changes (its rounding follows the blocking), so a context that
changes the fp32 output by a hundredth of that cannot be told apart from its own rounding; there
is no DeepImageJ parity to keep at that precision (DeepImageJ runs fp32). For the full network
that is 24 px instead of 28 (560² instead of 568² on a 512² stack: 3 % less work; 20 px differs by
3.5e-4 on the lifted probe); the fp32 path -- and every comparison with DeepImageJ, which runs it
-- keeps the 1e-6 rule.
"""

from __future__ import annotations

import datetime
import json
import math
from typing import Callable

import numpy as np

from srredsim.cache import cache_dir
from srredsim.errors import SrredsimError, write_json

TOLERANCE = 1e-6  # of the output range: float32 round-off, 1000x below the DeepImageJ parity gate
REDUCED_TOLERANCE = 1e-4  # the same for bf16/int8 engines: 1/12 of bf16's own rounding noise (docstring)
STEP = 4  # candidate widths: STEP, 2*STEP, ... below the declared halo
SIZE = 128  # the test tensor's central square this large at most (cost: a few calls of that size)
VERSION = 3  # of the measurement recipe (in the cache file's name; 3: both probes for every width within
#               REDUCED_TOLERANCE, so that its recorded difference is the largest over both)


def record_path(model_key: str, declared: int):
    """Where the measurement of a model (content key, declared halo) is kept (not created here)."""
    return cache_dir("halo", create=False) / f"{model_key}-d{declared}-v{VERSION}.json"


def read_record(source) -> dict | None:
    """The cached measurement for ``source``, or None."""
    try:
        path = record_path(source.key(), int(source.fields.get("halo") or 0))
        rec = json.loads(path.read_text())
        int(rec["effective"])
        return rec
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tolerance(precision: str) -> float:
    """How far the halo may change a prediction at ``precision`` (of the output range)."""
    return TOLERANCE if precision == "fp32" else REDUCED_TOLERANCE


def width_for(rec: dict, precision: str = "fp32") -> int:
    """The halo a measurement record gives an engine computing at ``precision``: the narrowest
    measured width whose difference from the declared halo's result is within :func:`tolerance`,
    the fp32 ``effective`` width at most (widths are measured narrowest first, up to the effective
    one, so the record holds every width that could qualify; for fp32 that is the effective one)."""
    effective = int(rec["effective"])
    tol = tolerance(precision)
    ok = [int(w) for w, d in (rec.get("max_rel_diff") or {}).items() if d <= tol and int(w) <= effective]
    return min(ok, default=effective)


def describe(source) -> str:
    """One line for ``srredsim info``: the halo predict uses, from the cache (nothing is measured)."""
    declared = int(source.fields.get("halo") or 0)
    if source.fields.get("fixed_size"):
        return "none: the model takes one input size and runs it whole"
    rec = read_record(source) if declared > STEP else None
    if rec is None:
        return (f"{declared} px per side (the architecture's bound"
                + ("; the first predict measures what the network needs)" if declared > STEP else ")"))
    fp32, reduced = width_for(rec, "fp32"), width_for(rec, "bf16")
    widths = (f"{fp32} px per side" if reduced == fp32
              else f"{fp32} px per side in fp32, {reduced} px in bf16/int8")
    return (f"{widths}, measured {str(rec.get('measured', '?'))[:10]} with {rec.get('engine', '?')} fp32 "
            f"(the architecture's bound: {declared} px; the same result within {rec['tolerance']:g} of the "
            f"output range in fp32, {REDUCED_TOLERANCE:g} in reduced precision)")


def _central(batch: np.ndarray, multiple: int) -> np.ndarray:
    """``(H, W, C)``: the central square of at most SIZE^2 (a multiple of ``multiple``) of a batch's first item."""
    x = np.asarray(batch[0], np.float32)
    h, w = x.shape[:2]
    n = max(multiple, min(h, w, SIZE) // multiple * multiple)
    y0, x0 = (h - n) // 2, (w - n) // 2
    return x[y0:y0 + n, x0:x0 + n]


def candidate_widths(declared: int, multiple: int = 1) -> list[int]:
    """Widths below ``declared`` to try, narrowest first: multiples of STEP that keep the image where
    the declared halo puts it on the network's size grid (``width ≡ declared`` modulo ``multiple``;
    a U-Net pools, so a shifted image would never give the same result)."""
    step = math.lcm(STEP, max(1, multiple))
    first = declared % step or step
    return list(range(first, declared, step))


def measure(predict_fn: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, declared: int, multiple: int = 1,
            scale: int = 2) -> dict:
    """The measurement itself. Probes: ``batch``'s central square, and the same lifted by 1 (in
    network units): the mirrored band beyond a width is compared with the network's zero padding,
    and a dark border band (background normalises to ~0) would hide how far the network looks.
    The declared-halo prediction of each probe is the reference; widths from
    :func:`candidate_widths` are tried until one matches it within TOLERANCE on both (the first
    that does is the effective halo: influence falls with distance). Returns ``{"declared",
    "effective", "max_rel_diff": {width: largest difference over the probes}, "size", "tolerance"}``;
    a width that already differs by more than REDUCED_TOLERANCE on the first probe records that
    difference alone (it qualifies for no precision)."""
    from srredsim.predict import BORDER_MODE, predict_normalized

    x = _central(batch, multiple)
    probes = [x, x + np.float32(1.0)]

    def run(probe: np.ndarray, width: int) -> np.ndarray:
        return predict_normalized(predict_fn, probe, tile=0, halo=width, multiple=multiple, border=BORDER_MODE,
                                  scale=scale)

    refs = [run(p, declared) for p in probes]
    spans = [float(r.max() - r.min()) or 1.0 for r in refs]
    diffs: dict[str, float] = {}
    effective = declared
    for width in candidate_widths(declared, multiple):
        d = 0.0
        for p, ref, span in zip(probes, refs, spans):
            d = max(d, float(np.max(np.abs(run(p, width) - ref))) / span)
            if d > REDUCED_TOLERANCE:
                break  # this width fails for every precision: the other probe need not run
        diffs[str(width)] = d
        if d <= TOLERANCE:
            effective = width
            break
    return {"declared": declared, "effective": effective, "max_rel_diff": diffs, "size": list(x.shape[:2]),
            "tolerance": TOLERANCE}


def measured_halo(source, engine: str, fp32_adapter=None, log: Callable[[str], None] | None = None,
                  precision: str = "fp32") -> int:
    """The halo ``srredsim predict`` uses for ``source`` (a ``runtime.handle._Source``) on
    ``engine`` at ``precision`` (:func:`width_for`): from the cache, else measured now on that
    engine in fp32 -- ``fp32_adapter`` when the caller has it open (left open), else one opened
    and closed here; never a reduced precision, whose rounding changes with the input size by
    more than the tolerance. The declared halo where the model takes one input size or declares
    none worth shrinking. One measurement serves every engine and precision (it is a property of
    the weights)."""
    fields = source.fields
    declared = int(fields.get("halo") or 0)
    if fields.get("fixed_size") or declared <= STEP:
        return declared
    rec = read_record(source)
    if rec is not None:
        return width_for(rec, precision)
    path = record_path(source.key(), declared)
    if log:
        log(f"measuring the context this model needs per side (once; kept in {path.parent})")
    adapter = None
    try:
        adapter = fp32_adapter or source.open_engine(engine, "fp32")
        rec = measure(adapter, source.test_batch(), declared, int(fields.get("size_multiple") or 1),
                      int(fields.get("scale", 2)))
    except Exception as exc:  # the engine's own opening says what is wrong, at its first call
        if log:
            log(f"  could not measure it ({type(exc).__name__}: {exc}): using the declared {declared} px")
        return declared
    finally:
        if adapter is not None and adapter is not fp32_adapter:
            adapter.close()
    rec.update(engine=engine, model=str(source.path), measured=datetime.datetime.now().isoformat(timespec="seconds"))
    try:
        write_json(path, rec)  # atomic, and it makes the folder
    except (OSError, SrredsimError):
        pass  # a read-only cache only costs measuring again next time
    return width_for(rec, precision)
