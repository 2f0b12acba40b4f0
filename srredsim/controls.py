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

from dataclasses import dataclass
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
    chart_first: int = 0  # index of the first chart (seed offset): > 0 gives charts the standing benchmark never scores
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
    """PSNR/SSIM/NRMSE of every method, from both inputs, on held-out stacks
    (:func:`srredsim.comparison.run_comparison` with ``controls=True``)."""
    from srredsim.comparison import run_comparison

    prefix = f"held-out 3x{s.phases}: "
    res = run_comparison(models, photons=s.photons, count=s.count, size=s.size, border=s.border,
                         seed=s.seed, phases=s.phases, controls=True,
                         progress=(lambda msg: progress(prefix + msg)) if progress else None)
    return [{"layout": f"3x{s.phases}", **r} for r in res.rows]


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
        for i in range(s.chart_first, s.chart_first + s.chart_count):
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
                progress(f"chart 3x{s.phases}: photons {ph:g}, chart {i - s.chart_first + 1}/{s.chart_count}")
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


def summarize_heldout(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean scores per layout, reference, light level and method (:func:`srredsim.comparison.summarize`)."""
    from srredsim.comparison import summarize

    out = []
    for layout in dict.fromkeys(r["layout"] for r in rows):
        out += [{"layout": layout, **x} for x in summarize([r for r in rows if r["layout"] == layout])]
    return out
