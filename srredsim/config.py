"""Typed configuration of a run: optics, network, normalisation, data, training, metadata.

One :class:`RunConfig` describes everything needed to rebuild, retrain and export a model. It is
saved as ``config.json`` in every run folder (the run folder *is* the model, as in CSBDeep) and
can be written by hand as YAML or JSON and passed to ``srredsim train --config``. Cross-field
rules (e.g. the network's input channels equal angles x phases) are checked here, once, so
that every command can trust a loaded config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from srredsim import __version__
from srredsim.errors import SrredsimError, atomic_path

CONFIG_NAME = "config.json"


def literal_choices(section: type[BaseModel], field: str) -> tuple[Any, ...]:
    """The values a ``Literal`` field of a configuration section accepts, e.g.
    ``literal_choices(ModelConfig, "architecture")``.

    Command-line flags that override such a field take their ``choices`` from here, so that the
    configuration stays the one place that defines them: a value added there is accepted on the
    command line too (``srredsim train --architecture`` once offered only ``sr_redsim`` and
    ``unet`` after ``red_net`` had been added to the configuration).
    """
    values = get_args(section.model_fields[field].annotation)
    if not values:
        raise TypeError(f"{section.__name__}.{field} is not a Literal field")
    return values


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OpticsConfig(_Section):
    """Microscope and illumination of the raw data (used by simulation, reconstruction, export)."""

    na: float = Field(1.4, gt=0, description="objective numerical aperture")
    wavelength_nm: float = Field(525.0, gt=100, lt=2000, description="emission wavelength")
    pixel_size_um: float = Field(0.08, gt=0, lt=100, description="raw camera pixel size in the sample plane")
    refractive_index: float = Field(1.518, gt=1.0, description="immersion medium refractive index")
    angles: int = Field(3, ge=1, le=12)
    phases: int = Field(5, ge=3, le=16)
    beams: Literal[2, 3] = 2

    @model_validator(mode="after")
    def _physical(self):
        if self.na >= self.refractive_index:
            raise ValueError(f"NA {self.na} must be smaller than the refractive index {self.refractive_index}")
        return self

    @property
    def frames(self) -> int:
        return self.angles * self.phases


class ModelConfig(_Section):
    """Network architecture. ``sr_redsim`` is the paper's network (docs/architecture.md, section 3):
    raw stack in, 2x image out. ``red_net`` is the network of the paper's second method, RED-fairSIM:
    one classical (fairSIM-equivalent) reconstruction in, the same-size denoised image out; the
    raw stack goes through :mod:`srredsim.classical` first (:mod:`srredsim.redfairsim`)."""

    architecture: Literal["sr_redsim", "unet", "red_net"] = "sr_redsim"  # the one list (see literal_choices)
    in_channels: int = Field(15, ge=1, le=256)
    filters: int = Field(64, ge=1, le=1024, description="SR-REDSIM / RED-Net filters per layer (paper: 64)")
    depth: int = Field(10, ge=1, le=32, description="SR-REDSIM / RED-Net skip blocks; encoder has 2*depth+1 convolutions")
    unet_base_filters: int = Field(16, ge=1, le=512)
    unet_levels: int = Field(5, ge=1, le=7, description="U-Net down/up levels; H and W must be divisible by 2**levels")
    unet_output_activation: Literal["sigmoid", "relu", "linear"] = Field(
        "sigmoid", description="U-Net output: the seed's sigmoid, or SR-REDSIM's ReLU (the sigmoid saturates and "
                               "can collapse to a constant output on sparse fluorescence targets)")

    classical_wiener: float = Field(
        0.05, gt=0, description="red_net only: Wiener parameter w of the classical reconstruction the network "
                                "reads (fairSIM's default 0.05); predict reconstructs with it")
    classical_apo_cutoff: float = Field(
        2.0, gt=0, description="red_net only: apodisation cutoff (times the OTF cutoff) of that reconstruction "
                               "(fairSIM's default 2.0)")
    classical_apo_bend: float = Field(
        0.9, gt=0, description="red_net only: apodisation bend of that reconstruction (fairSIM's default 0.9; "
                               "smaller keeps more of the measured high frequencies, with their noise)")

    @property
    def scale(self) -> int:
        """Output pixels per input pixel along x and y: 2 for the raw-stack networks, 1 for
        ``red_net`` (its input already lies on the 2x grid)."""
        return 1 if self.architecture == "red_net" else 2

    @property
    def takes_raw(self) -> bool:
        """True when the network's input is the raw stack (False: a reconstructed SR image)."""
        return self.architecture != "red_net"

    @staticmethod
    def channels_for(architecture: str, frames: int) -> int:
        """The ``in_channels`` an architecture reads: one reconstructed image for ``red_net``, the
        ``frames`` raw frames otherwise. Lets a command that switches the architecture keep the
        input channels consistent (``srredsim train --architecture red_net`` on the default
        configuration would otherwise fail the cross-field check for its 15 channels)."""
        return 1 if architecture == "red_net" else frames


class NormalizationConfig(_Section):
    """How raw stacks and references are scaled to the network's range, stored with the model.

    ``global``: the paper's choice, one min/max over the whole training set for the raw stacks and
    one for the references (computed at training start and stored in ``x_min``..``y_max``); the
    network output is mapped back to reference units.
    ``percentile``: each raw stack is scaled by its own low/high percentiles (over all frames) and
    each reference likewise; robust to changing light levels, output in normalised units.
    """

    mode: Literal["global", "percentile"] = "percentile"
    low_percentile: float = Field(0.1, ge=0, lt=50)
    high_percentile: float = Field(99.9, gt=50, le=100)
    x_min: float | None = None
    x_max: float | None = None
    y_min: float | None = None
    y_max: float | None = None

    @property
    def has_global_stats(self) -> bool:
        return None not in (self.x_min, self.x_max, self.y_min, self.y_max)


class DataConfig(_Section):
    """Patch sampling and augmentation."""

    patch_size: int = Field(96, ge=8, le=4096, description="raw patch edge in pixels (reference patch is 2x)")
    patches_per_image: int = Field(16, ge=1, description="random patches drawn per training image per epoch")
    augment: bool = Field(True, description="random 90-degree rotations and flips applied to raw and reference alike")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of training pairs held out when no testx/testy exist")
    val_patches_per_image: int = Field(4, ge=1)
    cache_limit_mb: int = Field(2048, ge=0, description="data sets larger than this are read from disk per patch")
    widefield_fraction: float = Field(
        0.0, ge=0, lt=1,
        description="share of training patches made pattern-free: every raw frame replaced by the stack's mean "
                    "frame and the reference restricted to the widefield OTF support of the run's optics -- what "
                    "a stack without a pattern holds. Teaches the network the physics of the pattern-removed "
                    "control: without a pattern, no detail beyond widefield")


class TrainConfig(_Section):
    """Optimisation. Defaults follow the paper: MSE, Adam 1e-3, batch 1, 100 epochs."""

    epochs: int = Field(100, ge=1)
    batch_size: int = Field(1, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    loss: Literal["mse", "mae"] = "mse"
    steps_per_epoch: int | None = Field(None, ge=1, description="default: patches_per_image * images / batch")
    seed: int | None = 0
    strategy: Literal["auto", "none", "mirrored", "multiworker"] = "auto"
    cpu_devices: int = Field(0, ge=0, description="split the CPU into this many logical devices (testing MirroredStrategy)")
    tensorboard: bool = True
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="arithmetic of training: auto = bf16 on CPUs with AMX/AVX512-BF16 and on GPUs "
                            "of compute capability >= 8, fp16 on older GPUs, fp32 elsewhere; weights stay fp32")
    reduce_lr_on_plateau: bool = Field(False, description="halve the learning rate when val_loss stalls for 4 epochs (paper: off)")
    max_minutes: float | None = Field(None, gt=0, description="stop after the epoch that passes this wall-clock budget")


class MetadataConfig(_Section):
    """Who made the model and how it may be used; carried into the bioimage.io package."""

    name: str = Field("SR-REDSIM", pattern=r"^[A-Za-z0-9 _+\-()]{5,128}$",
                      description="5-128 letters, digits, spaces and _+-() (the bioimage.io name rule)")
    description: str = ("SR-REDSIM: denoising super-resolution of raw 2D structured-illumination "
                        "microscopy stacks (Shah et al., Photonics Research 2021).")
    authors: list[str] = Field(default_factory=lambda: ["srredsim developers"])
    license: str = "MIT"
    training_data: str = "user data"


Span = tuple[float, float]


class TrainingRange(_Section):
    """The acquisitions a model was trained on, so that data outside them can be recognised.

    The network learns a sampling: the OTF cutoff in **cycles per raw pixel**
    (``2 NA / λ × pixel size``), not NA, wavelength or pixel size on their own. Prediction
    resamples a stack whose cutoff lies outside ``cutoff_cycles_per_px`` to the model's (see
    :mod:`srredsim.model_optics`), and the data checks (:mod:`srredsim.datacheck`) warn when the
    pattern ``|k|`` (as a fraction of the cutoff) or its modulation lie outside the trained spans.
    Angles, phases and beams are those of ``RunConfig.optics``. ``None`` means "not recorded".
    """

    cutoff_cycles_per_px: Span = Field(description="OTF cutoff 2NA/λ times the raw pixel size, low and high")
    k_fraction: Span | None = Field(None, description="pattern |k| as a fraction of the cutoff")
    modulation: Span | None = Field(None, description="pattern modulation (contrast) m")
    photons: Span | None = Field(None, description="mean detected photons per camera pixel per raw frame")

    @model_validator(mode="after")
    def _ordered(self):
        for name in ("cutoff_cycles_per_px", "k_fraction", "modulation", "photons"):
            span = getattr(self, name)
            if span is not None and not (0 < span[0] <= span[1]):
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {span}")
        if self.cutoff_cycles_per_px[1] >= 0.5 * (1 + 0.05) + 1e-9:
            raise ValueError("cutoff_cycles_per_px must stay below ~0.5 (the raw Nyquist frequency)")
        return self


class RunConfig(_Section):
    """Everything about one trained model. Saved as ``config.json`` in its run folder."""

    srredsim_version: str = __version__
    optics: OpticsConfig = Field(default_factory=OpticsConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    training_range: TrainingRange | None = Field(
        None, description="the acquisitions the model was trained on (None: not recorded; the optics "
                          "above then stand for the sampling)")

    @model_validator(mode="after")
    def _consistent(self):
        if not self.model.takes_raw:
            if self.model.in_channels != 1:
                raise ValueError(f"model.in_channels must be 1 for {self.model.architecture} (one reconstructed "
                                 f"image), got {self.model.in_channels}")
            if self.data.widefield_fraction:
                raise ValueError(f"data.widefield_fraction is for networks that read the raw stack, not "
                                 f"{self.model.architecture}")
        elif self.model.in_channels != self.optics.frames:
            raise ValueError(
                f"model.in_channels ({self.model.in_channels}) must equal optics.angles x optics.phases "
                f"({self.optics.angles} x {self.optics.phases} = {self.optics.frames})")
        if self.model.architecture == "unet" and self.data.patch_size % (2 ** self.model.unet_levels):
            raise ValueError(
                f"U-Net patch_size {self.data.patch_size} must be divisible by 2**unet_levels "
                f"= {2 ** self.model.unet_levels}")
        return self

    # ---- persistence -------------------------------------------------------------------------
    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RunConfig":
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        if not path.exists():
            raise SrredsimError(f"{path}: no such configuration file")
        try:
            text = path.read_text()
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                raw = yaml.safe_load(text) or {}
            else:
                raw = json.loads(text)
        except Exception as exc:
            raise SrredsimError(f"{path}: cannot parse configuration ({exc})") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "configuration") -> "RunConfig":
        if not isinstance(raw, dict):
            raise SrredsimError(f"{source}: expected a mapping at the top level")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise SrredsimError(f"{source}: {_one_line(exc)}") from None

    def with_overrides(self, overrides: dict[str, Any]) -> "RunConfig":
        """Return a copy with dotted-key overrides applied, e.g. ``{"train.epochs": 3}``.

        ``None`` is a value (e.g. ``{"train.seed": None}`` makes a run unseeded); callers that
        collect optional command-line flags drop the flags that were not given.
        """
        raw = self.model_dump()
        for key, value in overrides.items():
            node = raw
            parts = key.split(".")
            for part in parts[:-1]:
                if part not in node or not isinstance(node[part], dict):
                    raise SrredsimError(f"unknown configuration key {key!r}")
                node = node[part]
            if parts[-1] not in node:
                raise SrredsimError(f"unknown configuration key {key!r}")
            node[parts[-1]] = value
        return RunConfig.from_dict(raw, source="command-line overrides")


def _one_line(exc: ValidationError) -> str:
    msgs = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        msgs.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(msgs)


def parse_set_option(items: list[str] | None) -> dict[str, Any]:
    """Parse ``--set key=value`` items; values are read as YAML scalars (numbers, booleans)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SrredsimError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out
