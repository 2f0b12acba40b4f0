"""ONNX Runtime engine (fp32) on an ``.onnx`` file, channels-last or channels-first.

ONNX Runtime's CPU provider has no bfloat16 convolutions on x86, so this engine runs fp32 only;
bf16 on ONNX weights is the OpenVINO engine's job. With ``onnxruntime-gpu`` installed the CUDA
provider is used (:func:`srredsim.export.onnx_export.onnx_providers`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.export import INPUT_ID
from srredsim.runtime.base import Engine


class OnnxEngine(Engine):
    name = "onnx"
    precisions = ("fp32",)

    def __init__(self, path: Path, precision: str = "fp32"):
        super().__init__(precision)
        from srredsim.export.onnx_export import onnx_predict_fn

        self._fn = onnx_predict_fn(Path(path), INPUT_ID)
        self.session = self._fn.session
        self.channels = self._fn.channels if isinstance(self._fn.channels, int) else None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._fn is None:
            raise SrredsimError("the onnx engine was closed")
        return self._fn(batch)

    def device(self) -> str:
        providers = self.session.get_providers() if self.session is not None else []
        return "CUDA" if providers and providers[0] == "CUDAExecutionProvider" else "CPU"

    def close(self) -> None:
        self._fn = None
        self.session = None
