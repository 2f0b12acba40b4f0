"""What every engine adapter is: predict a batch, describe itself, close.

An engine runs one network on one runtime (Keras, a TensorFlow SavedModel, ONNX Runtime,
OpenVINO) at one arithmetic precision. Its :meth:`Engine.predict` maps a float32 batch
``(B, h, w, C)`` in network units (normalised raw frames, channels last) to ``(B, 2h, 2w, 1)``;
everything around it -- normalisation, tiling, which file holds the weights -- belongs to the
model handle (:mod:`srredsim.runtime.handle`), so the adapters stay small and alike.
"""

from __future__ import annotations

import numpy as np

from srredsim.errors import SrredsimError

#: the engines ``--engine`` offers, in the order ``auto`` tries them
ENGINES = ("keras", "savedmodel", "onnx", "openvino")
#: arithmetic precisions; ``bf16`` keeps the weights' master copy in float32 where training
#: matters and rounds the arithmetic's operands to bfloat16 (8 significant bits); ``int8``
#: (OpenVINO only) runs a quantised copy of the network (:mod:`srredsim.runtime.quantize`)
PRECISIONS = ("fp32", "bf16", "int8")
ENGINE_CHOICES = ("auto",) + ENGINES
PRECISION_CHOICES = ("auto",) + PRECISIONS


class Engine:
    """Base class of the engine adapters (one file each in this package)."""

    name = "?"
    #: the precisions this adapter can run
    precisions: tuple[str, ...] = ("fp32",)

    def __init__(self, precision: str = "fp32"):
        self.precision = check_precision_for(self.name, precision, self.precisions)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.predict(batch)

    def expect(self, shapes, discard: int = 0) -> None:
        """The batch shapes ``(B, h, w, C)`` the next calls will have, for an engine that prepares
        per shape (an OpenVINO engine still opening compiles for a single one); any shape still runs.
        ``discard``: input pixels per side of every window whose output the caller throws away; an
        engine may leave that band of its output zero (OpenVINO skips computing most of it,
        :mod:`srredsim.runtime.trim`)."""

    def device(self) -> str:
        """Where the arithmetic runs, in words (``CPU`` or the accelerator's name)."""
        return "CPU"

    def describe(self) -> str:
        return f"{self.name} {self.precision} on {self.device()}"

    def close(self) -> None:
        """Release the runtime's resources (sessions, compiled graphs); idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_engine(engine: str | None) -> str | None:
    if engine is not None and engine not in ENGINE_CHOICES:
        raise SrredsimError(f"unknown engine {engine!r}: use one of {', '.join(ENGINE_CHOICES)}")
    return None if engine == "auto" else engine


def check_precision(precision: str | None) -> str | None:
    if precision is not None and precision not in PRECISION_CHOICES:
        raise SrredsimError(f"unknown precision {precision!r}: use one of {', '.join(PRECISION_CHOICES)}")
    return None if precision == "auto" else precision


def check_precision_for(engine: str, precision: str, supported: tuple[str, ...]) -> str:
    check_precision(precision)
    if precision not in supported:
        raise SrredsimError(f"the {engine} engine runs {' and '.join(supported)} only, not {precision}"
                            + (f"; --engine openvino runs {precision}" if precision in ("bf16", "int8") else ""))
    return precision
