"""Reading and writing SIM stacks and super-resolved images as (ImageJ) TIFF files.

Conventions (docs/architecture.md, section 2):

* a **raw stack** is ``(A*P, H, W)``, frames angle-major with phases fastest (frame = a*P + p);
* a **super-resolved image / reference** is ``(2H, 2W)``; ``(1, 2H, 2W)`` is accepted on input;
* results are float32 ImageJ TIFFs carrying their pixel size in micrometres (the SR pixel size
  is half the raw pixel size), written atomically so a crash leaves no half-written file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srredsim.errors import SrredsimError, atomic_path

TIFF_SUFFIXES = (".tif", ".tiff")
_UNIT_TO_UM = {"um": 1.0, "micron": 1.0, "microns": 1.0, "\\u00B5m": 1.0, "µm": 1.0, "μm": 1.0,
               "nm": 1e-3, "mm": 1e3, "m": 1e6, "cm": 1e4}


@dataclass
class ImageMeta:
    """What a TIFF says about itself beyond its pixels."""

    axes: str
    pixel_size_um: float | None = None


def _import_tifffile():
    import tifffile

    return tifffile


def _read_series(path: Path, pixels: bool):
    """The first series of a TIFF: ``(pixels or None, shape, dtype, axes, pixel size in µm)``,
    with a clear error for anything missing or unreadable. ``pixels=False`` reads the header only."""
    if not path.exists():
        raise SrredsimError(f"{path}: no such file")
    if path.is_dir():
        raise SrredsimError(f"{path}: is a folder, expected a TIFF file")
    tifffile = _import_tifffile()
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray() if pixels else None
            return data, tuple(series.shape), series.dtype, series.axes, _pixel_size_um(tif)
    except SrredsimError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt / non-TIFF input
        raise SrredsimError(f"{path}: not a readable TIFF file ({type(exc).__name__}: {exc})") from None


def read_tiff(path: str | os.PathLike) -> tuple[np.ndarray, ImageMeta]:
    """Read a TIFF into an array and its metadata, with a clear error for anything unreadable."""
    data, _, _, axes, pixel_size = _read_series(Path(path), pixels=True)
    return data, ImageMeta(axes=axes, pixel_size_um=pixel_size)


def _pixel_size_um(tif) -> float | None:
    page = tif.pages[0]
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    if not num or not den:
        return None
    pixels_per_unit = num / den
    unit = None
    if tif.imagej_metadata:
        unit = tif.imagej_metadata.get("unit")
    if unit is None:
        res_unit = page.tags.get("ResolutionUnit")
        code = int(res_unit.value) if res_unit is not None else 1
        if code == 3:  # centimetre
            unit = "cm"
        elif code == 2:  # inch: not a microscopy unit; report nothing rather than a wrong value
            return None
        else:
            return None
    scale = _UNIT_TO_UM.get(str(unit).strip())
    if scale is None or pixels_per_unit <= 1e-12:
        return None
    size = scale / pixels_per_unit
    return float(size) if 1e-6 < size < 1e6 else None


def _check_finite(data: np.ndarray, path: Path) -> None:
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.isfinite(data)):
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise SrredsimError(f"{path}: contains {bad} NaN/Inf values")


def _flatten_hyperstack_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """ImageJ hyperstacks ``(A, P, H, W)`` (up to 64 frames) are raw stacks ``(A*P, H, W)``."""
    if len(shape) == 4 and shape[0] * shape[1] <= 64:
        return (shape[0] * shape[1], *shape[2:])
    return tuple(shape)


def _check_stack_shape(path: Path, shape: tuple[int, ...], dtype, frames: int | None) -> None:
    if len(shape) != 3:
        raise SrredsimError(
            f"{path}: expected a raw SIM stack (frames, H, W), got a {len(shape)}-D image of shape {tuple(shape)}")
    if np.dtype(dtype).kind not in "uif":
        raise SrredsimError(f"{path}: unsupported pixel type {dtype}")
    if frames is not None and shape[0] != frames:
        raise SrredsimError(f"{path}: has {shape[0]} frames, expected {frames}")


@dataclass
class StackHeader:
    """A raw stack's shape ``(frames, H, W)``, pixel type and metadata, read without its pixels."""

    shape: tuple[int, int, int]
    dtype: np.dtype
    meta: ImageMeta


def read_stack_header(path: str | os.PathLike, frames: int | None = None, images: bool = False) -> StackHeader:
    """Check a raw stack's header (shape, type, frame count) without reading its pixels.

    ``images``: also accept one 2-D image, as shape ``(1, H, W)`` (``frames`` is not checked for
    a single image): RED-fairSIM's predict takes a raw stack or an already reconstructed image."""
    path = Path(path)
    _, shape, dtype, axes, pixel_size = _read_series(path, pixels=False)
    shape = _flatten_hyperstack_shape(shape)
    if images and len(shape) == 2:
        shape = (1, *shape)
    if images and len(shape) == 3 and shape[0] == 1:
        frames = None
    _check_stack_shape(path, shape, dtype, frames)
    return StackHeader(shape=shape, dtype=np.dtype(dtype), meta=ImageMeta(axes=axes, pixel_size_um=pixel_size))


def read_raw_stack(path: str | os.PathLike, frames: int | None = None) -> tuple[np.ndarray, ImageMeta]:
    """Read a raw SIM stack ``(frames, H, W)``.

    Accepts uint8/uint16/int/float data; ImageJ hyperstacks with separate angle/phase axes
    (e.g. ``(A, P, H, W)``) are flattened angle-major. ``frames`` checks the frame count.
    """
    path = Path(path)
    data, meta = read_tiff(path)
    data = np.asarray(data)
    data = data.reshape(_flatten_hyperstack_shape(data.shape))
    _check_stack_shape(path, data.shape, data.dtype, frames)
    _check_finite(data, path)
    return data, meta


def read_reference(path: str | os.PathLike) -> tuple[np.ndarray, ImageMeta]:
    """Read a super-resolved reference ``(2H, 2W)`` (``(1, 2H, 2W)`` is squeezed) as float32."""
    path = Path(path)
    data, meta = read_tiff(path)
    data = np.asarray(data)
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise SrredsimError(
            f"{path}: expected a 2-D reference image, got shape {tuple(data.shape)}")
    if data.dtype.kind not in "uif":
        raise SrredsimError(f"{path}: unsupported pixel type {data.dtype}")
    _check_finite(data, path)
    return data.astype(np.float32, copy=False), meta


def write_tiff(path: str | os.PathLike, data: np.ndarray, pixel_size_um: float | None = None,
               axes: str | None = None, metadata: dict | None = None) -> Path:
    """Write an ImageJ TIFF atomically, with pixel size (micrometres) and axes.

    ``data`` must be 2-D (YX) or 3-D (ZYX, e.g. a raw stack or a batch of images). Float data are
    written as float32; integer data keep their type (uint8/uint16).
    """
    tifffile = _import_tifffile()
    path = Path(path)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
        if not np.all(np.isfinite(arr)):
            raise SrredsimError(f"refusing to write {path}: the image contains NaN/Inf")
    elif arr.dtype not in (np.uint8, np.uint16):
        if arr.min(initial=0) >= 0 and arr.max(initial=0) <= 65535:
            arr = arr.astype(np.uint16)
        else:
            arr = arr.astype(np.float32)
    if axes is None:
        axes = {2: "YX", 3: "ZYX", 4: "TZYX"}.get(arr.ndim)
        if axes is None:
            raise SrredsimError(f"cannot write a {arr.ndim}-D array as an ImageJ TIFF")
    md = {"axes": axes}
    kwargs = {}
    if pixel_size_um:
        md["unit"] = "um"
        kwargs["resolution"] = (1.0 / pixel_size_um, 1.0 / pixel_size_um)
    if metadata:
        md.update(metadata)
    with atomic_path(path, suffix=".tif") as tmp:
        try:
            tifffile.imwrite(tmp, arr, imagej=True, metadata=md, **kwargs)
        except OSError as exc:
            raise SrredsimError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def write_sr_image(path: str | os.PathLike, image: np.ndarray,
                   raw_pixel_size_um: float | None = None) -> Path:
    """Write a super-resolved result: float32 ``(2H, 2W)``, pixel size half the raw one."""
    image = np.asarray(image, dtype=np.float32)
    while image.ndim > 2 and image.shape[0] == 1:
        image = image[0]
    px = raw_pixel_size_um / 2.0 if raw_pixel_size_um else None
    return write_tiff(path, image, pixel_size_um=px, axes="YX")


def list_tiffs(folder: str | os.PathLike) -> list[Path]:
    """TIFF files of a folder, sorted by name (hidden and partial files skipped)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith("."))
