"""A run folder's network converted once to ONNX or a SavedModel, kept in the per-user cache.

ONNX Runtime, OpenVINO and TensorFlow's SavedModel loader need a file; a run folder holds Keras
weights. The conversion (tf2onnx or ``keras.export``, of the inference twin) takes ~15 s for the
full network, so its result is cached under ``cache_dir("engines")`` -- never inside the model
folder, which may be read-only or the installed package's -- named by a hash of the network
configuration and the weights' bytes: retrained or other weights (``--weights last``) never
reuse a stale conversion, and two copies of one model share it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from srredsim.cache import cache_dir
from srredsim.errors import atomic_dir, atomic_path

# bump when the conversion changes what it produces (v2: without tf2onnx's reshape optimizer and
# checked on ONNX Runtime, see srredsim.export.onnx_export.tf2onnx_optimizers)
CONVERSION_VERSION = b"inference-twin-v2"


def file_hash(path: Path, h=None) -> str:
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def run_key(run, which: str = "best") -> str:
    """Content hash of a run folder's network: model configuration and the chosen weights."""
    h = hashlib.sha256()
    h.update(CONVERSION_VERSION)
    h.update(run.config.model.model_dump_json().encode())
    return file_hash(run.weights_path(which), h)


def cached_onnx(run, which: str = "best") -> Path:
    """The run's network as ONNX (channels last, with the srredsim metadata), converted on first use."""
    target = cache_dir("engines") / f"{run_key(run, which)}.onnx"
    if not target.is_file():
        from srredsim.export.meta import META_KEY, metadata_json
        from srredsim.export.onnx_export import convert_to_onnx, save_onnx

        proto = convert_to_onnx(run.load_inference_model(which), metadata={META_KEY: metadata_json(run.config)})
        with atomic_path(target) as tmp:
            save_onnx(proto, tmp)
    return target


def cached_savedmodel(run, which: str = "best") -> Path:
    """The run's network as a SavedModel folder, exported on first use."""
    target = cache_dir("engines") / f"{run_key(run, which)}.savedmodel"
    if not (target / "saved_model.pb").is_file():
        from srredsim.export.savedmodel import export_savedmodel

        model = run.load_inference_model(which)
        with atomic_dir(target, overwrite=True) as tmp:
            tmp.rmdir()
            export_savedmodel(model, tmp)
    return target
