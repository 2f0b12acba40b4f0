"""TensorFlow SavedModel engine (fp32): the ``serving_default`` signature, else ``serve``.

The variables are read into memory when the SavedModel loads, so a SavedModel unpacked from a
zip can be deleted right after :class:`SavedModelEngine` is made; the engine owns nothing on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.export import SERVE_ENDPOINT, SIGNATURE
from srredsim.runtime.base import Engine


def input_channels(folder: Path) -> tuple[str, int | None]:
    """(the signature to call, its static channel count or None), read without loading TensorFlow's graph."""
    from srredsim.export.savedmodel import read_signatures

    sigs = read_signatures(folder)["signatures"]
    signature = SIGNATURE if SIGNATURE in sigs else SERVE_ENDPOINT
    channels = None
    if signature in sigs and sigs[signature]["inputs"]:
        shape = next(iter(sigs[signature]["inputs"].values()))[1]
        channels = shape[-1] if shape and shape[-1] > 0 else None
    return signature, channels


class SavedModelEngine(Engine):
    name = "savedmodel"
    precisions = ("fp32",)

    def __init__(self, folder: Path, signature: str | None = None, precision: str = "fp32"):
        super().__init__(precision)
        from srredsim.export.savedmodel import savedmodel_predict_fn

        folder = Path(folder)
        if signature is None:
            signature = input_channels(folder)[0]
        self.signature = signature
        self._fn = savedmodel_predict_fn(folder, signature=signature)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._fn is None:
            raise SrredsimError("the savedmodel engine was closed")
        return np.asarray(self._fn(np.asarray(batch, np.float32)), np.float32)

    def device(self) -> str:
        import tensorflow as tf

        return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"

    def close(self) -> None:
        self._fn = None
