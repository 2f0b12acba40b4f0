"""Inference on raw SIM stacks (and, for RED-fairSIM, on reconstructions): normalisation,
overlapping tiles with blending, any engine.

The network is fully convolutional, so large stacks are cut into overlapping windows. Every
window carries ``halo`` pixels of context on each side that touches another window (the context
the network needs, so a tile sees what the whole image would have shown it: a model handle's
halo is measured per model, :mod:`srredsim.runtime.halo`, within its receptive radius); the
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
``(B, s*h, s*w, 1)`` (or ``(B, s*h, s*w)``), where ``scale`` s is 2 for the networks that read the
raw stack (SR-REDSIM, U-Net: output on twice the raw grid) and 1 for the same-grid RED-Net of
RED-fairSIM (input: one classical reconstruction, output the same size): an engine of
:mod:`srredsim.runtime` (Keras, SavedModel, ONNX Runtime, OpenVINO) or any function. Tiles, halo
and blend are counted in input pixels; the output is assembled at ``scale`` times that.

The tiling policy lives here, so every caller gets it: ``tile=None`` (the default everywhere)
predicts images up to :data:`WHOLE_IMAGE_MAX` pixels in one piece and larger ones in
:data:`DEFAULT_TILE`-pixel tiles (:func:`default_tile`); ``tile=0`` forces one piece; any other
number is the tile edge. :func:`predict_files` runs a model over many stacks one at a time,
checking each stack and resampling it to the model's sampling (:mod:`srredsim.model_optics`);
for a RED-fairSIM model it reconstructs each raw stack classically first, or takes an already
reconstructed image as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

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
# What `srredsim predict --border` offers: the default, and "none" (no extension: the network's own
# zero padding, what it was trained with). "none" computes only the image itself -- (512+2*halo)^2
# vs 512^2 input pixels, 1.20-1.23x the work with the measured halos of 24-28 px -- and scored better within 4 px
# of the border and equal beyond 12 px (benchmarks/results/border_padding.md); the cost is that the
# outer band then differs from DeepImageJ's result, which always mirrors (docs/fiji.md, "Borders").
BORDER_CHOICES = {"symmetric": "symmetric", "none": None}


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


def _call(predict_fn: PredictFn, batch: np.ndarray, scale: int = 2) -> np.ndarray:
    """The network on one batch, as ``(B, scale*h, scale*w)``; a network whose output has another
    size than its metadata's scale says is a clear error, not a broadcasting failure later."""
    out = np.asarray(predict_fn(batch), dtype=np.float32)
    if out.ndim == 4:
        out = out[..., 0]
    expected = (batch.shape[0], scale * batch.shape[1], scale * batch.shape[2])
    if out.shape != expected:
        raise SrredsimError(f"the network returned {out.shape[-2]}x{out.shape[-1]} pixels for a "
                            f"{batch.shape[1]}x{batch.shape[2]} input, but its metadata says scale {scale} "
                            f"({expected[1]}x{expected[2]})")
    return out


def predict_normalized(predict_fn: PredictFn, x: np.ndarray, tile: int | None = None,
                       halo: int = 48, blend: int = 8, multiple: int = 1, batch_size: int = 1,
                       progress: Callable[[int], None] | None = None,
                       border: str | None = BORDER_MODE, scale: int = 2) -> np.ndarray:
    """Predict ``(scale*H, scale*W)`` from a normalised ``(H, W, C)`` array, tiling when ``tile``
    < H or W.

    ``tile`` is the window edge in input pixels (including halo); None applies
    :func:`default_tile`, 0 predicts the whole image in one piece. The image is first extended by
    ``halo`` pixels per side with ``border`` (see :data:`BORDER_MODE`). ``scale``: output pixels
    per input pixel (2: raw stack -> SR image; 1: RED-Net, same grid).
    """
    if scale not in (1, 2):
        raise SrredsimError(f"scale must be 1 or 2 (output pixels per input pixel), got {scale}")
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
            out = _predict_tiles(predict_fn, x, tile, halo, blend, multiple, batch_size, progress, scale)
            break
        except Exception as exc:  # out of memory in any engine: split further
            if not _is_oom(exc):
                raise
            current = tile or max(h, w)
            new = max(multiple, (current // 2) // multiple * multiple)
            if new <= 2 * halo + blend or new == current:
                raise SrredsimError(f"out of memory even with {current}-pixel tiles") from None
            tile = new
    return out[scale * ext: scale * (h0 - ext), scale * ext: scale * (w0 - ext)]


def _is_oom(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("resourceexhausted", "out of memory", "oom", "bad_alloc", "memoryerror"))


def _predict_tiles(predict_fn, x, tile, halo, blend, multiple, batch_size, progress, scale=2):
    h, w, _ = x.shape
    s = scale
    if tile is None or (tile >= h and tile >= w):
        out = _call(predict_fn, x[None], s)[0]
        if progress:
            progress(1)
        return out
    win_h = min(h, max(multiple, tile // multiple * multiple))
    win_w = min(w, max(multiple, tile // multiple * multiple))
    _check_window(tile, (win_h, h), (win_w, w), halo=halo, blend=blend)
    step_h = max(1, win_h - 2 * halo - blend)
    step_w = max(1, win_w - 2 * halo - blend)
    ys, xs = _positions(h, win_h, step_h), _positions(w, win_w, step_w)
    acc = np.zeros((s * h, s * w), np.float32)
    wsum = np.zeros((s * h, s * w), np.float32)
    windows = [(y0, x0) for y0 in ys for x0 in xs]
    for i in range(0, len(windows), batch_size):
        chunk = windows[i:i + batch_size]
        batch = np.stack([x[y0:y0 + win_h, x0:x0 + win_w] for y0, x0 in chunk])
        preds = _call(predict_fn, batch, s)
        for (y0, x0), pred in zip(chunk, preds):
            wy = np.repeat(_axis_weights(h, y0, win_h, halo, blend), s)
            wx = np.repeat(_axis_weights(w, x0, win_w, halo, blend), s)
            wt = wy[:, None] * wx[None, :]
            acc[s * y0:s * (y0 + win_h), s * x0:s * (x0 + win_w)] += wt * pred
            wsum[s * y0:s * (y0 + win_h), s * x0:s * (x0 + win_w)] += wt
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


def _window_plan(shape_hw: tuple[int, int], tile: int | None, halo: int, blend: int, multiple: int,
                 border: str | None) -> tuple[int, tuple[int, int]]:
    """(number of windows, window ``(h, w)``) of :func:`predict_normalized` on an ``H x W`` image."""
    h, w = shape_hw
    if border is not None:
        h, w = h + 2 * halo, w + 2 * halo
    tile = resolve_tile(tile, h, w)
    h += (-h) % multiple
    w += (-w) % multiple
    if tile is None or (tile >= h and tile >= w):
        return 1, (h, w)
    win_h = min(h, max(multiple, tile // multiple * multiple))
    win_w = min(w, max(multiple, tile // multiple * multiple))
    _check_window(tile, (win_h, h), (win_w, w), halo=halo, blend=blend)
    ys = _positions(h, win_h, max(1, win_h - 2 * halo - blend))
    xs = _positions(w, win_w, max(1, win_w - 2 * halo - blend))
    return len(ys) * len(xs), (win_h, win_w)


def count_tiles(shape_hw: tuple[int, int], tile: int | None, halo: int, blend: int = 8, multiple: int = 1,
                border: str | None = BORDER_MODE) -> int:
    """How many windows :func:`predict_normalized` will run (``tile`` as there: None = the policy)."""
    return _window_plan(shape_hw, tile, halo, blend, multiple, border)[0]


def window_shapes(shape_hw: tuple[int, int], tile: int | None, halo: int, blend: int = 8, multiple: int = 1,
                  border: str | None = BORDER_MODE, batch_size: int = 1) -> list[tuple[int, int, int]]:
    """The distinct ``(batch, h, w)`` of the engine calls :func:`predict_normalized` makes on an
    ``H x W`` image: full batches of windows, and a smaller last one where the count is not a
    multiple of ``batch_size``."""
    n, (h, w) = _window_plan(shape_hw, tile, halo, blend, multiple, border)
    sizes = {min(batch_size, n)} | ({n % batch_size} if n > batch_size and n % batch_size else set())
    return [(b, h, w) for b in sorted(sizes, reverse=True)]


def stack_to_hwc(raw: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` raw stack (or ``(1, H, W)`` image) -> ``(H, W, C)`` float32 network layout."""
    return np.moveaxis(np.asarray(raw, dtype=np.float32), 0, -1)


def predict_stack(predict_fn: PredictFn, raw: np.ndarray, norm: NormalizationConfig,
                  tile: int | None = None, halo: int = 48, blend: int = 8, multiple: int = 1,
                  batch_size: int = 1, progress=None, border: str | None = BORDER_MODE,
                  scale: int = 2) -> np.ndarray:
    """Normalise a ``(C, H, W)`` network input -- a raw stack, or for a same-grid model
    (``scale=1``) one reconstructed image ``(1, H, W)`` --, predict (tiled by the policy unless
    ``tile`` says otherwise), and map back to reference units: ``(scale*H, scale*W)``.

    Normalisation statistics are computed on the whole input before tiling, so tiled and
    whole-image prediction see the same numbers.
    """
    x = stack_to_hwc(normalize_raw(raw, norm))
    y = predict_normalized(predict_fn, x, tile=tile, halo=halo, blend=blend, multiple=multiple,
                           batch_size=batch_size, progress=progress, border=border, scale=scale)
    return denormalize_output(y, norm)


class PredictedFile(NamedTuple):
    """One file done by :func:`predict_files`."""

    input: Path
    output: Path
    shape: tuple[int, int]  # of the written image
    pixel_size_um: float | None  # of the written image (half the raw pixel)
    note: str  # what was done (for RED-fairSIM: which steps) and assumed about the optics (one line)
    check: object | None  # the stack's srredsim.datacheck.DataCheck (None: not checked; for SR-REDSIM
    # models possibly the first look at the central 256², datacheck.first_look_check)


def read_input_headers(inputs, frames: int, scale: int = 2, optics: dict | None = None) -> list:
    """Every input's header (:func:`srredsim.tiff.read_stack_header`; a 2-D image as ``(1, H, W)``),
    checked against what the model reads before anything is predicted, so a bad file fails fast.

    A raw-stack model (``scale`` 2) needs stacks of ``frames`` frames; a 2-D image is refused with
    a line that says so. A same-grid model (RED-fairSIM, ``scale`` 1) takes a raw stack whose
    frames fit a layout (:func:`red_fairsim_layout`, with ``--angles``/``--phases`` from
    ``optics``) or one reconstructed image.
    """
    from srredsim.tiff import read_stack_header

    headers = []
    for path in inputs:
        h = read_stack_header(path, images=True)
        if scale == 1 and h.shape[0] > 1:
            red_fairsim_layout(path, h.shape[0], optics or {})
        if scale != 1 and h.shape[0] != frames:
            if h.shape[0] == 1:
                raise SrredsimError(
                    f"{path}: is one {h.shape[1]}x{h.shape[2]} image; expected a raw SIM stack (frames, H, W): this "
                    f"model reconstructs raw stacks ({frames} frames); an already reconstructed image is the input "
                    f"of a RED-fairSIM model")
            raise SrredsimError(f"{path}: has {h.shape[0]} frames, expected {frames}")
        headers.append(h)
    return headers


def predict_files(model, inputs, outputs, *, optics: dict | None = None, order: str = "angle-major",
                  strict: bool = False, check: bool = True, tile: int | None = None, halo: int | None = None,
                  batch_size: int = 1, progress=None, log=None, warn=None, headers=None,
                  border: str | None = BORDER_MODE):
    """Predict raw stack files one at a time (read, check, predict, write, then the next), so a
    folder of any size needs the memory of one stack.

    A same-grid model (``model.scale == 1``: RED-fairSIM's RED-Net) takes raw stacks -- the
    classical reconstruction first, then the network (:func:`srredsim.redfairsim.predict_raw`)
    -- and already reconstructed SR images, which only the network runs on: see
    :func:`_red_fairsim_files`. The rest of this text is about raw-stack models.

    ``model`` is a model handle (``.predict(raw, tile=, halo=, batch_size=, progress=, border=)``,
    ``.frames``, ``.halo``, ``.size_multiple``, ``.pixel_size_um`` and, where known,
    ``.sampling``, the :class:`~srredsim.model_optics.ModelSampling` it was trained for).
    ``optics``: the optics the user gave (``OpticsConfig`` field names; None or empty = none
    given); the TIFF's pixel size fills in a missing pixel size, the model's optics the rest.
    Every input's header is checked (frames, layout, size, tiles) before the first prediction,
    so a bad file fails fast; pixel values (NaN/Inf, all zeros) as each stack is read. Then each
    stack is checked (:func:`srredsim.datacheck.first_look_check`: frame order, phases, pattern,
    sampling, the model's training range) -- each warning goes to ``warn`` as one line and
    ``strict`` makes them errors --, reordered from ``order`` to angle-major, resampled to the
    model's sampling when its optics differ (:func:`srredsim.model_optics.predict_with_optics`),
    predicted and written on twice the stack's own grid. ``log`` gets the total tile count once
    the first stack has been read. ``headers``: the inputs' :func:`srredsim.tiff.read_stack_header`
    results when the caller has already checked them (:func:`read_input_headers`; not read again).
    ``border``: how each image is extended beyond its edges (:data:`BORDER_MODE`; None: the
    network's own zero padding, see :data:`BORDER_CHOICES`).
    Yields a :class:`PredictedFile` after each file is written.
    """
    if getattr(model, "scale", 2) == 1:
        yield from _red_fairsim_files(model, inputs, outputs, optics=optics, order=order, strict=strict,
                                      check=check, tile=tile, halo=halo, batch_size=batch_size,
                                      progress=progress, log=log, warn=warn, headers=headers, border=border)
        return
    from srredsim.frameorder import to_angle_major
    from srredsim.model_optics import ModelSampling, data_optics, model_grid_shape, predict_with_optics
    from srredsim.tiff import read_raw_stack, write_sr_image

    halo = model.halo if halo is None else halo
    sampling: ModelSampling | None = getattr(model, "sampling", None)
    given = {k: v for k, v in (optics or {}).items() if v is not None}
    if headers is None:
        headers = read_input_headers(inputs, model.frames)
    plans, data, first_grid = [], [], None
    for path, h in zip(inputs, headers):
        o = None if sampling is None else data_optics(sampling.optics, given, h.meta.pixel_size_um)
        if o is not None and o.frames != model.frames:
            raise SrredsimError(f"{path.name}: --angles x --phases = {o.angles} x {o.phases} = {o.frames} frames, "
                                f"but the model takes {model.frames}")
        shape = h.shape[1:] if sampling is None else model_grid_shape(sampling, o, h.shape[1:])
        plans.append(count_tiles(shape, tile, halo, 8, model.size_multiple, border=border))
        data.append(o)
        first_grid = first_grid or tuple(shape)
    if first_grid and hasattr(model, "expect"):  # the engine prepares for the first stack while it is read and checked
        model.expect(first_grid, tile=tile, halo=halo, batch_size=batch_size, border=border)
    for i, (path, out, o) in enumerate(zip(inputs, outputs, data)):
        raw, meta = read_raw_stack(path, frames=model.frames)  # pixels: NaN/Inf are found here
        if not np.any(raw):
            raise SrredsimError(f"{path}: the stack is all zeros")
        if i == 0 and log:  # after the first stack passed, so a bad single file gives one error line only
            log(sum(plans))
        result = None
        if sampling is not None and check:
            from srredsim.datacheck import first_look_check

            result = first_look_check(raw, o or sampling.optics, order=order, name=path.name,
                                      training_range=sampling.training_range, model_optics=sampling.optics,
                                      refuse_undersampling=False)
            for line in result.lines(notes=False):
                if warn:
                    warn(line)
            result.enforce(strict)
        kw = dict(tile=tile, halo=halo, batch_size=batch_size, progress=progress, border=border)
        if sampling is None:
            sr = model.predict(raw, **kw)
            px = meta.pixel_size_um or model.pixel_size_um
            px, note = (px / 2 if px else None), "the model records no optics: predicted as given"
        else:
            angles, phases = sampling.optics.angles, sampling.optics.phases
            res = predict_with_optics(model, to_angle_major(raw, angles, phases, order), sampling, o, **kw)
            sr, px, note = res.image, res.pixel_size_um, res.note
        write_sr_image(out, sr, raw_pixel_size_um=None if px is None else 2 * px)
        del raw
        yield PredictedFile(path, out, sr.shape, px, note, result)



# ---- RED-fairSIM: the classical reconstruction, then a same-grid network ------------------------
#: raw frame layouts RED-fairSIM recognises by their frame count alone (angles, phases)
RED_FAIRSIM_LAYOUTS = {9: (3, 3), 15: (3, 5)}


class _RedPlan(NamedTuple):
    """What :func:`_red_fairsim_files` will do with one input, decided from its header."""

    optics: object | None  # the raw stack's OpticsConfig; None: an already reconstructed image
    shape: tuple[int, int]  # of the network's input (the reconstruction: twice the raw frames,
    #                         resampled to the model's sampling where the optics lie outside it)
    pixel_size_um: float | None  # of the result: half the raw pixel, or the image's own
    how: str  # where the optics or the pixel size came from (for the note)
    image_optics: object | None = None  # a reconstructed image's microscope, when --na/--wavelength say it


def red_fairsim_layout(path: Path, frames: int, given: dict) -> dict[str, int]:
    """``{"angles", "phases"}`` of a raw stack for RED-fairSIM: from the frame count (9: 3x3, 15:
    3x5) unless ``given`` (the optics flags) names them; a count that fits neither is an error."""
    n = frames
    layout = {k: int(given[k]) for k in ("angles", "phases") if given.get(k)}
    if not layout:
        if n not in RED_FAIRSIM_LAYOUTS:
            raise SrredsimError(f"{path}: has {n} frames; RED-fairSIM takes raw stacks of 9 (3 angles x 3 phases) "
                                f"or 15 (3 x 5) frames -- another layout with --angles and --phases -- or one "
                                f"reconstructed image")
        return dict(zip(("angles", "phases"), RED_FAIRSIM_LAYOUTS[n]))
    if "angles" not in layout:
        layout["angles"] = n // layout["phases"] if n % layout["phases"] == 0 else 3
    elif "phases" not in layout:
        layout["phases"] = max(1, n // layout["angles"])
    if layout["angles"] * layout["phases"] != n:
        raise SrredsimError(f"{path}: has {n} frames, but --angles x --phases = {layout['angles']} x "
                            f"{layout['phases']} = {layout['angles'] * layout['phases']}")
    return layout


def _red_fairsim_plan(path: Path, header, sampling, given: dict) -> _RedPlan:
    """Raw stack or reconstructed image; for a stack its optics: the flags, the TIFF's pixel size,
    the model's optics for the rest, and angles x phases from the frame count
    (:func:`red_fairsim_layout`)."""
    from srredsim.model_optics import model_grid_shape
    from srredsim.optics import resolve_optics

    base = sampling.optics if sampling is not None else None
    n, h, w = header.shape
    tiff_px = header.meta.pixel_size_um
    others = {k: v for k, v in given.items() if k not in ("angles", "phases")}  # the microscope's flags
    if n == 1:  # an SR image: its own pixel size, else half the raw pixel given or the model's
        raw_px = given.get("pixel_size_um") or (base.pixel_size_um if base is not None else None)
        px = tiff_px or (raw_px / 2 if raw_px else None)
        how = ("pixel size from the TIFF" if tiff_px else "pixel size: half the given raw pixel"
               if given.get("pixel_size_um") else "pixel size assumed: half the model's raw pixel" if px
               else "pixel size unknown")
        if px and (given.get("na") or given.get("wavelength_nm")):  # the user named the microscope
            optics = resolve_optics(others, file_pixel_size_um=2 * px, base=base)
            grid = (h, w) if sampling is None else model_grid_shape(sampling, optics, (h, w))
            return _RedPlan(None, tuple(grid), px, how + f"; {_optics_text(optics)}", optics)
        return _RedPlan(None, (h, w), px, how)
    layout = red_fairsim_layout(path, n, given)
    o = resolve_optics({**others, **layout}, file_pixel_size_um=tiff_px, base=base)
    how = ("optics given" if others else "pixel size from the TIFF, the model's other optics" if tiff_px
           else "no optics given: the model's" if base is not None else "no optics given: srredsim's defaults")
    grid = (2 * h, 2 * w)
    if sampling is not None:  # what srredsim.redfairsim.predict_raw will hand the network
        grid = model_grid_shape(sampling, o, grid)
    return _RedPlan(o, tuple(grid), o.pixel_size_um / 2, how)


def _optics_text(o) -> str:
    return f"NA {o.na:g}, {o.wavelength_nm:g} nm, {o.pixel_size_um * 1000:.1f} nm pixels"


def pattern_summary(params) -> str:
    """The estimated pattern in a few words: period and modulation per angle."""
    angles = params.to_dict()["angles"]
    periods = "/".join(f"{a['period_um'] * 1000:.0f}" if a["period_um"] else "?" for a in angles)
    mods = "/".join(f"{a['modulations'][-1]:.2f}" for a in angles)
    return f"pattern period {periods} nm, modulation {mods}" + ("" if params.estimated else " (given)")


def _red_fairsim_files(model, inputs, outputs, *, optics, order, strict, check, tile, halo, batch_size, border,
                       progress, log, warn, headers):
    """:func:`predict_files` for a same-grid model: each input is a raw stack (checked as for
    SR-REDSIM, reordered to angle-major, reconstructed classically, then denoised; the result has
    half the raw pixel size) or one reconstructed SR image (denoised only; its own pixel size).
    The classical step adapts to the microscope; for optics outside the RED-Net's trained sampling
    :func:`srredsim.redfairsim.predict_raw` resamples the reconstruction for the network and back.
    A reconstructed image is resampled likewise when --na or --wavelength name its microscope
    (its raw pixel: twice its own)."""
    from srredsim.frameorder import to_angle_major
    from srredsim.redfairsim import ClassicalStepFailed, denoise, predict_raw
    from srredsim.tiff import read_raw_stack, read_reference, write_sr_image

    halo = model.halo if halo is None else halo
    sampling = getattr(model, "sampling", None)
    given = {k: v for k, v in (optics or {}).items() if v is not None}
    if headers is None:
        headers = read_input_headers(inputs, model.frames, scale=1, optics=given)
    plans = [_red_fairsim_plan(path, h, sampling, given) for path, h in zip(inputs, headers)]
    tiles = [count_tiles(p.shape, tile, halo, 8, model.size_multiple, border=border) for p in plans]
    if plans and hasattr(model, "expect"):  # the engine prepares while the first input is reconstructed
        model.expect(plans[0].shape, tile=tile, halo=halo, batch_size=batch_size, border=border)
    kw = dict(tile=tile, halo=halo, batch_size=batch_size, progress=progress, border=border)
    for i, (path, out, plan) in enumerate(zip(inputs, outputs, plans)):
        result = None
        if plan.optics is None:
            image, _ = read_reference(path)  # pixels: NaN/Inf are found here
            _require_signal(image, path)
            if i == 0 and log:
                log(sum(tiles))
            sr, resampled = denoise(model, image, plan.image_optics, **kw)
            note = f"RED-Net on a reconstructed image (no classical step; {plan.how})" + (
                f"; {resampled}" if resampled else "")
        else:
            o = plan.optics
            raw, _ = read_raw_stack(path, frames=o.frames)
            _require_signal(raw, path)
            if i == 0 and log:
                log(sum(tiles))
            held: list[str] = []
            if check:
                result, held = _check_red_stack(raw, o, order, path, sampling, warn, strict)
            raw = to_angle_major(raw, o.angles, o.phases, order)
            try:
                sr, _, params, resampled = predict_raw(model, raw, o, **kw)
            except ClassicalStepFailed as exc:
                raise SrredsimError(f"{path.name}: the classical reconstruction (RED-fairSIM's first step) failed: "
                                    f"{_classical_reason(exc)}") from None
            for line in held if warn else []:
                warn(line)
            note = (f"classical reconstruction + RED-Net ({o.angles}x{o.phases}, {_optics_text(o)}; {plan.how}); "
                    f"{pattern_summary(params)}" + (f"; {resampled}" if resampled else ""))
        px = plan.pixel_size_um
        write_sr_image(out, sr, raw_pixel_size_um=None if px is None else 2 * px)
        yield PredictedFile(path, out, sr.shape, px, note, result)


def _require_signal(data: np.ndarray, path: Path) -> None:
    if not np.any(data):
        raise SrredsimError(f"{path}: the {'image' if data.ndim == 2 else 'stack'} is all zeros")


def _check_red_stack(raw, o, order, path, sampling, warn, strict):
    """The data checks of a raw stack before its classical reconstruction (frame order, phases,
    pattern; the model's training range of pattern and light where recorded): ``(DataCheck,
    held-back lines)``. A "no pattern found" warning is held back: when the reconstruction then
    fails too, its one error line says it; when the reconstruction finds the pattern after all
    (on the whole frame), the caller prints the warning."""
    from srredsim.datacheck import check_stack

    result = check_stack(raw, o, order=order, name=path.name,
                         training_range=None if sampling is None else sampling.training_range)
    held = [f"{result.name}: warning: {f.message}" for f in result.warnings if f.code == "pattern"]
    for line in result.lines(notes=False):
        if warn and line not in held:
            warn(line)
    result.enforce(strict)
    return result, held


def _classical_reason(exc: Exception) -> str:
    """The classical step's own words, with advice that fits predict: the pattern search's advice
    names reconstruct's flags (--params-in, --fallback), which predict has not."""
    text = str(exc)
    if "; check " in text:
        text = (text.split("; check ")[0] + "; check the optics (--na/--wavelength/--pixel-size, "
                "--angles/--phases) and the frame order (--order)")
    return text
