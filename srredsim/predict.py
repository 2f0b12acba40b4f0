"""Inference on raw SIM stacks: normalisation, overlapping tiles with blending, any engine.

The network is fully convolutional, so large stacks are cut into overlapping windows. Every
window carries ``halo`` pixels of context on each side that touches another window (at least the
network's receptive radius, so a tile sees what the whole image would have shown it); the
windows' valid cores overlap by ``blend`` pixels and are cross-faded linearly there, so seams
cannot appear even where the context is not perfectly sufficient. All windows have the same size
(a multiple of the network's size rule), so they are batched. If the engine runs out of memory,
the window size is halved and prediction retried (CSBDeep's strategy).

``predict_fn`` is any callable mapping a float32 batch ``(B, h, w, C)`` in network units to
``(B, 2h, 2w, 1)`` (or ``(B, 2h, 2w)``): an engine of :mod:`srredsim.runtime` (Keras, SavedModel,
ONNX Runtime, OpenVINO) or any function.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from srredsim.config import NormalizationConfig
from srredsim.errors import SrredsimError
from srredsim.normalization import denormalize_output, normalize_raw

PredictFn = Callable[[np.ndarray], np.ndarray]


def receptive_halo(architecture: str, depth: int = 10, levels: int = 5) -> int:
    """Context (raw pixels) a tile needs on each side: the receptive radius, rounded up."""
    if architecture == "unet":
        m = 2 ** levels
        radius = 2 * (2 ** (levels + 1))  # two 3x3 convs per level, doubled at each scale
        return int(np.ceil(radius / m) * m)
    return int(2 * (2 * depth + 1) + 6)  # 3x3 layers at raw resolution, plus margin


def _positions(n: int, window: int, step: int) -> list[int]:
    if window >= n:
        return [0]
    pos = list(range(0, n - window, step))
    pos.append(n - window)
    return sorted(set(pos))


def _axis_weights(n: int, start: int, window: int, halo: int, blend: int) -> np.ndarray:
    """1-D weight of a window at ``start`` over its own extent (length ``window``)."""
    w = np.zeros(window, np.float32)
    lo = 0 if start == 0 else halo
    hi = window if start + window >= n else window - halo
    w[lo:hi] = 1.0
    if blend > 0:
        ramp = (np.arange(1, blend + 1, dtype=np.float32)) / (blend + 1)
        if start > 0:
            w[lo:lo + blend] = ramp[: max(0, min(blend, hi - lo))]
        if start + window < n:
            w[hi - blend:hi] = np.minimum(w[hi - blend:hi], ramp[::-1][: max(0, min(blend, hi - lo))])
    return w


def _call(predict_fn: PredictFn, batch: np.ndarray) -> np.ndarray:
    out = np.asarray(predict_fn(batch), dtype=np.float32)
    if out.ndim == 4:
        out = out[..., 0]
    return out


def predict_normalized(predict_fn: PredictFn, x: np.ndarray, tile: int | None = None,
                       halo: int = 48, blend: int = 8, multiple: int = 1, batch_size: int = 1,
                       progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Predict ``(2H, 2W)`` from a normalised ``(H, W, C)`` array, tiling when ``tile`` < H or W.

    ``tile`` is the window edge in raw pixels (including halo); None predicts the whole image.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise SrredsimError(f"expected (H, W, C), got shape {x.shape}")
    h0, w0, _ = x.shape
    # pad to the network's size multiple (U-Net) by reflection; cropped again at the end
    ph, pw = (-h0) % multiple, (-w0) % multiple
    if ph or pw:
        x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h0, w0) > max(ph, pw) else "edge")
    h, w, _ = x.shape
    while True:
        try:
            out = _predict_tiles(predict_fn, x, tile, halo, blend, multiple, batch_size, progress)
            break
        except Exception as exc:  # out of memory in any engine: split further
            if not _is_oom(exc):
                raise
            current = tile or max(h, w)
            new = max(multiple, (current // 2) // multiple * multiple)
            if new <= 2 * halo + blend or new == current:
                raise SrredsimError(f"out of memory even with {current}-pixel tiles") from None
            tile = new
    return out[: 2 * h0, : 2 * w0]


def _is_oom(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("resourceexhausted", "out of memory", "oom", "bad_alloc", "memoryerror"))


def _predict_tiles(predict_fn, x, tile, halo, blend, multiple, batch_size, progress):
    h, w, _ = x.shape
    if tile is None or (tile >= h and tile >= w):
        out = _call(predict_fn, x[None])[0]
        if progress:
            progress(1)
        return out
    win_h = min(h, max(multiple, tile // multiple * multiple))
    win_w = min(w, max(multiple, tile // multiple * multiple))
    _check_window(tile, (win_h, h), (win_w, w), halo=halo, blend=blend)
    step_h = max(1, win_h - 2 * halo - blend)
    step_w = max(1, win_w - 2 * halo - blend)
    ys, xs = _positions(h, win_h, step_h), _positions(w, win_w, step_w)
    acc = np.zeros((2 * h, 2 * w), np.float32)
    wsum = np.zeros((2 * h, 2 * w), np.float32)
    windows = [(y0, x0) for y0 in ys for x0 in xs]
    for i in range(0, len(windows), batch_size):
        chunk = windows[i:i + batch_size]
        batch = np.stack([x[y0:y0 + win_h, x0:x0 + win_w] for y0, x0 in chunk])
        preds = _call(predict_fn, batch)
        for (y0, x0), pred in zip(chunk, preds):
            wy = np.repeat(_axis_weights(h, y0, win_h, halo, blend), 2)
            wx = np.repeat(_axis_weights(w, x0, win_w, halo, blend), 2)
            wt = wy[:, None] * wx[None, :]
            acc[2 * y0:2 * (y0 + win_h), 2 * x0:2 * (x0 + win_w)] += wt * pred
            wsum[2 * y0:2 * (y0 + win_h), 2 * x0:2 * (x0 + win_w)] += wt
        if progress:
            progress(len(chunk))
    if np.any(wsum <= 0):
        raise AssertionError("tiling left pixels uncovered")  # a bug, not a user error
    return acc / wsum


def _check_window(tile, *pairs, halo, blend):
    for win, n in pairs:
        if win < n and win <= 2 * halo + blend:
            raise SrredsimError(f"tile size {tile} is too small for a halo of {halo} pixels and a blend of "
                                f"{blend}: use a tile above {2 * halo + blend} pixels or a smaller --halo")


def count_tiles(shape_hw: tuple[int, int], tile: int | None, halo: int, blend: int, multiple: int = 1) -> int:
    h, w = shape_hw
    h += (-h) % multiple
    w += (-w) % multiple
    if tile is None or (tile >= h and tile >= w):
        return 1
    win_h = min(h, max(multiple, tile // multiple * multiple))
    win_w = min(w, max(multiple, tile // multiple * multiple))
    _check_window(tile, (win_h, h), (win_w, w), halo=halo, blend=blend)
    ys = _positions(h, win_h, max(1, win_h - 2 * halo - blend))
    xs = _positions(w, win_w, max(1, win_w - 2 * halo - blend))
    return len(ys) * len(xs)


def stack_to_hwc(raw: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` raw stack -> ``(H, W, C)`` float32 network layout."""
    return np.moveaxis(np.asarray(raw, dtype=np.float32), 0, -1)


def predict_stack(predict_fn: PredictFn, raw: np.ndarray, norm: NormalizationConfig,
                  tile: int | None = None, halo: int = 48, blend: int = 8, multiple: int = 1,
                  batch_size: int = 1, progress=None) -> np.ndarray:
    """Normalise a raw ``(C, H, W)`` stack, predict (tiled), and map back to reference units.

    Normalisation statistics are computed on the whole stack before tiling, so tiled and
    whole-image prediction see the same numbers.
    """
    x = stack_to_hwc(normalize_raw(raw, norm))
    y = predict_normalized(predict_fn, x, tile=tile, halo=halo, blend=blend, multiple=multiple,
                           batch_size=batch_size, progress=progress)
    return denormalize_output(y, norm)

