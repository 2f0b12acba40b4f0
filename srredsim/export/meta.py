"""What every exported artifact says about itself, so that it can be run without its run folder.

The same small mapping is written into an ONNX file's ``metadata_props`` (key ``srredsim``), as
``srredsim.json`` beside a stand-alone SavedModel, and as ``config.srredsim`` in a bioimage.io
RDF: normalisation, raw pixel size, frame order, size rule and tiling halo, and the network
configuration (which lets the Keras engine rebuild the network instead of deserialising it).
"""

from __future__ import annotations

import json
from typing import Any

from srredsim import __version__
from srredsim.config import ModelConfig, NormalizationConfig, RunConfig
from srredsim.export import INPUT_ID, OUTPUT_ID

META_KEY = "srredsim"
META_FILE = "srredsim.json"


def size_multiple(cfg: ModelConfig) -> int:
    from srredsim.models import size_multiple as _sm

    return int(_sm(cfg))


def halo(cfg: ModelConfig) -> int:
    """Context in raw pixels a tile needs on each side (the receptive radius, rounded up)."""
    from srredsim.predict import receptive_halo

    return int(receptive_halo(cfg.architecture, cfg.depth, cfg.unet_levels))


def channel_names(angles: int, phases: int) -> list[str]:
    """``a0p0 .. a{A-1}p{P-1}``: angle-major, phases fastest (docs/architecture.md, section 2)."""
    return [f"a{a}p{p}" for a in range(angles) for p in range(phases)]


def artifact_metadata(config: RunConfig) -> dict[str, Any]:
    return {
        "srredsim_version": __version__,
        "input_id": INPUT_ID,
        "output_id": OUTPUT_ID,
        "layout": "NHWC",
        "frames": config.optics.frames,
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
