"""Open any model artifact for prediction: a run folder, a bioimage.io package, ONNX, SavedModel.

:func:`open_model` returns a :class:`LoadedModel` that ``srredsim predict``, the demo and the
benchmarks use alike: a batch predict function in network units, the normalisation to apply
around it, the frame count it expects, and the tiling parameters (size multiple and halo).
Run folders are opened here with Keras; exported artifacts (and run folders on the ONNX or
SavedModel engines) through :mod:`srredsim.export.engines`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from srredsim.config import NormalizationConfig
from srredsim.errors import SrredsimError

# The engine ``auto`` picks for a run folder: the fastest engine that is exact to 1e-4, as
# measured by benchmarks/inference.py (benchmarks/results/inference.md): ONNX Runtime. The
# conversion (about 15 s for the full network) is cached next to the weights.
RUN_FOLDER_AUTO_ENGINE = "onnx"


@dataclass
class LoadedModel:
    predict_fn: Callable
    normalization: NormalizationConfig
    frames: int
    size_multiple: int
    halo: int
    engine: str
    source: Path
    pixel_size_um: float | None = None

    def describe(self) -> str:
        return f"{self.source} on {self.engine}"

    def predict(self, raw, tile: int | None = None, halo: int | None = None, batch_size: int = 1,
                progress=None):
        """Super-resolve a raw ``(frames, H, W)`` stack: normalise, predict (tiled if ``tile``),
        map back to reference units. Returns float32 ``(2H, 2W)``."""
        from srredsim.predict import predict_stack

        if raw.shape[0] != self.frames:
            raise SrredsimError(f"the stack has {raw.shape[0]} frames, the model expects {self.frames}")
        return predict_stack(self.predict_fn, raw, self.normalization, tile=tile,
                             halo=self.halo if halo is None else halo, multiple=self.size_multiple,
                             batch_size=batch_size, progress=progress)


def open_model(path: str | os.PathLike, engine: str = "auto", weights: str = "best") -> LoadedModel:
    """Open a run folder, an exported artifact, or a shipped pretrained model by name."""
    from srredsim.pretrained import resolve
    from srredsim.runfolder import is_run, load_run

    path = resolve(path)
    if not path.exists():
        raise SrredsimError(f"{path}: no such model (run folder, package, .onnx or SavedModel)")
    if is_run(path):
        run = load_run(path)
        if engine == "auto":
            engine = RUN_FOLDER_AUTO_ENGINE
        if engine == "keras":
            return _open_run_keras(run, weights)
        from srredsim.export.engines import open_run_engine

        return _wrap(open_run_engine(run, engine), path)
    if path.is_dir() and not any((path / n).exists() for n in ("rdf.yaml", "bioimageio.yaml", "saved_model.pb")) \
            and any(path.glob("*.weights.h5")):
        raise SrredsimError(f"{path}: is not a model folder (no config.json)")
    from srredsim.export.engines import open_artifact

    return _wrap(open_artifact(path, None if engine == "auto" else engine), path)


def _open_run_keras(run, weights: str) -> LoadedModel:
    from srredsim.models import size_multiple
    from srredsim.predict import keras_predict_fn, receptive_halo

    cfg = run.config
    model = run.load_inference_model(weights)
    return LoadedModel(
        predict_fn=keras_predict_fn(model), normalization=cfg.normalization,
        frames=cfg.model.in_channels, size_multiple=size_multiple(cfg.model),
        halo=receptive_halo(cfg.model.architecture, cfg.model.depth, cfg.model.unet_levels),
        engine="keras", source=run.path, pixel_size_um=cfg.optics.pixel_size_um)


def _wrap(artifact, path: Path) -> LoadedModel:
    return LoadedModel(
        predict_fn=artifact.predict_fn, normalization=artifact.normalization, frames=artifact.frames,
        size_multiple=artifact.size_multiple, halo=artifact.halo, engine=artifact.engine,
        source=path, pixel_size_um=artifact.pixel_size_um)
