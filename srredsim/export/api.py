"""``export_run``: a run folder -> bioimage.io package, ONNX file and/or SavedModel.

Every artifact is built in a temporary location next to its target and moved into place only
when it is complete and has passed its self-check (the exported engines reproduce the Keras
model on the test input to 1e-4), so a failed export leaves nothing behind. An existing output
is refused unless ``overwrite`` is set.

Default outputs (``out`` not given) go under ``RUN/export/``::

    bioimageio  RUN/export/<name>.bioimageio.zip
    onnx        RUN/export/<name>.onnx            (<name>_nchw.onnx with nchw=True)
    savedmodel  RUN/export/<name>_savedmodel/
    all         RUN/export/ holding all of the above (+ the NCHW ONNX with nchw=True)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srredsim.errors import SrredsimError, atomic_dir, atomic_path
from srredsim.export import FORMATS

PARITY_TOL = 1e-4


@dataclass
class ExportResult:
    outputs: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    parity: dict[str, float] = field(default_factory=dict)  # engine -> max |diff| to Keras
    notes: list[str] = field(default_factory=list)  # what was decided for the user (one line each)

    def summary(self) -> str:
        lines = [f"note         {n}" for n in self.notes]
        lines += [f"{fmt:12s} {path}" for fmt, path in self.outputs.items()]
        if self.parity:
            lines.append("self-check   " + ", ".join(f"{k} max|diff| {v:.1e}" for k, v in self.parity.items()))
        lines.append("time         " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return "\n".join(lines)


def default_output(fmt: str, name: str, nchw: bool = False) -> Path:
    """Where an export goes without ``-o``: the current folder, named after the model.

    Never inside the run folder: a shipped model's run folder is part of the installed package.
    """
    from srredsim.export.bioimageio_package import slug

    s = slug(name)
    return Path({
        "bioimageio": f"{s}.bioimageio.zip",
        "onnx": f"{s}_nchw.onnx" if nchw else f"{s}.onnx",
        "savedmodel": f"{s}_savedmodel",
        "all": f"{s}_export",
    }[fmt])


def check_model_io(model, config) -> None:
    """The network must take ``frames`` channels and return one channel at twice the size (RED-Net:
    one channel in, one channel of the same size out)."""
    channels = model.input_shape[-1]
    if config.model.takes_raw and channels != config.optics.frames:
        raise SrredsimError(f"the network takes {channels} input channels but the optics say "
                            f"{config.optics.frames} frames ({config.optics.angles} angles x {config.optics.phases} phases)")
    if not config.model.takes_raw and channels != config.model.in_channels:
        raise SrredsimError(f"the network takes {channels} input channels; a {config.model.architecture} reads "
                            f"{config.model.in_channels} (one reconstructed image)")
    import keras

    s = config.model.scale
    probe = 32 * max(1, int(config.model.architecture == "unet") * 2 ** config.model.unet_levels // 32)
    out = model.compute_output_spec(keras.KerasTensor((1, probe, probe, channels)))
    if tuple(out.shape) != (1, s * probe, s * probe, 1):
        raise SrredsimError(f"the network maps (1, {probe}, {probe}, {channels}) to {tuple(out.shape)}; "
                            f"expected (1, {s * probe}, {s * probe}, 1)")


def prepare_test_input(config, test_input: str | os.PathLike | None, test_size: int | None, seed: int = 0) -> np.ndarray:
    """The network's test input ``(C, H, W)`` whose H and W are valid input sizes ``min + n*step``:
    a raw stack, or for RED-Net (:func:`prepare_image_test_input`) a classical reconstruction."""
    from srredsim.export.bioimageio_package import parameterized_size
    from srredsim.export.testdata import synthetic_raw_stack

    if not config.model.takes_raw:
        return prepare_image_test_input(config, test_input, test_size, seed)
    minimum, step = parameterized_size(config)
    want = max(minimum, int(test_size or 128))
    want = minimum + (want - minimum) // step * step
    if test_input is None:
        return synthetic_raw_stack(config.optics, want, seed=seed)
    from srredsim.tiff import read_raw_stack

    raw, _ = read_raw_stack(test_input, frames=config.optics.frames)
    return _crop_valid(raw, test_input, want, minimum, step)


def prepare_image_test_input(config, test_input: str | os.PathLike | None, test_size: int | None,
                             seed: int = 0) -> np.ndarray:
    """RED-Net's test input ``(1, H, W)``: the classical reconstruction of a raw stack, on the 2x grid.

    ``test_size`` is the raw stack's edge, as for the raw-stack networks (default 128: a 256 x 256
    reconstruction); the reconstruction is made a valid input size. ``test_input`` is a raw stack
    TIFF (``angles x phases`` frames, reconstructed here as ``srredsim reconstruct`` does) or one
    reconstructed image (e.g. fairSIM's), used as it is."""
    from srredsim.export.bioimageio_package import parameterized_size
    from srredsim.export.testdata import synthetic_reconstruction

    minimum, step = parameterized_size(config)
    want = max(minimum, 2 * int(test_size or 128))
    want = minimum + (want - minimum) // step * step
    if test_input is None:  # (min and step are multiples of 16: an even size, a whole raw stack)
        return synthetic_reconstruction(config.optics, want, seed=seed, model_cfg=config.model)
    from srredsim.tiff import read_raw_stack, read_reference

    try:
        image, _ = read_reference(test_input)  # one image: a reconstruction already
        image = image[None]
    except SrredsimError:
        from srredsim.redfairsim import network_input, recon_options

        raw, _ = read_raw_stack(test_input, frames=config.optics.frames)
        sr, _ = network_input(raw, config.optics, opts=recon_options(config.model))
        image = np.asarray(sr, np.float32)[None]
    return _crop_valid(image, test_input, want, minimum, step)


def _crop_valid(raw: np.ndarray, test_input, want: int, minimum: int, step: int) -> np.ndarray:
    from srredsim.export.testdata import crop_center

    _, h, w = raw.shape
    avail = min(h, w, want)
    if avail < minimum:
        raise SrredsimError(f"{test_input}: test input of {h}x{w} pixels is smaller than the package's minimum "
                            f"input size {minimum}")
    size = minimum + (avail - minimum) // step * step
    return crop_center(raw, size)


def _parity(reference: np.ndarray, fns: dict[str, Callable], x: np.ndarray, tol: float) -> dict[str, float]:
    diffs = {}
    for name, fn in fns.items():
        y = np.asarray(fn(x), np.float32)
        if y.shape != reference.shape:  # never reshaped to fit: a wrong rank is a wrong model
            raise SrredsimError(f"exported {name} model returns shape {y.shape} on the test input, Keras "
                                f"{reference.shape}")
        d = float(np.max(np.abs(y - reference)))
        diffs[name] = d
        if not d <= tol:
            raise SrredsimError(f"exported {name} model disagrees with Keras by {d:.2e} (> {tol:g}) on the test input")
    return diffs


def export_run(run_path: str | os.PathLike, fmt: str = "bioimageio", out: str | os.PathLike | None = None, *,
               overwrite: bool = False, which: str = "best", nchw: bool = False,
               metadata: dict[str, Any] | None = None, test_input: str | os.PathLike | None = None,
               test_size: int | None = None, seed: int = 0, verify: bool = True,
               log: Callable[[str], None] | None = None, optics: dict[str, Any] | None = None,
               input_size=None) -> ExportResult:
    """Export a run folder; see the module docstring for outputs. Returns paths and timings.

    ``optics`` (OpticsConfig field names, e.g. ``{"na": 1.2, "wavelength_nm": 610, "pixel_size_um":
    0.065}``): a microscope-matched package of ``input_size`` (H[xW], default 512) pixels
    (:mod:`srredsim.export.matched`); the normal package when they are the model's own sampling."""
    from srredsim.runfolder import load_run

    log = log or (lambda msg: None)
    if fmt not in FORMATS + ("all",):
        raise SrredsimError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS + ('all',))}")
    notes: list[str] = []
    if {k: v for k, v in (optics or {}).items() if v is not None}:  # microscope-matched package
        from srredsim.export.matched import export_matched

        matched = export_matched(run_path, fmt, out, optics=optics, input_size=input_size, overwrite=overwrite,
                                 which=which, metadata=metadata, test_input=test_input, seed=seed, verify=verify,
                                 log=log)
        if not isinstance(matched, str):
            return matched
        log(matched)
        notes.append(matched)
    elif input_size is not None:
        raise SrredsimError("--input-size fixes the size of a microscope-matched package: give the microscope's "
                            "--na/--wavelength/--pixel-size too (a normal package takes any size)")
    run = load_run(run_path)
    run.weights_path(which)  # clear error for a run folder without weights, before anything is built
    cfg = run.config
    from srredsim.export.bioimageio_package import PackageMetadata

    meta = PackageMetadata.from_config(cfg, **(metadata or {}))
    if fmt in ("bioimageio", "all"):
        from srredsim.export.bioimageio_package import check_metadata

        check_metadata(meta)
    out = Path(out) if out is not None else default_output(fmt, meta.name, nchw)
    if out.exists() and not overwrite:
        raise SrredsimError(f"{out} exists; pass --overwrite to replace it")
    if fmt == "bioimageio" and out.suffix.lower() != ".zip":
        raise SrredsimError(f"{out}: a bioimage.io package is a .zip file (e.g. {out.name}.bioimageio.zip)")
    if fmt == "onnx" and out.suffix.lower() != ".onnx":
        raise SrredsimError(f"{out}: an ONNX export needs a .onnx file name")

    result = ExportResult(notes=notes)
    t0 = time.perf_counter()
    from srredsim.models import inference_twin

    model = run.load_model(which)  # the training graph: the Keras HDF5 weights of a package
    check_model_io(model, cfg)
    fast = inference_twin(model, cfg.model)  # same function, plain convolutions: SavedModel/ONNX
    result.timings["load"] = time.perf_counter() - t0
    raw_test = prepare_test_input(cfg, test_input, test_size, seed) if fmt in ("bioimageio", "all") else None

    with export_workdir(out) as work:
        if fmt == "all":
            with atomic_dir(out, overwrite=overwrite) as tmp:
                _export_all(model, cfg, tmp, meta, raw_test, work, nchw, verify, result, log, fast=fast)
            result.outputs = {k: out / v.relative_to(tmp) for k, v in result.outputs.items()}
        elif fmt == "bioimageio":
            with atomic_path(out) as tmp:
                _export_package(model, cfg, tmp, meta, raw_test, work, verify, result, log, file_name=out.name,
                                fast=fast)
            result.outputs["bioimageio"] = out
        elif fmt == "onnx":
            with atomic_path(out) as tmp:
                _export_onnx(fast, cfg, tmp, nchw, verify, result, log)
            result.outputs["onnx_nchw" if nchw else "onnx"] = out
        else:
            with atomic_dir(out, overwrite=overwrite) as tmp:
                tmp.rmdir()
                _export_savedmodel(fast, cfg, tmp, verify, result, log)
            result.outputs["savedmodel"] = out
        for path in result.outputs.values():
            _usual_modes(path)
        if fmt == "all":
            _usual_modes(out)
    result.timings["total"] = time.perf_counter() - t0
    return result


@contextlib.contextmanager
def export_workdir(out: Path):
    """A scratch folder beside ``out`` for an export's intermediate files, removed afterwards. The
    output's parent folder is created if needed -- and removed again (when empty) if the export
    fails: a failed export leaves nothing behind."""
    parent = out.parent
    created_parent = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".srredsim-export-", dir=parent))
    ok = False
    try:
        yield work
        ok = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not ok and created_parent:
            try:
                parent.rmdir()  # only if empty
            except OSError:
                pass


def _usual_modes(path: Path) -> None:
    """Temporary files are created private (0600/0700); give the results the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    paths = [path] + (sorted(path.rglob("*")) if path.is_dir() else [])
    for p in paths:
        if p.is_symlink():
            continue
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def _probe_input(cfg, size: int = 32) -> np.ndarray:
    from srredsim.models import size_multiple

    m = size_multiple(cfg.model)
    size = max(m, size // m * m)
    rng = np.random.default_rng(0)
    return rng.random((1, size, size, cfg.model.in_channels), dtype=np.float32)


def _export_onnx(model, cfg, path: Path, nchw: bool, verify: bool, result: ExportResult, log, proto=None):
    from srredsim.export.meta import META_KEY, metadata_json
    from srredsim.export.onnx_export import convert_to_onnx, onnx_predict_fn, save_onnx

    key = "onnx_nchw" if nchw else "onnx"
    t = time.perf_counter()
    log(f"converting to ONNX (opset 17{', NCHW' if nchw else ''})")
    from srredsim.export import input_id

    proto = proto or convert_to_onnx(model, nchw=nchw, metadata={META_KEY: metadata_json(cfg)},
                                     input_id=input_id(cfg.model), scale=cfg.model.scale)
    save_onnx(proto, path)
    if verify:
        x = _probe_input(cfg)
        result.parity.update(_parity(np.asarray(model.predict_on_batch(x)), {key: onnx_predict_fn(path, nchw=nchw)},
                                     x, PARITY_TOL))
    result.timings[key] = time.perf_counter() - t
    return proto


def _export_savedmodel(model, cfg, folder: Path, verify: bool, result: ExportResult, log):
    from srredsim.export.meta import META_FILE, metadata_json
    from srredsim.export.savedmodel import export_savedmodel, savedmodel_predict_fn

    t = time.perf_counter()
    log("writing TensorFlow SavedModel")
    from srredsim.export import input_id

    export_savedmodel(model, folder, input_id=input_id(cfg.model))
    if verify:
        x = _probe_input(cfg)
        result.parity.update(_parity(np.asarray(model.predict_on_batch(x)),
                                     {"savedmodel": savedmodel_predict_fn(folder, input_id=input_id(cfg.model))},
                                     x, PARITY_TOL))
    (folder / META_FILE).write_text(metadata_json(cfg) + "\n")
    result.timings["savedmodel"] = time.perf_counter() - t


def _export_package(model, cfg, zip_path: Path, meta, raw_test, work: Path, verify: bool, result: ExportResult,
                    log, *, file_name: str, fast, onnx_proto=None, savedmodel_dir: Path | None = None):
    from srredsim.export.bioimageio_package import TEST_INPUT_FILE, TEST_OUTPUT_FILE, package_model
    from srredsim.normalization import normalize_raw

    t = time.perf_counter()
    log("building the bioimage.io package")
    pkg_work = work / "package"
    pkg_work.mkdir()
    info = package_model(model, cfg, zip_path, meta, raw_test, pkg_work, onnx_proto=onnx_proto,
                         savedmodel_dir=savedmodel_dir, file_name=file_name, inference_model=fast)
    if verify:
        from srredsim.export.onnx_export import onnx_predict_fn
        from srredsim.export.safezip import safe_extract
        from srredsim.export.savedmodel import savedmodel_predict_fn
        from srredsim.predict import stack_to_hwc

        files = info["files"]
        x = stack_to_hwc(normalize_raw(raw_test, cfg.normalization))[None]
        ref = np.asarray(model.predict_on_batch(x), np.float32)
        sm = pkg_work / "_verify_savedmodel"
        safe_extract(files["tensorflow_saved_model_bundle"], sm)
        result.parity.update(_parity(ref, {"onnx": onnx_predict_fn(files["onnx"]),
                                           "savedmodel": savedmodel_predict_fn(sm, input_id=info["input_id"])},
                                     x, PARITY_TOL))
        assert Path(files["test_input"]).name == TEST_INPUT_FILE and Path(files["test_output"]).name == TEST_OUTPUT_FILE
    result.timings["bioimageio"] = time.perf_counter() - t
    return info


def _export_all(model, cfg, folder: Path, meta, raw_test, work: Path, nchw: bool, verify: bool,
                result: ExportResult, log, *, fast):
    from srredsim.export.bioimageio_package import slug

    s = slug(meta.name)
    sm = folder / f"{s}_savedmodel"
    _export_savedmodel(fast, cfg, sm, verify, result, log)
    result.outputs["savedmodel"] = sm
    onnx_path = folder / f"{s}.onnx"
    proto = _export_onnx(fast, cfg, onnx_path, False, verify, result, log)
    result.outputs["onnx"] = onnx_path
    if nchw:
        p = folder / f"{s}_nchw.onnx"
        _export_onnx(fast, cfg, p, True, verify, result, log)
        result.outputs["onnx_nchw"] = p
    pkg = folder / f"{s}.bioimageio.zip"
    _export_package(model, cfg, pkg, meta, raw_test, work, verify, result, log, file_name=pkg.name, fast=fast,
                    onnx_proto=proto, savedmodel_dir=sm)
    result.outputs["bioimageio"] = pkg
