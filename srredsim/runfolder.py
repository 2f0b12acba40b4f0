"""A trained model is a folder (as in CSBDeep): configuration, weights, history and logs.

Layout::

    RUN/config.json                 the RunConfig (network, normalisation, optics, training)
    RUN/weights_best.weights.h5     weights with the lowest validation loss
    RUN/weights_last.weights.h5     weights after the last completed epoch
    RUN/history.csv                 one row per epoch (loss, metrics, validation)
    RUN/training_curve.png          loss and PSNR curves
    RUN/logs/                       TensorBoard event files
    RUN/backup/                     Keras BackupAndRestore state for ``--resume``

Models are rebuilt from the config and weights are loaded by layer, so nothing is unpickled
and no code stored in the folder is ever executed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from srredsim.config import CONFIG_NAME, RunConfig
from srredsim.errors import SrredsimError

WEIGHTS_BEST = "weights_best.weights.h5"
WEIGHTS_LAST = "weights_last.weights.h5"
HISTORY = "history.csv"
CURVE = "training_curve.png"
BACKUP_DIR = "backup"
LOG_DIR = "logs"


@dataclass
class Run:
    path: Path
    config: RunConfig

    def weights_path(self, which: str = "best") -> Path:
        """Path of the ``best`` or ``last`` weights; ``best`` falls back to ``last``."""
        best, last = self.path / WEIGHTS_BEST, self.path / WEIGHTS_LAST
        if which == "best":
            if best.exists():
                return best
            if last.exists():
                return last
        elif which == "last":
            if last.exists():
                return last
        else:
            raise SrredsimError(f"unknown weights {which!r}: use 'best' or 'last'")
        raise SrredsimError(f"{self.path}: model folder has no weights ({WEIGHTS_BEST} / {WEIGHTS_LAST})")

    def has_weights(self) -> bool:
        return (self.path / WEIGHTS_BEST).exists() or (self.path / WEIGHTS_LAST).exists()

    def build_model(self):
        from srredsim.models import build_model

        return build_model(self.config.model)

    def load_inference_model(self, which: str = "best", precision: str = "fp32"):
        """The trained network for prediction: stride-1 transposed convolutions rewritten as
        plain convolutions (the same function to float rounding, ~1.5x faster on CPUs; see
        :func:`srredsim.models.inference_twin`), computing in ``precision`` (``fp32``, ``bf16``)."""
        from srredsim.models import dtype_policy, inference_twin

        with dtype_policy(precision):
            return inference_twin(self.load_model(which, precision), self.config.model)

    def load_model(self, which: str = "best", precision: str = "fp32"):
        """Build the network and load its weights (no pickles, no stored code). It computes in
        ``precision`` whatever dtype policy is set globally (exports must stay float32)."""
        from srredsim.models import dtype_policy

        path = self.weights_path(which)
        with dtype_policy(precision):
            model = self.build_model()
        try:
            model.load_weights(path)
        except Exception as exc:
            raise SrredsimError(f"{path}: cannot load weights into the configured network ({exc})") from None
        return model


def is_run(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def load_run(path: str | os.PathLike) -> Run:
    """Open a run folder (or a shipped pretrained model by name: ``sim-3x5``, ``sim-3x3``, ``default``),
    or raise a clear error if ``path`` is not a model folder."""
    from srredsim.pretrained import resolve

    path = resolve(path)
    if not path.exists():
        raise SrredsimError(f"{path}: no such model folder")
    if not path.is_dir():
        raise SrredsimError(f"{path}: is not a model folder (expected a folder with {CONFIG_NAME})")
    if not (path / CONFIG_NAME).is_file():
        raise SrredsimError(f"{path}: is not a model folder (no {CONFIG_NAME})")
    return Run(path=path, config=RunConfig.load(path / CONFIG_NAME))


def save_run_skeleton(path: str | os.PathLike, config: RunConfig) -> Run:
    """Create a run folder with its config (used by training and by tests)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config.save(path / CONFIG_NAME)
    return Run(path=path, config=config)


def remove_run_folder(out: str | os.PathLike) -> None:
    """``--overwrite``: delete an existing run folder. Only a run folder (it has config.json) or an
    empty folder is deleted: --overwrite never removes a folder srredsim did not make."""
    import shutil

    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise SrredsimError(f"{out} is a file, not a run folder")
    if any(out.iterdir()) and not (out / CONFIG_NAME).is_file():
        raise SrredsimError(f"{out} is not a run folder (no {CONFIG_NAME}); --overwrite replaces only run folders")
    shutil.rmtree(out)
