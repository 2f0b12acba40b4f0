"""Test input for a package and its cover image.

A package needs a test input (and the output the model gives for it) and a cover. When the user
does not give a raw stack (``--test-input``), a small synthetic SIM stack is made here from the
run's optics: filaments and dots on a 2x grid, sinusoidal illumination at ``angles x phases``,
blur by a Gaussian approximation of the PSF, 2x2 binning, Poisson and read noise. It is not a
physics benchmark (``srredsim simulate`` is); it only has to look like SIM data and be
reproducible (fixed seed). A RED-fairSIM package's test input is the classical reconstruction of
such a stack (:func:`synthetic_reconstruction`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError


def synthetic_raw_stack(optics: OpticsConfig, size: int = 128, seed: int = 0,
                        photons: float = 200.0) -> np.ndarray:
    """A ``(angles*phases, size, size)`` uint16 raw SIM stack, reproducible for a given seed."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    n = 2 * size  # fine grid
    fine_px = optics.pixel_size_um / 2
    truth = np.zeros((n, n), np.float32)
    # worm-like filaments
    for _ in range(max(4, size // 12)):
        pos = rng.uniform(0, n, 2)
        ang = rng.uniform(0, 2 * np.pi)
        for _ in range(4 * n):
            ang += rng.normal(0, 0.08)
            pos += (np.cos(ang), np.sin(ang))
            i, j = int(pos[0]) % n, int(pos[1]) % n
            truth[i, j] += 1.0
    # dots
    for _ in range(size // 4):
        i, j = rng.integers(0, n, 2)
        truth[i, j] += rng.uniform(1, 3)
    # PSF: Gaussian with the FWHM of the Airy disk, 0.51 lambda / NA
    fwhm_um = 0.51 * optics.wavelength_nm * 1e-3 / optics.na
    sigma = fwhm_um / 2.355 / fine_px
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) * fine_px
    cutoff = 2 * optics.na / (optics.wavelength_nm * 1e-3)  # cycles per um
    k = 0.8 * cutoff
    frames = []
    for a in range(optics.angles):
        theta = np.pi * a / optics.angles + 0.1
        kx, ky = k * np.cos(theta), k * np.sin(theta)
        for p in range(optics.phases):
            phi = 2 * np.pi * p / optics.phases
            pattern = 1 + 0.8 * np.cos(2 * np.pi * (kx * xx + ky * yy) + phi)
            img = ndimage.gaussian_filter(truth * pattern + 0.02, sigma, mode="wrap")
            img = img.reshape(size, 2, size, 2).sum(axis=(1, 3))
            frames.append(img)
    stack = np.stack(frames).astype(np.float64)
    stack *= photons / max(float(np.percentile(stack, 99.5)), 1e-12)
    stack = rng.poisson(stack) + rng.normal(100.0, 2.0, stack.shape)
    return np.clip(stack, 0, 65535).astype(np.uint16)


def synthetic_reconstruction(optics: OpticsConfig, size: int = 256, seed: int = 0, model_cfg=None,
                             photons: float = 200.0) -> np.ndarray:
    """A ``(1, size, size)`` float32 classical SIM reconstruction (what RED-Net reads): the
    reconstruction (:func:`srredsim.redfairsim.network_input`, pattern estimated; with the settings
    ``model_cfg`` records, else fairSIM's defaults) of :func:`synthetic_raw_stack` of ``size // 2``
    raw pixels. ``size`` must be even."""
    from srredsim.redfairsim import network_input, recon_options

    if size % 2:
        raise SrredsimError(f"a reconstruction on the 2x grid has an even size, not {size}")
    sr, _ = network_input(synthetic_raw_stack(optics, size // 2, seed=seed, photons=photons), optics,
                          opts=recon_options(model_cfg))
    return np.asarray(sr, np.float32)[None]


def crop_center(stack: np.ndarray, size: int, multiple: int = 1) -> np.ndarray:
    """Crop a ``(C, H, W)`` stack to at most ``size`` x ``size`` (a multiple of ``multiple``)."""
    _, h, w = stack.shape
    th = min(h, size) // multiple * multiple
    tw = min(w, size) // multiple * multiple
    if th < 1 or tw < 1:
        raise SrredsimError(f"test input of {h}x{w} pixels is smaller than the network's size multiple {multiple}")
    y0, x0 = (h - th) // 2, (w - tw) // 2
    return stack[:, y0:y0 + th, x0:x0 + tw]


def _to_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, np.float32)
    lo, hi = np.percentile(img, [0.5, 99.8])
    return (np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1) * 255).astype(np.uint8)


def write_cover(raw: np.ndarray, sr: np.ndarray, path: str | os.PathLike, scale: int = 2) -> Path:
    """A 2:1 PNG: the network input left, its output right. ``raw`` is the input ``(C, H, W)``:
    a raw stack shows as widefield (the mean of its frames, enlarged ``scale`` = 2x); RED-Net's one
    classical reconstruction (``scale`` 1) shows as it is."""
    from PIL import Image

    wf = np.asarray(raw, np.float32).mean(axis=0)
    wf2 = np.repeat(np.repeat(wf, scale, axis=0), scale, axis=1)
    sr = np.asarray(sr, np.float32)
    h = min(wf2.shape[0], sr.shape[0])
    w = min(wf2.shape[1], sr.shape[1])
    gap = np.full((h, max(2, w // 64)), 255, np.uint8)
    img = np.concatenate([_to_uint8(wf2[:h, :w]), gap, _to_uint8(sr[:h, :w])], axis=1)
    # at least 256 px high for a readable thumbnail, nearest neighbour keeps the pixels honest
    scale = max(1, int(np.ceil(256 / h)))
    pil = Image.fromarray(img)
    if scale > 1:
        pil = pil.resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
    path = Path(path)
    pil.save(path, format="PNG", optimize=True)
    return path
