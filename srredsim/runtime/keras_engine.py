"""Keras engine: the network rebuilt from its configuration, weights loaded by layer name.

Weights are never deserialised as code: a run folder or a package with ``config.srredsim.model``
rebuilds the network (as the inference twin, :func:`srredsim.models.inference_twin`, which CPUs
run ~1.7x faster than the paper's stride-1 ``Conv2DTranspose`` layers) and loads the HDF5 weights
into it; only a foreign package without that configuration goes through
``keras.saving.load_model(..., safe_mode=True)``.

``bf16`` builds the network under Keras' ``mixed_bfloat16`` policy: variables stay float32, each
layer computes in bfloat16, and the output layer computes in float32 (``srredsim.models``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.models import dtype_policy
from srredsim.runtime.base import Engine


def keras_predict_fn(model) -> Callable[[np.ndarray], np.ndarray]:
    """A batch predict function for a Keras model (no per-call retracing for same-shaped batches)."""

    def fn(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch), dtype=np.float32)

    return fn


class KerasEngine(Engine):
    name = "keras"
    precisions = ("fp32", "bf16")

    def __init__(self, build: Callable[[], object], precision: str = "fp32"):
        """``build()`` returns the Keras model; it is called under the precision's dtype policy."""
        super().__init__(precision)
        with dtype_policy(self.precision):
            self.model = build()
        self._fn = keras_predict_fn(self.model)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise SrredsimError("the keras engine was closed")
        return self._fn(np.asarray(batch, np.float32))

    def device(self) -> str:
        try:
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                return "GPU"
        except Exception:
            pass
        return "CPU"

    def close(self) -> None:
        self.model = None

    @classmethod
    def from_run(cls, run, which: str = "best", precision: str = "fp32") -> "KerasEngine":
        """A run folder's ``best`` or ``last`` weights, on the inference twin."""
        return cls(lambda: run.load_inference_model(which, precision), precision)

    @classmethod
    def from_hdf5(cls, path: Path, model_config, origin: Path, precision: str = "fp32") -> "KerasEngine":
        """Keras HDF5 weights of a package: rebuilt from ``model_config`` when there is one."""
        if model_config is not None:
            def build():
                from srredsim.models import build_model, inference_twin

                model = build_model(model_config)
                try:
                    model.load_weights(str(path))
                except Exception as exc:
                    raise SrredsimError(f"{origin}: Keras weights do not fit the network in "
                                        f"config.srredsim.model ({exc})") from None
                return inference_twin(model, model_config)

            return cls(build, precision)
        if precision != "fp32":
            raise SrredsimError(f"{origin}: a Keras model without config.srredsim.model runs in fp32 only "
                                "(its layers keep the dtype they were saved with)")

        def load():
            import keras

            try:
                return keras.saving.load_model(str(path), compile=False, safe_mode=True)
            except Exception as exc:
                raise SrredsimError(f"{origin}: cannot load Keras model safely ({type(exc).__name__}: {exc})") from None

        return cls(load, precision)
