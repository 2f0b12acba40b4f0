"""TensorFlow SavedModel writer and reader.

Keras 3's ``model.save`` no longer writes a SavedModel and ``model.export`` returns a bare tensor
from ``serve``, which bioimageio.core rejects (docs/architecture.md, section 5). We use
:class:`keras.export.ExportArchive` with two endpoints that both return ``{"sr": output}``:

* ``serve`` -- what bioimageio.core's ``TFSMLayer`` calls;
* ``serving_default`` -- what TensorFlow Java (DeepImageJ / JDLL) and ``tf.saved_model.load``
  call by default.

Both take one input ``raw`` of shape ``(None, None, None, C)`` (dynamic batch, height, width) and
are written with the tag ``serve``. The bioimage.io weights entry is this folder zipped with
``saved_model.pb`` and ``variables/`` at the root of the zip (JDLL's layout).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.export import INPUT_ID, OUTPUT_ID, SERVE_ENDPOINT, SIGNATURE

# Files a SavedModel folder may contain; the bundle zip holds exactly these.
SAVEDMODEL_ENTRIES = ("saved_model.pb", "variables", "assets", "fingerprint.pb")


def export_savedmodel(model, out_dir: str | os.PathLike, *, input_id: str = INPUT_ID,
                      output_id: str = OUTPUT_ID,
                      endpoints: tuple[str, ...] = (SERVE_ENDPOINT, SIGNATURE)) -> Path:
    """Write ``model`` as a SavedModel into ``out_dir`` (which must not exist yet)."""
    import keras
    import tensorflow as tf

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise SrredsimError(f"{out_dir} exists")
    channels = int(model.input_shape[-1])
    spec = tf.TensorSpec((None, None, None, channels), tf.float32, name=input_id)

    archive = keras.export.ExportArchive()
    archive.track(model)

    def _endpoint(raw):
        return {output_id: model(raw, training=False)}

    for name in endpoints:
        archive.add_endpoint(name, _endpoint, input_signature=[spec])
    try:
        archive.write_out(str(out_dir), verbose=False)
    except TypeError:  # older Keras without ``verbose``
        archive.write_out(str(out_dir))
    return out_dir


def read_signatures(path: str | os.PathLike) -> dict[str, Any]:
    """Tags and signatures of a SavedModel folder, read from ``saved_model.pb`` without running it.

    Returns ``{"tags": [[...], ...], "signatures": {name: {"inputs": {key: (tensor, shape)},
    "outputs": {...}}}}`` with ``-1`` for dynamic dimensions.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    pb = Path(path) / "saved_model.pb"
    if not pb.is_file():
        raise SrredsimError(f"{path}: no saved_model.pb (not a TensorFlow SavedModel)")
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(pb.read_bytes())
    except Exception as exc:
        raise SrredsimError(f"{pb}: cannot parse ({exc})") from None
    tags: list[list[str]] = []
    sigs: dict[str, Any] = {}
    for mg in sm.meta_graphs:
        tags.append(list(mg.meta_info_def.tags))
        for key, sig in mg.signature_def.items():
            if key.startswith("__"):
                continue

            def _io(m):
                return {k: (v.name, [d.size for d in v.tensor_shape.dim]) for k, v in m.items()}

            sigs[key] = {"inputs": _io(sig.inputs), "outputs": _io(sig.outputs)}
    return {"tags": tags, "signatures": sigs}


def savedmodel_predict_fn(path: str | os.PathLike, signature: str = SIGNATURE,
                          input_id: str = INPUT_ID, output_id: str | None = OUTPUT_ID):
    """A ``predict_fn`` running a SavedModel's signature (default ``serving_default``)."""
    import tensorflow as tf

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise SrredsimError(f"{path}: not a TensorFlow SavedModel folder (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise SrredsimError(f"{path}: cannot load SavedModel ({type(exc).__name__}: {exc})") from None
    if signature not in loaded.signatures:
        raise SrredsimError(f"{path}: SavedModel has no signature {signature!r} "
                            f"(has {sorted(loaded.signatures)})")
    fn = loaded.signatures[signature]
    in_keys = list(fn.structured_input_signature[1].keys())
    in_key = input_id if input_id in in_keys else (in_keys[0] if len(in_keys) == 1 else None)
    if in_key is None:
        raise SrredsimError(f"{path}: signature {signature!r} has inputs {in_keys}, expected {input_id!r}")

    def predict(batch: np.ndarray) -> np.ndarray:
        out = fn(**{in_key: tf.constant(np.asarray(batch, np.float32))})
        if output_id in out:
            return out[output_id].numpy()
        return next(iter(out.values())).numpy()

    predict._keepalive = loaded  # the signature needs its object graph alive
    return predict
