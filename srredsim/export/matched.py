"""Microscope-matched bioimage.io packages: ``srredsim predict --na --wavelength --pixel-size`` in one graph.

``srredsim predict MODEL RAW --na … --wavelength … --pixel-size …`` resamples a stack whose OTF
cutoff (cycles per raw pixel) lies outside the model's trained span onto the model's sampling,
predicts, and resamples the result back onto twice the stack's grid
(:func:`srredsim.model_optics.predict_with_optics`). DeepImageJ cannot do that, so
``srredsim export MODEL --format bioimageio --na … --wavelength … --pixel-size …`` builds a
package whose graph does it. Every step of that prediction is linear along each image axis except
the network and the percentile normalisation, so the graph is::

    Z   = A_h · X · A_wᵀ                 resampling onto the model's grid, the halo border of
                                         srredsim predict (mirrored) and any size-multiple padding
    Z'  = (Z - p_lo(Zc)) / (p_hi(Zc) - p_lo(Zc) + eps)
                                         percentile normalisation of the resampled stack Zc (Z
                                         without the border), as srredsim predict normalises it
                                         (percentile models only; see below)
    Y   = net(Z')                        the network, unchanged
    out = B_h · Y · B_wᵀ                 the border cropped and the result resampled back to 2H x 2W

with constant matrices built from :func:`srredsim.resample.resampling_matrix` and the very padding
rules of :func:`srredsim.predict.predict_normalized` (MatMul, Transpose, TopK, Slice, Reshape:
ONNX opset 17 and TensorFlow 2.10.1 run them). The matrices fix the input size: a matched package
takes exactly ``H x W`` pixels (``--input-size``, default 512) and is run whole (no halo: the
border extension is inside the graph).

**Normalisation.** The RDF keeps the normal package's pre/post-processing (``scale_range`` or
``scale_linear``), which act on the user's ``H x W`` stack. A ``scale_linear`` commutes exactly with
the resampling (the matrices keep constants). Percentile ranges do not: ``srredsim predict``
takes the percentiles of the *resampled* stack, which is smoother than the raw one (measured on a
512² water-objective stack with the shipped sim-3x5 model: percentiles 100/339 raw against
102.0/335.5 resampled, output max difference 1.7 % of its peak). So a percentile model's graph
normalises the resampled stack again with the same percentiles (numpy's linear interpolation,
taken with TopK). Percentile normalisation is invariant to the affine map ``scale_range`` applied
before, so the package gives ``srredsim predict``'s numbers up to ``eps`` and float32 rounding, and
the percentile rule of the host (JDLL takes no interpolation) no longer matters.

Public: :func:`plan_matched` (None when the optics are the model's own sampling: then the normal
package is built), :class:`MatchedPlan`, :func:`build_matched_model`, :func:`export_matched`,
:func:`is_matched` and :func:`validate_rows` (used by ``srredsim validate``),
:func:`reference_prediction` (``srredsim predict`` on a matched package, for the DeepImageJ check).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srredsim.config import OpticsConfig, RunConfig
from srredsim.errors import SrredsimError
from srredsim.export import INPUT_ID, ONNX_OPSET, OUTPUT_ID, SERVE_ENDPOINT, SIGNATURE

DEFAULT_INPUT_SIZE = 512  # the paper's raw frame size
MIN_INPUT_SIZE = 16
MAX_INPUT_SIZE = 4096
MATCHED_KEY = "matched"  # config.srredsim.matched in the RDF
#: the reproduction ``srredsim export`` demands of the graph against ``srredsim predict`` (relative to
#: the output's peak) on the package's test input
PREDICT_TOL = 1e-4
WEIGHT_FORMATS = ("tensorflow_saved_model_bundle", "onnx")
#: the optics flags that say which microscope; the frame layout is the model's
OPTICS_FIELDS = ("na", "wavelength_nm", "pixel_size_um", "refractive_index")


# ---- the plan: sizes and matrices ----------------------------------------------------------------

def parse_input_size(text: str | int | tuple | None) -> tuple[int, int]:
    """``512`` or ``512x640`` (height x width) -> (H, W); None -> the default 512 x 512."""
    if text is None:
        return DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE
    if isinstance(text, int):
        hw = (text, text)
    elif isinstance(text, (tuple, list)):
        hw = tuple(int(v) for v in text)
    else:
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*", str(text))
        if not m:
            raise SrredsimError(f"--input-size {text!r}: give H or HxW in raw pixels, e.g. 512 or 512x640")
        hw = (int(m.group(1)), int(m.group(2) or m.group(1)))
    if len(hw) != 2 or not all(MIN_INPUT_SIZE <= v <= MAX_INPUT_SIZE for v in hw):
        raise SrredsimError(f"--input-size {text!r}: height and width must lie in {MIN_INPUT_SIZE}..{MAX_INPUT_SIZE} "
                            "raw pixels")
    return int(hw[0]), int(hw[1])


@dataclasses.dataclass(frozen=True)
class MatchedPlan:
    """What a matched package does: the user's optics and frame size, the model's grid, the border."""

    target: OpticsConfig  # the user's microscope
    model_optics: OpticsConfig  # what the model was trained for
    model_range: tuple[float, float]  # its trained cutoff span (cycles per raw pixel)
    target_cutoff: float
    model_cutoff: float  # the cutoff stacks are resampled to (ModelSampling.reference_cutoff)
    input_size: tuple[int, int]  # (H, W) of the user's stacks
    model_grid: tuple[int, int]  # (h, w) the network sees, before the border
    halo: int  # border srredsim predict adds on the model grid (raw pixels, mirrored)
    multiple: int  # the network's size multiple (U-Net)

    @property
    def factor(self) -> float:
        """Model pixels per user pixel (the mean of both axes, as srredsim predict reports it)."""
        return 0.5 * (self.model_grid[0] / self.input_size[0] + self.model_grid[1] / self.input_size[1])

    def _padded(self) -> tuple[int, int, int, int]:
        """(h0, w0, ph, pw): the grid with the halo border, and the size-multiple padding after it."""
        h0, w0 = self.model_grid[0] + 2 * self.halo, self.model_grid[1] + 2 * self.halo
        return h0, w0, (-h0) % self.multiple, (-w0) % self.multiple

    @property
    def network_grid(self) -> tuple[int, int]:
        h0, w0, ph, pw = self._padded()
        return h0 + ph, w0 + pw

    def _pad_matrix(self, axis: int) -> np.ndarray:
        """Rows of the model grid selected by srredsim predict's border extension and size padding
        (:func:`srredsim.predict.extend_border`, then the reflection of ``predict_normalized``)."""
        from srredsim.predict import BORDER_MODE

        n = self.model_grid[axis]
        h0, w0, ph, pw = self._padded()
        eye = np.eye(n)
        ext = np.pad(eye, ((self.halo, self.halo), (0, 0)), mode=BORDER_MODE) if self.halo else eye
        pad = (ph, pw)[axis]
        if pad:
            mode = "reflect" if min(h0, w0) > max(ph, pw) else "edge"
            ext = np.pad(ext, ((0, pad), (0, 0)), mode=mode)
        return ext

    def input_matrix(self, axis: int) -> np.ndarray:
        """``(network grid, input size)``: resampling onto the model's grid, then the border."""
        from srredsim.resample import resampling_matrix

        return self._pad_matrix(axis) @ resampling_matrix(self.input_size[axis], self.model_grid[axis])

    def output_matrix(self, axis: int) -> np.ndarray:
        """``(2 x input size, 2 x network grid)``: the border cropped, the result resampled back."""
        from srredsim.resample import resampling_matrix

        n, big = self.model_grid[axis], self.network_grid[axis]
        crop = np.zeros((2 * n, 2 * big))
        crop[np.arange(2 * n), 2 * self.halo + np.arange(2 * n)] = 1.0
        return resampling_matrix(2 * n, 2 * self.input_size[axis]) @ crop

    def describe(self) -> str:
        from srredsim.model_optics import describe_optics

        h, w = self.input_size
        return (f"{w}x{h}-pixel stacks from {describe_optics(self.target)}, resampled to the model's "
                f"{self.model_grid[1]}x{self.model_grid[0]} pixels ({self.model_cutoff:.3f} cycles/pixel) and back to "
                f"{2 * w}x{2 * h}")

    def metadata(self) -> dict[str, Any]:
        """``config.srredsim.matched``: what the graph holds, for people and for ``srredsim validate``."""
        return {
            "input_size": list(self.input_size),
            "optics": self.target.model_dump(),
            "cutoff_cycles_per_px": self.target_cutoff,
            "model_optics": self.model_optics.model_dump(),
            "model_cutoff_range": list(self.model_range),
            "model_cutoff_cycles_per_px": self.model_cutoff,
            "model_grid": list(self.model_grid),
            "network_grid": list(self.network_grid),
            "border_halo": self.halo,
            "factor": self.factor,
            "resampling": "DCT-II (srredsim.resample.resampling_matrix), in the graph as constant matrices",
        }


def _target_optics(model_optics: OpticsConfig, given: dict[str, Any]) -> OpticsConfig:
    from srredsim.model_optics import data_optics

    given = {k: v for k, v in (given or {}).items() if v is not None}
    layout = {k: given[k] for k in ("angles", "phases", "beams") if k in given}
    differ = {k: v for k, v in layout.items() if v != getattr(model_optics, k)}
    if differ:
        raise SrredsimError("a matched package resamples the same acquisition layout: the model takes "
                            f"{model_optics.angles} angles x {model_optics.phases} phases ({model_optics.beams}-beam), "
                            f"not {', '.join(f'{k} {v}' for k, v in differ.items())}")
    return data_optics(model_optics, given, None)


def plan_matched(config: RunConfig, optics: dict[str, Any], input_size: tuple[int, int] | str | int | None = None
                 ) -> MatchedPlan | None:
    """The plan of a package matched to ``optics`` (OpticsConfig field names; the model's optics fill in
    what is not given), or None when ``srredsim predict`` would not resample such stacks (the optics lie
    inside the model's trained sampling): then the normal package is the matched one."""
    from srredsim.export.meta import halo, size_multiple
    from srredsim.model_optics import ModelSampling, cutoff_per_pixel, model_grid_shape

    if not config.model.takes_raw:
        raise SrredsimError(f"a matched package needs a network that takes the raw stack; "
                            f"{config.model.architecture!r} takes a reconstruction")
    size = parse_input_size(input_size)
    sampling = ModelSampling.from_config(config)
    target = _target_optics(config.optics, optics)
    cutoff = cutoff_per_pixel(target)
    if sampling.knows(cutoff):
        return None
    if not 0 < cutoff < 0.55:  # srredsim.resample.resample_raw's rule
        raise SrredsimError(f"the optics give an OTF cutoff of {cutoff:.3f} cycles per pixel; srredsim resamples "
                            "stacks below 0.55 only (the data are undersampled beyond that)")
    grid = model_grid_shape(sampling, target, size)
    return MatchedPlan(target=target, model_optics=config.optics,
                       model_range=tuple(float(c) for c in sampling.training_range.cutoff_cycles_per_px),
                       target_cutoff=float(cutoff), model_cutoff=float(sampling.reference_cutoff),
                       input_size=size, model_grid=tuple(int(v) for v in grid), halo=int(halo(config.model)),
                       multiple=int(size_multiple(config.model)))


def same_sampling_note(config: RunConfig, optics: dict[str, Any]) -> str:
    from srredsim.model_optics import ModelSampling, cutoff_per_pixel, describe_optics

    target = _target_optics(config.optics, optics)
    lo, hi = ModelSampling.from_config(config).training_range.cutoff_cycles_per_px
    return (f"the optics {describe_optics(target)} lie inside the model's trained sampling ({lo:.3f}-{hi:.3f} "
            f"cycles/pixel): srredsim predict does not resample such stacks, so the normal package (any size) "
            f"is what they need; building it (cutoff {cutoff_per_pixel(target):.3f})")


# ---- the graph -----------------------------------------------------------------------------------

def numpy_percentile_taps(n: int, percentile: float) -> tuple[int, float]:
    """numpy's ``linear`` percentile of ``n`` values: ``s[i] + t (s[i+1] - s[i])`` of the sorted ``s``."""
    pos = percentile / 100.0 * (n - 1)
    i = min(int(math.floor(pos)), n - 1)
    return i, float(pos - i)


def _layers():
    """The two graph layers (defined on first use: importing this module must not import Keras)."""
    import keras
    from keras import ops

    class AxisMaps(keras.layers.Layer):
        """``y[b, :, :, c] = M_h · x[b, :, :, c] · M_wᵀ`` with constant matrices (two MatMuls)."""

        def __init__(self, m_h: np.ndarray, m_w: np.ndarray, **kwargs):
            super().__init__(**kwargs)
            self._m_h = np.ascontiguousarray(m_h, np.float32)
            self._m_w = np.ascontiguousarray(m_w, np.float32)

        def call(self, x):
            # Each matrix on the left of a rank-4 tensor: one broadcasting MatMul per axis, static
            # shapes throughout. (A matrix on the right becomes a Tensordot with a run-time Reshape,
            # after which tf2onnx 1.17 loses the static shape and pads the network's stride-2
            # Conv2DTranspose on the wrong side, a one-pixel shift; rank-4 constants on both sides
            # crashed TensorFlow 2.21's oneDNN kernels at batch 2.) The last Transpose is the
            # inverse of the one tf2onnx puts before a channels-first convolution: they cancel.
            t = ops.transpose(x, (0, 3, 2, 1))  # (b, c, W, H)
            t = ops.matmul(ops.convert_to_tensor(self._m_w), t)  # (b, c, w, H)
            t = ops.transpose(t, (0, 1, 3, 2))  # (b, c, H, w)
            t = ops.matmul(ops.convert_to_tensor(self._m_h), t)  # (b, c, h, w)
            return ops.transpose(t, (0, 2, 3, 1))  # (b, h, w, c)

        def compute_output_shape(self, shape):
            return (shape[0], self._m_h.shape[0], self._m_w.shape[0], shape[3])

    class PercentileRenormalize(keras.layers.Layer):
        """``(x - p_lo) / (p_hi - p_lo + eps)`` with numpy's linear percentiles of the centre of ``x``
        (the border rows left out) per sample, taken from the two ends of the sorted values (TopK)."""

        def __init__(self, center: tuple[int, int, int, int], low: float, high: float, eps: float, **kwargs):
            super().__init__(**kwargs)
            self._center = tuple(int(v) for v in center)  # y0, h, x0, w
            self._low, self._high, self._eps = float(low), float(high), float(eps)

        def _taps(self, channels: int):
            _, h, _, w = self._center
            n = h * w * channels
            return n, numpy_percentile_taps(n, self._low), numpy_percentile_taps(n, self._high)

        @staticmethod
        def _lerp(a, b, t: float):
            # numpy's _lerp: from the nearer end
            return a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t)

        def call(self, x):
            y0, h, x0, w = self._center
            c = int(x.shape[-1])
            n, (i_lo, t_lo), (i_hi, t_hi) = self._taps(c)
            flat = ops.reshape(x[:, y0:y0 + h, x0:x0 + w, :], (-1, n))
            k_lo = min(n, i_lo + 2)  # the smallest values, ascending: s[0] .. s[i_lo + 1]
            smallest = -ops.top_k(-flat, k_lo, sorted=True)[0]
            a = smallest[:, i_lo]
            lo = self._lerp(a, smallest[:, i_lo + 1], t_lo) if t_lo > 0 and i_lo + 1 < n else a
            k_hi = n - i_hi  # the largest values, descending: s[n-1] .. s[i_hi]
            largest = ops.top_k(flat, k_hi, sorted=True)[0]
            a = largest[:, k_hi - 1]
            hi = self._lerp(a, largest[:, k_hi - 2], t_hi) if t_hi > 0 and k_hi >= 2 else a
            lo = ops.reshape(lo, (-1, 1, 1, 1))
            hi = ops.reshape(hi, (-1, 1, 1, 1))
            return (x - lo) / (hi - lo + self._eps)

        def compute_output_shape(self, shape):
            return shape

    return AxisMaps, PercentileRenormalize


def build_matched_model(net, plan: MatchedPlan, normalization):
    """The Keras model ``(B, H, W, C)`` normalised stack -> ``(B, 2H, 2W, 1)`` of a matched package:
    ``net`` (the plain-convolution inference twin) wrapped in the resampling of the module doc."""
    import keras

    from srredsim.normalization import EPS

    AxisMaps, PercentileRenormalize = _layers()
    h, w = plan.input_size
    channels = int(net.input_shape[-1])
    inp = keras.Input(shape=(h, w, channels), name=INPUT_ID)
    z = AxisMaps(plan.input_matrix(0), plan.input_matrix(1), name="resample_to_model_grid")(inp)
    if normalization.mode == "percentile":
        center = (plan.halo, plan.model_grid[0], plan.halo, plan.model_grid[1])
        z = PercentileRenormalize(center, normalization.low_percentile, normalization.high_percentile, EPS,
                                  name="percentile_normalize_resampled")(z)
    y = net(z)
    out = AxisMaps(plan.output_matrix(0), plan.output_matrix(1), name=OUTPUT_ID)(y)
    return keras.Model(inp, out, name="sr_redsim_matched")


class _KerasHandle:
    """What :func:`srredsim.model_optics.predict_with_optics` needs of a model: ``srredsim predict``'s
    ``ModelHandle.predict`` on a Keras network (normalise, border, tiles by the same policy, back)."""

    def __init__(self, net, config: RunConfig):
        from srredsim.export.meta import halo, size_multiple

        self.net, self.config = net, config
        self.halo, self.multiple = halo(config.model), size_multiple(config.model)

    def predict(self, raw, tile=None, halo=None, batch_size=1, progress=None):
        from srredsim.predict import predict_stack

        return predict_stack(lambda b: self.net.predict_on_batch(b), raw, self.config.normalization, tile=tile,
                             halo=self.halo if halo is None else halo, multiple=self.multiple, batch_size=batch_size)


def predict_reference(net, config: RunConfig, plan: MatchedPlan, raw: np.ndarray) -> np.ndarray:
    """``srredsim predict``'s result for ``raw`` (taken with ``plan.target``) with this network: the
    resampling path of :func:`srredsim.model_optics.predict_with_optics`, ``(2H, 2W)`` float32."""
    from srredsim.model_optics import ModelSampling, predict_with_optics

    res = predict_with_optics(_KerasHandle(net, config), raw, ModelSampling.from_config(config), plan.target)
    return res.image


def matched_predict(model, raw: np.ndarray, normalization) -> np.ndarray:
    """A matched model (Keras) on a raw ``(C, H, W)`` stack, with the package's pre/post-processing."""
    from srredsim.normalization import denormalize_output, normalize_raw
    from srredsim.predict import stack_to_hwc

    x = stack_to_hwc(normalize_raw(raw, normalization))[None]
    y = np.asarray(model.predict_on_batch(x), np.float32)[0, ..., 0]
    return denormalize_output(y, normalization)


# ---- writers (fixed input shape) -----------------------------------------------------------------

def _spec(model):
    import tensorflow as tf

    return tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name=INPUT_ID)


def convert_matched_onnx(model, metadata: dict[str, str]):
    """tf2onnx at opset 17, IR <= 8 (ONNX Runtime 1.13.1), with the fixed input shape; checked."""
    from srredsim.export.onnx_export import finish_proto, keras_to_proto

    proto = keras_to_proto(model, _spec(model), ONNX_OPSET, INPUT_ID, OUTPUT_ID, what="the matched graph")
    for value in (proto.graph.input[0], proto.graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_value"):
            dim.dim_param = "batch"
    return finish_proto(proto, metadata, producer="srredsim (tf2onnx, microscope-matched)")


def export_matched_savedmodel(model, out_dir: Path) -> Path:
    """``keras.export.ExportArchive`` as :func:`srredsim.export.savedmodel.export_savedmodel`, with the
    fixed input shape: tag serve, endpoints serve and serving_default returning ``{"sr": ...}``."""
    import keras

    if out_dir.exists():
        raise SrredsimError(f"{out_dir} exists")
    archive = keras.export.ExportArchive()
    archive.track(model)

    def _endpoint(raw):
        return {OUTPUT_ID: model(raw, training=False)}

    for name in (SERVE_ENDPOINT, SIGNATURE):
        archive.add_endpoint(name, _endpoint, input_signature=[_spec(model)])
    archive.write_out(str(out_dir), verbose=False)
    return out_dir


# ---- the package ---------------------------------------------------------------------------------

def package_metadata(config: RunConfig, plan: MatchedPlan, user: dict[str, Any] | None):
    """The package's name and description say what it is matched to (a name the user gives is kept)."""
    from srredsim.export.bioimageio_package import PackageMetadata
    from srredsim.model_optics import describe_optics

    user = dict(user or {})
    t, (h, w) = plan.target, plan.input_size

    def num(v: float) -> str:  # names allow letters, digits, spaces and _+-() only
        return f"{v:g}".replace(".", "p")

    if not user.get("name"):
        user["name"] = (f"{config.metadata.name} matched NA{num(t.na)} {num(t.wavelength_nm)}nm "
                        f"{num(t.pixel_size_um * 1000)}nm-px {w}x{h}")[:128]
    base = user.get("description") or config.metadata.description
    head = (f"Microscope-matched package: expects raw stacks of exactly {w}x{h} pixels taken with "
            f"{describe_optics(t)}; the graph resamples them to the model's sampling and the result back "
            f"(as srredsim predict --na --wavelength --pixel-size does). ")
    user["description"] = (head + base)[:1024]
    user["tags"] = list(user.get("tags") or []) + ["microscope-matched"]
    return PackageMetadata.from_config(config, **user)


def documentation_section(config: RunConfig, plan: MatchedPlan, file_name: str) -> str:
    from srredsim.model_optics import describe_optics

    t, (h, w) = plan.target, plan.input_size
    return f"""# Microscope-matched package

**This package expects raw stacks of exactly {w} x {h} pixels (width x height) taken with NA {t.na:g},
emission {t.wavelength_nm:g} nm and raw pixels of {t.pixel_size_um * 1000:g} nm**
(OTF cutoff {plan.target_cutoff:.3f} cycles per pixel; {t.angles} angles x {t.phases} phases as below).
The network was trained for {describe_optics(plan.model_optics)} (trained span
{plan.model_range[0]:.3f}-{plan.model_range[1]:.3f} cycles per pixel). The graph resamples each stack in
Fourier space (DCT-II, band-limited, same field of view) onto the model's sampling
({plan.model_grid[1]} x {plan.model_grid[0]} pixels, {plan.model_cutoff:.3f} cycles per pixel), normalises it
there, extends its border by {plan.halo} pixels (mirrored), runs the network, crops the border and resamples
the result back onto {2 * w} x {2 * h} pixels of {t.pixel_size_um * 500:g} nm: what
`srredsim predict MODEL raw.tif --na {t.na:g} --wavelength {t.wavelength_nm:g} --pixel-size {t.pixel_size_um:g}`
gives.

* The input size is fixed (the resampling matrices are sized for it): crop or pad other stacks to
  {w} x {h} first, or export another package (`srredsim export MODEL --na ... --input-size HxW`).
* It is run whole: no tiling, no halo (the border extension is inside the graph).
* Stacks from another microscope need another package; the general package of this model takes any
  size at its own sampling.
* The sections below describe the network and the general package: where they speak of any size,
  tiling or a halo, this package instead takes exactly {w} x {h} pixels and is run whole.

"""


def _matched_rdf(content: dict[str, Any], plan: MatchedPlan, meta_json: dict[str, Any]) -> dict[str, Any]:
    """The RDF's srredsim and DeepImageJ metadata for a matched package (the rest as built)."""
    out = dict(content)
    cfg = dict(out.get("config") or {})
    cfg["srredsim"] = meta_json
    dij = dict(cfg.get("deepimagej") or {})
    dij["allow_tiling"] = False
    px = plan.target.pixel_size_um
    for t in (dij.get("test_information") or {}).get("inputs") or []:
        t["pixel_size"] = {"x": f"{px:g} µm", "y": f"{px:g} µm", "z": "1.0 pixel"}
    cfg["deepimagej"] = dij
    out["config"] = cfg
    t, (h, w) = plan.target, plan.input_size
    for x in out.get("inputs") or []:  # at most 128 characters
        x["description"] = (f"raw SIM stack of exactly {w}x{h} px: NA {t.na:g}, {t.wavelength_nm:g} nm, "
                            f"{t.pixel_size_um * 1000:g} nm pixels; {t.frames} frames as channels")[:128]
    return out


def matched_metadata(config: RunConfig, plan: MatchedPlan) -> dict[str, Any]:
    """``config.srredsim`` of a matched package: the *package's* sampling is the user's microscope (so
    ``srredsim predict`` does not resample its stacks again); the model's own is under ``matched``."""
    from srredsim.export.meta import artifact_metadata

    meta = artifact_metadata(config)
    meta["optics"] = plan.target.model_dump()
    rng = config.training_range.model_dump() if config.training_range else {}
    rng["cutoff_cycles_per_px"] = [plan.target_cutoff, plan.target_cutoff]
    meta["training_range"] = rng
    meta["pixel_size_um"] = plan.target.pixel_size_um
    meta["halo"] = 0  # run whole: the border is inside the graph
    meta["size_multiple"] = 1
    meta["input_size"] = list(plan.input_size)
    meta[MATCHED_KEY] = plan.metadata()
    return meta


def matched_test_stack(plan: MatchedPlan, test_input: str | os.PathLike | None, seed: int = 0) -> np.ndarray:
    """The package's test input: ``--test-input`` cropped to the input size at its centre, else a
    synthetic stack of the user's microscope."""
    from srredsim.export.testdata import synthetic_raw_stack

    h, w = plan.input_size
    if test_input is None:
        raw = synthetic_raw_stack(plan.target, max(h, w), seed=seed)
    else:
        from srredsim.tiff import read_raw_stack

        raw, _ = read_raw_stack(test_input, frames=plan.target.frames)
        if raw.shape[1] < h or raw.shape[2] < w:
            raise SrredsimError(f"{test_input}: test input of {raw.shape[2]}x{raw.shape[1]} pixels is smaller than the "
                                f"matched package's input size {w}x{h}")
    y0, x0 = (raw.shape[1] - h) // 2, (raw.shape[2] - w) // 2
    return np.ascontiguousarray(raw[:, y0:y0 + h, x0:x0 + w])


def export_matched(run_path: str | os.PathLike, fmt: str, out: str | os.PathLike | None, *, optics: dict[str, Any],
                   input_size=None, overwrite: bool = False, which: str = "best",
                   metadata: dict[str, Any] | None = None, test_input: str | os.PathLike | None = None,
                   seed: int = 0, verify: bool = True, log: Callable[[str], None] | None = None):
    """Export a matched package; returns an :class:`~srredsim.export.api.ExportResult`, or a one-line
    note (str) when the optics are the model's own sampling and the normal package is what to build."""
    from srredsim.errors import atomic_path
    from srredsim.export.api import ExportResult, _usual_modes, check_model_io, default_output, export_workdir
    from srredsim.export.bioimageio_package import check_metadata
    from srredsim.models import inference_twin
    from srredsim.runfolder import load_run

    log = log or (lambda msg: None)
    if fmt != "bioimageio":
        raise SrredsimError(f"--na/--wavelength/--pixel-size make a microscope-matched bioimage.io package (the "
                            f"resampling inside the graph, for DeepImageJ); --format {fmt} is for srredsim predict, "
                            "which resamples by itself: export without the optics and pass them to srredsim predict")
    run = load_run(run_path)
    run.weights_path(which)
    cfg = run.config
    plan = plan_matched(cfg, optics, input_size)
    if plan is None:
        return same_sampling_note(cfg, optics)
    meta = package_metadata(cfg, plan, metadata)
    check_metadata(meta)
    out = Path(out) if out is not None else default_output("bioimageio", meta.name)
    if out.exists() and not overwrite:
        raise SrredsimError(f"{out} exists; pass --overwrite to replace it")
    if out.suffix.lower() != ".zip":
        raise SrredsimError(f"{out}: a bioimage.io package is a .zip file (e.g. {out.name}.bioimageio.zip)")
    raw_test = matched_test_stack(plan, test_input, seed)
    log(f"matched package: {plan.describe()}")

    result = ExportResult()
    t0 = time.perf_counter()
    model = run.load_model(which)
    check_model_io(model, cfg)
    net = inference_twin(model, cfg.model)
    matched = build_matched_model(net, plan, cfg.normalization)
    result.timings["load"] = time.perf_counter() - t0

    with export_workdir(out) as work:
        with atomic_path(out) as tmp:
            _package(matched, net, cfg, plan, tmp, meta, raw_test, work, verify, result, log, file_name=out.name)
        result.outputs["bioimageio"] = out
        _usual_modes(out)
    result.timings["total"] = time.perf_counter() - t0
    return result


def _package(matched, net, cfg: RunConfig, plan: MatchedPlan, zip_path: Path, meta, raw_test: np.ndarray,
             work: Path, verify: bool, result, log, *, file_name: str) -> None:
    from srredsim.export.api import PARITY_TOL, _parity
    from srredsim.export.bioimageio_package import assemble_package, slug, write_package_files
    from srredsim.export.meta import META_KEY
    from srredsim.export.onnx_export import onnx_predict_fn
    from srredsim.export.safezip import safe_extract
    from srredsim.export.savedmodel import savedmodel_predict_fn
    from srredsim.normalization import normalize_raw
    from srredsim.predict import stack_to_hwc

    t = time.perf_counter()
    meta_json = matched_metadata(cfg, plan)
    log("converting the matched graph to ONNX (opset 17) and a SavedModel")
    proto = convert_matched_onnx(matched, {META_KEY: json.dumps(meta_json, indent=2)})
    sm_dir = export_matched_savedmodel(matched, work / "savedmodel")
    pkg = work / "package"
    pkg.mkdir()
    log("building the bioimage.io package")
    files, info = write_package_files(matched, cfg, pkg, meta, raw_test, weight_formats=WEIGHT_FORMATS,
                                      file_name=file_name, onnx_proto=proto, savedmodel_dir=sm_dir,
                                      inference_model=matched)
    if meta.documentation is None:
        doc = Path(files["documentation"])
        doc.write_text(documentation_section(cfg, plan, file_name) + doc.read_text(encoding="utf-8"), encoding="utf-8")
    test_output = np.load(files["test_output"])
    model_id = slug(info["folder_name"])  # the file-name stem, as for every package, saying "matched"
    model_id = model_id if "matched" in model_id else f"{model_id}-matched"
    assemble_package(cfg, meta, files, info, zip_path, model_id=model_id, fixed_size=plan.input_size,
                     rdf_edit=lambda c: _matched_rdf(c, plan, meta_json))
    if verify:
        x = stack_to_hwc(normalize_raw(raw_test, cfg.normalization))[None]
        ref = np.asarray(matched.predict_on_batch(x), np.float32)
        safe_extract(files["tensorflow_saved_model_bundle"], work / "_verify_savedmodel")
        result.parity.update(_parity(ref, {"onnx": onnx_predict_fn(files["onnx"]),
                                           "savedmodel": savedmodel_predict_fn(work / "_verify_savedmodel")},
                                     x, PARITY_TOL))
        # the point of the package: srredsim predict's result with these optics, on the test input
        want = predict_reference(net, cfg, plan, raw_test)
        got = test_output[0, ..., 0]
        rel = float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-12))
        result.parity["srredsim predict (relative to its peak)"] = rel
        if not rel <= PREDICT_TOL:
            raise SrredsimError(f"the matched graph differs from srredsim predict with these optics by {rel:.1e} of "
                                f"the output's peak (> {PREDICT_TOL:g}) on the test input")
    result.timings["bioimageio"] = time.perf_counter() - t


# ---- reading a matched package (srredsim validate, the DeepImageJ check) ---------------------------

def matched_info(rdf: dict[str, Any]) -> dict[str, Any] | None:
    """``config.srredsim.matched`` of a package's RDF, or None for a normal package."""
    cfg = rdf.get("config") if isinstance(rdf.get("config"), dict) else {}
    meta = (cfg or {}).get("srredsim")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return None
    info = meta.get(MATCHED_KEY) if isinstance(meta, dict) else None
    return info if isinstance(info, dict) else None


def is_matched(rdf: dict[str, Any]) -> bool:
    return matched_info(rdf) is not None


def validate_rows(rdf: dict[str, Any], folder: Path) -> list:
    """``matched``: a matched package's input axes are fixed at the recorded size, its test input has that
    size, nothing asks for a halo, and DeepImageJ is told not to tile. No rows for a normal package."""
    from srredsim.export.checks import CheckResult
    from srredsim.model_optics import describe_optics

    info = matched_info(rdf)
    if info is None:
        return []
    problems = []
    try:
        h, w = (int(v) for v in info["input_size"])
        target = OpticsConfig.model_validate(info["optics"])
    except Exception as exc:
        return [CheckResult("matched", "fail", f"config.srredsim.matched is unreadable ({type(exc).__name__}: {exc})")]
    ipt = (rdf.get("inputs") or [{}])[0]
    sizes = {a.get("id"): a.get("size") for a in ipt.get("axes") or []
             if isinstance(a, dict) and a.get("type") == "space"}
    if sizes.get("y") != h or sizes.get("x") != w:
        problems.append(f"input axes y/x are {sizes.get('y')!r}/{sizes.get('x')!r}, not fixed at {h}/{w}")
    test = ipt.get("test_tensor")
    src = test.get("source") if isinstance(test, dict) else test
    try:
        shape = np.load(folder / str(src), mmap_mode="r", allow_pickle=False).shape
    except Exception as exc:
        problems.append(f"test input {src!r} unreadable ({type(exc).__name__})")
    else:
        if tuple(shape[1:3]) != (h, w):
            problems.append(f"test input is {shape}, not {h}x{w}")
    out_axes = [a for t in (rdf.get("outputs") or [])[:1] for a in t.get("axes") or [] if isinstance(a, dict)]
    halos = [a.get("halo") for a in out_axes if a.get("halo")]
    if halos:
        problems.append(f"output axes ask for a halo {halos} (a matched package is run whole)")
    out_sizes = {a.get("id"): a.get("size") for a in out_axes if a.get("type") == "space"}
    if not all(isinstance(v, int) for v in out_sizes.values()):
        problems.append(f"output axes y/x are {out_sizes}, not fixed sizes (JDLL without tiling reads a size "
                        "reference as 1 pixel)")
    if ((rdf.get("config") or {}).get("deepimagej") or {}).get("allow_tiling"):
        problems.append("config.deepimagej.allow_tiling is true")
    if problems:
        return [CheckResult("matched", "fail", "; ".join(problems))]
    return [CheckResult("matched", "pass", f"microscope-matched: fixed {w}x{h} input from {describe_optics(target)}, "
                                           f"resampled to the model's {info['model_grid'][1]}x{info['model_grid'][0]} "
                                           "pixels inside the graph; run whole (no halo, no tiling)")]


def reference_prediction(package: str | os.PathLike, raw: np.ndarray):
    """``srredsim predict`` on a matched package, whole (its border is inside the graph): (handle, image).
    ONNX Runtime fp32, the engine srredsim's parity checks hold the others to."""
    from srredsim.runtime import open_model

    model = open_model(package, engine="onnx", precision="fp32")
    return model, model.predict(raw, tile=0, halo=0)
