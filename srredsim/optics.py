"""Optical transfer function and frequency grids, shared by the simulator and the reconstruction.

Units and conventions
---------------------
* Spatial frequencies are in **cycles/µm** in the sample plane, or in **FFT pixels** (cycles per
  field of view) for an ``n``-pixel square image with pixel size ``px``:
  ``k_fft = k_cyc * n * px``. FFT pixels are the same number on the raw grid and on the 2x grid,
  because both cover the same field of view.
* The incoherent cutoff is ``k_c = 2 NA / λ`` (λ = emission wavelength).
* The OTF model is the ideal circular-pupil incoherent OTF
  ``(2/π)(acos ρ − ρ sqrt(1 − ρ²))`` with ``ρ = |k| / k_c``, optionally multiplied by a damping
  ``a^ρ`` (fairSIM's "attenuation" ``a`` of the OTF approximation; ``a = 1`` is ideal) and, for
  the simulator, by the effect of a radially symmetric pupil aberration (defocus + primary
  spherical, RMS in waves), computed by pupil autocorrelation.
* Pattern directions are angles in radians from the +x axis (image columns), measured towards +y
  (image rows); a pattern vector ``(ky, kx)`` is stored row-first like numpy indices.

Optics are described by :class:`srredsim.config.OpticsConfig` (which holds the defaults);
:func:`make_optics` builds one from loose values and :func:`resolve_optics` from a command's
flags, the data file and a model, both with a one-line :class:`~srredsim.errors.SrredsimError`
for unphysical input.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError

__all__ = [
    "OpticsConfig", "make_optics", "resolve_optics", "check_sampling", "sampling_warning", "undersampling",
    "nyquist_pixel_um", "UNDERSAMPLING_TOLERANCE", "cutoff_cycles_per_um", "cutoff_fft_px",
    "cycles_to_fft_px", "fft_px_to_cycles", "freq_grid", "radial_freq", "ideal_otf",
    "otf_profile", "otf_2d", "apodization", "pattern_vector", "pattern_angles",
]


def make_optics(na: float | None = None, wavelength_nm: float | None = None, pixel_size_um: float | None = None,
                refractive_index: float | None = None, angles: int | None = None, phases: int | None = None,
                beams: int | None = None) -> OpticsConfig:
    """Build a validated :class:`OpticsConfig`; unphysical values raise a one-line error.

    A value left at None takes the default of :class:`OpticsConfig` (the one place optics
    defaults are written).
    """
    given = {"na": na, "wavelength_nm": wavelength_nm, "pixel_size_um": pixel_size_um,
             "refractive_index": refractive_index, "angles": angles, "phases": phases, "beams": beams}
    return _build({k: v for k, v in given.items() if v is not None})


def resolve_optics(given: dict, *, file_pixel_size_um: float | None = None,
                   base: OpticsConfig | None = None) -> OpticsConfig:
    """Optics for a command: the values ``given`` (flags), else the pixel size the data file states,
    else ``base`` (e.g. the optics a model was trained for), else the defaults of :class:`OpticsConfig`."""
    values = base.model_dump() if base is not None else {}
    if file_pixel_size_um and "pixel_size_um" not in given:
        values["pixel_size_um"] = float(file_pixel_size_um)
    values.update(given)
    return _build(values)


def _build(values: dict) -> OpticsConfig:
    from pydantic import ValidationError

    defaults = OpticsConfig()
    get = lambda k: values.get(k, getattr(defaults, k))  # noqa: E731
    for name, key in (("NA", "na"), ("wavelength", "wavelength_nm"), ("pixel size", "pixel_size_um"),
                      ("refractive index", "refractive_index")):
        value = get(key)
        if value is None or not math.isfinite(float(value)):
            raise SrredsimError(f"optics: {name} must be a finite number, got {value}")
    if get("pixel_size_um") <= 0:
        raise SrredsimError(f"optics: pixel size must be positive, got {get('pixel_size_um')} µm")
    if get("na") <= 0:
        raise SrredsimError(f"optics: NA must be positive, got {get('na')}")
    if get("na") >= get("refractive_index"):
        raise SrredsimError(
            f"optics: NA {get('na')} must be smaller than the refractive index {get('refractive_index')}")
    try:
        return OpticsConfig(**values)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msgs.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", "invalid"))
        raise SrredsimError("optics: " + "; ".join(msgs)) from None


def cutoff_cycles_per_um(optics: OpticsConfig) -> float:
    """Incoherent (widefield) OTF cutoff ``2 NA / λ`` in cycles/µm."""
    return 2.0 * optics.na / (optics.wavelength_nm * 1e-3)


def cycles_to_fft_px(k_cyc, n: int, pixel_size_um: float):
    """Convert cycles/µm to FFT pixels of an ``n``-pixel image with the given pixel size."""
    return np.asarray(k_cyc, dtype=float) * n * pixel_size_um


def fft_px_to_cycles(k_px, n: int, pixel_size_um: float):
    """Convert FFT pixels of an ``n``-pixel image to cycles/µm."""
    return np.asarray(k_px, dtype=float) / (n * pixel_size_um)


def cutoff_fft_px(optics: OpticsConfig, n: int) -> float:
    """Widefield cutoff in FFT pixels for an ``n``-pixel raw image."""
    return float(cutoff_cycles_per_um(optics) * n * optics.pixel_size_um)


# Real systems are often built a little under Nyquist for the widefield passband (e.g. an EMCCD
# pixel of 86.7 nm behind NA 1.49 at 515 nm: 0.3 % above λ/(4 NA)); the few frequencies just
# under the cutoff that alias carry almost no signal (the OTF is ~0 there), so such data
# reconstruct well. Beyond this margin the pattern peaks themselves (|k| ≈ 0.95 k_c) approach
# the raw Nyquist frequency and estimation fails: refuse.
UNDERSAMPLING_TOLERANCE = 0.05


def nyquist_pixel_um(optics: OpticsConfig) -> float:
    """The largest raw pixel that samples the widefield passband: ``λ / (4 NA)`` in µm."""
    return optics.wavelength_nm * 1e-3 / (4 * optics.na)


def undersampling(optics: OpticsConfig) -> float:
    """How far the pixel lies above ``λ/(4 NA)``, as a fraction (0.003 = 0.3 %); ≤ 0 is sampled."""
    return optics.pixel_size_um / nyquist_pixel_um(optics) - 1.0


def sampling_warning(optics: OpticsConfig) -> str | None:
    """One line when the raw pixels slightly undersample the OTF (a warning, not an error);
    ``None`` when they sample it."""
    over = undersampling(optics)
    if over <= 0:
        return None
    return (f"pixel size {optics.pixel_size_um * 1000:.1f} nm is {100 * over:.1f} % above "
            f"λ/(4 NA) = {nyquist_pixel_um(optics) * 1000:.1f} nm: the raw frames slightly "
            "undersample the OTF (frequencies just under the cutoff alias; usually harmless)")


def check_sampling(optics: OpticsConfig) -> str | None:
    """Refuse pixels that grossly undersample the widefield passband (more than
    :data:`UNDERSAMPLING_TOLERANCE` above ``λ/(4 NA)``: the pattern peaks would alias); return
    the one-line warning of :func:`sampling_warning` for slight undersampling, else ``None``."""
    if undersampling(optics) > UNDERSAMPLING_TOLERANCE:
        nyquist = 0.5 / optics.pixel_size_um
        kc = cutoff_cycles_per_um(optics)
        raise SrredsimError(
            f"optics: pixel size {optics.pixel_size_um} µm undersamples the OTF (cutoff "
            f"{kc:.2f} cycles/µm ≥ Nyquist {nyquist:.2f}); SIM needs pixel size < "
            f"λ/(4 NA) = {nyquist_pixel_um(optics):.4f} µm (up to "
            f"{100 * UNDERSAMPLING_TOLERANCE:g} % above it is accepted with a warning)")
    return sampling_warning(optics)


def freq_grid(shape: tuple[int, int], pixel_size_um: float, real: bool = False,
              dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies ``(fy, fx)`` in cycles/µm of an FFT of ``shape``, broadcastable 2-D arrays.

    With ``real`` the grid matches ``numpy.fft.rfft2`` (last axis halved).
    """
    ny, nx = shape
    fy = np.fft.fftfreq(ny, d=pixel_size_um).astype(dtype)[:, None]
    fx = (np.fft.rfftfreq(nx, d=pixel_size_um) if real else np.fft.fftfreq(nx, d=pixel_size_um))
    return fy, fx.astype(dtype)[None, :]


def radial_freq(shape: tuple[int, int], pixel_size_um: float, real: bool = False,
                shift_cyc: tuple[float, float] = (0.0, 0.0), dtype=np.float32) -> np.ndarray:
    """``|f + shift|`` in cycles/µm on an FFT grid (``shift`` = (ky, kx) in cycles/µm)."""
    fy, fx = freq_grid(shape, pixel_size_um, real=real, dtype=dtype)
    return np.sqrt((fy + dtype(shift_cyc[0])) ** 2 + (fx + dtype(shift_cyc[1])) ** 2)


def ideal_otf(rho: np.ndarray) -> np.ndarray:
    """Ideal incoherent circular-pupil OTF at normalised frequency ``rho = |k|/k_c`` (0 beyond 1)."""
    rho = np.asarray(rho)
    dt = rho.dtype if rho.dtype.kind == "f" else np.float64
    r = np.clip(rho, 0.0, 1.0)
    val = (2.0 / np.pi) * (np.arccos(r) - r * np.sqrt(1.0 - r * r))
    return np.where(rho < 1.0, val, 0.0).astype(dt, copy=False)


@functools.lru_cache(maxsize=64)
def _aberrated_profile(defocus_waves: float, spherical_waves: float, samples: int = 512
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Radial OTF profile of a circular pupil with defocus and spherical aberration (RMS waves).

    Computed once per aberration by 2-D pupil autocorrelation (|FFT|² of the pupil's PSF) and
    tabulated against ρ; the result is normalised to 1 at ρ = 0.
    """
    n = 256
    radius = 56.0  # pupil radius in pixels; OTF support = 2 * radius < n / 2 avoids wrap-around
    y, x = np.indices((n, n)) - n // 2
    r = np.hypot(y, x) / radius
    inside = r <= 1.0
    # Zernike (RMS-normalised): defocus sqrt(3)(2r²−1), primary spherical sqrt(5)(6r⁴−6r²+1)
    w = defocus_waves * math.sqrt(3) * (2 * r ** 2 - 1) + spherical_waves * math.sqrt(5) * (
        6 * r ** 4 - 6 * r ** 2 + 1)
    pupil = np.where(inside, np.exp(2j * np.pi * w), 0.0)
    psf = np.abs(np.fft.ifft2(np.fft.ifftshift(pupil))) ** 2
    otf = np.fft.fftshift(np.real(np.fft.fft2(psf)))
    otf /= otf[n // 2, n // 2]
    # Radial average; the pupil is radially symmetric so the OTF is too.
    rr = np.hypot(y, x) / (2 * radius)
    bins = np.linspace(0, 1.0, samples)
    idx = np.clip(np.round(rr * (samples - 1)).astype(int), 0, samples - 1)
    sums = np.bincount(idx.ravel(), otf.ravel(), minlength=samples)
    counts = np.bincount(idx.ravel(), minlength=samples)
    prof = sums / np.maximum(counts, 1)
    prof[0] = 1.0
    prof[-1] = 0.0
    return bins, prof


@functools.lru_cache(maxsize=64)
def _profile_table(damping: float, defocus_waves: float, spherical_waves: float,
                   samples: int = 16385) -> tuple[np.ndarray, np.ndarray]:
    """The radial OTF tabulated on ``0 ≤ ρ ≤ 1`` (a lookup is several times faster than arccos;
    the nearest of 16385 samples is within 2e-4 of the exact value)."""
    rho = np.linspace(0.0, 1.0, samples)
    if defocus_waves == 0.0 and spherical_waves == 0.0:
        val = ideal_otf(rho)
    else:
        bins, prof = _aberrated_profile(defocus_waves, spherical_waves)
        val = np.interp(rho, bins, prof)
    if damping != 1.0:
        val = val * np.power(damping, rho)
    val[-1] = 0.0
    return rho, val.astype(np.float32)


def otf_profile(rho: np.ndarray, damping: float = 1.0, defocus_waves: float = 0.0,
                spherical_waves: float = 0.0) -> np.ndarray:
    """OTF value at normalised frequency ``rho``: ideal (or aberrated) × ``damping ** rho``;
    zero for ``rho ≥ 1``."""
    if not 0.0 < damping <= 1.0:
        raise SrredsimError(f"OTF damping must lie in (0, 1], got {damping}")
    rho = np.asarray(rho)
    table_rho, table_val = _profile_table(float(damping), round(float(defocus_waves), 4),
                                          round(float(spherical_waves), 4))
    dt = rho.dtype if rho.dtype.kind == "f" else np.float64
    last = table_val.size - 1
    idx = np.minimum(rho * dt.type(last) + dt.type(0.5), last).astype(np.int32)
    return table_val.astype(dt, copy=False)[idx]


def otf_2d(optics: OpticsConfig, shape: tuple[int, int], pixel_size_um: float | None = None,
           real: bool = False, shift_cyc: tuple[float, float] = (0.0, 0.0), damping: float = 1.0,
           defocus_waves: float = 0.0, spherical_waves: float = 0.0,
           dtype=np.float32) -> np.ndarray:
    """OTF on an FFT grid of ``shape`` (unshifted layout), optionally centred at ``-shift``.

    ``otf_2d(..., shift_cyc=k)[f]`` is ``OTF(f + k)``. ``pixel_size_um`` defaults to the raw
    pixel size of ``optics`` (pass half of it for the 2x grid).
    """
    px = optics.pixel_size_um if pixel_size_um is None else pixel_size_um
    rho = radial_freq(shape, px, real=real, shift_cyc=shift_cyc, dtype=dtype) / dtype(
        cutoff_cycles_per_um(optics))
    return otf_profile(rho, damping, defocus_waves, spherical_waves).astype(dtype, copy=False)


def apodization(rho: np.ndarray, bend: float = 0.9) -> np.ndarray:
    """fairSIM-style apodisation: ideal OTF shape at ``rho`` (relative to the apodisation cutoff),
    raised to ``bend``."""
    return np.power(ideal_otf(rho), bend)


def pattern_angles(angles: int, offset_rad: float = 0.0) -> np.ndarray:
    """``angles`` pattern directions equally spaced over 180°, starting at ``offset_rad``."""
    return offset_rad + np.pi * np.arange(angles) / angles


def pattern_vector(angle_rad: float, k_cyc: float, n: int, pixel_size_um: float
                   ) -> dict[str, object]:
    """A pattern vector as cycles/µm and FFT pixels (``(ky, kx)``) for an ``n``-pixel image."""
    ky, kx = k_cyc * math.sin(angle_rad), k_cyc * math.cos(angle_rad)
    return {
        "angle_rad": float(angle_rad),
        "k_cycles_per_um": [float(ky), float(kx)],
        "k_fft_px": [float(ky * n * pixel_size_um), float(kx * n * pixel_size_um)],
        "magnitude_cycles_per_um": float(k_cyc),
        "period_um": float(1.0 / k_cyc) if k_cyc else float("inf"),
    }
