"""A line-pair resolution chart: the direct measurement of what a reconstruction resolves.

The chart (:func:`line_pair_chart`) is a grid of cells on the simulator's fine grid; each cell
holds one pair of thin parallel lines (length ``line_um``) at one of the spacings, in a random
orientation, so every spacing appears ``pairs_per_spacing`` times in different directions
(SIM resolution depends on direction relative to the pattern). The chart is imaged by the
normal simulator (:func:`srredsim.simulate.simulate_stack` with ``structure=``), so the raw stack
has the same OTF, pattern and noise model as any other.

Measurement (:func:`dip_visibility`): for each pair, the image is sampled (bilinear) along
profiles perpendicular to the lines over their middle half and averaged; the cell's background
(its 10th percentile) is subtracted. With ``P`` the smaller of the two line maxima (searched
within ±d/4 of each line) and ``D`` the minimum within ±d/4 of the midpoint, the visibility is
the Michelson contrast ``V = (P − D) / (P + D)``, 0 when there is no dip. A spacing is *resolved*
when the mean visibility of its pairs is at least :data:`RESOLVED_VISIBILITY` = 0.15 -- the
contrast of a dip to 74 % of the peaks, about Rayleigh's criterion (a 26.5 % dip). The *finest
resolved spacing* is the smallest spacing from which all larger spacings are resolved too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from srredsim.errors import SrredsimError

DEFAULT_SPACINGS_NM = (60, 80, 100, 120, 140, 160, 180, 200, 240, 300)
RESOLVED_VISIBILITY = 0.15


@dataclass
class LinePair:
    center_um: tuple[float, float]  # (y, x) in the sample plane
    angle_rad: float  # direction of the lines (from +x towards +y)
    spacing_nm: float
    cell_um: tuple[float, float, float, float]  # y0, x0, y1, x1 of the cell


@dataclass
class Chart:
    structure: np.ndarray  # fine-grid (m, m) splat image, before the label blur
    fine_pixel_um: float
    pairs: list[LinePair] = field(default_factory=list)


def line_pair_chart(size: int, raw_pixel_um: float, spacings_nm=DEFAULT_SPACINGS_NM,
                    pairs_per_spacing: int | None = None, line_um: float = 1.2, seed: int = 0) -> Chart:
    """A chart for a raw frame of ``size`` pixels; cells of about 2 µm, one pair each.

    Spacings are assigned to cells in random order, every spacing equally often
    (``pairs_per_spacing`` defaults to as many as the field holds).
    """
    from srredsim.simulate import _splat

    rng = np.random.default_rng(seed)
    m = 2 * size
    fpx = raw_pixel_um / 2
    field_um = m * fpx
    cells_per_side = max(1, int(field_um // 2.0))
    cell = field_um / cells_per_side
    n_cells = cells_per_side ** 2
    per = pairs_per_spacing or max(1, n_cells // len(spacings_nm))
    if per * len(spacings_nm) > n_cells:
        raise SrredsimError(f"a {size}-pixel field holds {n_cells} cells, not {per} x {len(spacings_nm)} pairs")
    if line_um > 0.8 * cell:
        raise SrredsimError(f"lines of {line_um} µm do not fit cells of {cell:.2f} µm")
    assign = np.repeat(np.asarray(spacings_nm, float), per)
    order = rng.permutation(n_cells)[: assign.size]
    ys, xs, ws = [], [], []
    pairs = []
    step = 0.25 * fpx  # splat points every quarter fine pixel along the line
    t = np.arange(-line_um / 2, line_um / 2 + 1e-9, step)
    for spacing, idx in zip(assign, order):
        r, c = divmod(int(idx), cells_per_side)
        cy, cx = (r + 0.5) * cell, (c + 0.5) * cell
        ang = float(rng.uniform(0, math.pi))
        uy, ux = math.sin(ang), math.cos(ang)  # along the lines
        ny, nx = ux, -uy  # across
        for side in (-0.5, 0.5):
            off = side * spacing * 1e-3
            ys.append((cy + off * ny + t * uy) / fpx)
            xs.append((cx + off * nx + t * ux) / fpx)
            ws.append(np.full(t.size, step / fpx, np.float32))
        pairs.append(LinePair((cy, cx), ang, float(spacing), (r * cell, c * cell, (r + 1) * cell, (c + 1) * cell)))
    img = _splat(m, np.concatenate(ys), np.concatenate(xs), np.concatenate(ws))
    return Chart(img, fpx, pairs)


def pair_profile(image: np.ndarray, pair: LinePair, pixel_um: float, line_um: float = 1.2,
                 step_nm: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean profile across ``pair`` (distance in nm from the midpoint, background-subtracted)."""
    half = 1.5 * pair.spacing_nm
    d = np.arange(-half, half + 1e-9, step_nm)
    along = np.linspace(-line_um / 4, line_um / 4, 25)
    uy, ux = math.sin(pair.angle_rad), math.cos(pair.angle_rad)
    ny, nx = ux, -uy
    cy, cx = pair.center_um
    py = (cy + along[:, None] * uy + d[None, :] * 1e-3 * ny) / pixel_um  # pixel i sits at i * pixel_um
    px = (cx + along[:, None] * ux + d[None, :] * 1e-3 * nx) / pixel_um
    vals = ndimage.map_coordinates(image.astype(np.float64), [py.ravel(), px.ravel()], order=1, mode="wrap")
    y0, x0, y1, x1 = (int(round(v / pixel_um)) for v in pair.cell_um)
    background = float(np.percentile(image[y0:y1, x0:x1], 10))
    return d, vals.reshape(py.shape).mean(axis=0) - background


def dip_visibility(image: np.ndarray, pair: LinePair, pixel_um: float, line_um: float = 1.2) -> float:
    """Michelson contrast of the dip between the two lines (0 when there is none)."""
    d, prof = pair_profile(image, pair, pixel_um, line_um)
    s = pair.spacing_nm
    q = s / 4
    left = prof[(d >= -s / 2 - q) & (d <= -s / 2 + q)].max()
    right = prof[(d >= s / 2 - q) & (d <= s / 2 + q)].max()
    dip = prof[np.abs(d) <= q].min()
    peak = min(left, right)
    if peak <= 0 or peak + dip <= 0:
        return 0.0
    return float(max(0.0, (peak - dip) / (peak + max(dip, 0.0))))


@dataclass
class ChartResult:
    visibility: dict[float, float]  # spacing (nm) -> mean visibility
    finest_resolved_nm: float | None  # None: not even the largest spacing is resolved

    def resolved(self, spacing_nm: float) -> bool:
        return self.visibility.get(float(spacing_nm), 0.0) >= RESOLVED_VISIBILITY


def measure_chart(image: np.ndarray, chart: Chart, line_um: float = 1.2) -> ChartResult:
    """Mean dip visibility per spacing and the finest resolved spacing of an image on the
    chart's fine grid (the 2x grid of a reconstruction)."""
    img = np.asarray(image, dtype=np.float64)
    while img.ndim > 2:
        img = img[0]
    if img.shape != chart.structure.shape:
        raise SrredsimError(f"image {img.shape} is not on the chart's grid {chart.structure.shape}")
    per: dict[float, list[float]] = {}
    for pair in chart.pairs:
        per.setdefault(pair.spacing_nm, []).append(dip_visibility(img, pair, chart.fine_pixel_um, line_um))
    vis = {s: float(np.mean(v)) for s, v in sorted(per.items())}
    finest = None
    for s in sorted(vis, reverse=True):
        if vis[s] >= RESOLVED_VISIBILITY:
            finest = s
        else:
            break
    return ChartResult(vis, finest)
