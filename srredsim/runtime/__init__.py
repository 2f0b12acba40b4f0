"""Running a model: one handle (:class:`ModelHandle`) from one :func:`open_model`, on engine
adapters with one interface -- Keras, TensorFlow SavedModel, ONNX Runtime, OpenVINO -- in fp32 or
bf16, chosen by measurement when asked for ``auto``, or in int8 (OpenVINO) when asked for by name.

Layers: ``runtime`` sits above ``export`` (whose writers and readers it uses) and below the
commands, the demo and the benchmarks.
"""

from srredsim.runtime.base import ENGINE_CHOICES, ENGINES, PRECISION_CHOICES, PRECISIONS, Engine
from srredsim.runtime.handle import (ModelArtifact, ModelHandle, ModelIO, auto_choice, model_frames, model_io,
                                     open_model, read_model)

__all__ = ["ENGINES", "ENGINE_CHOICES", "PRECISIONS", "PRECISION_CHOICES", "Engine", "ModelArtifact", "ModelHandle",
           "ModelIO", "auto_choice", "model_frames", "model_io", "open_model", "read_model"]
