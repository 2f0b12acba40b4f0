"""Checks that catch wrong data before a reconstruction or a prediction is trusted.

``srredsim predict`` and ``srredsim reconstruct`` run :func:`check_stack` on every raw stack
first (``predict`` through :func:`first_look_check`: a central 256² first, the full check only
when that finds a pattern problem). It estimates the illumination pattern of every angle with the
classical estimator (:mod:`srredsim.classical`, ~0.4 s per 512² stack, as much again when the
order looks suspicious) and returns one-line findings:

* ``frame-order`` -- the stack looks phase-major (or angle-major when ``--order phase-major``
  was given): estimated under the other order, the pattern is several times clearer (median
  modulation × how regularly its phase steps by ``360°/P`` from frame to frame). The finding
  names the order and the flag that fixes it (``--order``).
* ``phase-steps`` -- within an angle, the pattern phase does not step by ``360°/P`` per frame:
  the phases per angle (``--phases``) or the layout are probably wrong.
* ``pattern`` -- no pattern was found (the reconstruction would fail or fall back to widefield).
* ``undersampled`` -- the pixel lies slightly above ``λ/(4 NA)`` (gross undersampling is
  refused by :func:`srredsim.optics.check_sampling`).
* ``k-range``, ``modulation``, ``layout``, ``photons`` -- given a model's
  :class:`~srredsim.config.TrainingRange` (and its optics): the data lie outside what the model
  was trained on (pattern ``|k|`` relative to the cutoff, modulation, angles × phases, light).

Findings are warnings (``level="warning"``) or notes (``"note"``: information such as which
angles the shared-pattern search placed); ``strict`` turns warnings into an error
(:meth:`DataCheck.enforce`). The check also returns what it measured (:class:`Measurement`:
pattern per angle, background, photon level), which ``srredsim adapt`` uses to simulate matching
training data, and the estimated parameters, which a reconstruction can reuse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srredsim.config import OpticsConfig, TrainingRange
from srredsim.errors import SrredsimError
from srredsim.frameorder import ORDERS, to_angle_major

ORDER_RATIO = 3.0  # the other order must explain the pattern this many times better (seen: 6-1600x)
PHASE_STEP_TOLERANCE = 0.25  # measured phase step within ±25 % of 360°/P (per highest band)
STEP_COHERENCE = 0.7  # an angle's steps must agree with each other this well to be judged
MIXED_SCORE = 0.15  # an order score below this (right layouts: >= 0.26) ...
MIXED_EVENNESS = 0.55  # ... with the pattern this uneven over an angle's frames: angles are mixed
RANGE_SLACK = 0.02  # |k|/cutoff tolerance beyond the trained span


@dataclass
class Finding:
    """One thing the check noticed, said in one line."""

    code: str
    message: str
    level: str = "warning"  # "warning" (an error under strict) or "note"


@dataclass
class NoiseEstimate:
    """Camera and light of a stack, from its own noise (no dark frames, no ground truth)."""

    gain: float  # ADU per detected photon
    offset: float  # ADU of no light (camera offset)
    photons: float  # mean detected photons per camera pixel per raw frame
    background_fraction: float  # the stack's floor (0.5th percentile of the mean frame) above the
    # offset, as a fraction of its mean above the offset: out-of-focus light and background


@dataclass
class Measurement:
    """What the stack shows, estimated without ground truth."""

    k_fraction: list[float]  # |k| of every angle's highest band / widefield cutoff
    angle_deg: list[float]  # direction of every angle's highest band, degrees (full circle)
    modulation: list[float]  # highest band's modulation per angle
    phase_step_deg: list[float | None]  # measured phase step per frame, per angle
    background: float  # raw units (camera offset + background light), 0.5th percentile of the mean frame
    noise: NoiseEstimate | None  # gain, offset, photons (None: not measurable)
    order_scores: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def photons(self) -> float | None:
        return self.noise.photons if self.noise else None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass
class DataCheck:
    """Findings of :func:`check_stack` on one stack."""

    name: str
    optics: OpticsConfig
    order: str
    findings: list[Finding]
    measurement: Measurement | None
    params: Any = None  # srredsim.classical.SimParams under the given order, or None

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def lines(self, notes: bool = True) -> list[str]:
        return [f"{self.name}: {'warning' if f.level == 'warning' else 'note'}: {f.message}"
                for f in self.findings if notes or f.level == "warning"]

    def enforce(self, strict: bool) -> None:
        """Under ``strict`` any warning is an error (one line naming all of them)."""
        if strict and self.warnings:
            raise SrredsimError(f"{self.name}: " + "; ".join(f.message for f in self.warnings)
                                + " (--strict turns these warnings into errors)")


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------
ASSUMED_READ_NOISE_E2 = 2.5  # read noise² (electrons²) assumed when placing the offset (≈1.6 e RMS)


def estimate_noise(raw: np.ndarray, optics: OpticsConfig, block: int = 16) -> NoiseEstimate | None:
    """Photon transfer from the stack itself: the noise of every 16² block (the frame's spectrum
    outside the OTF support, where only noise lives, scaled to the whole band) against the block's
    mean. Shot noise behind a camera of gain ``g`` gives ``variance = g·(mean − offset) + g²r²``:
    the slope is the gain (within ~5 % on simulated stacks), the intercept places the offset
    (``r²`` assumed: :data:`ASSUMED_READ_NOISE_E2`, capped by the stack's darkest level), and
    ``photons = (mean − offset) / g`` (within ~15 % from 20 photons up; low light reads high by
    about the read noise² in photons). ``None`` when the OTF fills the spectrum or the noise does
    not grow with the signal."""
    from srredsim.classical import ops
    from srredsim.optics import cutoff_cycles_per_um

    data = np.asarray(raw, np.float32)
    _, h, w = data.shape
    cut = cutoff_cycles_per_um(optics) * optics.pixel_size_um  # cycles per pixel
    fy = np.fft.fftfreq(h)[:, None]
    outside = np.sqrt(fy ** 2 + np.fft.rfftfreq(w)[None, :] ** 2) > 1.1 * cut
    frac = float(np.mean(np.sqrt(fy ** 2 + np.fft.fftfreq(w)[None, :] ** 2) > 1.1 * cut))
    border = 8
    hh, ww = (h - 2 * border) // block * block, (w - 2 * border) // block * block
    if frac < 0.02 or hh < block or ww < block:
        return None
    means, variances = [], []
    for frame in data:
        noise = ops.irfft2(ops.rfft2(frame) * outside, (h, w))
        a = frame[border:border + hh, border:border + ww].reshape(hh // block, block, ww // block, block)
        b = noise[border:border + hh, border:border + ww].reshape(hh // block, block, ww // block, block)
        means.append(a.mean(axis=(1, 3)).ravel())
        variances.append((b ** 2).mean(axis=(1, 3)).ravel() / frac)
    m, v = np.concatenate(means), np.concatenate(variances)
    edges = np.quantile(m, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, 9)
    bins = [i for i in range(10) if np.any(idx == i)]
    bm = np.array([np.median(m[idx == i]) for i in bins])
    bv = np.array([np.median(v[idx == i]) for i in bins])
    if len(bins) < 3 or np.ptp(bm) <= 0:
        return None
    gain, intercept = np.polyfit(bm, bv, 1)
    if not gain > 0:
        return None
    floor = float(np.percentile(data.mean(axis=0), 0.5))
    offset = min(floor, -intercept / gain + gain * ASSUMED_READ_NOISE_E2)
    mean = float(data.mean())
    if mean <= offset:
        return None
    return NoiseEstimate(gain=float(gain), offset=float(offset), photons=(mean - offset) / float(gain),
                         background_fraction=max(0.0, (floor - offset) / (mean - offset)))


def _rhythm(coeffs: np.ndarray, step_rad: float) -> tuple[float, list[float | None]]:
    """How the pattern phase steps from frame to frame, per angle: ``z_p = c_{p+1} c_p*``.
    Returns the mean over angles of ``Re Σ z e^{-i·step} / Σ|z|`` floored at 0 (1: every step is
    the expected one) and each angle's measured step in degrees (None where its steps disagree
    with each other: ``|Σ z| / Σ|z|`` below :data:`STEP_COHERENCE`, noise)."""
    z = coeffs[:, 1:] * np.conj(coeffs[:, :-1])
    total = np.maximum(np.sum(np.abs(z), axis=1), 1e-30)
    rhythm = np.real(np.sum(z * np.exp(-1j * step_rad), axis=1)) / total
    coherent = np.abs(np.sum(z, axis=1)) / total >= STEP_COHERENCE
    steps = [float(math.degrees(np.angle(np.sum(row)))) if np.any(row) and ok else None
             for row, ok in zip(z, coherent)]
    return float(np.mean(np.maximum(rhythm, 0.0))), steps


def _order_score(data: np.ndarray, optics: OpticsConfig) -> tuple[float, Any, tuple[list, float]]:
    """How well one frame order explains the stack: the median modulation times how consistently
    the pattern phase steps by the expected ``360°/P`` from frame to frame (the rhythm of
    :func:`_rhythm`, from the frames' correlations with band 0). In the right order this is
    ~0.5-0.9; read in the wrong order (phase-major as angle-major, or the reverse) the modulation
    drops to about a third and the steps lose their rhythm: 6-1600x lower on simulated 128²-256²
    stacks at 6-200 photons and on both real stacks. 0 when no pattern is found. Also returns
    each angle's measured phase step and the evenness of the pattern over each angle's frames
    (median of min/max coefficient magnitude: 0.5-0.96 in right layouts, 0.03-0.5 when angles
    are mixed)."""
    from srredsim.classical import ReconOptions, estimate_parameters
    from srredsim.classical.core import _AngleData, frame_coefficients

    P = optics.phases
    angles = [_AngleData(data[a * P:(a + 1) * P], P, optics.beams) for a in range(optics.angles)]
    try:
        params = estimate_parameters(data, optics, ReconOptions(), _angles=angles)
    except SrredsimError:
        return 0.0, None, ([], 0.0)
    coeffs = frame_coefficients(data, optics, params, _angles=angles)
    rhythm, steps = _rhythm(coeffs, 2 * np.pi * (optics.beams - 1) / P)
    mod = float(np.median([ap.modulations[-1] for ap in params.angles]))
    amp = np.abs(coeffs)
    evenness = float(np.median(amp.min(axis=1) / np.maximum(amp.max(axis=1), 1e-30)))
    return min(mod, 1.0) * rhythm, params, (steps, evenness)


def _preprocessed(raw: np.ndarray, optics: OpticsConfig, order: str) -> tuple[np.ndarray, float]:
    from srredsim.classical import ReconOptions, preprocess, validate_stack

    stack = to_angle_major(raw, optics.angles, optics.phases, order)
    return preprocess(validate_stack(stack, optics), ReconOptions())


# ---------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------
MIN_CHECK_SIZE = 32  # the classical estimator's smallest frame
CHECK_SIZE = 512  # the pattern is the same everywhere: a central 512² square is enough
FIRST_LOOK_SIZE = 256  # predict's first look (first_look_check): a quarter of the work of 512²
# the findings a larger square could change (the others follow from the optics and layout alone)
PATTERN_FINDINGS = ("frame-order", "phase-steps", "pattern", "k-range", "modulation")


def central_square(raw: np.ndarray, limit: int = CHECK_SIZE) -> np.ndarray:
    """The central even square of at most ``limit`` pixels of a ``(frames, H, W)`` stack (the
    estimator needs square frames; the network does not, so any stack can be checked)."""
    if raw.ndim != 3:
        return raw
    h, w = raw.shape[1:]
    n = min(h, w, limit) // 2 * 2
    if (n, n) == (h, w) or n < 2:
        return raw
    y0, x0 = (h - n) // 2, (w - n) // 2
    return raw[:, y0:y0 + n, x0:x0 + n]


def check_stack(raw: np.ndarray, optics: OpticsConfig, order: str = "angle-major",
                training_range: TrainingRange | None = None, model_optics: OpticsConfig | None = None,
                name: str = "stack", check_order: bool = True, refuse_undersampling: bool = True,
                size: int = CHECK_SIZE) -> DataCheck:
    """Check one raw stack (see the module docstring); ``optics`` are the data's (the user's
    flags, or the model's when none were given). ``training_range``/``model_optics`` describe
    the model that will predict (None for a classical reconstruction). Frames that are not
    square, or larger than ``size`` (512²), are checked on their central square of at most
    ``size``²; frames under 32² are not checked (a note says so). Gross undersampling is refused,
    as by the classical reconstruction, unless ``refuse_undersampling=False`` (prediction: a
    warning)."""
    from srredsim.classical.core import validate_stack
    from srredsim.optics import cutoff_fft_px, sampling_warning

    if order not in ORDERS:
        raise SrredsimError(f"unknown frame order {order!r}; choose from {', '.join(ORDERS)}")
    raw = central_square(np.asarray(raw), size)
    findings: list[Finding] = []
    if raw.ndim == 3 and min(raw.shape[1:]) < MIN_CHECK_SIZE:
        findings.append(Finding("pattern", f"frames smaller than {MIN_CHECK_SIZE} pixels: pattern not checked",
                                level="note"))
        return DataCheck(name, optics, order, findings, None, None)
    try:
        validate_stack(raw, optics, name)  # the classical input rules; refuses gross undersampling
    except SrredsimError as exc:
        if refuse_undersampling or "undersamples" not in str(exc):
            raise
        findings.append(Finding("undersampled", str(exc).removeprefix("optics: ") + "; pattern not checked"))
        return DataCheck(name, optics, order, findings, None, None)
    warning = sampling_warning(optics)
    if warning:
        findings.append(Finding("undersampled", warning))
    if model_optics is not None and (model_optics.angles, model_optics.phases, model_optics.beams) != (
            optics.angles, optics.phases, optics.beams):
        findings.append(Finding("layout", f"the data are {optics.angles}x{optics.phases} ({optics.beams}-beam), "
                                          f"the model was trained on {model_optics.angles}x{model_optics.phases} "
                                          f"({model_optics.beams}-beam)"))

    data, background = _preprocessed(raw, optics, order)
    score, params, (steps, evenness) = _order_score(data, optics)
    scores = {order: score}
    # scores are at most 1: a declared order scoring above 1/ORDER_RATIO cannot be beaten
    if check_order and optics.angles > 1 and score * ORDER_RATIO <= 1.0:
        other = ORDERS[1 - ORDERS.index(order)]
        other_data, _ = _preprocessed(raw, optics, other)
        scores[other], _, (_, other_evenness) = _order_score(other_data, optics)
        ratio = scores[other] / max(score, 1e-6)
        slowest = "phases slowest" if other == "phase-major" else "phases fastest"
        if ratio > ORDER_RATIO and score <= 0:
            findings.append(Finding("frame-order", f"the frames look {other} ({slowest}): the pattern fits only "
                                                   f"that order; pass --order {other}"))
        elif ratio > ORDER_RATIO and scores[other] >= MIXED_SCORE and other_evenness >= MIXED_EVENNESS:
            findings.append(Finding("frame-order", f"the frames look {other} ({slowest}): the pattern is "
                                                   f"{ratio:.0f}x clearer in that order; pass --order {other}"))
        # better but not right either (a wrong layout, or a couple of photons on a small field, where
        # even a right stack can score 5x lower than its wrong order): left to the phase-step test
    if params is None:
        if not any(f.code == "frame-order" for f in findings):
            findings.append(Finding("pattern", "no SIM pattern found (check --na/--wavelength/--pixel-size, "
                                               "--angles/--phases and --order)"))
        return DataCheck(name, optics, order, findings, None, None)

    n = data.shape[-1]
    kc_px = cutoff_fft_px(optics, n)
    kfrac = [math.hypot(*ap.k_fft_px) / kc_px for ap in params.angles]
    dirs = [math.degrees(math.atan2(*ap.k_fft_px)) for ap in params.angles]
    mods = [ap.modulations[-1] for ap in params.angles]
    top = optics.beams - 1
    expected = (360.0 * top / optics.phases + 180.0) % 360.0 - 180.0
    measured = [s for s in steps if s is not None]
    if not any(f.code == "frame-order" for f in findings):
        step = float(np.median(measured)) if measured else expected
        if abs((step - expected + 180.0) % 360.0 - 180.0) > PHASE_STEP_TOLERANCE * abs(expected):
            likely = 360.0 * top / abs(step) if abs(step) > 1 else float("inf")
            guess = (f" (steps of {abs(step):.0f}° fit {round(likely)} phases)"
                     if 3 <= likely <= 16 and abs(likely - round(likely)) < 0.15 else "")
            findings.append(Finding(
                "phase-steps", f"the pattern phase steps by {step:+.0f}° per frame, expected {expected:+.0f}° "
                               f"for {optics.phases} phases{guess}: check --angles/--phases and --order"))
        elif score < MIXED_SCORE and evenness < MIXED_EVENNESS:
            findings.append(Finding(
                "phase-steps", f"the frames of each angle do not show one pattern stepping by {expected:+.0f}° "
                               f"(pattern strength varies {1 / max(evenness, 1e-3):.0f}x between them): the stack is "
                               f"probably not {optics.angles} angles x {optics.phases} phases in this order; check "
                               "--angles/--phases and --order"))
    if not any(f.code in ("frame-order", "phase-steps") for f in findings):  # notes of a wrong layout mislead
        findings.extend(Finding("pattern", note, level="note") for note in params.notes)
    meas = Measurement(k_fraction=kfrac, angle_deg=dirs, modulation=mods, phase_step_deg=steps,
                       background=float(background), noise=estimate_noise(raw, optics), order_scores=scores,
                       notes=list(params.notes))
    if training_range is not None:
        findings += range_findings(meas, training_range)
    return DataCheck(name, optics, order, findings, meas, params)


def first_look_check(raw: np.ndarray, optics: OpticsConfig, **kw) -> DataCheck:
    """:func:`check_stack` for prediction, where only the findings count: on the central
    :data:`FIRST_LOOK_SIZE`² (256²) first -- a quarter of the work of 512², ~0.15 s instead of
    ~0.45 s on a 512² stack here -- and once more on the central 512² when that look raises a
    finding about the pattern (:data:`PATTERN_FINDINGS`), finds no pattern, or was unsure enough
    of the frame order to try the other one. So every pattern warning a user sees comes from the
    full check, and a right stack costs the first look only.

    Why a smaller look suffices for a right stack: the pattern is the same everywhere, and on
    held-out 512² stacks at 1-20 photons per pixel, read in the right and in the wrong frame order
    (16 cases), the 256² look gave the same findings as the 512² check in every case (median
    ``|k|`` within 0.02 of the cutoff; the photon estimate within 17 %). The full check stays the
    rule for ``reconstruct`` (which reuses its parameters) and ``adapt`` (which simulates from its
    measurement). ``kw``: as for :func:`check_stack` (not ``size``)."""
    frames = np.asarray(raw)
    look = check_stack(frames, optics, size=FIRST_LOOK_SIZE, **kw)
    larger = frames.ndim == 3 and min(frames.shape[1:]) // 2 * 2 > FIRST_LOOK_SIZE
    unsure = look.measurement is not None and len(look.measurement.order_scores) > 1  # both orders tried
    if larger and (look.params is None or unsure or any(f.code in PATTERN_FINDINGS for f in look.warnings)):
        return check_stack(frames, optics, **kw)
    return look


def range_findings(meas: Measurement, rng: TrainingRange) -> list[Finding]:
    """Warnings for a stack outside a model's training range (pattern |k|, modulation, light)."""
    out: list[Finding] = []
    if rng.k_fraction is not None:
        lo, hi = rng.k_fraction
        k = float(np.median(meas.k_fraction))
        if not lo - RANGE_SLACK <= k <= hi + RANGE_SLACK:
            out.append(Finding("k-range", f"pattern |k| is {k:.2f} of the OTF cutoff, outside the model's "
                                          f"training range {lo:.2f}-{hi:.2f} (srredsim adapt makes a model for it)"))
    if rng.modulation is not None:
        lo, hi = rng.modulation
        m = float(np.median(meas.modulation))
        if m < 0.8 * lo:
            out.append(Finding("modulation", f"pattern modulation {m:.2f} is below the model's training range "
                                             f"{lo:.2f}-{hi:.2f}: expect little beyond widefield resolution"))
    if rng.photons is not None and meas.photons is not None:
        lo, hi = rng.photons
        if not 0.5 * lo <= meas.photons <= 2 * hi:
            out.append(Finding("photons", f"about {meas.photons:.3g} photons per pixel per frame, outside the "
                                          f"model's training range {lo:g}-{hi:g}", level="note"))
    return out
