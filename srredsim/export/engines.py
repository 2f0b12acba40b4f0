"""Run any exported artifact -- or a run folder on any engine -- through one interface.

``srredsim predict`` calls :func:`open_artifact` for everything that is not a run folder:

* a bioimage.io package (zip or unpacked folder with ``rdf.yaml``),
* an ``.onnx`` file (channels-last or the channels-first ``--nchw`` variant),
* a TensorFlow SavedModel folder, or a zip with ``saved_model.pb`` at its root,

and :func:`open_run_engine` for a run folder on ``keras``, ``onnx`` (converted on the fly and
cached in the run folder) or ``savedmodel``. Both return an :class:`Artifact` whose
``predict_fn`` maps a float32 batch ``(B, h, w, C)`` in network units to ``(B, 2h, 2w, 1)``;
normalisation, pixel size and tiling parameters come from the artifact's own metadata
(``config.srredsim`` of the RDF, the ONNX ``metadata_props``, ``srredsim.json``), falling back
to what the RDF's pre/post-processing says for packages made elsewhere.

Keras weights are never deserialised as code: a package's ``keras_hdf5`` weights are loaded
into a network rebuilt from ``config.srredsim.model``; only a foreign package without that goes
through ``keras.saving.load_model`` with ``safe_mode=True``. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srredsim.config import ModelConfig, NormalizationConfig
from srredsim.errors import SrredsimError, atomic_dir, atomic_path
from srredsim.export import INPUT_ID, SERVE_ENDPOINT, SIGNATURE
from srredsim.export.meta import META_FILE, META_KEY, parse_metadata

ENGINES = ("keras", "onnx", "savedmodel")
RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
CACHE_DIR = "export_cache"


@dataclass
class Artifact:
    """A runnable model plus what is needed to feed it correctly."""

    predict_fn: Callable[[np.ndarray], np.ndarray]
    normalization: NormalizationConfig
    pixel_size_um: float | None
    frames: int
    size_multiple: int
    halo: int
    engine: str
    path: Path
    name: str = ""
    model_config: ModelConfig | None = None
    _tempdirs: list[str] = field(default_factory=list, repr=False)

    def close(self) -> None:
        for d in self._tempdirs:
            shutil.rmtree(d, ignore_errors=True)
        self._tempdirs.clear()

    def __enter__(self) -> "Artifact":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def _check_engine(engine: str | None) -> str | None:
    if engine is not None and engine not in ENGINES:
        raise SrredsimError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    return engine


# ---- run folders ------------------------------------------------------------------------------
def open_run_engine(run, engine: str | None = None, which: str = "best") -> Artifact:
    """An :class:`Artifact` for a run folder (a :class:`~srredsim.runfolder.Run` or a path).

    ``keras`` (default) rebuilds the network and loads its weights; ``onnx`` and ``savedmodel``
    convert it once and cache the result in ``RUN/export_cache/`` keyed by a hash of the config
    and weights, so a retrained model never reuses a stale conversion.
    """
    from srredsim.export.meta import halo, size_multiple
    from srredsim.runfolder import Run, load_run

    engine = _check_engine(engine) or "keras"
    if not isinstance(run, Run):
        run = load_run(run)
    cfg = run.config
    weights = run.weights_path(which)
    common = dict(normalization=cfg.normalization, pixel_size_um=cfg.optics.pixel_size_um,
                  frames=cfg.optics.frames, size_multiple=size_multiple(cfg.model), halo=halo(cfg.model),
                  path=run.path, name=run.path.name, model_config=cfg.model)
    if engine == "keras":
        from srredsim.predict import keras_predict_fn

        return Artifact(predict_fn=keras_predict_fn(run.load_inference_model(which)), engine="keras", **common)
    key = _run_hash(cfg, weights)
    cache = _cache_dir(run.path)
    if engine == "onnx":
        from srredsim.export.onnx_export import convert_to_onnx, onnx_predict_fn, save_onnx
        from srredsim.export.meta import metadata_json

        target = cache / f"model-{key}.onnx"
        if not target.is_file():
            proto = convert_to_onnx(run.load_inference_model(which), metadata={META_KEY: metadata_json(cfg)})
            cache.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                save_onnx(proto, tmp)
        return Artifact(predict_fn=onnx_predict_fn(target, INPUT_ID), engine="onnx", **common)
    from srredsim.export.savedmodel import export_savedmodel, savedmodel_predict_fn

    target = cache / f"savedmodel-{key}"
    if not (target / "saved_model.pb").is_file():
        model = run.load_inference_model(which)
        with atomic_dir(target, overwrite=True) as tmp:
            tmp.rmdir()
            export_savedmodel(model, tmp)
    return Artifact(predict_fn=savedmodel_predict_fn(target), engine="savedmodel", **common)


def _cache_dir(run_path: Path) -> Path:
    """``RUN/export_cache`` when the run folder is writable (also for the shipped models of an
    editable install), else a per-user cache keyed by the run's location."""
    local = run_path / CACHE_DIR
    if local.is_dir() and os.access(local, os.W_OK) or not local.exists() and os.access(run_path, os.W_OK):
        return local
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srredsim" / "export_cache"
    return base / hashlib.sha256(str(run_path.resolve()).encode()).hexdigest()[:16]


def _run_hash(cfg, weights: Path) -> str:
    h = hashlib.sha256()
    h.update(b"inference-twin-v1")  # conversions made from the plain-convolution twin
    h.update(cfg.model.model_dump_json().encode())
    with open(weights, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# ---- exported artifacts -----------------------------------------------------------------------
def open_artifact(path: str | os.PathLike, engine: str | None = None) -> Artifact:
    """Open a package (zip/folder), an ONNX file or a SavedModel (folder/zip) for prediction."""
    from srredsim.runfolder import is_run

    engine = _check_engine(engine)
    path = Path(path)
    if not path.exists():
        raise SrredsimError(f"{path}: no such model, package or file")
    if path.is_dir():
        if any((path / n).is_file() for n in RDF_NAMES):
            return _open_package_dir(path, engine, [])
        if (path / "saved_model.pb").is_file():
            return _open_savedmodel(path, engine, [])
        if is_run(path):
            return open_run_engine(path, engine)
        raise SrredsimError(f"{path}: not a run folder, bioimage.io package or SavedModel folder")
    if path.suffix.lower() == ".onnx":
        return _open_onnx(path, engine)
    import zipfile

    if zipfile.is_zipfile(path):
        from srredsim.export.safezip import check_zip, open_zip, safe_extract

        with open_zip(path) as zf:
            names = {i.filename for i in check_zip(zf, path)}
        # Every engine reads its weights into memory when it loads, so the extracted files are
        # removed right away and the Artifact owns nothing on disk.
        tmp = tempfile.mkdtemp(prefix="srredsim-artifact-")
        try:
            safe_extract(path, tmp)
            if names & set(RDF_NAMES):
                return _open_package_dir(Path(tmp), engine, [], origin=path)
            if "saved_model.pb" in names:
                return _open_savedmodel(Path(tmp), engine, [], origin=path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        raise SrredsimError(f"{path}: zip archive has neither rdf.yaml (bioimage.io package) nor saved_model.pb")
    if path.suffix.lower() == ".zip":
        raise SrredsimError(f"{path}: not a readable zip archive (truncated or corrupt)")
    raise SrredsimError(f"{path}: unknown model type (expected a run folder, .zip package, .onnx or SavedModel)")


def _meta_fields(meta: dict[str, Any] | None, frames: int | None = None) -> dict[str, Any]:
    meta = meta or {}
    mc = meta.get("model")
    from srredsim.export.meta import halo as _halo, size_multiple as _sm

    return dict(
        normalization=meta.get("normalization") or NormalizationConfig(),
        pixel_size_um=meta.get("pixel_size_um"),
        frames=int(meta.get("frames") or frames or 15),
        size_multiple=int(meta.get("size_multiple") or (_sm(mc) if mc else 1)),
        halo=int(meta.get("halo") or (_halo(mc) if mc else 16)),
        model_config=mc,
    )


def _open_onnx(path: Path, engine: str | None) -> Artifact:
    if engine not in (None, "onnx"):
        raise SrredsimError(f"{path}: an ONNX file runs only on the onnx engine, not {engine!r}")
    from srredsim.export.onnx_export import onnx_info, onnx_predict_fn

    info = onnx_info(path)
    meta = parse_metadata(info["metadata"].get(META_KEY))
    fn = onnx_predict_fn(path, INPUT_ID)
    channels = fn.channels if isinstance(fn.channels, int) else None
    fields = _meta_fields(meta, channels)
    if channels is not None and channels != fields["frames"]:
        raise SrredsimError(f"{path}: ONNX input has {channels} channels but its metadata says {fields['frames']} frames")
    return Artifact(predict_fn=fn, engine="onnx", path=path, name=path.stem, **fields)


def _open_savedmodel(folder: Path, engine: str | None, tempdirs: list[str], origin: Path | None = None) -> Artifact:
    origin = origin or folder
    if engine not in (None, "savedmodel"):
        raise SrredsimError(f"{origin}: a SavedModel runs only on the savedmodel engine, not {engine!r}")
    from srredsim.export.savedmodel import read_signatures, savedmodel_predict_fn

    meta = None
    if (folder / META_FILE).is_file():
        meta = parse_metadata((folder / META_FILE).read_text())
    sigs = read_signatures(folder)["signatures"]
    signature = SIGNATURE if SIGNATURE in sigs else SERVE_ENDPOINT
    channels = None
    if signature in sigs and sigs[signature]["inputs"]:
        shape = next(iter(sigs[signature]["inputs"].values()))[1]
        channels = shape[-1] if shape and shape[-1] > 0 else None
    fields = _meta_fields(meta, channels)
    return Artifact(predict_fn=savedmodel_predict_fn(folder, signature=signature), engine="savedmodel",
                    path=origin, name=origin.name, _tempdirs=tempdirs, **fields)


def read_rdf(folder: Path) -> dict[str, Any]:
    import yaml

    for name in RDF_NAMES:
        p = folder / name
        if p.is_file():
            try:
                rdf = yaml.safe_load(p.read_text(encoding="utf-8"))
            except Exception as exc:
                raise SrredsimError(f"{p}: not valid YAML ({exc})") from None
            if not isinstance(rdf, dict):
                raise SrredsimError(f"{p}: expected a mapping at the top level")
            return rdf
    raise SrredsimError(f"{folder}: no rdf.yaml (not a bioimage.io package)")


def _package_file(folder: Path, source: Any, what: str) -> Path:
    src = source.get("source") if isinstance(source, dict) else source
    if not isinstance(src, str) or "://" in src:
        raise SrredsimError(f"{folder}: {what} is not a file inside the package ({src!r})")
    p = (folder / src).resolve()
    if folder.resolve() not in p.parents:
        raise SrredsimError(f"{folder}: {what} points outside the package ({src!r})")
    if not p.is_file():
        raise SrredsimError(f"{folder}: {what} file {src!r} is missing")
    return p


def metadata_from_rdf(rdf: dict[str, Any]) -> dict[str, Any]:
    """srredsim metadata of a package: ``config.srredsim`` or, failing that, what the RDF implies."""
    cfg = (rdf.get("config") or {}) if isinstance(rdf.get("config"), dict) else {}
    meta = parse_metadata(cfg.get(META_KEY))
    if meta is not None:
        return meta
    meta = {}
    inputs, outputs = rdf.get("inputs") or [{}], rdf.get("outputs") or [{}]
    ipt, out = inputs[0], outputs[0]
    for ax in ipt.get("axes") or []:
        if isinstance(ax, dict) and ax.get("type") == "channel":
            meta["frames"] = len(ax.get("channel_names") or [])
        if isinstance(ax, dict) and ax.get("type") == "space" and isinstance(ax.get("size"), dict):
            meta.setdefault("size_multiple", int(ax["size"].get("step") or 1))
    for ax in out.get("axes") or []:
        if isinstance(ax, dict) and ax.get("type") == "space" and ax.get("halo"):
            meta["halo"] = int(ax["halo"]) // 2
    pre = [p for p in ipt.get("preprocessing") or [] if p.get("id") != "ensure_dtype"]
    post = [p for p in out.get("postprocessing") or [] if p.get("id") != "ensure_dtype"]
    norm: NormalizationConfig
    if len(pre) == 1 and pre[0].get("id") == "scale_range":
        kw = pre[0].get("kwargs") or {}
        norm = NormalizationConfig(mode="percentile", low_percentile=float(kw.get("min_percentile", 0.0)),
                                   high_percentile=float(kw.get("max_percentile", 100.0)))
    elif len(pre) == 1 and pre[0].get("id") == "scale_linear" and len(post) <= 1:
        kw = pre[0].get("kwargs") or {}
        gain, offset = float(kw.get("gain", 1.0)), float(kw.get("offset", 0.0))
        x_min, x_max = -offset / gain, (1 - offset) / gain
        y_min, y_max = 0.0, 1.0
        if post and post[0].get("id") == "scale_linear":
            pk = post[0].get("kwargs") or {}
            y_min = float(pk.get("offset", 0.0))
            y_max = y_min + float(pk.get("gain", 1.0))
        norm = NormalizationConfig(mode="global", x_min=x_min, x_max=x_max, y_min=y_min, y_max=y_max)
    elif not pre and not post:
        norm = NormalizationConfig(mode="global", x_min=0.0, x_max=1.0, y_min=0.0, y_max=1.0)
    else:
        ops = [p.get("id") for p in pre] + [p.get("id") for p in post]
        raise SrredsimError(f"package pre/post-processing {ops} cannot be reproduced by srredsim "
                            "(only scale_range or scale_linear are understood)")
    meta["normalization"] = norm
    meta["model"] = None
    return meta


def _open_package_dir(folder: Path, engine: str | None, tempdirs: list[str], origin: Path | None = None) -> Artifact:
    origin = origin or folder
    rdf = read_rdf(folder)
    weights = rdf.get("weights") or {}
    if not isinstance(weights, dict) or not weights:
        raise SrredsimError(f"{origin}: package has no weights")
    meta = metadata_from_rdf(rdf)
    order = {"onnx": "onnx", "savedmodel": "tensorflow_saved_model_bundle", "keras": "keras_hdf5"}
    if engine is None:
        engine = next((e for e, w in order.items() if w in weights), None)
        if engine is None:
            raise SrredsimError(f"{origin}: package has none of the weight formats srredsim runs "
                                f"({', '.join(order.values())}); it has {sorted(weights)}")
    wf = order[engine]
    if wf not in weights:
        raise SrredsimError(f"{origin}: package has no {wf} weights for the {engine} engine (has {sorted(weights)})")
    src = _package_file(folder, weights[wf], f"weights.{wf}")
    fields = _meta_fields(meta)
    name = str(rdf.get("name") or origin.stem)
    if engine == "onnx":
        from srredsim.export.onnx_export import onnx_predict_fn

        fn = onnx_predict_fn(src, INPUT_ID)
    elif engine == "savedmodel":
        from srredsim.export.safezip import safe_extract
        from srredsim.export.savedmodel import savedmodel_predict_fn

        from srredsim.export.savedmodel import read_signatures

        sm = Path(tempfile.mkdtemp(prefix="srredsim-savedmodel-"))
        try:
            safe_extract(src, sm)
            if not (sm / "saved_model.pb").is_file():
                raise SrredsimError(f"{origin}: {src.name} has no saved_model.pb at its root")
            sigs = read_signatures(sm)["signatures"]
            fn = savedmodel_predict_fn(sm, signature=SIGNATURE if SIGNATURE in sigs else SERVE_ENDPOINT)
        finally:
            shutil.rmtree(sm, ignore_errors=True)  # variables are in memory once loaded
    else:
        fn = _keras_fn_from_h5(src, fields["model_config"], origin)
    return Artifact(predict_fn=fn, engine=engine, path=origin, name=name, _tempdirs=tempdirs, **fields)


def _keras_fn_from_h5(path: Path, model_config: ModelConfig | None, origin: Path):
    from srredsim.predict import keras_predict_fn

    if model_config is not None:
        from srredsim.models import build_model

        model = build_model(model_config)
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise SrredsimError(f"{origin}: Keras weights do not fit the network in config.srredsim.model ({exc})") from None
    else:
        import keras

        try:
            model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
        except Exception as exc:
            raise SrredsimError(f"{origin}: cannot load Keras model safely ({type(exc).__name__}: {exc})") from None
    return keras_predict_fn(model)


def describe(artifact: Artifact) -> str:
    """One line for logs: engine, path, frames, normalisation."""
    n = artifact.normalization
    return (f"{artifact.engine} engine, {artifact.path}, {artifact.frames} frames, "
            f"normalisation {n.mode}, halo {artifact.halo}, size multiple {artifact.size_multiple}")
