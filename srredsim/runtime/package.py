"""Reading a bioimage.io package for srredsim: its RDF, its weight files, its metadata.

srredsim's own packages carry ``config.srredsim`` (normalisation, pixel size, frame order, size
rule, halo, the network configuration); for packages made elsewhere the same facts are read
from the RDF's axes and pre/post-processing where srredsim can reproduce them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srredsim.config import NormalizationConfig
from srredsim.errors import SrredsimError
from srredsim.export.meta import META_KEY, parse_metadata

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
#: the bioimage.io weight format each engine runs (OpenVINO reads the ONNX weights)
WEIGHT_FORMATS = {"onnx": "onnx", "openvino": "onnx", "savedmodel": "tensorflow_saved_model_bundle",
                  "keras": "keras_hdf5"}


def is_package_dir(folder: Path) -> bool:
    return any((folder / n).is_file() for n in RDF_NAMES)


def read_rdf(folder: Path) -> dict[str, Any]:
    import yaml

    for name in RDF_NAMES:
        p = folder / name
        if p.is_file():
            try:
                rdf = yaml.safe_load(p.read_text(encoding="utf-8"))
            except Exception as exc:
                raise SrredsimError(f"{p}: not valid YAML ({exc})") from None
            if not isinstance(rdf, dict):
                raise SrredsimError(f"{p}: expected a mapping at the top level")
            return rdf
    raise SrredsimError(f"{folder}: no rdf.yaml (not a bioimage.io package)")


def package_file(folder: Path, source: Any, what: str) -> Path:
    """A file the RDF names, which must lie inside the package."""
    src = source.get("source") if isinstance(source, dict) else source
    if not isinstance(src, str) or "://" in src:
        raise SrredsimError(f"{folder}: {what} is not a file inside the package ({src!r})")
    p = (folder / src).resolve()
    if folder.resolve() not in p.parents:
        raise SrredsimError(f"{folder}: {what} points outside the package ({src!r})")
    if not p.is_file():
        raise SrredsimError(f"{folder}: {what} file {src!r} is missing")
    return p


def weight_files(folder: Path, rdf: dict[str, Any], origin: Path) -> dict[str, Path]:
    """engine -> weights file, for every engine the package's weight formats allow."""
    weights = rdf.get("weights") or {}
    if not isinstance(weights, dict) or not weights:
        raise SrredsimError(f"{origin}: package has no weights")
    files = {}
    for engine, wf in WEIGHT_FORMATS.items():
        if wf in weights:
            files[engine] = package_file(folder, weights[wf], f"weights.{wf}")
    if not files:
        raise SrredsimError(f"{origin}: package has none of the weight formats srredsim runs "
                            f"({', '.join(sorted(set(WEIGHT_FORMATS.values())))}); it has {sorted(weights)}")
    return files


def test_input_file(folder: Path, rdf: dict[str, Any]) -> Path | None:
    """The package's first test input (``.npy``), or None."""
    ipt = (rdf.get("inputs") or [{}])[0]
    src = ipt.get("test_tensor") or (rdf.get("test_inputs") or [None])[0]
    if src is None:
        return None
    try:
        return package_file(folder, src, "test input")
    except SrredsimError:
        return None


def metadata_from_rdf(rdf: dict[str, Any]) -> dict[str, Any]:
    """srredsim metadata of a package: ``config.srredsim`` or, failing that, what the RDF implies."""
    cfg = (rdf.get("config") or {}) if isinstance(rdf.get("config"), dict) else {}
    meta = parse_metadata(cfg.get(META_KEY))
    scale = axes_scale(rdf)
    if meta is not None:
        if meta.get("scale") is None and meta.get("model") is None and scale:
            meta["scale"] = scale
        return meta
    meta = {"scale": scale or 2}
    inputs, outputs = rdf.get("inputs") or [{}], rdf.get("outputs") or [{}]
    ipt, out = inputs[0], outputs[0]
    for ax in ipt.get("axes") or []:
        if isinstance(ax, dict) and ax.get("type") == "channel":
            meta["frames"] = len(ax.get("channel_names") or [])
        if isinstance(ax, dict) and ax.get("type") == "space" and isinstance(ax.get("size"), dict):
            meta.setdefault("size_multiple", int(ax["size"].get("step") or 1))
    for ax in out.get("axes") or []:
        if isinstance(ax, dict) and ax.get("type") == "space" and ax.get("halo"):
            meta["halo"] = int(ax["halo"]) // meta["scale"]  # the output's halo, in input pixels
    pre = [p for p in ipt.get("preprocessing") or [] if p.get("id") != "ensure_dtype"]
    post = [p for p in out.get("postprocessing") or [] if p.get("id") != "ensure_dtype"]
    norm: NormalizationConfig
    if len(pre) == 1 and pre[0].get("id") == "scale_range":
        kw = pre[0].get("kwargs") or {}
        norm = NormalizationConfig(mode="percentile", low_percentile=float(kw.get("min_percentile", 0.0)),
                                   high_percentile=float(kw.get("max_percentile", 100.0)))
    elif len(pre) == 1 and pre[0].get("id") == "scale_linear" and len(post) <= 1:
        kw = pre[0].get("kwargs") or {}
        gain, offset = float(kw.get("gain", 1.0)), float(kw.get("offset", 0.0))
        x_min, x_max = -offset / gain, (1 - offset) / gain
        y_min, y_max = 0.0, 1.0
        if post and post[0].get("id") == "scale_linear":
            pk = post[0].get("kwargs") or {}
            y_min = float(pk.get("offset", 0.0))
            y_max = y_min + float(pk.get("gain", 1.0))
        norm = NormalizationConfig(mode="global", x_min=x_min, x_max=x_max, y_min=y_min, y_max=y_max)
    elif not pre and not post:
        norm = NormalizationConfig(mode="global", x_min=0.0, x_max=1.0, y_min=0.0, y_max=1.0)
    else:
        ops = [p.get("id") for p in pre] + [p.get("id") for p in post]
        raise SrredsimError(f"package pre/post-processing {ops} cannot be reproduced by srredsim "
                            "(only scale_range or scale_linear are understood)")
    meta["normalization"] = norm
    meta["model"] = None
    return meta


def axes_scale(rdf: dict[str, Any]) -> int | None:
    """Output pixels per input pixel along x, as the RDF's first output declares it; None when
    it does not say (no output x sized from the input).

    Format 0.5: the output x axis is sized from an input axis by ``SizeReference``, and the spec
    computes ``out = in_size * in_axis.scale / out_axis.scale`` (scales default to 1). Format
    0.4: ``shape: {reference_tensor, scale: [...]}`` with the factor per axis of ``axes``.
    """
    inputs, outputs = rdf.get("inputs") or [{}], rdf.get("outputs") or [{}]
    out = outputs[0] if isinstance(outputs[0], dict) else {}
    shape = out.get("shape")
    if isinstance(shape, dict) and isinstance(out.get("axes"), str) and "x" in out["axes"]:  # format 0.4
        factors = shape.get("scale") or []
        i = out["axes"].index("x")
        return _whole(factors[i]) if i < len(factors) else None
    axes = [a for a in out.get("axes") or [] if isinstance(a, dict)]
    ox = next((a for a in axes if a.get("id") == "x" and isinstance(a.get("size"), dict)), None)
    if ox is None:
        return None
    ref = ox["size"]
    source = next((t for t in inputs if isinstance(t, dict) and t.get("id") == ref.get("tensor_id")), inputs[0])
    ix = next((a for a in source.get("axes") or [] if isinstance(a, dict) and a.get("id") == ref.get("axis_id")), None)
    if ix is None:
        return None
    return _whole(float(ix.get("scale") or 1.0) / float(ox.get("scale") or 1.0))


def _whole(value: Any) -> int | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return int(round(v)) if v > 0 and abs(v - round(v)) < 1e-6 else None
