"""Optics belong to the model: what sampling a model knows, and prediction on any microscope.

A model's run configuration records the optics it was trained for (``RunConfig.optics``) and,
since issue 11, the span of acquisitions (``RunConfig.training_range``,
:class:`srredsim.config.TrainingRange`): above all the OTF cutoff in cycles per raw pixel.
:func:`predict_with_optics` is what ``srredsim predict --na --wavelength --pixel-size`` runs:

1. the data's cutoff ``2 NA / λ × pixel`` (with no optics given: the model's own, said in one
   line);
2. outside the model's trained cutoff span, the stack is Fourier-resampled
   (:mod:`srredsim.resample`) onto pixels where its cutoff is the model's;
3. the model predicts;
4. the result is resampled back onto twice the user's raw grid, whose pixel size is half the
   user's raw pixel.

Inside the trained span nothing is resampled: the network has seen that sampling, and the
stack reaches it untouched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from srredsim.config import OpticsConfig, RunConfig, TrainingRange
from srredsim.errors import SrredsimError
from srredsim.optics import cutoff_cycles_per_um

SAME_SAMPLING = 0.01  # cutoffs within 1 % of a single trained value count as the same sampling


def cutoff_per_pixel(optics: OpticsConfig) -> float:
    """The OTF cutoff ``2 NA / λ`` in cycles per raw pixel."""
    return cutoff_cycles_per_um(optics) * optics.pixel_size_um


def describe_optics(optics: OpticsConfig) -> str:
    return (f"NA {optics.na:g}, {optics.wavelength_nm:g} nm, {optics.pixel_size_um * 1000:.1f} nm pixels "
            f"(cutoff {cutoff_per_pixel(optics):.3f} cycles/pixel)")


@dataclass
class ModelSampling:
    """The optics a model was trained for and the span of cutoffs it has seen."""

    optics: OpticsConfig
    training_range: TrainingRange

    @classmethod
    def from_config(cls, cfg: RunConfig) -> "ModelSampling":
        rng = cfg.training_range
        if rng is None:  # not recorded: the model knows its own optics' sampling only
            c = cutoff_per_pixel(cfg.optics)
            rng = TrainingRange(cutoff_cycles_per_px=(c, c))
        return cls(optics=cfg.optics, training_range=rng)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "model") -> "ModelSampling":
        """From ``{"optics": ..., "training_range": ...}`` (e.g. an RDF's ``config.srredsim``)."""
        try:
            optics = OpticsConfig.model_validate(raw["optics"])
            rng = raw.get("training_range")
            if rng is None:
                c = cutoff_per_pixel(optics)
                rng = {"cutoff_cycles_per_px": (c, c)}
            return cls(optics=optics, training_range=TrainingRange.model_validate(rng))
        except Exception as exc:
            raise SrredsimError(f"{source}: no usable optics/training range ({type(exc).__name__}: {exc})") from None

    @property
    def reference_cutoff(self) -> float:
        """The cutoff stacks are resampled to: the model's optics' (inside the trained span), else
        the middle of the span."""
        lo, hi = self.training_range.cutoff_cycles_per_px
        c = cutoff_per_pixel(self.optics)
        return c if lo <= c <= hi else 0.5 * (lo + hi)

    def knows(self, cutoff: float) -> bool:
        """Did training cover this cutoff (cycles per pixel)?"""
        lo, hi = self.training_range.cutoff_cycles_per_px
        return lo * (1 - SAME_SAMPLING) <= cutoff <= hi * (1 + SAME_SAMPLING)


class _Predicts(Protocol):
    def predict(self, raw: np.ndarray, **kwargs) -> np.ndarray: ...


@dataclass
class OpticsPrediction:
    """A prediction on the user's grid: ``image`` is ``(scale*H, scale*W)``."""

    image: np.ndarray
    pixel_size_um: float | None  # of ``image``: half the user's raw pixel
    factor: float  # model pixels per user pixel (1.0: not resampled)
    note: str  # one line saying what was assumed or done
    model_shape: tuple[int, int]  # the frame size the network saw (the input's own when not resampled)


def predict_with_optics(model: _Predicts, raw: np.ndarray, sampling: ModelSampling,
                        optics: OpticsConfig | None = None, **predict_kwargs) -> OpticsPrediction:
    """Predict a raw ``(frames, H, W)`` stack taken with ``optics`` (None: the model's) with a
    model trained for ``sampling``; the result lies on ``model.scale`` (default 2) times the
    stack's own grid. A same-grid model (RED-Net, scale 1) takes its reconstruction as
    ``(1, 2H, 2W)`` with the raw stack's ``optics``: the cutoff ratio is the same on both grids
    (:func:`srredsim.redfairsim.denoise`)."""
    from srredsim.resample import resample_back, resample_raw

    raw = np.asarray(raw)
    if raw.ndim != 3:
        raise SrredsimError(f"expected a raw stack (frames, H, W), got shape {raw.shape}")
    h, w = raw.shape[1:]
    if optics is None:
        sr = np.asarray(model.predict(raw, **predict_kwargs), dtype=np.float32)
        return OpticsPrediction(sr, sampling.optics.pixel_size_um / 2, 1.0,
                                f"no optics given: assuming the model's ({describe_optics(sampling.optics)})", (h, w))
    cutoff = cutoff_per_pixel(optics)
    if sampling.knows(cutoff):
        sr = np.asarray(model.predict(raw, **predict_kwargs), dtype=np.float32)
        return OpticsPrediction(sr, optics.pixel_size_um / 2, 1.0,
                                f"optics {describe_optics(optics)}: inside the model's trained sampling", (h, w))
    target = sampling.reference_cutoff
    scale = int(getattr(model, "scale", 2))
    resampled, factor = resample_raw(raw, cutoff, target)
    sr = np.asarray(model.predict(resampled, **predict_kwargs), dtype=np.float32)
    sr = resample_back(sr, (scale * h, scale * w))
    return OpticsPrediction(sr, optics.pixel_size_um / 2, factor,
                            f"optics {describe_optics(optics)}: resampled {w}x{h} -> "
                            f"{resampled.shape[2]}x{resampled.shape[1]} pixels to the model's sampling "
                            f"({target:.3f} cycles/pixel) and the result back to {scale * w}x{scale * h}",
                            tuple(resampled.shape[1:]))


# ---------------------------------------------------------------------------------------------
# training ranges of the recipes
# ---------------------------------------------------------------------------------------------
def recipe_training_range(recipe: str) -> TrainingRange:
    """The training range of a recipe of :mod:`srredsim.recipes` ("sim", "sim-easy" or "bio"),
    computed from the recipe's own constants."""
    from srredsim import recipes
    from srredsim.simulate import SimulationConfig

    optics = recipes.default_optics()
    if recipe == "sim":
        na, px = optics.na, optics.pixel_size_um
        lo_nm, hi_nm = recipes.SIM_WAVELENGTH_NM
        cut = (2 * na / (hi_nm * 1e-3) * px, 2 * na / (lo_nm * 1e-3) * px)
        return TrainingRange(cutoff_cycles_per_px=cut, k_fraction=recipes.SIM_K_FRACTION,
                             modulation=recipes.SIM_MODULATION, photons=recipes.SIM_PHOTONS)
    if recipe == "sim-easy":  # the first curriculum stage: default optics, clear patterns, plenty of light
        c = cutoff_per_pixel(optics)
        return TrainingRange(cutoff_cycles_per_px=(c, c), k_fraction=recipes.EASY_K_FRACTION,
                             modulation=recipes.EASY_MODULATION, photons=recipes.EASY_PHOTONS)
    if recipe == "bio":
        c = cutoff_per_pixel(optics)
        sim = SimulationConfig()
        return TrainingRange(cutoff_cycles_per_px=(c, c), k_fraction=sim.k_fraction,
                             modulation=sim.modulation, photons=recipes.TRAIN_PHOTONS)
    raise SrredsimError(f"unknown recipe {recipe!r}; choose from {', '.join(recipes.RECIPES)}")


def training_range_from_data(data_dir: str | os.PathLike) -> TrainingRange | None:
    """The training range of a data folder written by ``python -m srredsim.recipes training-data``
    (its ``recipe.json``; also found one level up, beside the per-target folders), else None."""
    data_dir = Path(data_dir)
    for folder in (data_dir, data_dir.parent):
        path = folder / "recipe.json"
        if path.is_file():
            try:
                meta = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            recipe = meta.get("recipe", "bio")
            if recipe == "mixed":  # pairs made from several recipes (srredsim.redfairsim pairs): their union
                names = sorted({src.get("recipe", "bio") for src in meta.get("sources", [])})
                return _union([recipe_training_range(n) for n in names]) if names else None
            return recipe_training_range(recipe)
    return None


def _union(ranges: list[TrainingRange]) -> TrainingRange:
    """The smallest TrainingRange holding all of ``ranges`` (a field unknown in any is unknown)."""
    fields = {}
    for name in ("cutoff_cycles_per_px", "k_fraction", "modulation", "photons"):
        spans = [getattr(r, name) for r in ranges]
        fields[name] = None if any(x is None for x in spans) else (min(x[0] for x in spans), max(x[1] for x in spans))
    return TrainingRange(**fields)


# ---------------------------------------------------------------------------------------------
# what the predict command needs
# ---------------------------------------------------------------------------------------------
def sampling_for_model(model: str | os.PathLike) -> ModelSampling | None:
    """The sampling of a run folder or shipped model name; None for artifacts that do not record
    it (exported files carry ``optics``/``training_range`` in their srredsim metadata once the
    export writes them: :meth:`ModelSampling.from_dict`)."""
    from srredsim.pretrained import resolve
    from srredsim.runfolder import is_run, load_run

    path = resolve(model)
    return ModelSampling.from_config(load_run(path).config) if is_run(path) else None


def data_optics(model_optics: OpticsConfig, given: dict[str, Any], tiff_pixel_um: float | None
                ) -> OpticsConfig | None:
    """The optics of the user's data for prediction: the model's angles × phases with the given
    values (``na``, ``wavelength_nm``, ``pixel_size_um``, ``refractive_index``; None = not given)
    and the TIFF's pixel size where no pixel size was given. None when nothing is known (the
    model's optics are then assumed)."""
    from srredsim.optics import make_optics

    given = {k: v for k, v in given.items() if v is not None}
    if tiff_pixel_um and "pixel_size_um" not in given:
        given["pixel_size_um"] = tiff_pixel_um
    if not given:
        return None
    values = model_optics.model_dump()
    values.update(given)
    return make_optics(**values)


def model_grid_shape(sampling: ModelSampling, optics: OpticsConfig | None, shape: tuple[int, int]
                     ) -> tuple[int, int]:
    """The frame size the model will see for a stack of ``shape`` (after any resampling)."""
    from srredsim.resample import resampled_size

    if optics is None or sampling.knows(cutoff_per_pixel(optics)):
        return tuple(shape)
    factor = cutoff_per_pixel(optics) / sampling.reference_cutoff
    return resampled_size(shape[0], factor), resampled_size(shape[1], factor)
