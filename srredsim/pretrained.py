"""The pretrained models shipped inside the package (no download at run time).

``default``   SR-REDSIM trained toward the exact ground-truth structure: the best scores against
              the true structure; it sharpens beyond the SIM resolution limit from learned priors.
``faithful``  SR-REDSIM trained toward the ground truth blurred by 20 nm: less prior-driven
              sharpening, the best scores against the SIM-band-limited truth.

Both were trained on the toolkit's simulator (``srredsim.recipes``; NA 1.4, 525 nm emission, 80 nm
camera pixels, 3 angles x 5 phases, 2-beam); see ``bioimage_model/README.md`` for the recipe and
the measured comparison. Each is an ordinary run folder, so every command that takes a model
also takes these names.
"""

from __future__ import annotations

from pathlib import Path

from srredsim.errors import SrredsimError

MODELS = {
    "default": "SR-REDSIM trained toward the exact ground truth (sharpens beyond the SIM limit)",
    "faithful": "SR-REDSIM trained toward the ground truth blurred by 20 nm (closer to SIM resolution)",
}


def models_dir() -> Path:
    return Path(__file__).resolve().parent / "data" / "models"


def pretrained_path(name: str = "default") -> Path:
    if name not in MODELS:
        raise SrredsimError(f"unknown pretrained model {name!r}; choose from {', '.join(MODELS)}")
    path = models_dir() / name
    if not (path / "config.json").is_file():
        raise SrredsimError(f"the pretrained model {name!r} is missing from this installation ({path})")
    return path


def resolve(model: str | Path) -> Path:
    """A model argument: an existing path, or the name of a shipped pretrained model."""
    p = Path(model)
    if not p.exists() and str(model) in MODELS:
        return pretrained_path(str(model))
    return p
