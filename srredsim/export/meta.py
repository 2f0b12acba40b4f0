"""What every exported artifact says about itself, so that it can be run without its run folder.

The same small mapping is written into an ONNX file's ``metadata_props`` (key ``srredsim``), as
``srredsim.json`` beside a stand-alone SavedModel, and as ``config.srredsim`` in a bioimage.io
RDF: normalisation, raw pixel size, frame order, size rule and tiling halo, and the network
configuration (which lets the Keras engine rebuild the network instead of deserialising it).

Two keys say what kind of network it is: ``architecture`` (``sr_redsim``, ``unet``, ``red_net``)
and ``scale``, the output pixels per input pixel along y and x (2: raw stack in, 2x image out; 1:
RED-fairSIM's RED-Net, one reconstructed image in, the same size out). Artifacts written before
these keys existed are all 2x: read the scale with :func:`scale_of`. ``frames`` is the number of
input channels the network takes (the raw frames, ``angles x phases``, for the raw-stack networks;
1 for RED-Net, whose raw stack goes through the classical reconstruction first: its frame layout
is in ``angles``, ``phases`` and ``optics``). ``halo`` and ``size_multiple`` are in input pixels,
``pixel_size_um`` is the raw camera pixel (the network input's pixel is that divided by 2 when
``scale`` is 1).
"""

from __future__ import annotations

import json
from typing import Any

from srredsim import __version__
from srredsim.config import ModelConfig, NormalizationConfig, RunConfig
from srredsim.export import OUTPUT_ID, input_id

META_KEY = "srredsim"
META_FILE = "srredsim.json"


def size_multiple(cfg: ModelConfig) -> int:
    from srredsim.models import size_multiple as _sm

    return int(_sm(cfg))


def halo(cfg: ModelConfig) -> int:
    """Context in input pixels a tile needs on each side (the receptive radius, rounded up).

    For RED-Net the input lies on the output's grid, so this is also its output halo: the RED-Net
    of depth d has 4d + 3 3x3 layers at that grid (2d + 1 encoder convolutions, 2d decoder
    deconvolutions, the final deconvolution and the correction), a receptive radius of 4d + 3
    pixels, within :func:`srredsim.predict.receptive_halo`'s 4d + 8."""
    from srredsim.predict import receptive_halo

    return int(receptive_halo(cfg.architecture, cfg.depth, cfg.unet_levels))


def channel_names(angles: int, phases: int) -> list[str]:
    """``a0p0 .. a{A-1}p{P-1}``: angle-major, phases fastest (docs/architecture.md, section 2)."""
    return [f"a{a}p{p}" for a in range(angles) for p in range(phases)]


def scale_of(meta: dict[str, Any] | None) -> int:
    """Output pixels per input pixel of an artifact's metadata: its ``scale``, 2 when absent (every
    artifact written before the key existed was 2x)."""
    try:
        return int((meta or {}).get("scale") or 2)
    except (TypeError, ValueError):
        return 2


def artifact_metadata(config: RunConfig) -> dict[str, Any]:
    return {
        "srredsim_version": __version__,
        "architecture": config.model.architecture,
        "scale": config.model.scale,
        "input_id": input_id(config.model),
        "output_id": OUTPUT_ID,
        "layout": "NHWC",
        # the network's input channels: the raw frames, or 1 (RED-Net's reconstructed image)
        "frames": config.model.in_channels,
        "angles": config.optics.angles,
        "phases": config.optics.phases,
        "pixel_size_um": config.optics.pixel_size_um,
        "size_multiple": size_multiple(config.model),
        "halo": halo(config.model),
        "normalization": config.normalization.model_dump(),
        "model": config.model.model_dump(),
        # what the model was trained for: srredsim predict resamples other microscopes' data to it
        "optics": config.optics.model_dump(),
        "training_range": config.training_range.model_dump() if config.training_range else None,
    }


def metadata_json(config: RunConfig) -> str:
    return json.dumps(artifact_metadata(config), indent=2)


def parse_metadata(raw: Any) -> dict[str, Any] | None:
    """Accept a mapping or JSON text; return a mapping with a valid normalisation, else None."""
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict):
        return None
    out = dict(raw)
    try:
        out["normalization"] = NormalizationConfig.model_validate(raw.get("normalization") or {})
    except Exception:
        return None
    model = raw.get("model")
    try:
        out["model"] = ModelConfig.model_validate(model) if isinstance(model, dict) else None
    except Exception:
        out["model"] = None
    return out
