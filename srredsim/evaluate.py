"""Score named images against a ground truth; write CSV/Markdown tables and a comparison figure.

The protocol (docs/physics.md, "Evaluation protocol") is :func:`srredsim.metrics.compare`
applied to every image; :func:`score_images` returns one row (a dict) per image, which the
``evaluate`` command, the demo and the benchmarks all print or save with :func:`write_table`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from srredsim.errors import SrredsimError, atomic_path
from srredsim.metrics import compare, upsample_fourier

COLUMNS = ["name", "psnr", "ssim", "nrmse", "frc_resolution_nm", "frc_cycles_per_um",
           "fwhm_nm", "beads", "shift_y", "shift_x"]


def score_images(truth: np.ndarray, images: Mapping[str, np.ndarray], pixel_size_um: float | None = None,
                 border: int = 32, beads: bool = False, register: bool = True) -> list[dict[str, Any]]:
    """Score every image of ``images`` (name → 2-D array, on the truth's grid or half of it)
    against ``truth``; ``pixel_size_um`` is the truth's pixel size (for FRC/FWHM in nm)."""
    if not images:
        raise SrredsimError("no images to evaluate")
    rows = []
    for name, img in images.items():
        try:
            row = compare(img, truth, border=border, pixel_size_um=pixel_size_um,
                          register_images=register, beads=beads)
        except SrredsimError as exc:
            raise SrredsimError(f"{name}: {exc}") from None
        rows.append({"name": name, **row})
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    cols = columns or [c for c in COLUMNS if any(r.get(c) is not None for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict[str, Any]], csv_path: str | os.PathLike | None = None,
                md_path: str | os.PathLike | None = None) -> None:
    """Write rows as CSV (all keys) and/or Markdown (the main columns), atomically."""
    if csv_path is not None:
        keys = [c for c in COLUMNS if any(c in r for r in rows)]
        keys += sorted({k for r in rows for k in r} - set(keys))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in keys})
        with atomic_path(csv_path) as tmp:
            tmp.write_text(buf.getvalue())
    if md_path is not None:
        with atomic_path(md_path) as tmp:
            tmp.write_text(markdown_table(rows))


def _power_spectrum(img: np.ndarray) -> np.ndarray:
    win = np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    spec = np.abs(np.fft.fftshift(np.fft.fft2((img - img.mean()) * win))) ** 2
    return np.log10(spec + spec.max() * 1e-9 + 1e-30)


def comparison_figure(truth: np.ndarray, images: Mapping[str, np.ndarray], path: str | os.PathLike,
                      pixel_size_um: float | None = None, title: str | None = None) -> Path:
    """Images (top row) and their power spectra (bottom row): the given images in order
    (e.g. widefield | classical | network), then the truth. PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(images.items()) + [("truth", truth)]
    cols = len(panels)
    fig, axes = plt.subplots(2, cols, figsize=(3.2 * cols, 6.6), squeeze=False)
    for j, (name, img) in enumerate(panels):
        a = np.asarray(img, dtype=np.float64)
        while a.ndim > 2:
            a = a[0]
        if a.shape != np.shape(truth) and a.shape[0] * 2 == np.shape(truth)[0]:
            a = upsample_fourier(a, np.shape(truth))
        lo, hi = np.percentile(a, [0.5, 99.8])
        axes[0, j].imshow(a, cmap="magma", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        axes[0, j].set_title(name)
        ps = _power_spectrum(a)
        vmax = ps.max()
        axes[1, j].imshow(ps, cmap="viridis", vmin=vmax - 7, vmax=vmax)
        axes[1, j].set_title(f"{name}: power spectrum", fontsize=8)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    if pixel_size_um:
        axes[0, 0].set_xlabel(f"pixel {pixel_size_um * 1000:.0f} nm")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path
