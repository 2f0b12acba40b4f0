"""srredsim.classical.ops: numpy's FFTs and four filters in place of scipy's on the classical path.
Each is compared with the scipy function it replaces (scipy stays a dependency of srredsim)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft
from scipy import ndimage

from srredsim.classical import ops


def _rel(a, b) -> float:
    return float(np.abs(np.asarray(a, np.complex128) - b).max() / np.abs(b).max())


@pytest.mark.parametrize("shape", [(256, 256), (300, 300), (3, 64, 96), (243, 128)])
def test_the_transforms_are_scipys_to_rounding_in_the_same_precision(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    c = (x + 1j * rng.standard_normal(shape)).astype(np.complex64)
    s = shape[-2:]
    cases = [(ops.fft2(c), sfft.fft2(c)), (ops.ifft2(c), sfft.ifft2(c)), (ops.rfft2(x), sfft.rfft2(x)),
             (ops.irfft2(sfft.rfft2(x), s), sfft.irfft2(sfft.rfft2(x), s=s)), (ops.fft2(x), sfft.fft2(x))]
    for ours, theirs in cases:
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert _rel(ours, theirs) < 1e-6
    assert ops.fft2(c.astype(np.complex128)).dtype == np.complex128
    assert _rel(ops.fft2(c.astype(np.complex128)), sfft.fft2(c.astype(np.complex128))) < 1e-14


@pytest.mark.parametrize("sigma", [0.6, 1.0, 2.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_filter_wrap_is_ndimages(sigma, dtype):
    x = np.random.default_rng(3).random((40, 57)).astype(dtype)
    ours, theirs = ops.gaussian_filter_wrap(x, sigma), ndimage.gaussian_filter(x, sigma, mode="wrap")
    assert ours.dtype == x.dtype and ours.shape == x.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("size", [1, 4, 9])
def test_uniform_filter_wrap_is_ndimages(size):
    x = np.random.default_rng(4).random((33, 20)).astype(np.float32)
    ours, theirs = ops.uniform_filter_wrap(x, size), ndimage.uniform_filter(x, size, mode="wrap")
    assert ours.dtype == x.dtype
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=4 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("size", [(5, 13), (1, 4), (6, 2), (3, 1)])
def test_maximum_filter_is_ndimages_exactly(size):
    p = np.random.default_rng(5).random((17, 90)).astype(np.float32)
    ours = ops.maximum_filter(p, size, ("nearest", "wrap"))
    assert np.array_equal(ours, ndimage.maximum_filter(p, size=size, mode=("nearest", "wrap")))
    assert np.array_equal(ops.maximum_filter(p, size, ("wrap", "nearest")),
                          ndimage.maximum_filter(p, size=size, mode=("wrap", "nearest")))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bilinear_wrap_is_map_coordinates_order_1_grid_wrap(dtype):
    rng = np.random.default_rng(6)
    z = rng.random((3, 48, 40)).astype(dtype)
    # more points than one chunk; negative, beyond the edge, on the grid and in the last cell
    yy = rng.uniform(-100, 150, (ops._CHUNK // 50 + 7, 60))
    xx = rng.uniform(-100, 150, yy.shape)
    yy[0, :6] = [0, 47, 47.5, 48, -0.5, 12]
    xx[0, :6] = [39.9, 0, 3, 40, 1.25, -40]
    ours = ops.bilinear_wrap(z, yy, xx)
    assert ours.shape == (3, *yy.shape) and ours.dtype == z.dtype
    for image, mine in zip(z, ours):
        theirs = ndimage.map_coordinates(image, [yy.ravel(), xx.ravel()], order=1, mode="grid-wrap")
        np.testing.assert_allclose(mine.ravel(), theirs, rtol=0, atol=4 * np.finfo(dtype).eps)
    assert np.array_equal(ops.bilinear_wrap(z[1], yy, xx), ours[1])  # one image: the stack's own result
