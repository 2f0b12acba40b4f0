"""Intensity normalisation shared by training, prediction and export.

Two modes (stored in :class:`~srredsim.config.NormalizationConfig` with the model):

* ``global`` -- the paper's: ``x' = (x - x_min) / (x_max - x_min)`` with one min/max over the
  training raw stacks, likewise for references; the output is mapped back with
  ``y = y' * (y_max - y_min) + y_min``. In a bioimage.io package these are ``scale_linear``
  pre- and post-processing steps with fixed gain and offset.
* ``percentile`` -- per image: ``x' = (x - p_lo) / (p_hi - p_lo + eps)`` with the percentiles of
  the whole stack (all frames together); identical to bioimage.io's ``scale_range`` over the
  channel and space axes (eps = 1e-6). Outputs stay in normalised units.

The same arithmetic (float32, same eps) runs in Python, in the exported package and in Fiji, so
that all three give the same numbers.
"""

from __future__ import annotations

import numpy as np

from srredsim.config import NormalizationConfig
from srredsim.errors import SrredsimError

EPS = 1e-6  # bioimage.io scale_range's default epsilon


def percentile_range(a: np.ndarray, low: float, high: float) -> tuple[float, float]:
    lo, hi = np.percentile(np.asarray(a, dtype=np.float32), [low, high])
    return float(lo), float(hi)


def normalize_raw(x: np.ndarray, norm: NormalizationConfig) -> np.ndarray:
    """Scale a raw stack (any layout; statistics over the whole array) to network units."""
    x = np.asarray(x, dtype=np.float32)
    if norm.mode == "global":
        _require_stats(norm)
        gain, offset = raw_scale_linear(norm)
        return x * np.float32(gain) + np.float32(offset)
    lo, hi = percentile_range(x, norm.low_percentile, norm.high_percentile)
    return (x - np.float32(lo)) / np.float32(hi - lo + EPS)


def normalize_reference(y: np.ndarray, norm: NormalizationConfig) -> np.ndarray:
    """Scale a reference image to the network's output units."""
    y = np.asarray(y, dtype=np.float32)
    if norm.mode == "global":
        _require_stats(norm)
        span = norm.y_max - norm.y_min
        return (y - np.float32(norm.y_min)) / np.float32(span)
    lo, hi = percentile_range(y, norm.low_percentile, norm.high_percentile)
    return (y - np.float32(lo)) / np.float32(hi - lo + EPS)


def denormalize_output(y: np.ndarray, norm: NormalizationConfig) -> np.ndarray:
    """Map network output back to reference units (``global``); identity for ``percentile``."""
    y = np.asarray(y, dtype=np.float32)
    if norm.mode == "global":
        _require_stats(norm)
        gain, offset = output_scale_linear(norm)
        return y * np.float32(gain) + np.float32(offset)
    return y


def raw_scale_linear(norm: NormalizationConfig) -> tuple[float, float]:
    """(gain, offset) with ``x' = gain * x + offset`` for the ``global`` mode."""
    _require_stats(norm)
    span = norm.x_max - norm.x_min
    return 1.0 / span, -norm.x_min / span


def output_scale_linear(norm: NormalizationConfig) -> tuple[float, float]:
    """(gain, offset) with ``y = gain * y' + offset`` for the ``global`` mode."""
    _require_stats(norm)
    return norm.y_max - norm.y_min, norm.y_min


def _require_stats(norm: NormalizationConfig) -> None:
    if not norm.has_global_stats:
        raise SrredsimError("global normalisation needs x_min/x_max/y_min/y_max; this model has none")
    if norm.x_max <= norm.x_min or norm.y_max <= norm.y_min:
        raise SrredsimError("global normalisation statistics are degenerate (max <= min)")
