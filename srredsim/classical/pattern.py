"""Coarse search for the SIM pattern peaks of all angles together.

The classical estimator (:func:`srredsim.classical.estimate_parameters`) first looks for the
pattern of every angle on its own: the maximum of the cross-correlation of band 0 with the
highest band in an annulus around the cutoff. On low-signal data (e.g. the real microtubule stack
in ``../shared/data/real``, where the pattern peaks are not visible in the raw spectra) that
maximum can be a structure peak: one angle gave the true 181 nm period, the two others a 330 nm
one. The illumination of a 2D-SIM system is not free, though: its A angles share one period and
lie ``180°/A`` apart (60° for three), up to small errors. :func:`find_peaks` uses that:

1. every angle's independent peak is kept when all of them agree with each other (one period
   within 3 %, directions ``180°/A`` apart within 4°) and are clear (correlation contrast ≥
   ``min_contrast``) -- nothing changes for good data;
2. otherwise the correlation maps (as z-scores) are resampled on a polar grid, widened by
   ±1.5 % in radius and ±1.5° in direction (the tolerance of real systems), folded over the sign
   of ``k``, and summed over the angles for every common radius, first direction and sense of
   rotation (angle ``a`` at ``θ₀ ± a·180°/A``); the best sum fixes the common pattern, and each
   angle's peak is then the maximum of its own map in a small window (±1.5 % radius, ±2°) around
   its predicted place.

The pattern found this way counts when one angle's peak at the shared pattern is clear on its own
(contrast ≥ ``min_contrast``: it anchors the others) or the joint peak stands out of the summed
map (robust z-score ≥ :data:`JOINT_MIN_Z`); otherwise it is not found. The evidence of the weak angles adds to that of the strong ones,
so an angle whose own peak is buried in noise (z ≈ 3) is still found at the right place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from srredsim.classical.ops import bilinear_wrap, maximum_filter

RADIUS_TOLERANCE = 0.03  # independent peaks agree when their periods are within 3 %
ANGLE_TOLERANCE_DEG = 4.0  # ... and their directions within 4° of a multiple of 180°/A
JOINT_RADIUS_WIDEN = 0.015  # the joint search tolerates ±1.5 % in |k| between angles
JOINT_ANGLE_WIDEN_DEG = 1.5  # ... and ±1.5° in direction
KEEP_RADIUS_SPREAD = 0.25  # a clear own peak in the predicted direction is kept within ±25 % in |k|
LOCAL_ANGLE_DEG = 2.0  # each angle's own peak is sought within ±2° of its predicted direction
JOINT_MIN_Z = 7.0  # robust z-score of a joint peak no single angle shows clearly (noise: 3.8-5.6)
POLAR_STEP_PX = 0.5
POLAR_STEP_DEG = 0.25


@dataclass
class CoarsePeaks:
    """Integer peak positions ``(ky, kx)`` (signed FFT pixels) of every angle's highest band."""

    peaks: list[tuple[int, int]]
    contrasts: list[float]
    joint: bool = False  # True when the shared-period search decided
    joint_z: float | None = None
    notes: list[str] = field(default_factory=list)
    shared: list[bool] = field(default_factory=list)  # per angle: placed by the shared pattern
    # per angle: the shared-pattern peak where the angle kept a different, plausible own peak
    alternatives: list[tuple[int, int] | None] = field(default_factory=list)


def _signed(i: int, n: int) -> int:
    return i - n if i >= n // 2 else i


def independent_peak(corr: np.ndarray, annulus: np.ndarray, fy: np.ndarray, fx: np.ndarray
                     ) -> tuple[tuple[int, int], float]:
    """The maximum of one angle's correlation map in the annulus and its contrast (the peak over
    the mean absolute value of the rest of the annulus)."""
    n = corr.shape[0]
    masked = np.where(annulus, corr, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(masked)), corr.shape)
    coarse = (_signed(int(iy), n), _signed(int(ix), n))
    return coarse, _contrast(corr, annulus, fy, fx, coarse)


def _contrast(corr, annulus, fy, fx, peak) -> float:
    n = corr.shape[0]
    near = (fy - peak[0]) ** 2 + (fx - peak[1]) ** 2 <= 9
    rest = np.abs(corr[annulus & ~near])
    background = float(np.mean(rest)) if rest.size else 0.0
    value = float(corr[peak[0] % n, peak[1] % n])
    return value / background if background > 0 else 0.0


def _fold(deg: float, period: float) -> float:
    """Distance of ``deg`` to the nearest multiple of ``period`` (degrees)."""
    r = deg % period
    return min(r, period - r)


def consistent(peaks: list[tuple[int, int]], angles: int) -> bool:
    """Do independent peaks describe one 2D-SIM illumination (shared period, ``180°/A`` apart)?"""
    if len(peaks) < 2:
        return True
    radii = np.array([math.hypot(*p) for p in peaks])
    mid = float(np.median(radii))
    if mid <= 0:
        return False
    tol = max(RADIUS_TOLERANCE, 1.5 / mid)  # integer peaks: a pixel is several % of a small radius
    if np.any(np.abs(radii / mid - 1) > tol):
        return False
    step = 180.0 / angles
    dirs = [math.degrees(math.atan2(p[0], p[1])) % 180.0 for p in peaks]
    for i in range(len(dirs)):
        for j in range(i + 1, len(dirs)):
            d = (dirs[j] - dirs[i]) % 180.0
            if _fold(d, step) > ANGLE_TOLERANCE_DEG or _fold(d, 180.0) < step / 2:
                return False  # not a multiple of the step, or two angles in one direction
    return True


def _polar(z: np.ndarray, radii: np.ndarray, thetas_deg: np.ndarray) -> np.ndarray:
    """Maps ``(..., n, n)`` (periodic, FFT layout) resampled onto ``(..., radii, thetas)``."""
    n = z.shape[-1]
    t = np.radians(thetas_deg)
    yy = (radii[:, None] * np.sin(t)[None, :]) % n
    xx = (radii[:, None] * np.cos(t)[None, :]) % n
    return bilinear_wrap(z, yy, xx)


def joint_search(zmaps: list[np.ndarray], r_lo: float, r_hi: float) -> tuple[float, float, int, float]:
    """The common ``|k|`` (FFT px), first direction θ₀ (degrees, mod 180), sense of rotation (±1)
    and robust z-score of the best sum of the angles' z-maps."""
    angles = len(zmaps)
    step_deg = 180.0 / angles
    per_step = max(1, round(step_deg / POLAR_STEP_DEG))
    dtheta = step_deg / per_step
    thetas = np.arange(0.0, 360.0, dtheta)
    half = thetas.size // 2
    radii = np.arange(r_lo, r_hi + 1e-9, POLAR_STEP_PX)
    r_mid = 0.5 * (r_lo + r_hi)
    size_r = 2 * max(1, math.ceil(JOINT_RADIUS_WIDEN * r_mid / POLAR_STEP_PX)) + 1
    size_t = 2 * max(1, round(JOINT_ANGLE_WIDEN_DEG / dtheta)) + 1
    folded = []
    for p in _polar(np.stack(zmaps), radii, thetas):
        p = maximum_filter(p, size=(size_r, size_t), mode=("nearest", "wrap"))
        folded.append(np.maximum(p[:, :half], p[:, half:]))  # k and -k: the same pattern
    best = None
    sums = []
    for sense in (1, -1):
        total = np.zeros_like(folded[0])
        for a, q in enumerate(folded):
            total += np.roll(q, -sense * a * per_step, axis=1)  # angle a at θ₀ + sense·a·step
        sums.append(total)
        i = int(np.argmax(total))
        ir, it = np.unravel_index(i, total.shape)
        if best is None or total[ir, it] > best[0]:
            best = (float(total[ir, it]), float(radii[ir]), float(thetas[it]), sense)
    values = np.concatenate([s.ravel() for s in sums])
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * 1.4826
    z = (best[0] - med) / mad if mad > 0 else 0.0
    return best[1], best[2], best[3], z


def _local_peak(corr: np.ndarray, z: np.ndarray, fy: np.ndarray, fx: np.ndarray, radius: float,
                theta_deg: float) -> tuple[int, int]:
    """Maximum of one angle's map within ±1.5 % (≥ 1 px) of ``radius`` and ±2° of ``theta``
    (either sign of ``k``)."""
    n = corr.shape[0]
    r = np.sqrt(fy ** 2 + fx ** 2)
    dr = max(JOINT_RADIUS_WIDEN * radius, 1.0)
    ang = np.degrees(np.arctan2(fy, fx)) % 180.0
    dang = np.abs((ang - theta_deg + 90.0) % 180.0 - 90.0)
    window = (np.abs(r - radius) <= dr) & (dang <= max(LOCAL_ANGLE_DEG, math.degrees(1.0 / radius)))
    if not np.any(window):  # tiny images: the nearest pixel
        window = np.zeros_like(window)
        t = math.radians(theta_deg)
        window[round(radius * math.sin(t)) % n, round(radius * math.cos(t)) % n] = True
    masked = np.where(window, z, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(masked)), z.shape)
    return _signed(int(iy), n), _signed(int(ix), n)


def find_peaks(corrs: list[np.ndarray], annulus: np.ndarray, fy: np.ndarray, fx: np.ndarray,
               r_lo: float, r_hi: float, min_contrast: float, pixel_nm: float | None = None,
               shared: bool = True) -> CoarsePeaks:
    """Coarse pattern peaks of every angle (see the module docstring).

    ``corrs`` are the angles' background-subtracted correlation maps (unshifted FFT layout),
    ``annulus`` the search region, ``r_lo``/``r_hi`` its radii in FFT pixels. ``pixel_nm`` (the
    raw pixel size) only makes the notes speak in periods. ``shared=False`` keeps every angle's
    own peak (the estimator without this module, for comparison).
    """
    n = corrs[0].shape[0]
    found = [independent_peak(c, annulus, fy, fx) for c in corrs]
    peaks = [p for p, _ in found]
    contrasts = [c for _, c in found]
    if not shared or len(corrs) < 2 or (consistent(peaks, len(corrs)) and min(contrasts) >= min_contrast):
        return CoarsePeaks(peaks, contrasts, shared=[False] * len(peaks),
                           alternatives=[None] * len(peaks))

    zmaps = []
    for c in corrs:
        sd = float(np.std(c[annulus]))
        zmaps.append(c / sd if sd > 0 else np.zeros_like(c))
    radius, theta0, sense, z = joint_search(zmaps, r_lo, r_hi)
    step = 180.0 / len(corrs)
    out = CoarsePeaks([], [], joint=True, joint_z=z)

    def period(p):
        rad = math.hypot(*p)
        return f"{n * pixel_nm / rad:.0f} nm" if pixel_nm and rad else f"|k| {rad:.1f} px"

    for a, (corr, zm) in enumerate(zip(corrs, zmaps)):
        theta = (theta0 + sense * a * step) % 180.0
        own, own_contrast = peaks[a], contrasts[a]
        own_r = math.hypot(*own)
        own_dir = math.degrees(math.atan2(*own)) % 180.0
        peak = _local_peak(corr, zm, fy, fx, radius, theta)
        same = min(math.hypot(peak[0] - own[0], peak[1] - own[1]),
                   math.hypot(peak[0] + own[0], peak[1] + own[1])) <= 2
        plausible = (own_contrast >= min_contrast and _fold(own_dir - theta, 180.0) <= ANGLE_TOLERANCE_DEG
                     and abs(own_r / radius - 1) <= KEEP_RADIUS_SPREAD)
        if same or plausible:
            # the angle's own clear peak, in the predicted direction; when it differs from the
            # shared-pattern peak the caller compares both by their modulation
            out.peaks.append(own)
            out.contrasts.append(own_contrast)
            out.shared.append(False)
            out.alternatives.append(None if same else peak)
            continue
        out.peaks.append(peak)
        out.contrasts.append(_contrast(corr, annulus, fy, fx, peak))
        out.shared.append(True)
        out.alternatives.append(None)
        out.notes.append(
            f"angle {a + 1}: its strongest peak ({period(own)} at {own_dir:.1f}°) disagreed with the "
            f"other angles; used the shared pattern ({period(peak)} at "
            f"{math.degrees(math.atan2(*peak)) % 180:.1f}°, z {float(zm[peak[0] % n, peak[1] % n]):.1f})")
    return out
