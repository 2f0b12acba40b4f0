"""Inference on raw SIM stacks: normalisation, overlapping tiles with blending, any engine.

The network is fully convolutional, so large stacks are cut into overlapping windows. Every
window carries ``halo`` pixels of context on each side that touches another window (at least the
network's receptive radius, so a tile sees what the whole image would have shown it); the
windows' valid cores overlap by ``blend`` pixels and are cross-faded linearly there, so seams
cannot appear even where the context is not perfectly sufficient. All windows have the same size
(a multiple of the network's size rule), so they are batched. If the engine runs out of memory,
the window size is halved and prediction retried (CSBDeep's strategy).

Before any of that, the image is extended by ``halo`` pixels beyond each border by mirroring
(:data:`BORDER_MODE`, numpy's ``symmetric``: the edge pixel is repeated), and the extension is
cropped from the result. Border pixels then see context as interior ones do, and the result is
the one DeepImageJ (JDLL mirror-pads by the RDF's halo, ``Views.extendMirrorDouble``) and
bioimageio.core (the RDF's ``pad: symmetric``) give for an exported package. Which extension is
best near borders was measured: benchmarks/border_padding.py.

``predict_fn`` is any callable mapping a float32 batch ``(B, h, w, C)`` in network units to
``(B, 2h, 2w, 1)`` (or ``(B, 2h, 2w)``): a Keras model, an ONNX Runtime session, a SavedModel.

The tiling policy lives here, so every caller gets it: ``tile=None`` (the default everywhere)
predicts images up to :data:`WHOLE_IMAGE_MAX` pixels in one piece and larger ones in
:data:`DEFAULT_TILE`-pixel tiles (:func:`default_tile`); ``tile=0`` forces one piece; any other
number is the tile edge. :func:`predict_files` runs a model over many stacks one at a time.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from srredsim.config import NormalizationConfig
from srredsim.errors import SrredsimError
from srredsim.normalization import denormalize_output, normalize_raw

PredictFn = Callable[[np.ndarray], np.ndarray]

# Tiling policy: one piece up to this edge (a 1024^2 stack fits in a few GB on every engine), else tiles.
WHOLE_IMAGE_MAX = 1024
DEFAULT_TILE = 512


def default_tile(h: int, w: int) -> int | None:
    """The tile edge for an ``h x w`` raw image: None (one piece) up to WHOLE_IMAGE_MAX, else DEFAULT_TILE."""
    return None if max(h, w) <= WHOLE_IMAGE_MAX else DEFAULT_TILE


def resolve_tile(tile: int | None, h: int, w: int) -> int | None:
    """``tile`` as given by a caller: None = the policy, 0 = one piece, else the edge itself."""
    if tile is None:
        return default_tile(h, w)
    if tile < 0:
        raise SrredsimError(f"tile size must be positive (or 0 for the whole image), got {tile}")
    return tile or None


# How the image is extended beyond its borders (numpy.pad mode; None: not at all, the network's
# own zero padding). "symmetric" is what JDLL/DeepImageJ do and what exported packages declare.
BORDER_MODE = "symmetric"
BORDER_MODES = ("symmetric", "reflect", "edge", "constant")


def extend_border(x: np.ndarray, width: int, mode: str | None = BORDER_MODE) -> np.ndarray:
    """``(H, W, C)`` grown by ``width`` pixels on each side of y and x (``mode`` as numpy.pad)."""
    if not width or mode is None:
        return x
    if mode not in BORDER_MODES:
        raise SrredsimError(f"unknown border mode {mode!r} (use one of {', '.join(BORDER_MODES)})")
    return np.pad(x, ((width, width), (width, width), (0, 0)), mode=mode)


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
                       progress: Callable[[int], None] | None = None,
                       border: str | None = BORDER_MODE) -> np.ndarray:
    """Predict ``(2H, 2W)`` from a normalised ``(H, W, C)`` array, tiling when ``tile`` < H or W.

    ``tile`` is the window edge in raw pixels (including halo); None applies :func:`default_tile`,
    0 predicts the whole image in one piece. The image is first extended by ``halo`` pixels per
    side with ``border`` (see :data:`BORDER_MODE`).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise SrredsimError(f"expected (H, W, C), got shape {x.shape}")
    ext = halo if border is not None else 0
    x = extend_border(x, ext, border)
    h0, w0, _ = x.shape
    tile = resolve_tile(tile, h0, w0)
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
    return out[2 * ext: 2 * (h0 - ext), 2 * ext: 2 * (w0 - ext)]


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


def count_tiles(shape_hw: tuple[int, int], tile: int | None, halo: int, blend: int = 8, multiple: int = 1,
                border: str | None = BORDER_MODE) -> int:
    """How many windows :func:`predict_normalized` will run (``tile`` as there: None = the policy)."""
    h, w = shape_hw
    if border is not None:
        h, w = h + 2 * halo, w + 2 * halo
    tile = resolve_tile(tile, h, w)
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
                  batch_size: int = 1, progress=None, border: str | None = BORDER_MODE) -> np.ndarray:
    """Normalise a raw ``(C, H, W)`` stack, predict (tiled by the policy unless ``tile`` says
    otherwise), and map back to reference units.

    Normalisation statistics are computed on the whole stack before tiling, so tiled and
    whole-image prediction see the same numbers.
    """
    x = stack_to_hwc(normalize_raw(raw, norm))
    y = predict_normalized(predict_fn, x, tile=tile, halo=halo, blend=blend, multiple=multiple,
                           batch_size=batch_size, progress=progress, border=border)
    return denormalize_output(y, norm)


def predict_files(model, inputs, outputs, *, tile: int | None = None, halo: int | None = None,
                  batch_size: int = 1, pixel_size_um: float | None = None, progress=None, log=None):
    """Predict raw stack files one at a time (read, predict, write, then the next), so a folder of
    any size needs the memory of one stack.

    ``model`` is a loaded model handle (``.predict(raw, tile=, halo=, batch_size=, progress=)``,
    ``.frames``, ``.halo``, ``.size_multiple``, ``.pixel_size_um``). Every input's header is
    checked (frames, size, tiles) before the first prediction, so a bad file fails fast; pixel
    values (NaN/Inf, all zeros) are checked as each stack is read. Output
    pixel size: ``pixel_size_um`` (the user's) else the file's else the model's, halved. ``log`` gets
    the total tile count once the first stack has been read. Yields
    ``(input, output, sr_shape, raw_pixel_size_um)`` after each file is written.
    """
    from srredsim.tiff import read_raw_stack, read_stack_header, write_sr_image

    halo = model.halo if halo is None else halo
    headers = [read_stack_header(p, frames=model.frames) for p in inputs]
    plans = [count_tiles(h.shape[1:], tile, halo, 8, model.size_multiple) for h in headers]
    for i, (path, out) in enumerate(zip(inputs, outputs)):
        raw, meta = read_raw_stack(path, frames=model.frames)  # pixels: NaN/Inf are found here
        if not np.any(raw):
            raise SrredsimError(f"{path}: the stack is all zeros")
        if i == 0 and log:  # after the first stack passed, so a bad single file gives one error line only
            log(sum(plans))
        sr = model.predict(raw, tile=tile, halo=halo, batch_size=batch_size, progress=progress)
        px = pixel_size_um or meta.pixel_size_um or model.pixel_size_um
        write_sr_image(out, sr, raw_pixel_size_um=px)
        del raw
        yield path, out, sr.shape, px


def sampling_mismatch(data, model=None, model_pixel_size_um: float | None = None,
                      tolerance: float = 0.05) -> str | None:
    """A one-line warning when the data are sampled unlike the model's training data, else None.

    A network is tied to the OTF cutoff in cycles per raw pixel it was trained on
    (docs/architecture.md, section 8) and predict does not resample. ``data`` and ``model`` are
    :class:`~srredsim.config.OpticsConfig`; when only the model's pixel size is known (an exported
    artifact), the pixel sizes are compared.
    """
    from srredsim.optics import cutoff_cycles_per_um

    if model is not None:
        c_data = cutoff_cycles_per_um(data) * data.pixel_size_um
        c_model = cutoff_cycles_per_um(model) * model.pixel_size_um
        ratio = c_data / c_model
        if abs(ratio - 1) <= tolerance:
            return None
        return (f"the data's OTF cutoff is {c_data:.3f} cycles per raw pixel (NA {data.na:g}, "
                f"{data.wavelength_nm:g} nm, {data.pixel_size_um * 1000:.1f} nm pixels), the model was trained at "
                f"{c_model:.3f} ({ratio - 1:+.0%}); predict does not resample, so expect a worse result")
    if model_pixel_size_um:
        ratio = data.pixel_size_um / model_pixel_size_um
        if abs(ratio - 1) <= tolerance:
            return None
        return (f"the data's pixel size is {data.pixel_size_um * 1000:.1f} nm, the model's "
                f"{model_pixel_size_um * 1000:.1f} nm ({ratio - 1:+.0%}); predict does not resample, so expect "
                "a worse result")
    return None


def keras_predict_fn(model) -> PredictFn:
    """A predict function for a Keras model (no per-call retracing for same-shaped batches)."""

    def fn(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch))

    return fn
