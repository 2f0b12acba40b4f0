"""Physically based raw-SIM simulator with ground truth (docs/architecture.md, section 8).

One stack (:func:`simulate_stack`):

1. **Ground truth** on the 2× fine grid (pixel = raw pixel / 2): worm-like-chain filaments,
   vesicle rings, beads or a mix, splatted sub-pixel and blurred slightly (label size).
2. **Illumination**: per angle a 2-beam pattern ``1 + m cos(2π k·x + φ_p)`` or a 3-beam pattern
   ``|e₀ + 2e₁ cos(π k·x + φ_p)|²`` (bands at ``k/2`` and ``k``), angles ``180°/A`` apart from a
   random offset with small angle errors, ``|k|`` a random fraction of the cutoff, random
   modulation, phase steps ``2πp/P`` plus jitter.
3. **Image formation** on the fine grid: emission = truth × pattern, then the *simulation* OTF —
   ideal circular pupil × a random damping ``a^ρ`` × a random mild defocus/spherical aberration,
   never the reconstruction's model — and the camera pixel's integration (2×2 fine pixels: a
   ``sinc`` transfer), sampled on the raw grid. Done per angle with one complex FFT of
   ``truth·e^{2πi k·x}``; every phase is then a linear combination of spectra.
4. **Out-of-focus haze**: a second, defocused layer of structure (unmodulated: its modulated
   components fall outside its defocused OTF).
5. **Per-frame intensity** fluctuation and bleaching; scaling to ``photons`` = mean detected
   photons per camera pixel per raw frame (the peak is reported too); Poisson noise, Gaussian
   read noise, gain, offset, rounding to uint16.

Image formation uses FFTs, so the field of view is periodic (structures wrap around the edges).

Targets on the 2× grid: ``truth`` (ground truth lightly blurred), ``bandlimited`` (ground truth
filtered to the SIM support ``k_c + |k|`` by an ideal-OTF-shaped filter) and ``classical`` (the
classical reconstruction of a high-photon copy of the same stack: a fairSIM-style reference).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import scipy.fft as sfft
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError, atomic_dir, atomic_path
from srredsim.optics import (check_sampling, cutoff_cycles_per_um, ideal_otf, otf_2d,
                             pattern_vector)

Range = tuple[float, float]
TARGETS = ("truth", "bandlimited", "classical", "support")
STRUCTURES = ("filaments", "vesicles", "beads", "mixed", "textures", "points", "gratings", "generic")


class SimulationConfig(BaseModel):
    """Everything that defines a simulated data set (the seed comes separately per stack).

    Ranges ``(lo, hi)`` are drawn uniformly per stack (photons log-uniformly); a single number
    means a fixed value.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    size: int = Field(256, ge=32, le=4096, description="raw frame edge in pixels (even)")
    optics: OpticsConfig = Field(default_factory=OpticsConfig)
    photons: Range = Field((2.0, 300.0), description="mean detected photons per camera pixel per raw frame (log-uniform)")
    structures: Literal["filaments", "vesicles", "beads", "mixed", "textures", "points", "gratings",
                        "generic"] = Field("mixed", description="structure family; textures/points/gratings/generic "
                                                                "carry detail no prior can guess (srredsim.content)")
    density: float = Field(1.0, gt=0, le=20, description="relative density of structures")
    target: Literal["truth", "bandlimited", "classical", "support"] = "truth"
    k_fraction: Range = Field((0.75, 0.95), description="|k| as a fraction of the widefield cutoff")
    modulation: Range = Field((0.5, 0.95), description="pattern contrast m")
    angle_offset_deg: float | None = Field(None, description="direction of the first angle; None: random")
    angle_jitter_deg: float = Field(0.5, ge=0, le=10, description="std of the error of each angle")
    phase_offset_rad: float | None = Field(None, description="pattern phase of every angle's first frame; None: random")
    phase_jitter_rad: float = Field(0.03, ge=0, le=1, description="std of the error of each phase step")
    intensity_fluctuation: float = Field(0.03, ge=0, le=0.5, description="std of the relative frame intensity")
    bleaching: Range = Field((0.0, 0.15), description="fraction of intensity lost over the stack")
    haze: Range = Field((0.1, 0.6), description="out-of-focus light relative to the in-focus mean")
    otf_damping: Range = Field((0.2, 0.5), description="damping a of the simulation OTF (a^ρ)")
    aberration_waves: float = Field(0.06, ge=0, le=0.5, description="max RMS waves of defocus and of spherical aberration")
    gain: Range = Field((0.8, 2.5), description="camera gain, ADU per electron")
    read_noise_e: Range = Field((1.0, 2.5), description="camera read noise, electrons RMS")
    offset_adu: Range = Field((90.0, 110.0), description="camera offset, ADU")
    truth_blur_px: float = Field(1.0, ge=0, le=10, description="Gaussian sigma (2x-grid pixels) of the 'truth' target")
    classical_photons: float = Field(1000.0, gt=0, description="photons of the high-light copy behind the 'classical' target")

    @field_validator("photons", "k_fraction", "modulation", "bleaching", "haze", "otf_damping",
                     "gain", "read_noise_e", "offset_adu", mode="before")
    @classmethod
    def _as_range(cls, v):
        if isinstance(v, (int, float)):
            return (float(v), float(v))
        if isinstance(v, str):
            return parse_range(v)
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.size % 2:
            raise ValueError(f"size must be even, got {self.size}")
        checks = {
            "photons": (1e-3, 1e6), "k_fraction": (0.1, 1.2), "modulation": (0.0, 1.0),
            "bleaching": (0.0, 0.9), "haze": (0.0, 10.0), "otf_damping": (0.01, 1.0),
            "gain": (0.01, 1000.0), "read_noise_e": (0.0, 100.0), "offset_adu": (0.0, 60000.0),
        }
        for name, (lo, hi) in checks.items():
            a, b = getattr(self, name)
            if not (lo <= a <= b <= hi):
                raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {a}, {b}")
        if self.optics.beams == 3 and self.optics.phases < 5:
            raise ValueError("3-beam SIM needs at least 5 phases")
        return self

    @classmethod
    def build(cls, **kwargs) -> "SimulationConfig":
        """Construct with a one-line :class:`SrredsimError` instead of a ValidationError."""
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            parts = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err.get("loc", ()))
                parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
            raise SrredsimError("simulation: " + "; ".join(parts)) from None


def parse_range(text: str) -> Range:
    """``"100"`` → (100, 100); ``"2:300"`` → (2, 300)."""
    try:
        parts = [float(p) for p in str(text).split(":")]
    except ValueError:
        raise SrredsimError(f"expected a number or a range LOW:HIGH, got {text!r}") from None
    if len(parts) == 1:
        return (parts[0], parts[0])
    if len(parts) != 2 or parts[0] > parts[1]:
        raise SrredsimError(f"expected a range LOW:HIGH with LOW <= HIGH, got {text!r}")
    return (parts[0], parts[1])


@dataclass
class SimulatedStack:
    """One simulated stack: ``raw`` uint16 ``(A·P, H, W)``, ``truth`` float32 ``(2H, 2W)``,
    ``targets`` name → float32 ``(2H, 2W)``, ``params`` a JSON-able dict."""

    raw: np.ndarray
    truth: np.ndarray
    targets: dict[str, np.ndarray]
    params: dict[str, Any]
    expected: np.ndarray | None = field(default=None, repr=False)  # noise-free photons (float32)


# ---------------------------------------------------------------------------------------------
# structures on the fine grid
# ---------------------------------------------------------------------------------------------
def _splat(m: int, ys: np.ndarray, xs: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """Bilinear splat of weighted points into a periodic ``(m, m)`` image."""
    y0 = np.floor(ys)
    x0 = np.floor(xs)
    fy = (ys - y0).astype(np.float32)
    fx = (xs - x0).astype(np.float32)
    y0 = y0.astype(np.int64) % m
    x0 = x0.astype(np.int64) % m
    y1 = (y0 + 1) % m
    x1 = (x0 + 1) % m
    ws = ws.astype(np.float32)
    idx = np.concatenate([y0 * m + x0, y0 * m + x1, y1 * m + x0, y1 * m + x1])
    wt = np.concatenate([ws * (1 - fy) * (1 - fx), ws * (1 - fy) * fx, ws * fy * (1 - fx), ws * fy * fx])
    return np.bincount(idx, wt, minlength=m * m).reshape(m, m).astype(np.float32)


def _filament_points(rng: np.random.Generator, m: int, px_um: float, density: float):
    area = (m * px_um) ** 2
    count = max(1, int(rng.poisson(density * area / 25.0)))
    step_px = 0.5
    step_um = step_px * px_um
    lengths = rng.uniform(3.0, 25.0, count)
    persist = rng.uniform(2.0, 15.0, count)
    steps = np.maximum(4, (lengths / step_um).astype(int))
    total = int(steps.sum())
    owner = np.repeat(np.arange(count), steps)
    dtheta = rng.normal(0.0, 1.0, total) * np.sqrt(step_um / persist)[owner]
    starts = np.concatenate([[0], np.cumsum(steps)[:-1]])
    dtheta[starts] = rng.uniform(0, 2 * np.pi, count)
    theta = np.cumsum(dtheta)
    theta -= np.repeat(np.concatenate([[0.0], theta[starts[1:] - 1]]) if count > 1 else [0.0], steps)
    dy = np.sin(theta) * step_px
    dx = np.cos(theta) * step_px
    cy = np.cumsum(dy)
    cx = np.cumsum(dx)
    base_y = np.concatenate([[0.0], cy[starts[1:] - 1]]) if count > 1 else np.array([0.0])
    base_x = np.concatenate([[0.0], cx[starts[1:] - 1]]) if count > 1 else np.array([0.0])
    ys = cy - np.repeat(base_y, steps) + np.repeat(rng.uniform(0, m, count), steps)
    xs = cx - np.repeat(base_x, steps) + np.repeat(rng.uniform(0, m, count), steps)
    ws = np.repeat(rng.uniform(0.4, 1.2, count), steps) * step_px
    return ys, xs, ws


def _vesicle_points(rng: np.random.Generator, m: int, px_um: float, density: float):
    area = (m * px_um) ** 2
    count = max(1, int(rng.poisson(density * area / 3.0)))
    radius = rng.uniform(0.06, 0.3, count) / px_um  # fine pixels
    npts = np.maximum(8, np.ceil(2 * np.pi * radius / 0.5).astype(int))
    owner = np.repeat(np.arange(count), npts)
    starts = np.concatenate([[0], np.cumsum(npts)[:-1]])
    k = np.arange(int(npts.sum())) - np.repeat(starts, npts)
    phi = 2 * np.pi * k / npts[owner] + np.repeat(rng.uniform(0, 2 * np.pi, count), npts)
    cy = rng.uniform(0, m, count)
    cx = rng.uniform(0, m, count)
    ys = cy[owner] + radius[owner] * np.sin(phi)
    xs = cx[owner] + radius[owner] * np.cos(phi)
    # the same brightness per unit membrane length, each vesicle with its own labelling
    ws = rng.uniform(0.3, 1.2, count)[owner] * (2 * np.pi * radius[owner] / npts[owner])
    return ys, xs, ws


def _bead_points(rng: np.random.Generator, m: int, px_um: float, density: float):
    area = (m * px_um) ** 2
    count = max(1, int(rng.poisson(density * area / 8.0)))
    return (rng.uniform(0, m, count), rng.uniform(0, m, count), rng.uniform(0.7, 1.3, count) * 4.0)


def render_structures(rng: np.random.Generator, kind: str, m: int, px_um: float,
                      density: float = 1.0) -> np.ndarray:
    """Structure (not yet blurred) on an ``(m, m)`` grid of pixel ``px_um``: point-splatted
    biological families here, random content from :mod:`srredsim.content`."""
    from srredsim.content import RENDERERS

    if kind in RENDERERS:
        return RENDERERS[kind](rng, m, px_um, density)
    if kind == "mixed":
        parts = [_filament_points(rng, m, px_um, 0.6 * density),
                 _vesicle_points(rng, m, px_um, 0.5 * density),
                 _bead_points(rng, m, px_um, 0.15 * density)]
    elif kind == "filaments":
        parts = [_filament_points(rng, m, px_um, density)]
    elif kind == "vesicles":
        parts = [_vesicle_points(rng, m, px_um, density)]
    elif kind == "beads":
        parts = [_bead_points(rng, m, px_um, density)]
    else:
        raise SrredsimError(f"unknown structures {kind!r}; choose from {', '.join(STRUCTURES)}")
    ys = np.concatenate([p[0] for p in parts])
    xs = np.concatenate([p[1] for p in parts])
    ws = np.concatenate([p[2] for p in parts])
    return _splat(m, ys, xs, ws)


# ---------------------------------------------------------------------------------------------
# the simulator
# ---------------------------------------------------------------------------------------------
def _draw(rng: np.random.Generator, rng_range: Range, log: bool = False) -> float:
    lo, hi = rng_range
    if lo == hi:
        return float(lo)
    if log:
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(rng.uniform(lo, hi))


def _gauss(fy: np.ndarray, fx: np.ndarray, sigma_cyc: float) -> np.ndarray:
    return np.exp(-(fy ** 2 + fx ** 2) / np.float32(2 * sigma_cyc ** 2)).astype(np.float32)


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (list, tuple)):
        return np.random.SeedSequence([int(s) for s in seed])
    return np.random.SeedSequence(int(seed))


def simulate_stack(cfg: SimulationConfig | None = None, seed: int | Sequence[int] = 0,
                   targets: Sequence[str] | None = None, structure: np.ndarray | None = None) -> SimulatedStack:
    """Simulate one raw SIM stack with its ground truth, targets and exact parameters.

    ``seed`` is an int or a sequence of ints (e.g. ``(dataset_seed, index)``); the same seed and
    configuration always give identical arrays. ``targets`` lists the targets to compute
    (default: ``truth``, ``bandlimited`` and the configured ``cfg.target``). ``structure``, a
    non-negative ``(2·size, 2·size)`` image on the fine grid, replaces the random structures
    (e.g. a resolution chart); it is label-blurred and scaled like them.
    """
    cfg = cfg or SimulationConfig()
    optics = cfg.optics
    check_sampling(optics)
    wanted = set(targets) if targets is not None else {"truth", "bandlimited", cfg.target}
    unknown = wanted - set(TARGETS)
    if unknown:
        raise SrredsimError(f"unknown target(s) {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    ss = _seed_sequence(seed)
    rng = np.random.default_rng(ss)
    A, P, B = optics.angles, optics.phases, optics.beams
    n = cfg.size
    m = 2 * n
    px = optics.pixel_size_um
    fpx = px / 2
    kc = cutoff_cycles_per_um(optics)

    # ---- ground truth ------------------------------------------------------------------------
    if structure is None:
        splat = render_structures(rng, cfg.structures, m, fpx, cfg.density)
    else:
        splat = np.asarray(structure, dtype=np.float32)
        if splat.shape != (m, m) or not np.all(np.isfinite(splat)) or splat.min() < 0:
            raise SrredsimError(f"structure must be a finite, non-negative {m}x{m} image, got {splat.shape}")
    fy_f, fx_f = np.fft.fftfreq(m, fpx).astype(np.float32)[:, None], np.fft.rfftfreq(m, fpx).astype(np.float32)[None, :]
    label_sigma_cyc = 1.0 / (2 * np.pi * 0.7 * fpx)  # Gaussian of sigma 0.7 fine pixels
    spec = sfft.rfft2(splat) * _gauss(fy_f, fx_f, label_sigma_cyc)
    truth = sfft.irfft2(spec, s=(m, m)).astype(np.float32)
    scale = float(np.quantile(truth, 0.999)) or float(truth.max()) or 1.0
    truth /= scale
    spec /= scale
    np.maximum(truth, 0, out=truth)

    # ---- illumination parameters -------------------------------------------------------------
    offset = math.radians(cfg.angle_offset_deg) if cfg.angle_offset_deg is not None else rng.uniform(0, np.pi / A)
    angle_params = []
    for a in range(A):
        theta = offset + np.pi * a / A + math.radians(cfg.angle_jitter_deg) * rng.normal()
        kmag = kc * _draw(rng, cfg.k_fraction)
        contrast = _draw(rng, cfg.modulation)
        if B == 2:
            mods = [contrast]
        else:
            ratio = rng.uniform(0.6, 1.0)  # ±1 beam amplitude relative to the 0th
            dc = 1 + 2 * ratio ** 2
            mods = [contrast * 4 * ratio / dc, contrast * 2 * ratio ** 2 / dc]
        phi0 = rng.uniform(0, 2 * np.pi)
        if cfg.phase_offset_rad is not None:
            phi0 = float(cfg.phase_offset_rad)
        frame_phases = phi0 + 2 * np.pi * np.arange(P) / P + cfg.phase_jitter_rad * rng.normal(size=P)
        vec = pattern_vector(theta, kmag, n, px)  # the highest band's vector k
        band_phases = []
        for b in range(1, B):
            d = b * (frame_phases - 2 * np.pi * np.arange(P) / P)
            band_phases.append(float(np.angle(np.mean(np.exp(1j * d)))))
        angle_params.append({
            **vec,
            "phases_rad": band_phases,
            "modulations": [float(v) for v in mods],
            "frame_phases_rad": [float(v) for v in np.angle(np.exp(1j * frame_phases))],
        })

    # ---- simulation OTF (never the reconstruction model) -------------------------------------
    damping = _draw(rng, cfg.otf_damping)
    defocus = float(rng.uniform(-cfg.aberration_waves, cfg.aberration_waves))
    spherical = float(rng.uniform(-cfg.aberration_waves, cfg.aberration_waves))
    fy, fx = np.fft.fftfreq(n, px).astype(np.float32)[:, None], np.fft.rfftfreq(n, px).astype(np.float32)[None, :]
    otf = otf_2d(optics, (n, n), px, real=True, damping=damping, defocus_waves=defocus,
                 spherical_waves=spherical)
    otf *= (np.sinc(fy * px) * np.sinc(fx * px)).astype(np.float32)  # camera pixel = 2x2 fine pixels

    # rfft half of the raw grid inside the fine grid's full spectrum
    h = n // 2
    rows = np.concatenate([np.arange(h), np.arange(m - h, m)])
    cols = np.arange(h + 1)
    rows_neg = (-rows) % m
    cols_neg = (-cols) % m
    s0 = spec[rows][:, cols]

    # ---- out-of-focus haze -------------------------------------------------------------------
    haze_frac = _draw(rng, cfg.haze)
    haze_img = (render_structures(rng, cfg.structures, n, px, 0.7 * cfg.density) if haze_frac > 0
                else np.zeros((n, n), np.float32))
    haze_spec = sfft.rfft2(haze_img) * (otf * _gauss(fy, fx, 0.08 * kc))
    if haze_spec[0, 0].real > 0:
        haze_spec *= np.float32(haze_frac * s0[0, 0].real / haze_spec[0, 0].real)

    # ---- per-frame intensity -----------------------------------------------------------------
    bleach = _draw(rng, cfg.bleaching)
    t = np.arange(A * P) / max(A * P - 1, 1)
    intensity = (1 - bleach) ** t * np.maximum(0.2, 1 + cfg.intensity_fluctuation * rng.normal(size=A * P))

    # ---- image formation ---------------------------------------------------------------------
    yy = np.arange(m, dtype=np.float64)
    frames = np.empty((A * P, n, n), np.float32)
    s0_otf = s0 * otf
    for a, ap in enumerate(angle_params):
        ky, kx = ap["k_fft_px"]
        sides = []
        for b in range(1, B):
            f = b / (B - 1)
            ramp_y = np.exp(2j * np.pi * ky * f * yy / m).astype(np.complex64)
            ramp_x = np.exp(2j * np.pi * kx * f * yy / m).astype(np.complex64)
            full = sfft.fft2(truth * ramp_y[:, None] * ramp_x[None, :])
            plus = full[rows][:, cols] * otf
            minus = np.conj(full[rows_neg][:, cols_neg]) * otf
            sides.append((b, ap["modulations"][b - 1], plus, minus))
        for p in range(P):
            phi = ap["frame_phases_rad"][p]
            d = s0_otf.copy()
            for b, mod, plus, minus in sides:
                e = np.complex64(0.5 * mod * np.exp(1j * b * phi))
                d += e * plus + np.conj(e) * minus
            d += haze_spec
            frames[a * P + p] = sfft.irfft2(d, s=(n, n)) * np.float32(intensity[a * P + p])

    # ---- photons, camera ---------------------------------------------------------------------
    photons = _draw(rng, cfg.photons, log=True)
    np.maximum(frames, 0, out=frames)
    mean = float(frames.mean())
    if mean <= 0:
        raise SrredsimError("simulation produced an empty image; increase density")
    expected = frames * np.float32(photons / mean)
    gain = _draw(rng, cfg.gain)
    read = _draw(rng, cfg.read_noise_e)
    offset_adu = _draw(rng, cfg.offset_adu)
    raw, saturated = _camera(rng, expected, gain, read, offset_adu)

    params: dict[str, Any] = {
        "seed": [int(v) for v in np.atleast_1d(ss.entropy)] + [int(v) for v in ss.spawn_key],
        "size": n,
        "fine_pixel_size_um": fpx,
        "optics": optics.model_dump(),
        "cutoff_cycles_per_um": kc,
        "structures": cfg.structures,
        "phases": P,
        "beams": B,
        "pixel_size_um": px,
        "angles": angle_params,
        "otf": {"model": "ideal circular pupil x damping^rho x aberration x pixel sinc",
                "damping": damping, "defocus_waves_rms": defocus, "spherical_waves_rms": spherical},
        "photons": {"mean": photons, "peak": float(expected.max()),
                    "classical_copy": cfg.classical_photons if "classical" in wanted else None},
        "camera": {"gain_adu_per_e": gain, "read_noise_e": read, "offset_adu": offset_adu,
                   "saturated_pixels": saturated},
        "haze_fraction": haze_frac,
        "bleaching": bleach,
        "frame_intensity": [float(v) for v in intensity],
        "target": cfg.target,
    }

    # ---- targets -----------------------------------------------------------------------------
    out: dict[str, np.ndarray] = {}
    if "truth" in wanted:
        sigma = cfg.truth_blur_px
        g = _gauss(fy_f, fx_f, 1.0 / (2 * np.pi * sigma * fpx)) if sigma > 0 else 1.0
        out["truth"] = sfft.irfft2(spec * g, s=(m, m)).astype(np.float32)
    if "bandlimited" in wanted:
        kmean = float(np.mean([ap["magnitude_cycles_per_um"] for ap in angle_params]))
        support = kc + kmean
        rho = np.sqrt(fy_f ** 2 + fx_f ** 2) / np.float32(support)
        out["bandlimited"] = sfft.irfft2(spec * ideal_otf(rho), s=(m, m)).astype(np.float32)
        params["bandlimited_support_cycles_per_um"] = support
    if "support" in wanted:
        w, shifts = sim_support_mask(fy_f, fx_f, kc, angle_params, B)
        out["support"] = sfft.irfft2(spec * w, s=(m, m)).astype(np.float32)
        params["support_bands"] = shifts
    if "classical" in wanted:
        out["classical"], params["classical"] = _classical_target(rng, expected, photons, cfg, truth,
                                                                  angle_params, gain, read, offset_adu)
    return SimulatedStack(raw=raw, truth=truth, targets=out, params=params, expected=expected)


SUPPORT_ROLLOFF = 0.3  # cosine roll-off over the outer 30 % of each band's OTF radius
WEAK_PATTERN_MODULATION = 0.15  # below this mean modulation a stack counts as widefield


def sim_support_mask(fy: np.ndarray, fx: np.ndarray, kc: float, angle_params: list[dict], beams: int = 2,
                     rolloff: float = SUPPORT_ROLLOFF) -> tuple[np.ndarray, int]:
    """Where a SIM acquisition measured the sample: the union of the OTF disks (radius ``kc``,
    cycles/µm) around 0 and around every band's pattern vector, flat inside and rolled off by a
    cosine over the outer ``rolloff`` of each radius -- the truth restricted to this mask is all
    the information the raw stack holds, at full strength (unapodised). A stack whose mean
    modulation is below :data:`WEAK_PATTERN_MODULATION` has only the widefield disk. Returns the
    mask on the given (r)fft grid and the number of disks."""
    mods = [float(np.mean(ap["modulations"])) for ap in angle_params]
    centres = [(0.0, 0.0)]
    if mods and np.mean(mods) >= WEAK_PATTERN_MODULATION:
        for ap in angle_params:
            ky, kx = ap["k_cycles_per_um"]
            for b in range(1, beams):
                f = b / (beams - 1)
                centres += [(f * ky, f * kx), (-f * ky, -f * kx)]
    return disks_mask(fy, fx, kc, centres, rolloff), len(centres)


def disks_mask(fy: np.ndarray, fx: np.ndarray, kc: float, centres: list[tuple[float, float]],
               rolloff: float = SUPPORT_ROLLOFF) -> np.ndarray:
    """The union of disks of radius ``kc`` around ``centres`` (same units as ``fy``/``fx``), flat
    inside and rolled off by a cosine over the outer ``rolloff`` of the radius."""
    mask = np.zeros(np.broadcast(fy, fx).shape, np.float32)
    inner = 1.0 - rolloff
    for cy, cx in centres:
        x = np.sqrt((fy - cy) ** 2 + (fx - cx) ** 2) / kc
        w = np.where(x <= inner, 1.0, 0.5 + 0.5 * np.cos(np.pi * np.clip((x - inner) / rolloff, 0, 1)))
        np.maximum(mask, np.where(x < 1.0, w, 0.0).astype(np.float32), out=mask)
    return mask


def widefield_limited(image: np.ndarray, cutoff_cycles_per_px: float, rolloff: float = SUPPORT_ROLLOFF) -> np.ndarray:
    """``image`` restricted to the widefield OTF support (a disk of ``cutoff_cycles_per_px``, flat
    inside, the support target's roll-off): what a stack without a pattern holds of it. Used for
    the pattern-removed training pairs (``data.widefield_fraction``)."""
    img = np.asarray(image, np.float32)
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.rfftfreq(img.shape[1])[None, :]
    w = disks_mask(fy, fx, float(cutoff_cycles_per_px), [(0.0, 0.0)], rolloff)
    return np.fft.irfft2(np.fft.rfft2(img) * w, s=img.shape).astype(np.float32)


def _camera(rng: np.random.Generator, expected: np.ndarray, gain: float, read: float,
            offset: float) -> tuple[np.ndarray, int]:
    electrons = rng.poisson(expected).astype(np.float32)
    adu = gain * (electrons + np.float32(read) * rng.standard_normal(expected.shape, dtype=np.float32)) + offset
    np.rint(adu, out=adu)
    saturated = int(np.count_nonzero(adu > 65535))
    return np.clip(adu, 0, 65535).astype(np.uint16), saturated


def _classical_target(rng, expected, photons, cfg, truth, angle_params, gain, read, offset_adu):
    """Classical reconstruction of a high-photon copy (new noise), scaled to the truth's mean."""
    from srredsim.classical import ReconOptions, SimParams, reconstruct

    hi = expected * np.float32(cfg.classical_photons / photons)
    peak = float(hi.max())
    gain = min(gain, 60000.0 / (peak + 6 * math.sqrt(peak) + 1))  # keep the bright copy unsaturated
    raw_hi, _ = _camera(rng, hi, gain, read, offset_adu)
    opts = ReconOptions(fade_px=0, background=offset_adu)  # the simulated field is periodic
    info: dict[str, Any] = {"photons": cfg.classical_photons}
    try:
        rec = reconstruct(raw_hi, cfg.optics, opts=opts)
        info["parameters"] = "estimated"
    except SrredsimError as exc:
        known = SimParams.from_dict({"angles": angle_params, "phases": cfg.optics.phases,
                                     "beams": cfg.optics.beams, "size": cfg.size,
                                     "pixel_size_um": cfg.optics.pixel_size_um})
        rec = reconstruct(raw_hi, cfg.optics, params=known, opts=opts)
        info["parameters"] = f"true (estimation failed: {exc})"
    sr = rec.sr
    mean = float(sr.mean())
    if mean > 0:
        sr = sr * np.float32(float(truth.mean()) / mean)
    info["estimated"] = rec.params.to_dict()["angles"]
    return sr.astype(np.float32), info


# ---------------------------------------------------------------------------------------------
# data sets on disk
# ---------------------------------------------------------------------------------------------
def _write_one(job) -> tuple[str, float, float]:
    folder, split, index, name, cfg_json, seed = job
    from srredsim.tiff import write_sr_image, write_tiff

    cfg = SimulationConfig.model_validate_json(cfg_json)
    stack = simulate_stack(cfg, seed=(seed, index))
    folder = Path(folder)
    px = cfg.optics.pixel_size_um
    write_tiff(folder / f"{split}x" / f"{name}.tif", stack.raw, pixel_size_um=px, axes="ZYX")
    write_sr_image(folder / f"{split}y" / f"{name}.tif", stack.targets[cfg.target], raw_pixel_size_um=px)
    write_sr_image(folder / "truth" / f"{name}.tif", stack.truth, raw_pixel_size_um=px)
    stack.params["name"] = name
    stack.params["split"] = "train" if split == "train" else "test"
    with atomic_path(folder / "params" / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(stack.params, indent=1) + "\n")
    return name, stack.params["photons"]["mean"], stack.params["photons"]["peak"]


def simulate_dataset(out: str | os.PathLike, cfg: SimulationConfig, count: int,
                     test_count: int = 0, seed: int = 0, workers: int = 1,
                     overwrite: bool = False, progress: bool = True) -> Path:
    """Write a training folder: ``trainx/ trainy/ [testx/ testy/] truth/ params/`` and
    ``simulation.json``. Stack ``i`` uses seed ``(seed, i)`` (tests continue the index), so the
    files do not depend on ``workers``. The folder appears only when complete."""
    if count < 1:
        raise SrredsimError(f"--count must be at least 1, got {count}")
    if test_count < 0:
        raise SrredsimError(f"--test-count must be ≥ 0, got {test_count}")
    if workers < 1:
        raise SrredsimError(f"--workers must be at least 1, got {workers}")
    check_sampling(cfg.optics)
    out = Path(out)
    cfg_json = cfg.model_dump_json()
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for sub in ["trainx", "trainy", "truth", "params"] + (["testx", "testy"] if test_count else []):
            (tmp / sub).mkdir()
        jobs = [(str(tmp), "train", i, f"sim_{i:05d}", cfg_json, seed) for i in range(count)]
        jobs += [(str(tmp), "test", count + j, f"test_{j:05d}", cfg_json, seed) for j in range(test_count)]
        summary = _run_jobs(jobs, workers, progress)
        meta = {"config": json.loads(cfg_json), "seed": seed, "count": count,
                "test_count": test_count, "stacks": [
                    {"name": n, "photons_mean": pm, "photons_peak": pk} for n, pm, pk in summary]}
        (tmp / "simulation.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def _run_jobs(jobs, workers: int, progress: bool):
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="simulate", unit="stack", disable=not progress)
    results = []
    try:
        if workers == 1 or len(jobs) == 1:
            for job in jobs:
                results.append(_write_one(job))
                bar.update()
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
                for res in pool.imap(_write_one, jobs):
                    results.append(res)
                    bar.update()
    finally:
        bar.close()
    return results
