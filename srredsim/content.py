"""Sample content that widefield data cannot explain: what makes a network learn SIM.

A network trained only on a few simple structure families (filaments, rings, beads) can score
well from widefield data alone: it recognises the family and draws the fine detail from what it
learned about the family, not from the illumination pattern (docs/sim_information.md). The
families here carry sub-diffraction detail whose *position and phase are random*, so no prior
can guess it and the only way to recover it is to demodulate the structured illumination:

* ``textures`` -- Gaussian random fields with a power-law spectrum (``1/f^β``, β 1-3, the
  statistics of natural images that ML-SIM trains on), turned into positive intensities by one
  of four random maps: log-normal, sparse blobs (thresholded), thin random contour lines
  (the field's level sets: curvy membranes of random spacing) or ridges;
* ``points`` -- random point clouds whose density spans two decades (isolated emitters to
  texture-like crowds), log-normal brightness;
* ``gratings`` -- patches of sinusoidal or thin-line gratings at random period (90-400 nm),
  orientation and phase under soft random envelopes. A grating finer than the widefield limit
  is invisible in widefield except for its mean; only the pattern reveals it. (Isolated line
  *pairs* are deliberately absent: they are the resolution test chart, and a network that has
  seen them learns their shape -- docs/architecture.md, section 8.)
* ``generic`` -- a field mixing a random subset of the above with the biological families of
  :mod:`srredsim.simulate` (filaments, vesicles, beads) at random weights.

Every renderer works on a periodic ``(m, m)`` grid of pixel ``px_um`` (the simulator's fine grid)
and returns a non-negative float32 image (before the simulator's label blur).
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

GENERIC_PARTS = ("textures", "points", "gratings", "filaments", "vesicles", "beads")
# probability that each part enters a generic field (at least one always does)
GENERIC_PROBABILITY = {"textures": 0.6, "points": 0.45, "gratings": 0.35,
                       "filaments": 0.35, "vesicles": 0.25, "beads": 0.1}


def _radial_cycles(m: int, px_um: float) -> np.ndarray:
    fy = np.fft.fftfreq(m, px_um).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(m, px_um).astype(np.float32)[None, :]
    return np.sqrt(fy * fy + fx * fx)


def gaussian_field(rng: np.random.Generator, m: int, px_um: float, beta: float,
                   corner_cyc: float = 0.3) -> np.ndarray:
    """Zero-mean, unit-variance periodic random field with power spectrum ``(f + f0)^-β``."""
    f = _radial_cycles(m, px_um)
    amp = (f + np.float32(corner_cyc)) ** np.float32(-beta / 2)
    amp[0, 0] = 0.0
    noise = rng.standard_normal(amp.shape, dtype=np.float32) + 1j * rng.standard_normal(amp.shape, dtype=np.float32)
    g = sfft.irfft2(noise * amp, s=(m, m)).astype(np.float32)
    g -= g.mean()
    std = float(g.std())
    return g / np.float32(std if std > 0 else 1.0)


def render_texture(rng: np.random.Generator, m: int, px_um: float, density: float = 1.0) -> np.ndarray:
    """One random texture (see module docstring); ``density`` shifts the spectrum to finer detail."""
    beta = float(rng.uniform(1.0, 3.0))
    g = gaussian_field(rng, m, px_um, beta, corner_cyc=0.3 * density)
    mode = rng.choice(["lognormal", "sparse", "contours", "ridges"], p=[0.3, 0.25, 0.3, 0.15])
    if mode == "lognormal":
        out = np.exp(np.float32(rng.uniform(0.4, 1.4)) * g)
    elif mode == "sparse":
        out = np.maximum(g - np.float32(rng.uniform(0.0, 1.8)), 0) ** np.float32(rng.uniform(0.7, 1.5))
    elif mode == "contours":  # thin lines along random level sets: curvy membranes
        level = np.float32(rng.uniform(-0.8, 0.8))
        width = np.float32(rng.uniform(0.04, 0.25))
        out = np.exp(-((g - level) / width) ** 2)
    else:  # ridges: bright crests of a band-limited field
        out = np.maximum(g, 0) ** np.float32(rng.uniform(2.0, 4.0))
    out = out.astype(np.float32)
    if rng.random() < 0.5:  # patchy labelling: modulate by a smooth random envelope
        env = gaussian_field(rng, m, px_um, 4.0, corner_cyc=0.05)
        out *= 1.0 / (1.0 + np.exp(-np.float32(rng.uniform(1, 4)) * (env + np.float32(rng.uniform(-0.5, 1.0)))))
    return out


def render_points(rng: np.random.Generator, m: int, px_um: float, density: float = 1.0) -> np.ndarray:
    """A random point cloud: 1-100 emitters per µm² (log-uniform, times ``density``)."""
    from srredsim.simulate import _splat

    area = (m * px_um) ** 2
    per_um2 = float(np.exp(rng.uniform(np.log(1.0), np.log(100.0)))) * density
    count = max(1, int(rng.poisson(per_um2 * area)))
    ys, xs = rng.uniform(0, m, count), rng.uniform(0, m, count)
    ws = rng.lognormal(0.0, 0.5, count).astype(np.float32)
    return _splat(m, ys, xs, ws)


def render_gratings(rng: np.random.Generator, m: int, px_um: float, density: float = 1.0) -> np.ndarray:
    """Patches of gratings: period 90-400 nm (log-uniform), any orientation, soft envelopes."""
    size_um = m * px_um
    count = max(1, int(rng.poisson(density * size_um ** 2 / 12.0)))
    yy, xx = np.meshgrid(np.arange(m, dtype=np.float32) * px_um, np.arange(m, dtype=np.float32) * px_um,
                         indexing="ij")
    out = np.zeros((m, m), np.float32)
    for _ in range(count):
        period = float(np.exp(rng.uniform(np.log(0.09), np.log(0.40))))
        theta = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        wave = 0.5 * (1 + np.cos(2 * np.pi * (np.cos(theta) * xx + np.sin(theta) * yy) / period + phase))
        sharp = rng.choice([1.0, 4.0, 16.0])  # sinusoid, or thinner lines
        wave = wave ** np.float32(sharp)
        cy, cx = rng.uniform(0, size_um, 2)
        dy = (yy - cy + size_um / 2) % size_um - size_um / 2  # periodic distance to the centre
        dx = (xx - cx + size_um / 2) % size_um - size_um / 2
        sy, sx = rng.uniform(0.4, 2.0, 2)
        env = np.exp(-0.5 * ((dy / sy) ** 2 + (dx / sx) ** 2) ** rng.uniform(1.0, 3.0))
        out += (wave * env * np.float32(rng.uniform(0.3, 1.0))).astype(np.float32)
    return out


def _normalised(img: np.ndarray) -> np.ndarray:
    scale = float(np.quantile(img, 0.995)) or float(img.max()) or 1.0
    return img / np.float32(scale)


def render_generic(rng: np.random.Generator, m: int, px_um: float, density: float = 1.0) -> np.ndarray:
    """A field mixing a random subset of all families at random weights."""
    from srredsim.simulate import render_structures

    chosen = [p for p in GENERIC_PARTS if rng.random() < GENERIC_PROBABILITY[p]]
    if not chosen:
        chosen = [str(rng.choice(GENERIC_PARTS[:3]))]
    out = np.zeros((m, m), np.float32)
    for part in chosen:
        img = render_structures(rng, part, m, px_um, density * float(np.exp(rng.uniform(-0.5, 0.5))))
        out += _normalised(img) * np.float32(rng.uniform(0.25, 1.0))
    return out


RENDERERS = {"textures": render_texture, "points": render_points, "gratings": render_gratings,
             "generic": render_generic}
