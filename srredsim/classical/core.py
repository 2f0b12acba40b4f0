"""fairSIM-equivalent 2-D SIM reconstruction (Gustafsson 2000; Müller et al. 2016).

Written from the published method (docs/architecture.md, section 7), not from fairSIM's code. Steps:

1. **Preprocess** every frame: subtract the background, clip at 0, equalise frame means
   (intensity fluctuation, bleaching), cosine-fade the borders.
2. **Band separation** per angle, in real space: ``c_b(x) = Σ_p M⁺[b, p] d_p(x)`` with ``M`` the
   ``P × (2B−1)`` matrix of columns ``1, ½e^{±i b φ_p}`` and nominal phases ``φ_p = 2πp/P``;
   ``M⁺`` is the inverse (``P = 2B−1``) or the pseudo-inverse (more phases than bands).
3. **Pattern vector**: cross-correlation of the OTF-weighted band 0 (low frequencies notched)
   with the highest band over all integer shifts (one FFT), peak search in an annulus of
   ``k_min … k_max`` times the cutoff, then sub-pixel refinement of the same correlation by
   matrix-multiply DFTs on ever finer grids (0.25, 0.05, 0.01 px steps).
4. **Phase and modulation** of every band from the complex correlation coefficient of band 0 and
   the band shifted by its vector, over the strip of the overlap where ``|f| ≈ |f + k|`` (so the
   OTF model's errors cancel), with band 0's noise power (measured outside the OTF support)
   subtracted from the denominator.
5. **Reconstruction** on the 2× grid: every band is weighted by ``m_b e^{−iφ_b} OTF*`` (optionally
   zero-order attenuated), zero-padded, moved to its place by a phase ramp in real space (the
   ``±b`` pair together as ``2 Re``), summed over bands and angles, and divided by the generalised
   Wiener denominator ``Σ |m_b OTF(f + k_b)|² + w²``; then apodised.

Everything runs on float32/complex64 with scipy.fft.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from srredsim.classical import ops
from srredsim.classical.params import AngleParams, ReconOptions, SimParams
from srredsim.classical.pattern import JOINT_MIN_Z, find_peaks
from srredsim.classical.pattern import _contrast as _peak_contrast
from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError
from srredsim.optics import (apodization, check_sampling, cutoff_fft_px, otf_profile,
                             sampling_warning)


@dataclass
class Reconstruction:
    """Result of :func:`reconstruct`: ``sr`` and ``widefield`` are float32 ``(2H, 2W)``."""

    sr: np.ndarray
    widefield: np.ndarray
    params: SimParams


# ---------------------------------------------------------------------------------------------
# input checks and preprocessing
# ---------------------------------------------------------------------------------------------
def validate_stack(raw: np.ndarray, optics: OpticsConfig, name: str = "raw stack") -> np.ndarray:
    """Check a raw stack against the optics; return it as float32 ``(A·P, n, n)``."""
    raw = np.asarray(raw)
    frames = optics.angles * optics.phases
    if raw.ndim != 3:
        raise SrredsimError(f"{name}: expected (frames, H, W), got shape {tuple(raw.shape)}")
    if raw.shape[0] != frames:
        raise SrredsimError(
            f"{name}: has {raw.shape[0]} frames, expected angles × phases = "
            f"{optics.angles} × {optics.phases} = {frames}")
    if optics.beams == 3 and optics.phases < 5:
        raise SrredsimError(f"{name}: 3-beam SIM needs at least 5 phases, got {optics.phases}")
    h, w = raw.shape[1:]
    if h != w:
        raise SrredsimError(f"{name}: frames must be square, got {h}×{w} (crop or pad them)")
    if h % 2:
        raise SrredsimError(f"{name}: frame size must be even, got {h}×{w}")
    if h < 32:
        raise SrredsimError(f"{name}: frames of {h}×{w} are too small (at least 32×32)")
    if raw.dtype.kind not in "uif":
        raise SrredsimError(f"{name}: unsupported pixel type {raw.dtype}")
    data = raw.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise SrredsimError(f"{name}: contains NaN/Inf values")
    if not np.any(data) or float(data.max()) == float(data.min()):
        raise SrredsimError(f"{name}: all frames are {'zero' if not np.any(data) else 'constant'}; "
                            "nothing to reconstruct")
    check_sampling(optics)
    return data


def _fade_window(n: int, fade: int) -> np.ndarray:
    w = np.ones(n, np.float32)
    fade = min(fade, n // 4)
    if fade > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)
        w[:fade] = ramp
        w[-fade:] = ramp[::-1]
    return w


def preprocess(data: np.ndarray, opts: ReconOptions) -> tuple[np.ndarray, float]:
    """Background subtraction, clipping, frame equalisation and border fade (in place)."""
    bg = opts.background
    if bg is None:
        bg = float(np.percentile(data.mean(axis=0), 0.5))
    data -= np.float32(bg)
    np.maximum(data, 0, out=data)
    if opts.normalize_frames:
        means = data.mean(axis=(1, 2), dtype=np.float64)
        if np.all(means > 0):
            data *= (means.mean() / means).astype(np.float32)[:, None, None]
    if opts.fade_px:
        w = _fade_window(data.shape[1], opts.fade_px)
        data *= w[None, :, None]
        data *= w[None, None, :]
    if not np.any(data):
        raise SrredsimError(f"nothing left after subtracting the background {bg:g}; "
                            "pass a smaller --background")
    return data, bg


def separation_matrix(phases: int, beams: int) -> np.ndarray:
    """Rows of the (pseudo-)inverse band-mixing matrix for bands 0, +1, …, +(B−1)."""
    phi = 2 * np.pi * np.arange(phases) / phases
    cols = [np.ones(phases, complex)]
    for b in range(1, beams):
        cols += [0.5 * np.exp(1j * b * phi), 0.5 * np.exp(-1j * b * phi)]
    m = np.stack(cols, axis=1)
    inv = np.linalg.pinv(m)
    rows = [0] + [2 * b - 1 for b in range(1, beams)]
    return inv[rows]


def separate_bands(frames: np.ndarray, phases: int, beams: int) -> list[np.ndarray]:
    """Real-space bands of one angle: band 0 (float32) and bands +1…+(B−1) (complex64)."""
    inv = separation_matrix(phases, beams)
    flat = frames.reshape(phases, -1)
    out = [(inv[0].real.astype(np.float32) @ flat).reshape(frames.shape[1:])]
    for b in range(1, beams):
        out.append((inv[b].astype(np.complex64) @ flat.astype(np.complex64, copy=False))
                   .reshape(frames.shape[1:]))
    return out


# ---------------------------------------------------------------------------------------------
# frequency helpers (FFT pixels)
# ---------------------------------------------------------------------------------------------
def _freqs(n: int, real: bool = False) -> tuple[np.ndarray, np.ndarray]:
    fy = (np.fft.fftfreq(n) * n).astype(np.float32)[:, None]
    fx = ((np.fft.rfftfreq(n) if real else np.fft.fftfreq(n)) * n).astype(np.float32)[None, :]
    return fy, fx


def _ramp(n: int, k: tuple[float, float], sign: float = -1.0) -> np.ndarray:
    """``exp(sign·2πi (ky·y + kx·x)/n)`` as a complex64 ``(n, n)`` array (outer product)."""
    idx = np.arange(n, dtype=np.float64)
    ry = np.exp(sign * 2j * np.pi * k[0] * idx / n).astype(np.complex64)
    rx = np.exp(sign * 2j * np.pi * k[1] * idx / n).astype(np.complex64)
    return ry[:, None] * rx[None, :]


def _otf_model(r_px: np.ndarray, kc_px: float, opts: ReconOptions, pixel_cyc: float
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Model OTF at radii ``r_px`` (FFT pixels) and the zero-order attenuation there (or None).

    The attenuation ``1 − strength·exp(−|f|²/(2σ²))`` is applied to the band data *and* to its
    OTF, so a band is weighted by ``OTF·att²`` and contributes ``(OTF·att)²`` to the Wiener
    denominator: low frequencies of each band (where out-of-focus light sits) are suppressed,
    and other bands fill them in where they can.
    """
    otf = otf_profile(r_px / np.float32(kc_px), damping=opts.otf_damping)
    if not opts.attenuation:
        return otf, None
    sigma_px = opts.att_fwhm / (2 * math.sqrt(2 * math.log(2))) / pixel_cyc
    att = (1 - opts.att_strength * np.exp(-(r_px ** 2) / np.float32(2 * sigma_px ** 2))).astype(np.float32)
    return otf, att


def _weight_and_power(r_px, kc_px, opts, pixel_cyc) -> tuple[np.ndarray, np.ndarray]:
    """Band weight (``OTF·att²``) and Wiener-denominator term (``(OTF·att)²``) at ``r_px``."""
    otf, att = _otf_model(r_px, kc_px, opts, pixel_cyc)
    if att is None:
        return otf, otf * otf
    eff = otf * att
    return eff * att, eff * eff


def _dft_grid(ps: list[np.ndarray], center: tuple[float, float], half: float, step: float
              ) -> tuple[list[np.ndarray], np.ndarray]:
    """``Σ_x p(x) e^{−2πi k·x/n}`` for every ``p`` on a square grid of ``k`` around ``center``
    (matrix-multiply DFT: cheap for a small grid, exact at non-integer ``k``)."""
    n = ps[0].shape[0]
    offs = np.arange(-half, half + step / 2, step)
    idx = np.arange(n)
    ey = np.exp(-2j * np.pi * np.outer(center[0] + offs, idx) / n).astype(np.complex64)
    ex = np.exp(-2j * np.pi * np.outer(idx, center[1] + offs) / n).astype(np.complex64)
    return [(ey @ p) @ ex for p in ps], offs


def _refine_peak(num: np.ndarray, coarse: tuple[float, float], reach: float = 1.5
                 ) -> tuple[float, float]:
    """Sub-pixel maximum of ``|DFT(num)(k)|`` within ``reach`` px of ``coarse``: grids of 0.25,
    0.05 and 0.01 px, then a parabola through the best point and its neighbours. A peak placed
    by the shared pattern of all angles (a faint one) gets a short reach (0.5 px): on noise the
    maximum would otherwise drift to the edge of the window (seen: 1.5 % in period)."""
    center = coarse
    for half, step in ((reach, 0.25), (0.25, 0.05), (0.05, 0.01)):
        (vals,), offs = _dft_grid([num], center, half, step)
        score = np.abs(vals)
        iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
        dy = dx = 0.0
        if step < 0.05:  # final stage
            if 0 < iy < len(offs) - 1:
                a, b, c = score[iy - 1, ix], score[iy, ix], score[iy + 1, ix]
                den = a - 2 * b + c
                dy = 0.5 * (a - c) / den * step if den < 0 else 0.0
            if 0 < ix < len(offs) - 1:
                a, b, c = score[iy, ix - 1], score[iy, ix], score[iy, ix + 1]
                den = a - 2 * b + c
                dx = 0.5 * (a - c) / den * step if den < 0 else 0.0
        center = (center[0] + offs[iy] + dy, center[1] + offs[ix] + dx)
    return float(center[0]), float(center[1])


# ---------------------------------------------------------------------------------------------
# parameter estimation
# ---------------------------------------------------------------------------------------------
class _AngleData:
    """Bands of one angle in real space and Fourier space."""

    def __init__(self, frames: np.ndarray, phases: int, beams: int):
        self.real = separate_bands(frames, phases, beams)
        self.spec = [ops.fft2(self.real[0].astype(np.complex64))]
        for c in self.real[1:]:
            self.spec.append(ops.fft2(c))


def _snr_whiten(spec: np.ndarray, shells: np.ndarray, counts: np.ndarray, outside: np.ndarray,
                r: np.ndarray, kc_px: float) -> np.ndarray:
    """``spec · sqrt(max(R − N, 0)) / R`` with ``R`` the shell-averaged power and ``N`` the noise
    power (outside the OTF support); zero beyond the cutoff."""
    power = np.abs(spec) ** 2
    radial = np.bincount(shells, power.ravel(), minlength=counts.size) / counts
    noise = float(np.mean(power[outside])) if np.any(outside) else 0.0
    weight = np.sqrt(np.maximum(radial - noise, 0)) / np.maximum(radial, 1e-30)
    w2d = weight[shells].reshape(spec.shape).astype(np.float32)
    w2d[r > kc_px] = 0
    return spec * w2d


def _band_coefficient(ang: _AngleData, band: int, kb: tuple[float, float], r: np.ndarray,
                      fy: np.ndarray, fx: np.ndarray, kc_px: float, opts: ReconOptions,
                      noise0: float) -> complex:
    """Complex correlation coefficient ``m e^{iφ}`` of band ``band`` shifted by ``kb``."""
    n = r.shape[0]
    shifted = ops.fft2(ang.real[band] * _ramp(n, kb, -1.0))
    r_sh = np.sqrt((fy + np.float32(kb[0])) ** 2 + (fx + np.float32(kb[1])) ** 2)
    otf = otf_profile(r / np.float32(kc_px), damping=opts.otf_damping)
    otf_sh = otf_profile(r_sh / np.float32(kc_px), damping=opts.otf_damping)
    low = 0.15 * kc_px
    mask = ((otf > 0.02) & (otf_sh > 0.02) & (np.abs(r - r_sh) < 0.1 * kc_px)
            & (r > low) & (r_sh > low))
    if np.count_nonzero(mask) < 20:
        mask = (otf > 0.02) & (otf_sh > 0.02) & (r > low) & (r_sh > low)
    if not np.any(mask):
        return 0j
    c0 = ang.spec[0][mask]
    x0 = c0 * otf_sh[mask]
    x1 = shifted[mask] * otf[mask]
    num = np.vdot(x0, x1)  # Σ conj(x0)·x1
    power = float(np.vdot(x0, x0).real)
    den = power - noise0 * float(np.sum(otf_sh[mask].astype(np.float64) ** 2))
    if den <= 0.05 * power:
        den = 0.05 * power
    return complex(num / den)


def estimate_parameters(data: np.ndarray, optics: OpticsConfig, opts: ReconOptions | None = None,
                        _angles: list[_AngleData] | None = None) -> SimParams:
    """Estimate pattern vector, phase and modulation for every angle of a preprocessed stack.

    ``data`` is what :func:`preprocess` returns. Raises :class:`SrredsimError` when the pattern
    of an angle is not found (correlation peak contrast below ``opts.min_contrast``, and the
    angles together do not show one shared pattern either: :mod:`srredsim.classical.pattern`).
    """
    opts = (opts or ReconOptions()).validate()
    A, P, B = optics.angles, optics.phases, optics.beams
    n = data.shape[-1]
    kc_px = cutoff_fft_px(optics, n)
    fy, fx = _freqs(n)
    r = np.sqrt(fy ** 2 + fx ** 2)
    notch = (1 - np.exp(-(r / np.float32(0.1 * kc_px)) ** 2)).astype(np.float32)
    otf = otf_profile(r / np.float32(kc_px), damping=opts.otf_damping)
    support = (r < kc_px).astype(np.float32)
    annulus = (r >= opts.k_min * kc_px) & (r <= min(opts.k_max * kc_px, n / 2 - 2))
    shells = np.minimum(np.round(r).astype(np.int64), n).ravel()
    counts = np.maximum(np.bincount(shells, minlength=n + 1), 1)
    outside = r > 1.1 * kc_px
    angles = _angles or [_AngleData(data[a * P:(a + 1) * P], P, B) for a in range(A)]
    top = B - 1
    corrs = []
    for ang in angles:
        # Whiten both bands shell by shell and weight every shell by its signal amplitude
        # (power above the noise floor measured outside the OTF support): the correlation is
        # then not dominated by the few strongest low frequencies of the object.
        wa = ops.ifft2(_snr_whiten(ang.spec[0], shells, counts, outside, r, kc_px) * notch)
        wb = ops.ifft2(_snr_whiten(ang.spec[top], shells, counts, outside, r, kc_px))
        corr = np.abs(ops.fft2(np.conj(wa) * wb))
        # keep peaks a few pixels wide (the pattern), drop broad clutter and single-pixel noise
        corr = ops.gaussian_filter_wrap(corr, 1.0)
        corr -= ops.uniform_filter_wrap(corr, 9)
        corrs.append(corr)
    r_lo, r_hi = opts.k_min * kc_px, min(opts.k_max * kc_px, n / 2 - 2)
    # the angles of a 2D-SIM system share one period and lie 180°/A apart: when their own peaks
    # disagree or are faint, the shared pattern decides (srredsim.classical.pattern)
    coarse_peaks = find_peaks(corrs, annulus, fy, fx, r_lo, r_hi, opts.min_contrast,
                              pixel_nm=optics.pixel_size_um * 1000, shared=opts.shared_pattern)
    if coarse_peaks.joint:
        # found when one angle's peak at the shared pattern is clear on its own (it anchors the
        # others) or the angles' evidence together stands out of the summed map
        if max(coarse_peaks.contrasts) < opts.min_contrast and coarse_peaks.joint_z < JOINT_MIN_Z:
            a = int(np.argmin(coarse_peaks.contrasts))
            raise _PatternNotFound(a, coarse_peaks.contrasts[a], opts.min_contrast,
                                   joint_z=coarse_peaks.joint_z)
    else:
        for a, contrast in enumerate(coarse_peaks.contrasts):
            if contrast < opts.min_contrast:
                raise _PatternNotFound(a, contrast, opts.min_contrast)
    notes = list(coarse_peaks.notes)
    result: list[AngleParams] = []
    for a, ang in enumerate(angles):
        # Sub-pixel: the correlation of band 0 weighted by the OTF with the highest band
        # unweighted (inside the support). Weighting that band by its OTF too would pull the
        # peak towards the centre, where the OTF is larger (a bias of ~0.015 px seen here).
        pa = ops.ifft2(ang.spec[0] * (otf * notch))
        pb = ops.ifft2(ang.spec[top] * support)
        # noise power of band 0 per frequency, measured outside the OTF support
        noise0 = float(np.mean(np.abs(ang.spec[0][outside]) ** 2)) if np.any(outside) else 0.0

        def fit(coarse, shared):
            k = _refine_peak(np.conj(pa) * pb, coarse, reach=0.5 if shared else 1.5)
            phases, mods = [], []
            for b in range(1, B):
                kb = (k[0] * b / top, k[1] * b / top)
                coef = _band_coefficient(ang, b, kb, r, fy, fx, kc_px, opts, noise0)
                phases.append(float(np.angle(coef)))
                mods.append(float(abs(coef)))
            return k, phases, mods

        contrast = coarse_peaks.contrasts[a]
        k, phases, mods = fit(coarse_peaks.peaks[a], coarse_peaks.shared[a])
        alternative = coarse_peaks.alternatives[a] if coarse_peaks.alternatives else None
        if alternative is not None:
            # two candidates in the right direction: the pattern is the one that modulates
            k2, phases2, mods2 = fit(alternative, True)
            if mods2[-1] > mods[-1]:
                notes.append(f"angle {a + 1}: the shared-pattern peak modulates more ({mods2[-1]:.2f}) than "
                             f"the angle's own strongest peak ({mods[-1]:.2f}); used it")
                k, phases, mods = k2, phases2, mods2
                contrast = _peak_contrast(corrs[a], annulus, fy, fx, alternative)
        result.append(AngleParams(k_fft_px=k, phases_rad=phases, modulations=mods,
                                  peak_contrast=contrast))
    return SimParams(angles=result, phases=P, beams=B, size=n,
                     pixel_size_um=optics.pixel_size_um, estimated=True,
                     notes=notes)


class _PatternNotFound(SrredsimError):
    def __init__(self, angle: int, contrast: float, needed: float, joint_z: float | None = None):
        self.angle = angle
        how = (f"correlation peak contrast {contrast:.1f} < {needed:g}" if joint_z is None else
               f"not even from all angles together: shared-pattern z-score {joint_z:.1f} < {JOINT_MIN_Z:g}")
        super().__init__(
            f"SIM pattern not found for angle {angle + 1} ({how}); check --na/--wavelength/--pixel-size and the "
            "angles × phases order, pass known parameters (--params-in), or --fallback widefield")


# ---------------------------------------------------------------------------------------------
# reconstruction
# ---------------------------------------------------------------------------------------------
def _pad_full(x: np.ndarray, n2: int) -> np.ndarray:
    n = x.shape[0]
    h = n // 2
    out = np.zeros((n2, n2), np.complex64)
    out[:h, :h] = x[:h, :h]
    out[:h, -h:] = x[:h, -h:]
    out[-h:, :h] = x[-h:, :h]
    out[-h:, -h:] = x[-h:, -h:]
    return out


def _pad_half(x: np.ndarray, n2: int) -> np.ndarray:
    """Zero-pad the rfft half of a full ``(n, n)`` spectrum into an rfft ``(n2, n2//2+1)`` one."""
    n = x.shape[0]
    h = n // 2
    out = np.zeros((n2, n2 // 2 + 1), np.complex64)
    out[:h, :h] = x[:h, :h]
    out[-h:, :h] = x[-h:, :h]
    return out


def _check_params(params: SimParams, optics: OpticsConfig, n: int) -> None:
    if len(params.angles) != optics.angles:
        raise SrredsimError(f"parameters describe {len(params.angles)} angles, the optics {optics.angles}")
    if params.beams != optics.beams:
        raise SrredsimError(f"parameters are for {params.beams}-beam SIM, the optics for {optics.beams}-beam")
    for ap in params.angles:
        if len(ap.phases_rad) != optics.beams - 1 or len(ap.modulations) != optics.beams - 1:
            raise SrredsimError(f"parameters need {optics.beams - 1} phase(s) and modulation(s) per angle")
    if params.size != n:
        # parameters given for another image size: rescale the FFT-pixel vectors
        scale = n / params.size
        for ap in params.angles:
            ap.k_fft_px = (ap.k_fft_px[0] * scale, ap.k_fft_px[1] * scale)
        params.size = n


def _note_sampling(params: SimParams, optics: OpticsConfig) -> None:
    warning = sampling_warning(optics)
    if warning and warning not in params.notes:
        params.notes.insert(0, warning)


def reconstruct(raw: np.ndarray, optics: OpticsConfig, params: SimParams | dict | None = None,
                opts: ReconOptions | None = None, **kwargs) -> Reconstruction:
    """Classical SIM reconstruction of a raw stack ``(A·P, n, n)`` onto the 2× grid.

    ``params`` (a :class:`SimParams` or its dict) skips the estimation. Options are a
    :class:`ReconOptions` or its fields as keyword arguments (``wiener=0.05``, ...).
    Returns :class:`Reconstruction` with float32 ``sr`` and ``widefield`` of ``(2n, 2n)``.
    """
    if opts is None:
        try:
            opts = ReconOptions(**kwargs)
        except TypeError as exc:
            raise SrredsimError(f"reconstruct: {exc}") from None
    elif kwargs:
        raise SrredsimError("reconstruct: pass either opts or keyword options, not both")
    opts.validate()
    data = validate_stack(raw, optics)
    data, bg = preprocess(data, opts)
    A, P, B = optics.angles, optics.phases, optics.beams
    n = data.shape[-1]
    n2 = 2 * n
    kc_px = cutoff_fft_px(optics, n)
    pixel_cyc = 1.0 / (n * optics.pixel_size_um)  # cycles/µm per FFT pixel

    wf_spec = ops.rfft2(data.mean(axis=0))
    wf_pad = np.zeros((n2, n + 1), np.complex64)
    h = n // 2
    wf_pad[:h, :h] = wf_spec[:h, :h]
    wf_pad[-h:, :h] = wf_spec[-h:, :h]
    widefield = (ops.irfft2(wf_pad, (n2, n2)) * 4).astype(np.float32)

    angles = [_AngleData(data[a * P:(a + 1) * P], P, B) for a in range(A)]
    if params is None:
        try:
            params = estimate_parameters(data, optics, opts, _angles=angles)
        except _PatternNotFound as exc:
            if opts.fallback != "widefield":
                raise
            params = SimParams(angles=[], phases=P, beams=B, size=n,
                               pixel_size_um=optics.pixel_size_um, estimated=False,
                               notes=[f"fallback to widefield: {exc}"])
            params.background = bg
            _note_sampling(params, optics)
            return Reconstruction(sr=widefield.copy(), widefield=widefield, params=params)
    elif isinstance(params, dict):
        params = SimParams.from_dict(params)
    else:
        params = copy.deepcopy(params)  # the caller's object stays as it was
    _check_params(params, optics, n)

    fy, fx = _freqs(n)
    r = np.sqrt(fy ** 2 + fx ** 2)
    w_otf, _ = _weight_and_power(r, kc_px, opts, pixel_cyc)  # band weight before the shift
    gy, gx = _freqs(n2, real=True)
    g = np.sqrt(gy ** 2 + gx ** 2)
    denom = np.zeros(g.shape, np.float32)
    band0 = np.zeros((n, n), np.complex64)
    acc = np.zeros((n2, n2), np.float32)
    for ang, ap in zip(angles, params.angles):
        band0 += ang.spec[0] * w_otf
        denom += _weight_and_power(g, kc_px, opts, pixel_cyc)[1]
        for b in range(1, B):
            kb = ap.band_vector(b, B)
            m = float(ap.modulations[b - 1])
            if not m > 0:
                continue
            weight = np.complex64(m * np.exp(-1j * ap.phases_rad[b - 1]))
            spread = ops.ifft2(_pad_full(ang.spec[b] * (w_otf * weight), n2))
            spread *= _ramp(n2, kb, -1.0)
            acc += 2 * spread.real
            for s in (1.0, -1.0):
                rs = np.sqrt((gy + np.float32(s * kb[0])) ** 2 + (gx + np.float32(s * kb[1])) ** 2)
                denom += np.float32(m * m) * _weight_and_power(rs, kc_px, opts, pixel_cyc)[1]
    total = ops.rfft2(acc) + _pad_half(band0, n2)
    apo = apodization(g / np.float32(opts.apo_cutoff * kc_px), opts.apo_bend).astype(np.float32)
    total *= apo / (denom + np.float32(opts.wiener ** 2))
    sr = (ops.irfft2(total, (n2, n2)) * 4).astype(np.float32)
    params.background = bg
    _note_sampling(params, optics)
    return Reconstruction(sr=sr, widefield=widefield, params=params)


__all__ = ["Reconstruction", "reconstruct", "estimate_parameters", "frame_coefficients", "preprocess", "validate_stack",
           "separation_matrix", "separate_bands"]


def frame_coefficients(data: np.ndarray, optics: OpticsConfig, params: SimParams,
                       opts: ReconOptions | None = None, _angles: list[_AngleData] | None = None
                       ) -> np.ndarray:
    """Pattern coefficient of every frame, ``(A, P)`` complex, ``≈ ½ m e^{iφ_p}``: the correlation
    of each frame, shifted by its angle's ``k``, with that angle's band 0 over the OTF overlap
    (as :func:`_band_coefficient` does for bands), minus the mean over the angle's frames (the
    object's own correlation at that shift, the same in every frame; the pattern's phases sum to
    zero).

    The phases tell whether the frames of an angle step by ``2π/P`` as assumed, the magnitudes
    whether each frame carries its angle's pattern at all: what :mod:`srredsim.datacheck` uses
    to recognise a wrong frame order or phase count. It works where the raw spectra show no
    pattern peak (the low-signal real microtubules). ``data`` is what :func:`preprocess` returns.
    """
    return _frame_correlations(data, optics, params, opts, _angles)


def _frame_correlations(data, optics, params, opts=None, _angles=None) -> np.ndarray:
    opts = (opts or ReconOptions()).validate()
    A, P, B = optics.angles, optics.phases, optics.beams
    n = data.shape[-1]
    kc_px = cutoff_fft_px(optics, n)
    fy, fx = _freqs(n)
    r = np.sqrt(fy ** 2 + fx ** 2)
    outside = r > 1.1 * kc_px
    out = np.zeros((A, P), np.complex128)
    top = B - 1
    for a, ap in enumerate(params.angles):
        ang = _angles[a] if _angles else _AngleData(data[a * P:(a + 1) * P], P, B)
        noise0 = float(np.mean(np.abs(ang.spec[0][outside]) ** 2)) if np.any(outside) else 0.0
        kb = ap.band_vector(top, B)
        for p in range(P):
            frame = _FrameAsBand(ang.spec[0], data[a * P + p])
            out[a, p] = _band_coefficient(frame, 1, kb, r, fy, fx, kc_px, opts, noise0)
        out[a] -= out[a].mean()  # what every frame shares (the object itself) is not the pattern
    return out


class _FrameAsBand:
    """One frame posing as band 1 of an angle (for :func:`_band_coefficient`)."""

    def __init__(self, band0_spec: np.ndarray, frame: np.ndarray):
        self.spec = [band0_spec]
        self.real = [None, frame.astype(np.complex64)]


