"""bioimage.io model package (format 0.5) built with bioimageio.spec's public API.

Layout of the zip (all files at its root)::

    rdf.yaml                              the model description (ModelDescr, format 0.5)
    documentation.md                      what, how, training data, optics, validation, limits
    cover.png                             widefield | network output of the test input (RED-Net:
                                          the reconstruction | its denoised version)
    test_input.npy    (1, H, W, C) float32    raw test stack, channels last (RED-Net: (1, H, W, 1),
                                              a classical reconstruction)
    test_output.npy   (1, sH, sW, 1) float32  what the model gives for it (after post-processing;
                                              s = 2, or 1 for RED-Net)
    keras_model.h5                        Keras HDF5 (the original weights entry)
    tf_saved_model_bundle.zip             SavedModel: saved_model.pb + variables/ at its root
    model.onnx                            ONNX, opset 17, IR <= 8

The tensor descriptions follow the Keras layout: input ``raw`` (batch, y, x, channel) with one
named channel per frame (RED-Net: input ``image``, one channel ``sim_reconstruction``), output
``sr`` (batch, y, x, channel) whose y/x are sized from the input's (twice as many pixels; as
many for RED-Net) and carry a halo for tiling; the input declares how it is extended beyond its
borders (``pad: symmetric``, the mirroring DeepImageJ does and ``srredsim predict`` uses). Normalisation is expressed with ``scale_range`` / ``scale_linear``
only, which DeepImageJ implements (docs/architecture.md, section 6). No URL is written (citations
by DOI), so packages validate offline.

**Read the same by the spec and by DeepImageJ.** DeepImageJ 3.1 reads RDFs with JDLL 0.6.1, which
differs from bioimageio.spec 0.5.12 in three places (docs/fiji.md has the code lines):

* output size: the spec computes ``in_size * in_axis.scale / out_axis.scale + offset``, JDLL
  ``in_size * out_axis.scale + 2 * offset`` (and the input halo as ``(halo + offset) /
  out_axis.scale``). Input axes with scale :data:`INPUT_AXIS_SCALE` (4) and output axes with
  :data:`OUTPUT_AXIS_SCALE` (2) — no unit: relative pixel sizes, output pixels half as large — give
  2x in both readings, and the same input halo. In general an output ``s`` times the input's size
  needs input scale ``s**2`` and output scale ``s`` (:func:`axis_scales`): for RED-Net (s = 1)
  both are 1, the spec's default, and both read "same size" and input halo = output halo;
* ``documentation`` (and ``covers``): JDLL casts them to strings; format 0.5.11 made them
  ``{source, sha256}`` maps. Format 0.5.10, which bioimageio.spec 0.5.12 still reads and
  validates, has them as plain file names: :func:`jdll_compatible_rdf` writes that form;
* ``id``: JDLL needs one (NullPointerException otherwise); the package's file-name stem is used
  (bioimage.io assigns its own id when a model is uploaded).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srredsim.config import RunConfig
from srredsim.errors import SrredsimError
from srredsim.export import ONNX_OPSET, OUTPUT_ID, input_id
from srredsim.export.documentation import FAIRSIM_DOI, RED_NET_DOI, SR_REDSIM_DOI, render_documentation
from srredsim.export.meta import artifact_metadata, channel_names, halo, size_multiple

BASE_TAGS = ["deepimagej", "fiji", "imagej", "sim", "structured-illumination", "super-resolution",
             "super-resolution-microscopy", "fluorescence-light-microscopy", "denoising",
             "image-reconstruction", "2d", "tensorflow", "onnx", "keras", "sr-redsim"]
# RED-fairSIM: a denoiser of classical reconstructions (it reconstructs nothing itself)
RED_NET_TAGS = ["deepimagej", "fiji", "imagej", "sim", "structured-illumination", "super-resolution",
                "super-resolution-microscopy", "fluorescence-light-microscopy", "denoising", "2d",
                "tensorflow", "onnx", "keras", "red-fairsim", "red-net", "fairsim"]
RED_NET_CHANNEL = "sim_reconstruction"  # the one input channel of a RED-Net package
RED_NET_DEFAULT_NAME = "RED-fairSIM"
RED_NET_DEFAULT_DESCRIPTION = ("RED-fairSIM: a RED-Net that denoises classical (fairSIM) 2D structured-illumination "
                               "microscopy reconstructions (Shah et al., Photonics Research 2021). Input: one "
                               "reconstructed image on the 2x grid; output: the denoised image of the same size.")
KERAS_FILE = "keras_model.h5"
TF_BUNDLE_FILE = "tf_saved_model_bundle.zip"
ONNX_FILE = "model.onnx"
TEST_INPUT_FILE = "test_input.npy"
TEST_OUTPUT_FILE = "test_output.npy"
COVER_FILE = "cover.png"
DOC_FILE = "documentation.md"
ALL_WEIGHTS = ("keras_hdf5", "tensorflow_saved_model_bundle", "onnx")
# y/x scales that the spec and JDLL 0.6.1 both read as "output = 2 x input" (see the module doc)
INPUT_AXIS_SCALE = 4.0
OUTPUT_AXIS_SCALE = 2.0  # (axis_scales(2); RED-Net's scale 1 gives 1 and 1)


def axis_scales(scale: int) -> tuple[float, float]:
    """(input, output) y/x axis scales that bioimageio.spec and JDLL 0.6.1 both read as "the output
    has ``scale`` times the input's pixels": JDLL's ``in * out_scale`` and the spec's ``in *
    in_scale / out_scale`` agree for ``(scale**2, scale)`` -- (4, 2) for SR-REDSIM, (1, 1) for RED-Net."""
    s = float(scale)
    return s * s, s


# the last 0.5 format with plain-string documentation/covers (what JDLL 0.6.1 reads)
JDLL_FORMAT_VERSION = "0.5.10"
RDF_FILE = "rdf.yaml"


@dataclasses.dataclass
class PackageMetadata:
    """Who and what a package describes; defaults come from the run's ``metadata`` section."""

    name: str
    description: str
    authors: list[str]
    license: str = "MIT"
    maintainers: list[str] = dataclasses.field(default_factory=list)  # GitHub user names
    version: str = "0.1.0"
    tags: list[str] = dataclasses.field(default_factory=list)
    training_data: str = ""
    documentation: Path | None = None  # a user's own documentation.md replaces the generated one
    git_repo: str | None = None  # a URL: bioimageio tools will try to reach it when validating

    @classmethod
    def from_config(cls, config: RunConfig, **overrides: Any) -> "PackageMetadata":
        from srredsim.config import MetadataConfig

        md = config.metadata
        name, description = md.name, md.description
        if not config.model.takes_raw:  # the defaults describe SR-REDSIM, not a RED-fairSIM denoiser
            defaults = MetadataConfig()
            name = RED_NET_DEFAULT_NAME if name == defaults.name else name
            description = RED_NET_DEFAULT_DESCRIPTION if description == defaults.description else description
        base = cls(name=name, description=description, authors=list(md.authors),
                   license=md.license, training_data=md.training_data)
        for key, value in overrides.items():
            if value is None or value == []:
                continue
            if not hasattr(base, key):
                raise SrredsimError(f"unknown package metadata {key!r}")
            setattr(base, key, value)
        return base


def check_metadata(meta: PackageMetadata) -> None:
    """Fail fast (before any conversion) on metadata the bioimage.io spec will reject."""
    import string

    from bioimageio.spec.model import v0_5

    allowed = set(string.ascii_letters + string.digits + "_+- ()")
    bad = sorted(set(meta.name) - allowed)
    if not 5 <= len(meta.name) <= 128 or bad:
        raise SrredsimError(f"model name {meta.name!r}: 5 to 128 characters of letters, digits, spaces and _+-() "
                            + (f"(not {''.join(bad)!r})" if bad else ""))
    if not meta.authors:
        raise SrredsimError("a bioimage.io package needs at least one author (--authors)")
    checks = [("license", lambda: v0_5.LicenseId(meta.license), "is not an SPDX license id (e.g. MIT, CC-BY-4.0)"),
              ("version", lambda: v0_5.Version(meta.version), "is not a version (e.g. 0.1.0)")]
    checks += [("author", lambda a=a: v0_5.Author(name=a), "is not a valid author name (no '/')") for a in meta.authors]
    for what, fn, why in checks:
        try:
            fn()
        except Exception:
            value = meta.license if what == "license" else meta.version if what == "version" else "an author"
            raise SrredsimError(f"{what} {value!r} {why}") from None
    if len(meta.description) > 1024:
        raise SrredsimError(f"description has {len(meta.description)} characters; the spec allows 1024")


def parameterized_size(config: RunConfig) -> tuple[int, int]:
    """(min, step) of the input's y/x sizes; min leaves room for the output halo."""
    step = max(16, size_multiple(config.model))
    h = halo(config.model)
    minimum = step * int(np.ceil((2 * h + 1) / step))
    return minimum, step


def spec_error(exc: Exception, what: str = "model description") -> SrredsimError:
    """One readable line from a pydantic ValidationError of bioimageio.spec."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            parts = []
            for e in errors()[:5]:
                loc = ".".join(str(p) for p in e.get("loc", ()))
                parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
            return SrredsimError(f"{what} fails the bioimage.io spec: " + "; ".join(parts))
        except Exception:
            pass
    return SrredsimError(f"{what} fails the bioimage.io spec: {exc}")


def network_hint(exc: Exception) -> str:
    """bioimageio.spec looks up GitHub users (maintainers) and URLs online while validating."""
    return (f"bioimageio.spec needed the network and could not reach it ({type(exc).__name__}: {exc}); "
            "it looks up every maintainer's GitHub user name and probes every URL in the RDF. "
            "Leave out --maintainers / --git-repo when offline.")


def _processing(config: RunConfig):
    from bioimageio.spec.model import v0_5

    n = config.normalization
    if n.mode == "percentile":
        pre = [v0_5.ScaleRangeDescr(kwargs=v0_5.ScaleRangeKwargs(
            axes=[v0_5.AxisId("channel"), v0_5.AxisId("y"), v0_5.AxisId("x")],
            min_percentile=float(n.low_percentile), max_percentile=float(n.high_percentile), eps=1e-6))]
        post: list = []
    else:
        from srredsim.normalization import output_scale_linear, raw_scale_linear

        gain, offset = raw_scale_linear(n)
        ogain, ooffset = output_scale_linear(n)
        pre = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=float(gain), offset=float(offset)))]
        post = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=float(ogain), offset=float(ooffset)))]
    return pre, post


def deepimagej_config(config: RunConfig, test_in_shape, test_out_shape, runtime_s: float | None) -> dict:
    """``config.deepimagej`` as DeepImageJ writes it (``tensorflow_siganture_def`` is its spelling)."""
    # the network input's pixel: the raw camera pixel, or the reconstruction's (half of it) for RED-Net
    px = config.optics.pixel_size_um / (1 if config.model.takes_raw else 2)
    in_t = input_id(config.model)

    def _size(shape):
        return " x ".join(str(int(s)) for s in shape)

    return {
        "pyramidal_model": False,
        "allow_tiling": True,
        "model_keys": {
            "tensorflow_model_tag": "tf.saved_model.tag_constants.SERVING",
            "tensorflow_siganture_def": "tf.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY",
        },
        "test_information": {
            "inputs": [{"name": in_t, "size": _size(test_in_shape),
                        "pixel_size": {"x": f"{px:g} µm", "y": f"{px:g} µm", "z": "1.0 pixel"}}],
            "outputs": [{"name": OUTPUT_ID, "type": "image", "size": _size(test_out_shape)}],
            "memory_peak": None,
            "runtime": None if runtime_s is None else f"{runtime_s:.3f} s",
        },
        "prediction": {"preprocess": [{"spec": None}], "postprocess": [{"spec": None}]},
    }


def build_model_descr(config: RunConfig, meta: PackageMetadata, files: dict[str, Path], *,
                      test_output: np.ndarray, parameters: int | None, tf_version: str,
                      runtime_s: float | None = None, model_id: str | None = None,
                      fixed_size: tuple[int, int] | None = None):
    """Assemble the v0.5 ``ModelDescr`` from the written files (``files`` maps role -> path).

    ``model_id``: the RDF's ``id`` (DeepImageJ needs one); a slug of the name when not given.
    ``fixed_size``: (H, W) of a package that takes one input size only (a microscope-matched
    package, :mod:`srredsim.export.matched`): see :func:`fixed_size_tensors`."""
    import pydantic
    from bioimageio.spec.model import v0_5

    o = config.optics
    red_net = not config.model.takes_raw
    scale = config.model.scale
    in_scale, out_scale = axis_scales(scale)
    minimum, step = parameterized_size(config)
    h = halo(config.model)
    out_halo = scale * h  # output pixels: the input halo on the output's grid
    pre, post = _processing(config)
    in_t = input_id(config.model)
    test_in_shape = np.load(files["test_input"], mmap_mode="r").shape
    atol = float(1e-3 * max(float(np.abs(test_output).max()), 0.0))
    if red_net:
        # (the spec allows 128 characters)
        in_description = (f"classical SIM reconstruction (fairSIM or srredsim reconstruct): one image on the 2x grid "
                          f"({o.pixel_size_um / 2:g} um pixels)")
        in_channels = [RED_NET_CHANNEL]
        out_description = "denoised SIM reconstruction, the input's height and width"
    else:
        in_description = f"raw SIM stack, {o.frames} frames ({o.angles} angles x {o.phases} phases) as channels"
        in_channels = channel_names(o.angles, o.phases)
        out_description = "denoised super-resolved image, twice the input's height and width"
    try:
        inputs = [v0_5.InputTensorDescr(
            id=v0_5.TensorId(in_t),
            description=in_description,
            axes=[
                v0_5.BatchAxis(),
                v0_5.SpaceInputAxis(id=v0_5.AxisId("y"), size=v0_5.ParameterizedSize(min=minimum, step=step),
                                    scale=in_scale, concatenable=True),
                v0_5.SpaceInputAxis(id=v0_5.AxisId("x"), size=v0_5.ParameterizedSize(min=minimum, step=step),
                                    scale=in_scale, concatenable=True),
                v0_5.ChannelAxis(channel_names=[v0_5.Identifier(c) for c in in_channels]),
            ],
            data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            test_tensor=v0_5.FileDescr(source=files["test_input"]),
            preprocessing=pre,
            pad=v0_5.SymmetricPadding(),  # as JDLL tiles (ImgLib2 extendMirrorDouble) and srredsim.predict
        )]
        ref = dict(tensor_id=v0_5.TensorId(in_t))
        outputs = [v0_5.OutputTensorDescr(
            id=v0_5.TensorId(OUTPUT_ID),
            description=out_description,
            axes=[
                v0_5.BatchAxis(),
                v0_5.SpaceOutputAxisWithHalo(id=v0_5.AxisId("y"), halo=out_halo, scale=out_scale,
                                             size=v0_5.SizeReference(axis_id=v0_5.AxisId("y"), **ref)),
                v0_5.SpaceOutputAxisWithHalo(id=v0_5.AxisId("x"), halo=out_halo, scale=out_scale,
                                             size=v0_5.SizeReference(axis_id=v0_5.AxisId("x"), **ref)),
                v0_5.ChannelAxis(channel_names=[v0_5.Identifier(OUTPUT_ID)]),
            ],
            data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            test_tensor=v0_5.FileDescr(source=files["test_output"]),
            postprocessing=post,
        )]
        if fixed_size is not None:  # microscope-matched package (srredsim.export.matched)
            inputs, outputs = fixed_size_tensors(inputs, outputs, fixed_size)
        weights: dict[str, Any] = {}
        if "keras_hdf5" in files:
            weights["keras_hdf5"] = v0_5.KerasHdf5WeightsDescr(
                source=files["keras_hdf5"], tensorflow_version=v0_5.Version(tf_version),
                comment="the trained Keras model (original weights; rebuilt by srredsim from config.srredsim.model)")
        original = "keras_hdf5" if "keras_hdf5" in files else None
        if "tensorflow_saved_model_bundle" in files:
            weights["tensorflow_saved_model_bundle"] = v0_5.TensorflowSavedModelBundleWeightsDescr(
                source=files["tensorflow_saved_model_bundle"], tensorflow_version=v0_5.Version(tf_version),
                parent=original,
                comment="keras.export.ExportArchive; tag serve; signatures serve and serving_default "
                        f"(input '{in_t}', output dict key '{OUTPUT_ID}')")
            original = original or "tensorflow_saved_model_bundle"
        if "onnx" in files:
            weights["onnx"] = v0_5.OnnxWeightsDescr(
                source=files["onnx"], opset_version=ONNX_OPSET, parent=original,
                comment="tf2onnx from the Keras model; opset 17, IR version <= 8 (ONNX Runtime 1.13 / DeepImageJ)")
        training = v0_5.TrainingDetails(
            training_preprocessing=f"normalisation mode {config.normalization.mode!r}; patches of "
                                   f"{config.data.patch_size} px; augmentation {config.data.augment}",
            training_epochs=float(config.train.epochs), training_batch_size=float(config.train.batch_size),
            initial_learning_rate=float(config.train.learning_rate), loss_function=config.train.loss,
            optimizer="Adam")
        if red_net:
            kind = dict(architecture_type="RED-Net",
                        architecture_description=("RED-Net (Mao et al. 2016): encoder-decoder of 3x3 convolutions "
                                                  "with symmetric additive skips at the reconstruction's grid, the "
                                                  "input as the outermost skip (it learns the correction)"),
                        modality="2D structured illumination microscopy, classical (fairSIM) reconstruction",
                        task="denoising of classical SIM reconstructions (RED-fairSIM)")
        else:
            kind = dict(architecture_type="SR-REDSIM" if config.model.architecture == "sr_redsim" else "U-Net",
                        architecture_description=("RED-Net style encoder-decoder (3x3 convolutions, symmetric "
                                                  "additive skips) with a learned 2x up-sampling (Conv2DTranspose, "
                                                  "stride 2)"),
                        modality="raw 2D structured illumination microscopy (fluorescence)",
                        task="denoising super-resolution SIM reconstruction")
        bioimageio_cfg = v0_5.BioimageioConfig(
            reproducibility_tolerance=[v0_5.ReproducibilityTolerance(
                relative_tolerance=1e-3, absolute_tolerance=atol, mismatched_elements_per_million=100)],
            **kind,
            model_parameter_count=parameters,
            training=training,
        )
        cfg = v0_5.Config(
            bioimageio=bioimageio_cfg,
            deepimagej=deepimagej_config(config, test_in_shape, test_output.shape, runtime_s),
            srredsim=artifact_metadata(config),
        )
        cite = [
            v0_5.CiteEntry(text="Shah et al. Deep-learning based denoising and reconstruction of super-resolution "
                                "structured illumination microscopy images. Photonics Research 9, B168 (2021)",
                           doi=v0_5.Doi(SR_REDSIM_DOI)),
            v0_5.CiteEntry(text="Mueller et al. Open-source image reconstruction of super-resolution structured "
                                "illumination microscopy data in ImageJ (fairSIM). Nature Communications 7, 10980 (2016)",
                           doi=v0_5.Doi(FAIRSIM_DOI)),
        ]
        if red_net:
            cite.append(v0_5.CiteEntry(
                text="Mao, Shen and Yang. Image restoration using very deep convolutional encoder-decoder networks "
                     "with symmetric skip connections (RED-Net). Advances in Neural Information Processing Systems "
                     "29 (2016); arXiv:1603.09056", doi=v0_5.Doi(RED_NET_DOI)))
        tags = list(dict.fromkeys((RED_NET_TAGS if red_net else BASE_TAGS)
                                  + (["unet"] if config.model.architecture == "unet" else []) + list(meta.tags)))
        kwargs: dict[str, Any] = {}
        if meta.git_repo:
            kwargs["git_repo"] = meta.git_repo
        if meta.maintainers:
            kwargs["maintainers"] = [v0_5.Maintainer(github_user=u) for u in meta.maintainers]
        descr = v0_5.ModelDescr(
            id=v0_5.ModelId(model_id or slug(meta.name)),
            name=meta.name,
            description=meta.description,
            authors=[v0_5.Author(name=a) for a in meta.authors],
            cite=cite,
            license=meta.license,
            tags=tags,
            version=meta.version,
            documentation=v0_5.FileDescr(source=files["documentation"]),
            covers=[v0_5.FileDescr(source=files["cover"])],
            inputs=inputs,
            outputs=outputs,
            weights=v0_5.WeightsDescr(**weights),
            training_data=_training_data(config, meta),
            config=cfg,
            **kwargs,
        )
    except pydantic.ValidationError as exc:
        raise spec_error(exc) from None
    return descr


def fixed_size_tensors(inputs: list, outputs: list, size: tuple[int, int]) -> tuple[list, list]:
    """The tensors of a package that takes exactly ``size`` = (H, W) pixels and is run whole: input
    y/x axes of that fixed size (not concatenable: no tiling), output y/x axes of the fixed size the
    spec computes from their size references (``size * input scale / output scale + offset``) and no
    halo. Fixed output sizes, not references: with ``config.deepimagej.allow_tiling: false`` JDLL
    0.6.1 takes an output axis' size from its ``min`` (TileMaker.getOutputTiles), 1 for a reference.
    Everything else as built."""
    from bioimageio.spec.model import v0_5

    fixed = dict(zip(("y", "x"), (int(v) for v in size)))
    scales = {str(a.id): a.scale for t in inputs for a in t.axes if isinstance(a, v0_5.SpaceInputAxis)}

    def _in(ax):
        if isinstance(ax, v0_5.SpaceInputAxis) and str(ax.id) in fixed:
            return v0_5.SpaceInputAxis(id=ax.id, size=fixed[str(ax.id)], scale=ax.scale, unit=ax.unit,
                                       concatenable=False)
        return ax

    def _out(ax):
        if isinstance(ax, (v0_5.SpaceOutputAxis, v0_5.SpaceOutputAxisWithHalo)) \
                and isinstance(ax.size, v0_5.SizeReference) and str(ax.size.axis_id) in fixed:
            ref = str(ax.size.axis_id)
            n = fixed[ref] * scales.get(ref, 1.0) / ax.scale + ax.size.offset
            return v0_5.SpaceOutputAxis(id=ax.id, size=int(round(n)), scale=ax.scale, unit=ax.unit)
        return ax

    ins = [v0_5.InputTensorDescr(**{**dict(t), "axes": [_in(a) for a in t.axes]}) for t in inputs]
    outs = [v0_5.OutputTensorDescr(**{**dict(t), "axes": [_out(a) for a in t.axes]}) for t in outputs]
    return ins, outs


def _training_data(config: RunConfig, meta: PackageMetadata):
    """An inline dataset description (no URL) of what the model was trained on."""
    from bioimageio.spec.dataset import v0_3 as ds

    o = config.optics
    if config.model.takes_raw:
        what = "Raw 2D SIM stacks"
        targets = "targets on the 2x grid."
    else:
        what = "Classical reconstructions (inputs) of raw 2D SIM stacks"
        targets = "targets on the reconstructions' 2x grid."
    text = (f"{meta.training_data or config.metadata.training_data}. {what}, {o.angles} angles x "
            f"{o.phases} phases, NA {o.na:g}, emission {o.wavelength_nm:g} nm, raw pixel {o.pixel_size_um:g} um; "
            + targets)
    return ds.DatasetDescr(name=_safe_name(f"{meta.name} training data"), description=text[:1024],
                           authors=[ds.Author(name=a) for a in meta.authors],
                           cite=[ds.CiteEntry(text="Shah et al., Photonics Research 9, B168 (2021)",
                                              doi=ds.Doi(SR_REDSIM_DOI))],
                           license=meta.license, tags=["sim", "super-resolution", "training-data"])


def _safe_name(name: str) -> str:
    import re
    import string

    allowed = set(string.ascii_letters + string.digits + "_+- ()")
    out = "".join(c if c in allowed else "-" for c in name)
    out = re.sub(r"-{2,}", "-", out).strip()
    return out[:128] if len(out) >= 5 else (out + "-model")[:128]


def slug(name: str) -> str:
    import re

    s = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return s or "model"


def write_package_files(model, config: RunConfig, workdir: Path, meta: PackageMetadata, raw_test: np.ndarray,
                        *, weight_formats: tuple[str, ...] = ALL_WEIGHTS, file_name: str = "model.bioimageio.zip",
                        onnx_proto=None, savedmodel_dir: Path | None = None,
                        inference_model=None) -> tuple[dict[str, Path], dict]:
    """Write every file of the package into ``workdir``; return (role -> path, info).

    ``raw_test`` is the network's test input ``(C, H, W)`` before normalisation: a raw stack, or
    RED-Net's classical reconstruction ``(1, H, W)``. ``model`` is the network as trained (its Keras HDF5 weights); the test output, SavedModel and
    ONNX come from ``inference_model``, its plain-convolution twin, built here unless given."""
    import time

    from srredsim.export.onnx_export import convert_to_onnx, save_onnx
    from srredsim.export.meta import metadata_json
    from srredsim.export.safezip import zip_dir
    from srredsim.export.savedmodel import SAVEDMODEL_ENTRIES, export_savedmodel
    from srredsim.export.testdata import write_cover
    from srredsim.models import inference_twin
    from srredsim.normalization import denormalize_output, normalize_raw
    from srredsim.predict import stack_to_hwc

    files: dict[str, Path] = {}
    in_t = input_id(config.model)
    # SavedModel/ONNX: the same function, faster on CPUs
    fast = inference_model if inference_model is not None else inference_twin(model, config.model)
    # test input / output: the network on the test input as it is, no halo added (what bioimageio.core's
    # reproducibility test computes: skip_input_padding, skip_output_cropping). `srredsim predict`,
    # DeepImageJ and bioimageio.core's tiled prediction also extend the border; see srredsim.predict.
    x = stack_to_hwc(normalize_raw(raw_test, config.normalization))[None]
    t0 = time.perf_counter()
    y = np.asarray(fast.predict_on_batch(x), np.float32)
    runtime = time.perf_counter() - t0
    y = denormalize_output(y, config.normalization).astype(np.float32)
    test_in = stack_to_hwc(raw_test)[None].astype(np.float32)
    files["test_input"] = workdir / TEST_INPUT_FILE
    files["test_output"] = workdir / TEST_OUTPUT_FILE
    np.save(files["test_input"], test_in, allow_pickle=False)
    np.save(files["test_output"], y, allow_pickle=False)
    files["cover"] = write_cover(raw_test, y[0, ..., 0], workdir / COVER_FILE, scale=config.model.scale)

    if "keras_hdf5" in weight_formats:
        files["keras_hdf5"] = workdir / KERAS_FILE
        _save_keras_h5(model, files["keras_hdf5"])
    if "tensorflow_saved_model_bundle" in weight_formats:
        sm_dir = savedmodel_dir or export_savedmodel(fast, workdir / "_savedmodel", input_id=in_t)
        files["tensorflow_saved_model_bundle"] = workdir / TF_BUNDLE_FILE
        keep = set(SAVEDMODEL_ENTRIES)
        zip_dir(sm_dir, files["tensorflow_saved_model_bundle"],
                exclude=tuple(p.name for p in sm_dir.iterdir() if p.name not in keep))
    if "onnx" in weight_formats:
        proto = onnx_proto or convert_to_onnx(fast, metadata={"srredsim": metadata_json(config)}, input_id=in_t,
                                              scale=config.model.scale)
        files["onnx"] = save_onnx(proto, workdir / ONNX_FILE)

    minimum, step = parameterized_size(config)
    info = {
        "name": meta.name, "file_name": file_name, "folder_name": Path(file_name).name.split(".")[0],
        "size_multiple": size_multiple(config.model), "halo": halo(config.model),
        "min_size": minimum, "step": step, "parameters": int(model.count_params()),
        "scale": config.model.scale, "input_id": input_id(config.model),
        "weight_formats": [w for w in ALL_WEIGHTS if w in files], "runtime_s": runtime,
    }
    files["documentation"] = workdir / DOC_FILE
    if meta.documentation is not None:
        doc = Path(meta.documentation)
        if not doc.is_file():
            raise SrredsimError(f"{doc}: no such documentation file")
        files["documentation"].write_text(doc.read_text(encoding="utf-8"), encoding="utf-8")
    else:
        files["documentation"].write_text(render_documentation(config, info), encoding="utf-8")
    return files, info


def jdll_compatible_rdf(content: dict[str, Any], pads: dict[str, dict] | None = None) -> dict[str, Any]:
    """The same model description in format :data:`JDLL_FORMAT_VERSION`, the form JDLL 0.6.1 reads.

    Format 0.5.11 turned ``documentation`` and ``covers`` from file names into ``{source, sha256}``
    maps, which JDLL casts to strings (ClassCastException). Nothing else that srredsim writes
    changed between 0.5.10 and 0.5.12 (``output_of`` and non-identifier channel names are new and
    unused here), so the content stays exactly what bioimageio.spec built.

    ``pads`` (input id -> padding, e.g. ``{"mode": "symmetric"}``) is written out in full:
    bioimageio.spec 0.5.12 serialises ``SymmetricPadding()`` as ``pad: {}`` (the default mode
    left out), which it then reads back as *constant* padding."""
    out = dict(content)
    out["format_version"] = JDLL_FORMAT_VERSION
    for t in out.get("inputs") or []:
        if isinstance(t, dict) and pads and t.get("id") in pads:
            t["pad"] = dict(pads[t["id"]])
    doc = out.get("documentation")
    if isinstance(doc, dict):
        out["documentation"] = doc["source"]
    if isinstance(out.get("covers"), list):
        out["covers"] = [c["source"] if isinstance(c, dict) else c for c in out["covers"]]
    if any(isinstance(t, dict) and t.get("output_of") for t in out.get("inputs") or []):
        raise SrredsimError("inputs[].output_of needs format 0.5.11+, which DeepImageJ cannot read")
    return out


def rewrite_rdf(zip_path: Path, transform) -> None:
    """Replace rdf.yaml inside a package zip by ``transform(content)``; every other member is copied."""
    import zipfile

    import yaml

    tmp = zip_path.with_name(zip_path.name + ".rdf.part")
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == RDF_FILE:
                content = transform(yaml.safe_load(data.decode("utf-8")))
                data = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100).encode("utf-8")
            dst.writestr(info, data)
    os.replace(tmp, zip_path)


def _check_valid(zip_path: Path) -> None:
    """The rewritten package must still be a valid bioimage.io model (format check, file hashes)."""
    from bioimageio.spec import load_description

    descr = load_description(str(zip_path), perform_io_checks=True)
    summary = descr.validation_summary
    for t in getattr(descr, "inputs", None) or []:
        if getattr(t, "pad", None) is not None and t.pad.mode != "symmetric":
            raise SrredsimError(f"input {t.id}: the package declares {t.pad.mode!r} padding, not 'symmetric'")
    if summary.status not in ("valid-format", "passed"):
        msgs = [f"{'.'.join(map(str, e.loc))}: {e.msg}" for d in summary.details for e in d.errors]
        raise SrredsimError("the package's rdf.yaml in format " + JDLL_FORMAT_VERSION + " fails the bioimage.io "
                            "spec: " + "; ".join(msgs[:3]))


def _save_keras_h5(model, path: Path) -> None:
    """Legacy full-model HDF5 (what bioimage.io's ``keras_hdf5`` means), from an uncompiled model."""
    import logging
    import warnings

    logging.getLogger("absl").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(path))


def package_model(model, config: RunConfig, out_zip: str | os.PathLike, meta: PackageMetadata,
                  raw_test: np.ndarray, workdir: Path, *, weight_formats: tuple[str, ...] = ALL_WEIGHTS,
                  onnx_proto=None, savedmodel_dir: Path | None = None, file_name: str | None = None,
                  inference_model=None) -> dict:
    """Write the package zip to ``out_zip`` (normally a temporary path; the caller moves it).
    ``inference_model``: see :func:`write_package_files`."""
    out_zip = Path(out_zip)
    files, info = write_package_files(model, config, workdir, meta, raw_test, weight_formats=weight_formats,
                                      file_name=file_name or out_zip.name, onnx_proto=onnx_proto,
                                      savedmodel_dir=savedmodel_dir, inference_model=inference_model)
    assemble_package(config, meta, files, info, out_zip, model_id=slug(info["folder_name"]))
    info["files"] = {k: str(v) for k, v in files.items()}
    return info


def assemble_package(config: RunConfig, meta: PackageMetadata, files: dict[str, Path], info: dict,
                     out_zip: Path, *, model_id: str, fixed_size: tuple[int, int] | None = None,
                     rdf_edit: Callable[[dict], dict] | None = None) -> None:
    """The written files (:func:`write_package_files`) -> the RDF (:func:`build_model_descr`) -> the
    zip, its RDF made JDLL-compatible (then ``rdf_edit``), checked. Bad metadata and a missing
    network are one clear error."""
    import tensorflow as tf
    from bioimageio.spec import save_bioimageio_package

    test_output = np.load(files["test_output"])
    try:
        descr = build_model_descr(config, meta, files, test_output=test_output, parameters=info["parameters"],
                                  tf_version=tf.__version__, runtime_s=info["runtime_s"], model_id=model_id,
                                  fixed_size=fixed_size)
        save_bioimageio_package(descr, output_path=out_zip)
        pads = {str(t.id): t.pad.model_dump(mode="json") for t in descr.inputs if t.pad is not None}
        edit = rdf_edit or (lambda content: content)
        rewrite_rdf(out_zip, lambda content: edit(jdll_compatible_rdf(content, pads)))
        _check_valid(out_zip)
    except ValueError as exc:
        raise SrredsimError(f"bioimage.io packaging failed: {exc}") from None
    except Exception as exc:
        if type(exc).__module__.startswith("httpx"):
            raise SrredsimError(network_hint(exc)) from None
        raise
