"""Standing controls: does a model take its resolution from the illumination pattern?

Two measurements, each made twice per model -- from the SIM stack and from the same stack with
the pattern removed (:func:`pattern_removed`: every frame replaced by the mean frame, i.e. the
widefield image repeated; nothing else changes) -- beside widefield and the classical
reconstruction of the same stack:

* :func:`heldout_rows` -- held-out stacks (:func:`srredsim.recipes.heldout_stack`) scored with the
  evaluation protocol (:func:`srredsim.metrics.compare`) against the ground truth and against the
  truth band-limited to the SIM support;
* :func:`chart_rows` -- a line-pair resolution chart (:mod:`srredsim.chart`): mean dip visibility
  per spacing and the finest resolved spacing.

A SIM network must lose clearly without the pattern and must not resolve, from the
pattern-removed stack, pairs that widefield physics cannot. ``benchmarks/sim_information.py``
runs this for every shipped model; the protocol is written in docs/sim_information.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from srredsim.errors import SrredsimError

REMOVED = "pattern removed"


def pattern_removed(raw: np.ndarray) -> np.ndarray:
    """The control input: every frame replaced by the mean frame (float32, same shape)."""
    raw = np.asarray(raw)
    if raw.ndim != 3 or raw.shape[0] < 2:
        raise SrredsimError(f"expected a raw stack (frames, H, W), got shape {raw.shape}")
    mean = raw.astype(np.float32).mean(axis=0)
    return np.broadcast_to(mean, raw.shape).astype(np.float32)


def layout_optics(phases: int):
    """The held-out optics (NA 1.4, 525 nm, 80 nm, 2-beam) with 3 angles x ``phases``."""
    from srredsim.recipes import default_optics

    return default_optics().model_copy(update={"phases": phases})


@dataclass
class ControlSettings:
    phases: int = 5
    photons: tuple[float, ...] = (6.0, 200.0)
    count: int = 4
    size: int = 256
    chart_photons: tuple[float, ...] = (20.0, 200.0)
    chart_size: int = 256
    chart_count: int = 2
    chart_k_fraction: float = 0.85  # pattern |k| of the chart acquisition, fraction of the cutoff
    chart_modulation: float = 0.8
    seed: int | None = None
    border: int = 32


def _method_images(models: Mapping[str, Any], raw: np.ndarray, optics) -> dict[str, np.ndarray]:
    from srredsim.classical import reconstruct

    rec = reconstruct(raw, optics)
    images = {"widefield": rec.widefield, "classical": rec.sr}
    flat = pattern_removed(raw)
    for name, model in models.items():
        images[name] = model.predict(raw)
        images[f"{name} ({REMOVED})"] = model.predict(flat)
    return images


def heldout_rows(models: Mapping[str, Any], s: ControlSettings,
                 progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """PSNR/SSIM/NRMSE of every method, from both inputs, on held-out stacks."""
    from srredsim.metrics import compare, shift_image
    from srredsim.recipes import HELDOUT_SEED, heldout_stack

    optics = layout_optics(s.phases)
    seed = HELDOUT_SEED if s.seed is None else s.seed
    rows = []
    for ph in s.photons:
        for i in range(s.count):
            stack = heldout_stack(ph, size=s.size, index=i, seed=seed, targets=("bandlimited",), phases=s.phases)
            images = _method_images(models, stack.raw, optics)
            for ref_name, ref in (("truth", stack.truth), ("bandlimited", stack.targets["bandlimited"])):
                shifts: dict[str, tuple[float, float]] = {}
                for name, img in images.items():
                    base = name[:-len(f" ({REMOVED})")] if name.endswith(f" ({REMOVED})") else None
                    if base in shifts:
                        # the same registration as the model's SIM-stack output: registering a
                        # blurred image is unstable, and both inputs share one geometry
                        img = shift_image(np.asarray(img, np.float64), shifts[base])
                    r = compare(img, ref, border=s.border, pixel_size_um=optics.pixel_size_um / 2,
                                register_images=base not in shifts)
                    shifts[name] = (r["shift_y"], r["shift_x"])
                    rows.append({"layout": f"3x{s.phases}", "photons": ph, "stack": i, "method": name,
                                 "reference": ref_name, "psnr": r["psnr"], "ssim": r["ssim"], "nrmse": r["nrmse"]})
            if progress:
                progress(f"held-out 3x{s.phases}: photons {ph:g}, stack {i + 1}/{s.count}")
    return rows


def chart_stack(s: ControlSettings, photons: float, index: int):
    """A line-pair chart and its simulated raw stack (fixed pattern |k| and modulation)."""
    from srredsim.chart import line_pair_chart
    from srredsim.recipes import HELDOUT_SEED
    from srredsim.simulate import SimulationConfig, simulate_stack

    seed = HELDOUT_SEED if s.seed is None else s.seed
    optics = layout_optics(s.phases)
    chart = line_pair_chart(s.chart_size, optics.pixel_size_um, seed=seed + index)
    cfg = SimulationConfig(size=s.chart_size, optics=optics, photons=float(photons), haze=0.0,
                           k_fraction=s.chart_k_fraction, modulation=s.chart_modulation)
    stack = simulate_stack(cfg, seed=(seed, 5000 + index), targets=["truth"], structure=chart.structure)
    return chart, stack


def chart_rows(models: Mapping[str, Any], s: ControlSettings,
               progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Dip visibility per spacing (mean over ``chart_count`` charts) for every method and input."""
    from srredsim.chart import RESOLVED_VISIBILITY, measure_chart
    from srredsim.metrics import register, shift_image

    optics = layout_optics(s.phases)
    rows = []
    for ph in s.chart_photons:
        per_method: dict[str, list[dict[float, float]]] = {}
        for i in range(s.chart_count):
            chart, stack = chart_stack(s, ph, i)
            images = _method_images(models, stack.raw, optics)
            images["truth"] = stack.truth
            shifts: dict[str, tuple[float, float]] = {}
            for name, img in images.items():
                img = np.asarray(img, np.float64)
                base = name[:-len(f" ({REMOVED})")] if name.endswith(f" ({REMOVED})") else None
                shift = shifts[base] if base in shifts else register(img, stack.truth, max_shift=2.0)
                shifts[name] = shift
                per_method.setdefault(name, []).append(measure_chart(shift_image(img, shift), chart).visibility)
            if progress:
                progress(f"chart 3x{s.phases}: photons {ph:g}, chart {i + 1}/{s.chart_count}")
        for name, vis_list in per_method.items():
            spacings = sorted(vis_list[0])
            vis = {sp: float(np.mean([v[sp] for v in vis_list])) for sp in spacings}
            finest = None
            for sp in sorted(spacings, reverse=True):
                if vis[sp] >= RESOLVED_VISIBILITY:
                    finest = sp
                else:
                    break
            rows.append({"layout": f"3x{s.phases}", "photons": ph, "method": name,
                         "finest_resolved_nm": finest, **{f"v{int(sp)}": vis[sp] for sp in spacings}})
    return rows


@dataclass
class ControlSummary:
    """Mean scores per (layout, photons, method, reference) and the chart rows."""

    heldout: list[dict[str, Any]] = field(default_factory=list)
    chart: list[dict[str, Any]] = field(default_factory=list)


def summarize_heldout(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys: list[tuple] = []
    for r in rows:
        k = (r["layout"], r["reference"], r["photons"], r["method"])
        if k not in keys:
            keys.append(k)
    out = []
    for k in keys:
        sel = [r for r in rows if (r["layout"], r["reference"], r["photons"], r["method"]) == k]
        out.append({"layout": k[0], "reference": k[1], "photons": k[2], "method": k[3], "n": len(sel),
                    **{m: float(np.mean([r[m] for r in sel])) for m in ("psnr", "ssim", "nrmse")},
                    "psnr_std": float(np.std([r["psnr"] for r in sel]))})
    return out
