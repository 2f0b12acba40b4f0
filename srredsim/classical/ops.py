"""The Fourier transforms and image filters of the classical path, in numpy alone.

Why not scipy: every ``srredsim predict`` looks at the stack with the classical pattern
estimator before the network runs (:func:`srredsim.datacheck.first_look_check`), and importing
``scipy.fft`` and ``scipy.ndimage`` took 0.26-0.30 s on the 2-core machines here -- twice the
look itself, on the command's critical path (docs/runtime.md, "What the whole command spends").
numpy ships the same FFT library (pocketfft), and the four filters the estimator needs are a few
lines each. scipy stays a dependency for the rest of srredsim (simulation, metrics, charts).

One numpy detail decides the speed of the forward transforms: with its default normalisation,
numpy 2.4 computes a single-precision forward FFT pass by pass in double precision (casting the
data to complex128 and back around each pass; 4-7x slower than its inverse at 256², which scales
by 1/n in single precision -- benchmarks/classical_ops.py). So the forward transforms here ask
for ``norm="forward"``, which takes the single-precision kernel, and multiply the result by n again
(exact for power-of-two sizes). They then compute in the precision scipy.fft computed in before.

The filters follow scipy.ndimage's conventions (window placement, kernel truncation, arithmetic
in float64 with each pass rounded to the input's type), so the estimator's results are those of
the scipy version to within float rounding (tests/classical/test_ops.py compares them).
"""

from __future__ import annotations

import numpy as np


# ---- Fourier transforms over the last two axes ------------------------------------------------
def fft2(a: np.ndarray) -> np.ndarray:
    """Forward 2-D FFT (unnormalised), complex64 for single-precision input."""
    out = np.fft.fft2(a, norm="forward")
    out *= a.shape[-2] * a.shape[-1]
    return out


def ifft2(a: np.ndarray) -> np.ndarray:
    """Inverse 2-D FFT (scaled by 1/n, as numpy's and scipy's default)."""
    return np.fft.ifft2(a)


def rfft2(a: np.ndarray) -> np.ndarray:
    """Forward 2-D FFT of a real array (unnormalised): the non-negative half of the last axis."""
    out = np.fft.rfft2(a, norm="forward")
    out *= a.shape[-2] * a.shape[-1]
    return out


def irfft2(a: np.ndarray, s: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`rfft2` onto a real ``s``-shaped grid."""
    return np.fft.irfft2(a, s=s)


# ---- filters (scipy.ndimage's conventions) ------------------------------------------------------
def _window(size: int) -> tuple[int, int]:
    """Pixels before and after the centre of a ``size``-wide window (scipy's origin 0)."""
    if size < 1:
        raise ValueError(f"filter size must be at least 1, got {size}")
    before = size // 2
    return before, size - before - 1


def _padded(x: np.ndarray, axis: int, before: int, after: int, mode: str) -> np.ndarray:
    pad = [(0, 0)] * x.ndim
    pad[axis] = (before, after)
    return np.pad(x, pad, mode={"wrap": "wrap", "nearest": "edge"}[mode])


def _shifted(ext: np.ndarray, axis: int, start: int, n: int) -> np.ndarray:
    """The view ``ext[start : start + n]`` along ``axis``."""
    index = [slice(None)] * ext.ndim
    index[axis] = slice(start, start + n)
    return ext[tuple(index)]


def _correlate_wrap(x: np.ndarray, taps: np.ndarray, before: int) -> np.ndarray:
    """``x`` (2-D) correlated with ``taps`` along each axis in turn, periodic borders, the window
    reaching ``before`` pixels back (scipy's origin 0); float64 arithmetic, each pass rounded to
    ``x``'s type, as scipy.ndimage does."""
    after = taps.size - 1 - before
    out = np.asarray(x)
    for axis in (0, 1):
        ext = _padded(out.astype(np.float64), axis, before, after, "wrap")
        n = out.shape[axis]
        acc = taps[0] * _shifted(ext, axis, 0, n)
        tmp = np.empty_like(acc)
        for j in range(1, taps.size):
            np.multiply(_shifted(ext, axis, j, n), taps[j], out=tmp)
            acc += tmp
        out = acc.astype(x.dtype)
    return out


def gaussian_filter_wrap(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian blur of a 2-D image with periodic borders, as ``ndimage.gaussian_filter(x, sigma,
    mode="wrap")``: the kernel reaches ``int(truncate*sigma + 0.5)`` pixels and sums to 1."""
    radius = int(truncate * float(sigma) + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / float(sigma)) ** 2)
    return _correlate_wrap(x, taps / taps.sum(), radius)


def uniform_filter_wrap(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size`` x ``size`` window with periodic borders, as
    ``ndimage.uniform_filter(x, size, mode="wrap")``."""
    before, _ = _window(size)
    return _correlate_wrap(x, np.full(size, 1.0 / size), before)


def maximum_filter(x: np.ndarray, size: tuple[int, int], mode: tuple[str, str]) -> np.ndarray:
    """Maximum over a ``size[0]`` x ``size[1]`` window of a 2-D array, each axis extended by its
    ``mode`` ("nearest": the edge value repeated; "wrap": periodic), as ``ndimage.maximum_filter``."""
    out = np.asarray(x)
    for axis in (0, 1):
        before, after = _window(int(size[axis]))
        if before == after == 0:
            continue
        ext = _padded(out, axis, before, after, mode[axis])
        n = out.shape[axis]
        out = _shifted(ext, axis, 0, n).copy()
        for j in range(1, before + after + 1):
            np.maximum(out, _shifted(ext, axis, j, n), out=out)
    return out


def bilinear_wrap(z: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """``z`` (``(..., h, w)``: one periodic image or a stack of them) interpolated linearly at the
    points ``(yy, xx)`` (pixel coordinates of the last two axes), as ``ndimage.map_coordinates(z,
    [yy, xx], order=1, mode="grid-wrap")`` for each image. Result: ``(..., *yy.shape)``, ``z``'s
    type. A stack shares the points' weights and indices, which cost as much as one image's gathers."""
    *lead, h, w = z.shape
    yy = np.asarray(yy, np.float64)
    xx = np.asarray(xx, np.float64)
    flat = z.reshape(-1, h * w).astype(np.float64)
    out = np.empty((flat.shape[0], yy.size), z.dtype)
    ys, xs = yy.ravel(), xx.ravel()
    for lo in range(0, ys.size, _CHUNK):  # a chunk's temporaries stay in the cache
        y, x = ys[lo:lo + _CHUNK], xs[lo:lo + _CHUNK]
        fy, fx = np.floor(y), np.floor(x)
        ty, tx = y - fy, x - fx
        iy0 = fy.astype(np.intp)
        iy0 %= h
        ix0 = fx.astype(np.intp)
        ix0 %= w
        iy1 = iy0 + 1
        iy1[iy1 == h] = 0
        ix1 = ix0 + 1
        ix1[ix1 == w] = 0
        iy0 *= w
        iy1 *= w
        w11 = ty * tx
        corners = ((iy0 + ix0, 1.0 - ty - tx + w11), (iy0 + ix1, tx - w11), (iy1 + ix0, ty - w11),
                   (iy1 + ix1, w11))
        acc, part = np.empty(y.size), np.empty(y.size)
        for image, o in zip(flat, out):
            acc.fill(0.0)
            for index, weight in corners:
                np.take(image, index, out=part)
                part *= weight
                acc += part
            o[lo:lo + _CHUNK] = acc
    return out.reshape(*lead, *yy.shape)


_CHUNK = 16384  # points per pass of bilinear_wrap: its ten temporaries then fit a core's L2 cache
