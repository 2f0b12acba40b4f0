"""Fourier resampling of raw stacks and results between microscopes' samplings.

A network learns the OTF cutoff in **cycles per raw pixel** it was trained on
(``2 NA / λ × pixel``; the shipped models: 0.43). A stack from a water objective (NA 1.2, 610 nm,
65 nm pixels: 0.26) shows the same structures on more pixels; resampling it onto pixels of
``cutoff / model cutoff`` times the size gives the network what it knows (issue 11: 25.1 → 28.1 dB).

The resampling is a band-limited interpolation over the same field of view: the stack's cosine
transform (DCT-II, i.e. the spectrum of its mirror-symmetric extension, so the borders do not
wrap around and ring) is cut or zero-padded to the new size and transformed back. Frequencies
below both grids' Nyquist frequencies are kept exactly: lossless inside the OTF support as long
as the cutoff stays below 0.5 cycles per pixel on both grids. The same linear map, written as
two small matrices (:func:`resampling_matrix`), can be embedded in an exported model graph.

Pixel centres sit at ``(i + ½)·pixel`` on every grid, so the raw grid, the model's grid and the
2x grids share one field of view: a result resampled back lies exactly on twice the user's grid.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from srredsim.errors import SrredsimError

MIN_SIZE = 8


def resampled_size(n: int, factor: float) -> int:
    """Pixels along an axis of ``n`` pixels after resampling by ``factor`` (new pixels per old)."""
    return max(MIN_SIZE, int(round(n * factor)))


@functools.lru_cache(maxsize=32)
def resampling_matrix(n_from: int, n_to: int) -> np.ndarray:
    """The ``(n_to, n_from)`` float64 matrix of the DCT-II resampling along one axis."""
    from scipy.fft import dct, idct

    if n_from < 1 or n_to < 1:
        raise SrredsimError(f"cannot resample between {n_from} and {n_to} pixels")
    keep = min(n_from, n_to)
    forward = dct(np.eye(n_from), type=2, norm="ortho", axis=0)[:keep]  # (keep, n_from)
    coeffs = np.zeros((n_to, n_from))
    coeffs[:keep] = forward
    return idct(coeffs, type=2, norm="ortho", axis=0) * math.sqrt(n_to / n_from)


def _resample_axis(x: np.ndarray, n_to: int, axis: int) -> np.ndarray:
    from scipy.fft import dct, idct

    n_from = x.shape[axis]
    if n_from == n_to:
        return x
    c = dct(x, type=2, norm="ortho", axis=axis)
    keep = min(n_from, n_to)
    shape = list(c.shape)
    shape[axis] = n_to
    out = np.zeros(shape, dtype=c.dtype)
    index = [slice(None)] * c.ndim
    index[axis] = slice(0, keep)
    out[tuple(index)] = c[tuple(index)]
    return idct(out, type=2, norm="ortho", axis=axis) * np.float32(math.sqrt(n_to / n_from))


def resample(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample the last two axes of ``images`` onto ``shape`` (same field of view), float32.
    Equal to applying :func:`resampling_matrix` along both axes, computed with fast cosine
    transforms."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim < 2:
        raise SrredsimError(f"expected images (..., H, W), got shape {x.shape}")
    if min(shape) < 1:
        raise SrredsimError(f"cannot resample onto {tuple(shape)}")
    out = _resample_axis(_resample_axis(x, int(shape[0]), x.ndim - 2), int(shape[1]), x.ndim - 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def resample_raw(stack: np.ndarray, from_cutoff: float, to_cutoff: float
                 ) -> tuple[np.ndarray, float]:
    """Resample a raw ``(frames, H, W)`` stack whose OTF cutoff is ``from_cutoff`` cycles per
    pixel onto pixels where it is ``to_cutoff``. Returns the stack and the factor (new pixels per
    old pixel, per axis; the new pixel size is the old one divided by it)."""
    for name, c in (("from", from_cutoff), ("to", to_cutoff)):
        if not 0 < c < 0.55:
            raise SrredsimError(f"resample: {name} cutoff must lie in (0, 0.55) cycles per pixel, got {c}")
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise SrredsimError(f"resample: expected (frames, H, W), got shape {stack.shape}")
    factor = from_cutoff / to_cutoff
    h, w = stack.shape[1:]
    shape = (resampled_size(h, factor), resampled_size(w, factor))
    out = resample(stack, shape)
    # the exact factor of the integer grid (per axis they differ by < 1/n; report the mean)
    return out, 0.5 * (shape[0] / h + shape[1] / w)


def resample_back(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2x result of a resampled stack back onto ``shape`` (twice the user's raw grid)."""
    return resample(image, shape)
