"""The pretrained models shipped inside the package (no download at run time).

``sim-3x5``  SR-REDSIM for 3 angles x 5 phases (15 frames, the paper's layout)
``sim-3x3``  SR-REDSIM for 3 angles x 3 phases (9 frames: most commercial 2D SIM and TIRF-SIM)
``red-fairsim``  RED-fairSIM, the paper's second method: the classical reconstruction of any
             3x3 or 3x5 stack, then a RED-Net that denoises it (input: one reconstructed image)
``default``  not a model of its own: the SR-REDSIM model whose frame count fits the data
             (:func:`resolve` with ``frames``); without data, ``sim-3x5``.

The SR-REDSIM models were trained on the toolkit's simulator over randomised 2-beam 2D-SIM acquisitions
(``srredsim.recipes``, recipe ``sim``: generic content no prior can guess, NA 1.4, 490-570 nm
emission, 80 nm camera pixels, pattern |k| 0.70-0.98 of the cutoff, 1-1000 photons) toward the
truth inside the measured SIM support, with pattern-free pairs that teach them the
pattern-removed control's physics. They take their resolution from the illumination pattern
(benchmarks/sim_information.py). See ``bioimage_model/README.md`` for the recipe, the curriculum
and what was measured. Each is an ordinary run folder, so every command that takes a model also
takes these names. ``red-fairsim`` was trained on the classical reconstructions of the same
simulated stacks (both layouts; ``srredsim.redfairsim``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from srredsim.errors import SrredsimError


@dataclass(frozen=True)
class ShippedModel:
    name: str
    angles: int
    phases: int | None  # None: any number of phases (the network reads a reconstruction, not the frames)
    summary: str

    @property
    def frames(self) -> int | None:
        return None if self.phases is None else self.angles * self.phases


SHIPPED = {m.name: m for m in (
    ShippedModel("sim-3x5", 3, 5, "SR-REDSIM for 3 angles x 5 phases, trained to take its resolution from the pattern"),
    ShippedModel("sim-3x3", 3, 3, "SR-REDSIM for 3 angles x 3 phases, trained to take its resolution from the pattern"),
    ShippedModel("red-fairsim", 3, None, "RED-fairSIM: classical reconstruction of a 3x3 or 3x5 stack, then a RED-Net "
                                         "that removes its noise (also runs on a reconstructed SR image)"),
)}
DEFAULT = "default"
DEFAULT_MODEL = "sim-3x5"  # what `default` is when no data say otherwise

#: every name a command accepts, with one line each (``srredsim info`` lists them)
MODELS = {DEFAULT: "the shipped model whose frame count fits the data (15 frames: sim-3x5, 9 frames: sim-3x3)",
          **{m.name: m.summary for m in SHIPPED.values()}}


def models_dir() -> Path:
    return Path(__file__).resolve().parent / "data" / "models"


def default_for_frames(frames: int | None) -> str:
    """The shipped model ``default`` stands for with stacks of ``frames`` frames (None: no data)."""
    if frames is None:
        return DEFAULT_MODEL
    raw_models = [m for m in SHIPPED.values() if m.frames is not None]
    for m in raw_models:
        if m.frames == frames:
            return m.name
    raise SrredsimError(f"no shipped SR-REDSIM model takes {frames} frames (they take "
                        + ", ".join(f"{m.frames} ({m.name}: {m.angles}x{m.phases})" for m in raw_models)
                        + "); train or adapt one for this layout (srredsim adapt), or use red-fairsim (classical "
                        "reconstruction, then a RED-Net)")


def pretrained_path(name: str = DEFAULT, frames: int | None = None) -> Path:
    if name == DEFAULT:
        name = default_for_frames(frames)
    if name not in SHIPPED:
        raise SrredsimError(f"unknown pretrained model {name!r}; choose from {', '.join(MODELS)}")
    path = models_dir() / name
    if not (path / "config.json").is_file():
        raise SrredsimError(f"the pretrained model {name!r} is missing from this installation ({path})")
    return path


def is_shipped_name(model: str | Path) -> bool:
    """A shipped model's name (and not an existing path of that name)."""
    return not Path(model).exists() and str(model) in MODELS


def resolve(model: str | Path, frames: int | None = None) -> Path:
    """A model argument: an existing path, or the name of a shipped pretrained model (``default``
    picks by ``frames`` when given)."""
    if is_shipped_name(model):
        return pretrained_path(str(model), frames)
    return Path(model)
