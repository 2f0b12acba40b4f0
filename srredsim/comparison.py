"""Method comparison on simulated held-out stacks: the engine of the demo and of
``benchmarks/quality.py``.

For every light level and held-out stack (:func:`srredsim.recipes.heldout_stack`: a seed,
structure mix and pattern angles the default model never saw) it computes the upsampled
widefield image, the classical reconstruction (:mod:`srredsim.classical`) and the prediction of
each given network, and scores all of them with the evaluation protocol
(:func:`srredsim.metrics.compare`: registration, border crop, affine intensity fit) against

* ``truth`` -- the simulator's ground-truth structure on the 2x grid, and
* ``bandlimited`` -- that truth limited to the SIM support (what SIM can resolve at best).

Light is the mean detected photons per camera pixel per raw frame; the peak is reported too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from srredsim.metrics import compare

REFERENCES = ("truth", "bandlimited")
DEFAULT_PHOTONS = (2.0, 6.0, 20.0, 60.0, 200.0)


@dataclass
class Example:
    """Images of one held-out stack, kept for figures."""

    photons: float
    images: dict[str, np.ndarray]
    truth: np.ndarray
    bandlimited: np.ndarray


@dataclass
class ComparisonResult:
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per stack x method x reference
    examples: dict[float, Example] = field(default_factory=dict)  # first stack of each level
    seconds: dict[str, list[float]] = field(default_factory=dict)  # per method, per stack


SUPPORT_TARGET = "target: SIM support"  # the reference_images row


def run_comparison(models: Mapping[str, Any], photons=DEFAULT_PHOTONS, count: int = 2, size: int = 256,
                   border: int = 32, tile: int | None = None, progress: Callable[[str], None] | None = None,
                   seed: int | None = None, reference_images: bool = False, phases: int = 5,
                   controls: bool = False) -> ComparisonResult:
    """Compare widefield, classical and each network of ``models`` (name -> ModelHandle).

    ``reference_images`` also scores the shipped models' noise-free training target, the truth
    inside the measured SIM support (``target: SIM support``), as if it were a result: the ceiling
    of a network trained toward it. ``controls`` also runs every
    network on the pattern-removed stack (method ``"NAME (pattern removed)"``, registered like
    the network's SIM-stack output; see :mod:`srredsim.controls`).
    """
    from srredsim.classical import reconstruct
    from srredsim.recipes import HELDOUT_SEED, default_optics, heldout_stack

    from srredsim.controls import REMOVED, pattern_removed
    from srredsim.metrics import shift_image

    seed = HELDOUT_SEED if seed is None else seed
    optics = default_optics().model_copy(update={"phases": phases})
    fine_px = optics.pixel_size_um / 2
    res = ComparisonResult()
    total = len(photons) * count
    done = 0
    for ph in photons:
        for i in range(count):
            stack = heldout_stack(ph, size=size, index=i, seed=seed, phases=phases,
                                  targets=("bandlimited", "support") if reference_images else ("bandlimited",))
            images: dict[str, np.ndarray] = {}
            t0 = time.perf_counter()
            rec = reconstruct(stack.raw, optics)
            res.seconds.setdefault("classical", []).append(time.perf_counter() - t0)
            images["widefield"] = rec.widefield
            images["classical"] = rec.sr
            for name, model in models.items():
                t0 = time.perf_counter()
                images[name] = model.predict(stack.raw, tile=tile)
                res.seconds.setdefault(name, []).append(time.perf_counter() - t0)
                if controls:
                    images[f"{name} ({REMOVED})"] = model.predict(pattern_removed(stack.raw), tile=tile)
            if reference_images:
                images[SUPPORT_TARGET] = stack.targets["support"]
            refs = {"truth": stack.truth, "bandlimited": stack.targets["bandlimited"]}
            for ref_name, ref in refs.items():
                shifts: dict[str, tuple[float, float]] = {}
                for name, img in images.items():
                    base = name[:-len(f" ({REMOVED})")] if name.endswith(f" ({REMOVED})") else None
                    if base in shifts:  # both inputs of a network share its SIM output's registration
                        img = shift_image(np.asarray(img, np.float64), shifts[base])
                    row = compare(img, ref, border=border, pixel_size_um=fine_px, register_images=base not in shifts)
                    shifts[name] = (row["shift_y"], row["shift_x"])
                    res.rows.append({"photons": ph, "peak_photons": stack.params["photons"]["peak"],
                                     "stack": i, "method": name, "reference": ref_name,
                                     "psnr": row["psnr"], "ssim": row["ssim"], "nrmse": row["nrmse"],
                                     "frc_resolution_nm": row.get("frc_resolution_nm")})
            if i == 0:
                res.examples[ph] = Example(ph, images, stack.truth, stack.targets["bandlimited"])
            done += 1
            if progress:
                progress(f"{done}/{total} stacks (photons {ph:g}, stack {i})")
    return res


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and std) per light level, method and reference."""
    order: list[str] = []
    for r in rows:  # methods keep the order in which they were computed (widefield, classical, ...)
        if r["method"] not in order:
            order.append(r["method"])
    keys = sorted({(r["reference"], r["photons"], r["method"]) for r in rows},
                  key=lambda k: (REFERENCES.index(k[0]) if k[0] in REFERENCES else 9, k[1], order.index(k[2])))
    out = []
    for ref, ph, method in keys:
        sel = [r for r in rows if (r["reference"], r["photons"], r["method"]) == (ref, ph, method)]
        agg = {"reference": ref, "photons": ph, "method": method, "n": len(sel),
               "peak_photons": float(np.mean([r["peak_photons"] for r in sel]))}
        for m in ("psnr", "ssim", "nrmse", "frc_resolution_nm"):
            vals = [r[m] for r in sel if r.get(m) is not None and np.isfinite(r[m])]
            agg[m] = float(np.mean(vals)) if vals else None
            agg[m + "_std"] = float(np.std(vals)) if len(vals) > 1 else None
        out.append(agg)
    return out


def methods_in(summary: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for r in summary:
        if r["method"] not in seen:
            seen.append(r["method"])
    return seen


def light_equivalent(summary: list[dict[str, Any]], method: str, at: float, baseline: str = "classical",
                     metric: str = "psnr", reference: str = "truth") -> float | None:
    """Photons the ``baseline`` needs to reach ``method``'s ``metric`` at ``at`` photons.

    Log-linear interpolation of the baseline's curve; ``inf`` if the baseline never gets there
    within the measured range, ``None`` if ``method`` was not measured at ``at``.
    """
    target = [r[metric] for r in summary if r["method"] == method and r["reference"] == reference
              and r["photons"] == at]
    if not target or target[0] is None:
        return None
    goal = target[0]
    curve = sorted((r["photons"], r[metric]) for r in summary
                   if r["method"] == baseline and r["reference"] == reference and r[metric] is not None)
    if not curve:
        return None
    if curve[0][1] >= goal:
        return curve[0][0]
    for (p0, v0), (p1, v1) in zip(curve, curve[1:]):
        if v0 < goal <= v1:
            f = (goal - v0) / (v1 - v0)
            return float(math.exp(math.log(p0) + f * (math.log(p1) - math.log(p0))))
    return math.inf


def markdown_tables(summary: list[dict[str, Any]], metrics=("psnr", "ssim", "nrmse")) -> str:
    """One table per reference and metric: rows = light level, columns = methods."""
    methods = methods_in(summary)
    out = []
    for ref in REFERENCES:
        sub = [r for r in summary if r["reference"] == ref]
        if not sub:
            continue
        levels = sorted({r["photons"] for r in sub})
        for m in metrics:
            unit = " (dB)" if m == "psnr" else ""
            out.append(f"**{m.upper()}{unit} against the {'ground truth' if ref == 'truth' else 'SIM-band-limited truth'}**\n")
            out.append("| photons (mean / peak) | " + " | ".join(methods) + " |")
            out.append("|---|" + "---|" * len(methods))
            for ph in levels:
                cells = []
                peak = None
                for method in methods:
                    r = next((x for x in sub if x["photons"] == ph and x["method"] == method), None)
                    if r is None or r[m] is None:
                        cells.append("")
                        continue
                    peak = r["peak_photons"]
                    std = r.get(m + "_std")
                    fmt = "{:.2f}" if m == "psnr" else "{:.3f}"
                    cells.append(fmt.format(r[m]) + (f" ± {fmt.format(std)}" if std is not None else ""))
                out.append(f"| {ph:g} / {peak:.0f} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)


def plot_curves(summary: list[dict[str, Any]], path, reference: str = "truth") -> None:
    """PSNR and SSIM versus photons (log axis), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from srredsim.errors import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for method in methods_in(summary):
        sub = sorted((r for r in summary if r["method"] == method and r["reference"] == reference),
                     key=lambda r: r["photons"])
        x = [r["photons"] for r in sub]
        for ax, m in zip(axes, ("psnr", "ssim")):
            ax.errorbar(x, [r[m] for r in sub], yerr=[r.get(m + "_std") or 0 for r in sub], marker="o",
                        capsize=2, label=method)
    for ax, m in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set_xscale("log")
        ax.set_xlabel("mean photons per pixel per raw frame")
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"held-out simulated stacks, scored against the "
                 f"{'ground truth' if reference == 'truth' else 'SIM-band-limited truth'}")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def figure_with_insets(example: Example, path, order=None, inset: int | None = None) -> None:
    """widefield | classical | networks | truth, each with a zoomed inset of the same region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from srredsim.errors import atomic_path
    from srredsim.metrics import upsample_fourier

    names = order or list(example.images)
    panels = [(n, example.images[n]) for n in names] + [("ground truth", example.truth)]
    shape = example.truth.shape
    inset = inset or max(32, shape[0] // 6)
    # zoom where the truth has most structure
    t = example.truth
    best, y0, x0 = -1.0, 0, 0
    step = max(8, inset // 2)
    for y in range(shape[0] // 8, shape[0] - inset - shape[0] // 8, step):
        for x in range(shape[1] // 8, shape[1] - inset - shape[1] // 8, step):
            v = float(t[y:y + inset, x:x + inset].std())
            if v > best:
                best, y0, x0 = v, y, x
    fig, axes = plt.subplots(2, len(panels), figsize=(3.0 * len(panels), 6.2), squeeze=False)
    for j, (name, img) in enumerate(panels):
        a = np.asarray(img, np.float64)
        if a.shape != shape:
            a = upsample_fourier(a, shape)
        lo, hi = np.percentile(a, [0.5, 99.8])
        axes[0, j].imshow(a, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
        axes[0, j].add_patch(Rectangle((x0, y0), inset, inset, fill=False, edgecolor="yellow", lw=1))
        axes[0, j].set_title(name, fontsize=10)
        z = a[y0:y0 + inset, x0:x0 + inset]
        axes[1, j].imshow(z, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        axes[1, j].set_title("zoom", fontsize=8)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"held-out stack at {example.photons:g} mean photons per pixel per raw frame")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
