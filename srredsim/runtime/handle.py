"""One model handle for every artifact and engine: :func:`open_model` and :class:`ModelHandle`.

``srredsim predict``, the demo, the comparison and the benchmarks open models here alike:

* a run folder from ``srredsim train`` (or a shipped model by name: ``sim-3x5``, ``sim-3x3``, ``default``),
  with its ``best`` or ``last`` weights -- on any engine: Keras runs the weights directly, the
  others run a conversion made once and kept in the per-user cache
  (:mod:`srredsim.runtime.conversions`);
* a bioimage.io package (zip or unpacked folder), on the engines its weight formats allow;
* an ``.onnx`` file (channels-last or the ``--nchw`` variant), on ONNX Runtime or OpenVINO;
* a TensorFlow SavedModel folder, or a zip with ``saved_model.pb`` at its root.

Each artifact becomes a *source* that knows its metadata (normalisation, frames, scale, tiling
parameters, pixel size), which engines can run it, its content hash and its test tensor; the
engine and precision are then chosen (:mod:`srredsim.runtime.choice`) and one engine adapter is
opened. Temporary files (an unpacked zip) live only while :func:`open_model` runs, or while a
:func:`read_model` artifact is open (a command that asks what the model reads and then opens it
unpacks it once): every engine holds its weights in memory once loaded, so the handle owns
nothing on disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from srredsim.config import ModelConfig, NormalizationConfig, OpticsConfig
from srredsim.predict import BORDER_MODE
from srredsim.errors import SrredsimError
from srredsim.model_optics import ModelSampling
from srredsim.runtime.base import ENGINES, Engine, check_engine, check_precision

#: edge of the synthetic test tensor of a model without one (``srredsim export``'s default)
TEST_SIZE = 128
#: smallest edge the auto choice times engines on (see :mod:`srredsim.runtime.choice`)
TIMING_SIZE = 256


@dataclass
class ModelHandle:
    """A model opened on one engine, with what is needed to feed it correctly.

    Two kinds of network are run alike: ``scale`` 2 reads a raw stack of ``frames`` frames and
    returns the image on twice its grid (SR-REDSIM, U-Net); ``scale`` 1 (``takes_raw`` False) is
    RED-fairSIM's RED-Net, which reads one image already on the 2x grid -- the classical
    reconstruction (:mod:`srredsim.redfairsim` runs both steps) -- and returns the same size;
    its ``frames`` is 1.
    """

    adapter: Engine
    normalization: NormalizationConfig
    frames: int  # channels the network reads: the raw frames, or 1 for a same-grid model
    size_multiple: int
    halo: int  # context per tile side and border extension, in the network's input pixels (measured:
    #            srredsim.runtime.halo; at most declared_halo)
    source: Path
    name: str = ""
    kind: str = ""
    pixel_size_um: float | None = None
    model_config: ModelConfig | None = None
    weights: str | None = None  # "best" / "last" for run folders
    choice: str = ""  # how the engine and precision were chosen
    #: the optics and training range the model was trained for (srredsim.model_optics.ModelSampling);
    #: for artifacts that do not record them, the angles x phases and pixel size they do record
    sampling: Any = None
    #: a fixed-size package (microscope-matched: srredsim.export.matched) runs whole on its one input size
    fixed_size: bool = False
    #: output pixels per input pixel along y and x: 2 (raw stack -> SR image) or 1 (same grid)
    scale: int = 2
    #: the halo the model declares (its architecture's bound; what its bioimage.io package states)
    declared_halo: int | None = None

    @property
    def engine(self) -> str:
        return self.adapter.name

    @property
    def precision(self) -> str:
        return self.adapter.precision

    @property
    def takes_raw(self) -> bool:
        """True when the network reads the raw stack; False for a same-grid model (RED-Net), which
        reads one reconstructed image."""
        return self.scale != 1

    @property
    def predict_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """The engine's batch function: ``(B, h, w, C)`` network units -> ``(B, s*h, s*w, 1)``
        with s = :attr:`scale` (2, or 1 for a same-grid model)."""
        return self.adapter

    def predict(self, raw, tile: int | None = None, halo: int | None = None, batch_size: int = 1,
                progress=None, border: str | None = BORDER_MODE) -> np.ndarray:
        """Run the network on its input: normalise, predict (tiled by the policy unless ``tile``
        says otherwise), map back to reference units. Returns float32 ``(scale*H, scale*W)``.

        ``raw`` is a raw ``(frames, H, W)`` stack for a raw-stack model (``(2H, 2W)`` out), or one
        image on the 2x grid as ``(1, H, W)`` (or ``(H, W)``) for a same-grid model, whose result
        has the same size (for a raw stack, :func:`srredsim.redfairsim.predict_raw` runs the
        classical reconstruction first). ``border``: how the image is extended beyond its edges
        (:data:`srredsim.predict.BORDER_MODE`, as DeepImageJ does; None: not at all)."""
        from srredsim.predict import predict_stack

        raw = np.asarray(raw)
        if not self.takes_raw and raw.ndim == 2:
            raw = raw[None]
        if raw.ndim != 3 or raw.shape[0] != self.frames:
            if not self.takes_raw:
                raise SrredsimError(f"this model denoises one reconstructed image (1, H, W); got shape "
                                    f"{raw.shape} (a raw stack goes through srredsim.redfairsim.predict_raw)")
            raise SrredsimError(f"the stack has shape {raw.shape}, the model expects ({self.frames}, H, W)"
                                if raw.ndim != 3 else
                                f"the stack has {raw.shape[0]} frames, the model expects {self.frames}")
        return predict_stack(self.adapter, raw, self.normalization, tile=tile,
                             halo=self.halo if halo is None else halo, multiple=self.size_multiple,
                             batch_size=batch_size, progress=progress, scale=self.scale, border=border)

    def expect(self, shape_hw: tuple[int, int], tile: int | None = None, halo: int | None = None,
               batch_size: int = 1, border: str | None = BORDER_MODE) -> None:
        """Tell the engine the size ``(H, W)`` of the network-grid image the next :meth:`predict`
        gets (with the same ``tile``/``halo``/``batch_size``/``border``), so that it can prepare for
        the batch shapes that prediction will have (:meth:`srredsim.runtime.base.Engine.expect`)."""
        from srredsim.predict import window_shapes

        halo = self.halo if halo is None else halo
        shapes = window_shapes(shape_hw, tile, halo, multiple=self.size_multiple, border=border,
                               batch_size=batch_size)
        # with the image extended by the halo, every window's outer halo band is cut from the result
        # (the extension itself, or the part of a tile that its neighbour predicts)
        self.adapter.expect([(b, h, w, self.frames) for b, h, w in shapes], discard=halo if border else 0)

    def describe(self) -> str:
        """One line: the model, the engine and precision that run it, the CPU path, why."""
        from srredsim.hardware import cpu_path

        what = self.kind + (f", {self.weights} weights" if self.weights else "")
        where = self.adapter.device()
        path = f"CPU path {cpu_path()}" if where == "CPU" else where
        return (f"{self.name or self.source} ({what}) on {self.engine} {self.precision}, {path}"
                + (f" ({self.choice})" if self.choice else ""))

    def close(self) -> None:
        self.adapter.close()

    def __enter__(self) -> "ModelHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- sources ----------------------------------------------------------------------------------
class _Source:
    """A model artifact before an engine is chosen (internal to :func:`open_model`)."""

    kind = "model"
    engines: tuple[str, ...] = ()

    def __init__(self, path: Path, name: str, fields: dict[str, Any], optics: OpticsConfig | None = None):
        self.path, self.name, self.fields, self.optics = path, name, fields, optics
        self._tmp: str | None = None
        self._engine_files: dict[bool, Path] = {}  # int8 or not -> the file onnx/openvino engines read
        self._key: str | None = None

    def open_engine(self, engine: str, precision: str, shape: tuple[int, ...] | None = None,
                    discard: int = 0) -> Engine:
        """``shape``: the one batch shape the first calls will have, for an engine that compiles per
        size (OpenVINO; the others ignore it). ``discard``: input pixels per side of every such
        window whose output the caller throws away (OpenVINO then skips computing most of them,
        :mod:`srredsim.runtime.trim`)."""
        raise NotImplementedError

    def key(self) -> str:
        """The model's content hash, which names its cache entries (conversions, the auto choice, the
        measured halo): computed once per source, however many of them ask."""
        if self._key is None:
            self._key = self._content_key()
        return self._key

    def _content_key(self) -> str:
        raise NotImplementedError

    def test_raw(self, size: int = TEST_SIZE) -> np.ndarray:
        """The model's own test input, ``(frames, H, W)`` or a batch ``(1, H, W, frames)``: a raw
        stack, or for a same-grid model an SR image ``(1, H, W)`` (see :meth:`_synthetic_raw`)."""
        return self._synthetic_raw(size)

    def _synthetic_raw(self, size: int, seed: int = 0, photons: float = 200.0) -> np.ndarray:
        """A synthetic input of edge ``size``: a raw SIM stack; for a same-grid model (scale 1) the
        classical reconstruction of one (what RED-Net reads), so that engines are compared and
        timed on the kind of image they will run on."""
        from srredsim.export.testdata import synthetic_raw_stack

        m = self.fields["size_multiple"]
        size = -(-size // m) * m
        if self.fields.get("scale", 2) == 1:
            from srredsim.export.testdata import synthetic_reconstruction

            size = max(64, size + size % 2)  # the classical step needs >= 32 raw pixels; the 2x grid is even
            return synthetic_reconstruction(self.optics or OpticsConfig(), size, seed=seed,
                                            model_cfg=self.fields.get("model_config"), photons=photons)
        optics = self.optics or _optics_for(self.fields["frames"])
        if optics is None:
            top = 100 + int(photons * 20)
            return np.random.default_rng(seed).integers(90, top, (self.fields["frames"], size, size)).astype(np.uint16)
        return synthetic_raw_stack(optics, size, seed=seed, photons=photons)

    def calibration_batches(self):
        """Inputs that set int8 activation ranges (:mod:`srredsim.runtime.quantize`): the model's
        kind of synthetic input at each of ``CALIBRATION_PHOTONS``, seeds 1, 2, ... (the test tensor
        is seed 0, so the tolerance check sees an input the ranges were not taken from). For a
        same-grid model an input whose classical step finds no pattern (possible at 2 photons) is
        left out; none at all is an error."""
        from srredsim.runtime.quantize import CALIBRATION_PHOTONS, CALIBRATION_SIZE

        size = CALIBRATION_SIZE
        if self.fields.get("fixed_size"):
            size = int(self.test_batch().shape[1])  # the one input size it takes
        made, failures = 0, []
        for i, photons in enumerate(CALIBRATION_PHOTONS, start=1):
            try:
                batch = self._batch(self._synthetic_raw(size, seed=i, photons=photons))
            except Exception as exc:  # e.g. ClassicalStepFailed on a dim RED-Net input
                failures.append(f"{photons:g} photons: {type(exc).__name__}: {exc}")
                continue
            made += 1
            yield batch
        if not made:
            raise SrredsimError(f"int8 calibration: no synthetic input could be made ({failures[0]})")

    def onnx_file(self) -> Path:
        """The ONNX file the onnx and openvino engines read (converted first where needed)."""
        raise SrredsimError(f"{self.path}: no ONNX weights")

    def engine_file(self, precision: str, log: Callable[[str], None] | None = None) -> Path:
        """The file the onnx and openvino engines read: the ONNX weights, or for int8 their quantised
        copy. Resolved once per source (a run folder's conversion, the int8 copy, and the content
        hashes that name them in the cache): :meth:`prepare` and the engines opened after it share it."""
        int8 = precision == "int8"
        if int8 not in self._engine_files:
            path = self.onnx_file()
            if int8:
                from srredsim.runtime.quantize import cached_int8

                path = cached_int8(path, self.calibration_batches, log)
            self._engine_files[int8] = path
        return self._engine_files[int8]

    def prepare(self, engine: str, precision: str, log: Callable[[str], None] | None = None) -> None:
        """Do, in the calling thread, what opening ``engine`` needs that is slow or fails for reasons
        the user must hear at once: the hardware check, a conversion, the int8 copy (made once; NNCF
        draws progress). Opening afterwards -- possibly in a background thread -- only compiles."""
        if engine != "openvino":
            return
        if precision == "bf16":
            from srredsim.runtime.openvino_engine import check_bf16

            check_bf16()
        self.engine_file(precision, log)

    def test_batch(self) -> np.ndarray:
        """The test tensor in network units, ``(1, H, W, frames)``."""
        if getattr(self, "_test", None) is None:
            self._test = self._batch(self.test_raw())
        return self._test

    def timing_batch(self) -> np.ndarray | None:
        """A stack of at least ``TIMING_SIZE``^2 to time engines on; None: time on the test tensor (it is
        that large, or the model takes one input size only)."""
        if self.fields.get("fixed_size") or min(self.test_batch().shape[1:3]) >= TIMING_SIZE:
            return None
        return self._batch(self._synthetic_raw(TIMING_SIZE))

    def _batch(self, raw: np.ndarray) -> np.ndarray:
        from srredsim.normalization import normalize_raw
        from srredsim.predict import stack_to_hwc

        if raw.ndim == 3:
            return stack_to_hwc(normalize_raw(raw, self.fields["normalization"]))[None]
        return np.asarray(normalize_raw(raw, self.fields["normalization"]), np.float32)

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _optics_for(frames: int) -> OpticsConfig | None:
    for phases in (5, 3, 4):
        if frames % phases == 0 and 1 <= frames // phases <= 12:
            return OpticsConfig(angles=frames // phases, phases=phases)
    return None


def _meta_fields(meta: dict[str, Any] | None, frames: int | None = None) -> dict[str, Any]:
    """A source's fields from srredsim metadata; ``frames``: the network's input channels where
    the artifact shows them (an ONNX or SavedModel input), else None."""
    from srredsim.export.meta import halo as _halo, size_multiple as _sm

    meta = meta or {}
    mc = meta.get("model")
    scale = artifact_scale(meta)
    if scale == 1:  # the metadata's "frames" may be the raw layout of training; the network reads one image
        frames = int(frames or (mc.in_channels if mc else 1))
    else:
        frames = int(meta.get("frames") or frames or 15)
    if isinstance(meta.get("optics"), dict):  # recorded by srredsim >= 0.2 exports
        sampling = ModelSampling.from_dict(meta, source="the model's srredsim metadata")
    else:
        optics = _meta_optics(meta) or _optics_for(frames)
        sampling = None if optics is None else ModelSampling.from_dict({"optics": optics.model_dump()})
    return dict(
        sampling=sampling,
        normalization=meta.get("normalization") or NormalizationConfig(),
        pixel_size_um=meta.get("pixel_size_um"),
        frames=frames,
        size_multiple=int(meta.get("size_multiple") or (_sm(mc) if mc else 1)),
        # a recorded 0 (a fixed-size, microscope-matched package: run whole) is a value, not "unknown"
        halo=int(meta["halo"]) if meta.get("halo") is not None else (_halo(mc) if mc else 16),
        model_config=mc,
        scale=scale,
        fixed_size=meta.get("matched") is not None,  # srredsim.export.matched: one input size, run whole
    )


def artifact_scale(meta: dict[str, Any]) -> int:
    """Output pixels per input pixel of an exported network: the srredsim metadata's ``scale``
    (written by exports since issue 15; a package made elsewhere: from its axes), else its
    network configuration's, else 2 (every artifact before RED-fairSIM was a 2x network)."""
    mc = meta.get("model")
    raw = meta.get("scale")
    try:
        scale = int(raw) if raw is not None else (mc.scale if mc is not None else 2)
    except (TypeError, ValueError):
        raise SrredsimError(f"the model's srredsim metadata has scale {raw!r}, expected 1 or 2") from None
    if scale not in (1, 2):
        raise SrredsimError(f"the model's output is {scale}x its input; srredsim runs 2x (raw stack) "
                            "and 1x (RED-fairSIM) networks only")
    return scale


def _meta_optics(meta: dict[str, Any] | None) -> OpticsConfig | None:
    try:
        return OpticsConfig(angles=int(meta["angles"]), phases=int(meta["phases"]),
                            pixel_size_um=float(meta.get("pixel_size_um") or 0.08))
    except (TypeError, KeyError, ValueError):
        return None


class _RunSource(_Source):
    kind = "run folder"
    engines = ENGINES

    def __init__(self, run, which: str):
        from srredsim.export.meta import halo, size_multiple

        cfg = run.config
        run.weights_path(which)  # a clear error now if these weights are missing
        super().__init__(run.path, run.path.name, dict(
            normalization=cfg.normalization, pixel_size_um=cfg.optics.pixel_size_um, frames=cfg.model.in_channels,
            size_multiple=size_multiple(cfg.model), halo=halo(cfg.model), model_config=cfg.model,
            sampling=ModelSampling.from_config(cfg), scale=cfg.model.scale), cfg.optics)
        self.run, self.which = run, which

    def open_engine(self, engine: str, precision: str, shape: tuple[int, ...] | None = None,
                    discard: int = 0) -> Engine:
        from srredsim.runtime import conversions

        if engine == "keras":
            from srredsim.runtime.keras_engine import KerasEngine

            return KerasEngine.from_run(self.run, self.which, precision)
        if engine == "savedmodel":
            from srredsim.runtime.savedmodel_engine import SavedModelEngine

            return SavedModelEngine(conversions.cached_savedmodel(self.run, self.which), precision=precision)
        return _onnx_file_engine(engine, self.engine_file(precision), precision, shape, discard)

    def onnx_file(self) -> Path:
        from srredsim.runtime import conversions

        return conversions.cached_onnx(self.run, self.which)

    def _content_key(self) -> str:
        from srredsim.runtime.conversions import run_key

        return run_key(self.run, self.which)


def _onnx_file_engine(engine: str, path: Path, precision: str, shape: tuple[int, ...] | None = None,
                      discard: int = 0) -> Engine:
    """The onnx or openvino engine on ``path`` (:meth:`_Source.engine_file`); OpenVINO compiled for
    ``shape`` when given, skipping the ``discard`` band (:meth:`_Source.open_engine`)."""
    if engine == "openvino":
        from srredsim.runtime.openvino_engine import OpenVinoEngine

        return OpenVinoEngine(path, precision, shape=shape, discard=discard)
    from srredsim.runtime.onnx_engine import OnnxEngine

    return OnnxEngine(path, precision)


class _OnnxSource(_Source):
    kind = "ONNX file"
    engines = ("onnx", "openvino")

    def __init__(self, path: Path):
        from srredsim.export.meta import META_KEY, parse_metadata
        from srredsim.export.onnx_export import onnx_info

        info = onnx_info(path)
        meta = parse_metadata(info["metadata"].get(META_KEY))
        shape = next(iter(info["inputs"].values()), [])
        nchw = len(shape) == 4 and isinstance(shape[1], int) and not isinstance(shape[3], int)
        channels = (shape[1] if nchw else shape[-1]) if shape else None
        channels = channels if isinstance(channels, int) else None
        fields = _meta_fields(meta, channels)
        if channels is not None and channels != fields["frames"]:
            raise SrredsimError(f"{path}: ONNX input has {channels} channels but its metadata says "
                                f"{fields['frames']} frames")
        super().__init__(path, path.stem, fields, _meta_optics(meta))

    def open_engine(self, engine: str, precision: str, shape: tuple[int, ...] | None = None,
                    discard: int = 0) -> Engine:
        return _onnx_file_engine(engine, self.engine_file(precision), precision, shape, discard)

    def onnx_file(self) -> Path:
        return self.path

    def _content_key(self) -> str:
        from srredsim.runtime.conversions import file_hash

        return file_hash(self.path)


class _SavedModelSource(_Source):
    kind = "SavedModel"
    engines = ("savedmodel",)

    def __init__(self, folder: Path, origin: Path):
        from srredsim.export.meta import META_FILE, parse_metadata
        from srredsim.runtime.savedmodel_engine import input_channels

        meta = parse_metadata((folder / META_FILE).read_text()) if (folder / META_FILE).is_file() else None
        self.signature, channels = input_channels(folder)
        super().__init__(origin, origin.name, _meta_fields(meta, channels), _meta_optics(meta))
        self.folder = folder

    def open_engine(self, engine: str, precision: str, shape: tuple[int, ...] | None = None,
                    discard: int = 0) -> Engine:
        from srredsim.runtime.savedmodel_engine import SavedModelEngine

        return SavedModelEngine(self.folder, self.signature, precision)

    def _content_key(self) -> str:
        """The graph and its variables (two trainings of one architecture share the graph file)."""
        from srredsim.runtime.conversions import file_hash

        h = hashlib.sha256()
        for f in [self.folder / "saved_model.pb", *sorted((self.folder / "variables").glob("*"))]:
            if f.is_file():
                h.update(f.name.encode())
                h.update(file_hash(f).encode())
        return h.hexdigest()[:16]


class _PackageSource(_Source):
    kind = "bioimage.io package"

    def __init__(self, folder: Path, origin: Path):
        from srredsim.runtime.package import metadata_from_rdf, read_rdf, test_input_file, weight_files

        rdf = read_rdf(folder)
        self.files = weight_files(folder, rdf, origin)
        self.engines = tuple(e for e in ENGINES if e in self.files)
        meta = metadata_from_rdf(rdf)
        super().__init__(origin, str(rdf.get("name") or origin.stem), _meta_fields(meta), _meta_optics(meta))
        self.folder, self.origin, self.test_file = folder, origin, test_input_file(folder, rdf)

    def open_engine(self, engine: str, precision: str, shape: tuple[int, ...] | None = None,
                    discard: int = 0) -> Engine:
        src = self.files[engine]
        if engine == "keras":
            from srredsim.runtime.keras_engine import KerasEngine

            return KerasEngine.from_hdf5(src, self.fields["model_config"], self.origin, precision)
        if engine == "savedmodel":
            from srredsim.export.safezip import safe_extract
            from srredsim.runtime.savedmodel_engine import SavedModelEngine

            sm = Path(tempfile.mkdtemp(prefix="srredsim-savedmodel-"))
            try:
                safe_extract(src, sm)
                if not (sm / "saved_model.pb").is_file():
                    raise SrredsimError(f"{self.origin}: {src.name} has no saved_model.pb at its root")
                return SavedModelEngine(sm, precision=precision)
            finally:
                shutil.rmtree(sm, ignore_errors=True)  # the variables are in memory once loaded
        return _onnx_file_engine(engine, self.engine_file(precision), precision, shape, discard)

    def onnx_file(self) -> Path:
        if "openvino" not in self.files:
            raise SrredsimError(f"{self.origin}: the package has no onnx weights")
        return self.files["openvino"]

    def _content_key(self) -> str:
        from srredsim.runtime.conversions import file_hash

        h = hashlib.sha256()
        for engine in sorted(self.files):
            h.update(file_hash(self.files[engine]).encode())
        return h.hexdigest()[:16]

    def test_raw(self, size: int = TEST_SIZE) -> np.ndarray:
        if self.test_file is not None:
            x = np.load(self.test_file, allow_pickle=False)
            if x.ndim == 4 and x.shape[-1] == self.fields["frames"]:
                return x
        return super().test_raw(size)


# ---- opening ----------------------------------------------------------------------------------
def _source(path: Path, weights: str) -> _Source:
    from srredsim.runfolder import is_run, load_run
    from srredsim.runtime.package import is_package_dir

    if not path.exists():
        raise SrredsimError(f"{path}: no such model (run folder, package, .onnx or SavedModel)")
    if is_run(path):
        return _RunSource(load_run(path), weights)
    if weights != "best":
        raise SrredsimError(f"{path}: only a run folder has best and last weights (--weights {weights})")
    if path.is_dir():
        if is_package_dir(path):
            return _PackageSource(path, path)
        if (path / "saved_model.pb").is_file():
            return _SavedModelSource(path, path)
        if any(path.glob("*.weights.h5")):
            raise SrredsimError(f"{path}: is not a model folder (no config.json)")
        raise SrredsimError(f"{path}: not a run folder, bioimage.io package or SavedModel folder")
    if path.suffix.lower() == ".onnx":
        return _OnnxSource(path)
    import zipfile

    if zipfile.is_zipfile(path):
        return _zip_source(path)
    if path.suffix.lower() == ".zip":
        raise SrredsimError(f"{path}: not a readable zip archive (truncated or corrupt)")
    raise SrredsimError(f"{path}: unknown model type (expected a run folder, .zip package, .onnx or SavedModel)")


def _zip_source(path: Path) -> _Source:
    from srredsim.export.safezip import check_zip, open_zip, safe_extract
    from srredsim.runtime.package import RDF_NAMES

    with open_zip(path) as zf:
        names = {i.filename for i in check_zip(zf, path)}
    tmp = tempfile.mkdtemp(prefix="srredsim-model-")
    try:
        safe_extract(path, tmp)
        if names & set(RDF_NAMES):
            source: _Source = _PackageSource(Path(tmp), path)
        elif "saved_model.pb" in names:
            source = _SavedModelSource(Path(tmp), path)
        else:
            raise SrredsimError(f"{path}: zip archive has neither rdf.yaml (bioimage.io package) nor saved_model.pb")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    source._tmp = tmp
    return source


class _OpeningEngine(Engine):
    """An engine opened in a background thread (:meth:`ModelArtifact.open` with ``background``):
    OpenVINO releases the interpreter while it compiles (0.1-0.4 s for the full network), so
    ``srredsim predict`` reads and checks its first stack meanwhile. The thread starts when the
    caller says which input the first calls get (:meth:`expect`: OpenVINO then compiles for that
    fixed size) or, failing that, at the first call. Every call waits for the real engine; an
    error while opening is raised by the first call."""

    def __init__(self, name: str, precision: str, opener: Callable[..., Engine], keep: object = None):
        """``opener(shape, discard)`` opens the engine (``shape``: the one batch shape expected, or
        None; ``discard``: the band of each window the caller throws away, :meth:`expect`).
        ``keep``: an object to hold on to until the engine is open (the artifact whose unpacked
        files the thread reads: dropped earlier, its finalizer would delete them mid-compile)."""
        import threading

        self.name, self.precisions = name, (precision,)
        super().__init__(precision)
        self._engine: Engine | None = None
        self._error: BaseException | None = None
        self._keep, self._opener = keep, opener
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def expect(self, shapes, discard: int = 0) -> None:
        """Start opening, for ``shapes[0]`` when it is the only batch shape the prediction will
        have (a whole image, or tiles of one size), else for any shape; later calls do nothing."""
        shapes = [tuple(int(d) for d in s) for s in shapes]
        self._start(shapes[0] if len(shapes) == 1 else None, discard if len(shapes) == 1 else 0)

    def _start(self, shape, discard: int = 0) -> None:
        import threading

        with self._lock:
            if self._thread is None:
                # not a daemon: an interpreter leaving while a native compile runs would crash on exit
                self._thread = threading.Thread(target=self._open, args=(shape, discard),
                                                name="srredsim-open-engine")
                self._thread.start()

    def _open(self, shape, discard: int) -> None:
        try:
            self._engine = self._opener(shape, discard)
        except BaseException as exc:  # handed to the caller by the first call
            self._error = exc
        finally:
            self._keep = self._opener = None

    def wait(self) -> Engine | None:
        """The opened engine (None if opening failed), once the thread is done (started now if
        nobody said what to expect)."""
        self._start(None)
        self._thread.join()
        return self._engine

    def settle(self) -> None:
        """Wait for an opening that has started; one that has not will not start any more."""
        with self._lock:
            thread = self._thread
            if thread is None:  # never started: nothing to open, nothing read from the artifact
                self._thread = _DONE
                self._keep = self._opener = None
        if thread is not None:
            thread.join()

    def _ready(self) -> Engine:
        engine = self.wait()
        if self._error is not None:
            raise self._error
        if engine is None:
            raise SrredsimError(f"the {self.name} engine was closed")
        return engine

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._ready().predict(batch)

    def device(self) -> str:
        return "CPU"  # OpenVINO runs on the CPU here (the only engine opened in the background)

    def close(self) -> None:
        self.settle()
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class _Done:
    """A finished thread (an opening that was closed before it started)."""

    def join(self) -> None:
        pass


_DONE = _Done()


class ModelArtifact:
    """A model read from disk (a zip unpacked) but not yet opened on an engine.

    A command that first checks its inputs against what the model reads (:attr:`io`) and then
    opens it (:meth:`open`) does both on one artifact, so that a zipped package is unpacked once,
    not once per question (``srredsim predict PACKAGE.zip`` used to unpack it for
    :func:`model_io` and again for :func:`open_model`). Use it as a context manager: leaving it
    removes the unpacked files; handles opened from it keep running, since every engine holds
    its weights in memory once loaded.
    """

    def __init__(self, source: _Source):
        import weakref

        self._source = source
        self._closed = False
        self._opening: list[_OpeningEngine] = []  # engines still compiling from its files
        # an artifact dropped without close() (no ``with``) still removes its unpacked files
        self._finalizer = weakref.finalize(self, source.close)

    def _live(self) -> _Source:
        if self._closed:
            raise SrredsimError(f"{self._source.path}: this model artifact was closed (its unpacked files are "
                                "gone); read it again with read_model")
        return self._source

    @property
    def io(self) -> "ModelIO":
        """The network's input channels and scale, from the metadata (nothing is opened or measured)."""
        fields = self._live().fields
        return ModelIO(int(fields["frames"]), int(fields.get("scale", 2)))

    def open(self, engine: str = "auto", precision: str = "auto",
             log: Callable[[str], None] | None = None, background: bool = False,
             halo: int | None = None) -> ModelHandle:
        """Open the model on an engine (see :func:`open_model` for ``engine``, ``precision``, ``log``).

        ``background``: an OpenVINO engine compiles in a thread while the caller goes on (reads
        and checks its first input); the handle's first prediction waits for it, and an error
        while opening surfaces there. Close the artifact only after that (it waits too: the
        thread may still read the unpacked files). ``halo``: the context per tile side to use (the
        ``--halo`` flag); None: the one measured for the model (:mod:`srredsim.runtime.halo`)."""
        from srredsim.runtime.choice import choose
        from srredsim.runtime.halo import measured_halo

        source = self._live()
        choice = choose(source, check_engine(engine), check_precision(precision), log)
        adapter = choice.adapter
        if adapter is None:
            source.prepare(choice.engine, choice.precision, log)  # errors and progress now, in this thread
        if halo is None:
            fp32 = adapter if adapter is not None and adapter.precision == "fp32" else None
            halo = measured_halo(source, choice.engine, fp32, log, precision=choice.precision)
        if adapter is None:
            if background and choice.engine == "openvino":
                adapter = _OpeningEngine(choice.engine, choice.precision,
                                         lambda shape, discard: source.open_engine(choice.engine, choice.precision,
                                                                                   shape, discard),
                                         keep=self)
                self._opening.append(adapter)
            else:
                adapter = source.open_engine(choice.engine, choice.precision)
        return ModelHandle(adapter=adapter, source=source.path, name=source.name, kind=source.kind,
                           weights=source.which if isinstance(source, _RunSource) else None, choice=choice.reason,
                           **{**source.fields, "halo": halo}, declared_halo=source.fields["halo"])

    def auto_choice(self) -> str:
        """What ``--engine auto --precision auto`` runs the model on here, from the cache (no measuring)."""
        from srredsim.runtime.choice import cached_choice_line

        return cached_choice_line(self._live())

    def halo_line(self) -> str:
        """The context per tile side ``predict`` uses (:mod:`srredsim.runtime.halo`), from the cache."""
        from srredsim.runtime.halo import describe

        return describe(self._live())

    def measured_halo(self, precision: str = "fp32") -> int | None:
        """The halo measured for this model (:mod:`srredsim.runtime.halo`) that an engine at
        ``precision`` uses, from the cache; None if not yet measured."""
        from srredsim.runtime.halo import read_record, width_for

        rec = read_record(self._live())
        return None if rec is None else width_for(rec, precision)

    def close(self) -> None:
        """Remove the unpacked files, if any (once; later calls do nothing), after any engine
        opening in the background has read them."""
        self._closed = True
        for pending in self._opening:
            pending.settle()
        self._opening = []
        self._finalizer()

    def __enter__(self) -> "ModelArtifact":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_model(path: str | os.PathLike, weights: str = "best") -> ModelArtifact:
    """Read a run folder, an exported artifact, or a shipped model by name, without opening an
    engine: ``with read_model(path) as m: check(m.io); handle = m.open(...)``. ``weights``: ``best``
    or ``last`` (run folders only)."""
    from srredsim.pretrained import resolve

    if weights not in ("best", "last"):
        raise SrredsimError(f"unknown weights {weights!r}: use 'best' or 'last'")
    return ModelArtifact(_source(resolve(path), weights))


def open_model(path: str | os.PathLike, engine: str = "auto", precision: str = "auto", weights: str = "best",
               log: Callable[[str], None] | None = None) -> ModelHandle:
    """Open a run folder, an exported artifact, or a shipped pretrained model by name.

    ``engine``: ``auto`` or one of :data:`~srredsim.runtime.base.ENGINES`; ``precision``:
    ``auto``, ``fp32``, ``bf16`` or ``int8`` (OpenVINO, asked for by name only); ``auto`` chooses by
    measurement (:mod:`srredsim.runtime.choice`), whose progress goes to ``log``, as does the
    one-time measurement of the model's halo (:mod:`srredsim.runtime.halo`). ``weights``: ``best``
    or ``last`` (run folders only).
    To ask what the model reads before opening it, use :func:`read_model` (one unpacking for both).
    """
    check_engine(engine)  # bad requests fail before a zip is unpacked
    check_precision(precision)
    with read_model(path, weights) as artifact:
        return artifact.open(engine, precision, log)


class ModelIO(NamedTuple):
    """What a model reads and returns, known before it is opened (see :func:`model_io`)."""

    frames: int  # channels of the network input (raw frames; 1 for a same-grid model)
    scale: int  # output pixels per input pixel (2; 1: RED-fairSIM's RED-Net on a reconstruction)


def model_io(path: str | os.PathLike, weights: str = "best") -> ModelIO:
    """A model's input channels and scale from its metadata (no engine is opened or measured):
    commands check their inputs with it before the slow part starts (and open the model from the
    same :func:`read_model` when they go on to run it)."""
    with read_model(path, weights) as artifact:
        return artifact.io


def model_frames(path: str | os.PathLike, weights: str = "best") -> int:
    """The number of channels (raw frames) a model's network reads (see :func:`model_io`)."""
    return model_io(path, weights).frames


def auto_choice(path: str | os.PathLike, weights: str = "best") -> str:
    """What ``--engine auto --precision auto`` runs ``path`` on here, from the cache (no measuring)."""
    with read_model(path, weights) as artifact:
        return artifact.auto_choice()
