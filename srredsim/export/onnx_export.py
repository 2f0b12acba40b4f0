"""ONNX writer (tf2onnx) and reader.

DeepImageJ runs ONNX with ONNX Runtime Java 1.13.1, which accepts opset <= 17 and IR <= 8
(docs/architecture.md, section 6), so we convert at opset 17 and cap the IR version at 8. Batch, height and width
stay dynamic; the input and output are named by the RDF tensor ids (``raw`` or ``image``, ``sr``). A
channels-first variant ``(N, C, H, W)`` (the seed notebook's convention) is made with tf2onnx's
``inputs_as_nchw`` / ``outputs_as_nchw`` from the channels-last Keras model -- converting a
channels-first Keras model with dynamic H/W gives an invalid graph (docs/architecture.md, section 5).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.export import INPUT_ID, ONNX_MAX_IR, ONNX_OPSET, OUTPUT_ID


def convert_to_onnx(model, *, opset: int = ONNX_OPSET, nchw: bool = False, input_id: str = INPUT_ID,
                    output_id: str = OUTPUT_ID, max_ir: int = ONNX_MAX_IR,
                    metadata: dict[str, str] | None = None, scale: int = 2):
    """Convert a channels-last Keras model to an ``onnx.ModelProto`` (checked by the ONNX checker).

    ``scale`` (output pixels per input pixel) only names the output's dynamic dimensions."""
    import tensorflow as tf

    channels = int(model.input_shape[-1])
    spec = tf.TensorSpec((None, None, None, channels), tf.float32, name=input_id)
    kwargs: dict[str, Any] = {}
    if nchw:
        kwargs = {"inputs_as_nchw": [input_id], "outputs_as_nchw": [output_id]}
    proto = keras_to_proto(model, spec, opset, input_id, output_id, **kwargs)
    # readable names for the dynamic dimensions
    in_dims = ("batch", "channel", "height", "width") if nchw else ("batch", "height", "width", "channel")
    oh, ow = ("height", "width") if scale == 1 else (f"height{scale}", f"width{scale}")
    out_dims = ("batch", "channel", oh, ow) if nchw else ("batch", oh, ow, "channel")
    for value, names in ((proto.graph.input[0], in_dims), (proto.graph.output[0], out_dims)):
        for dim, name in zip(value.type.tensor_type.shape.dim, names):
            if not dim.HasField("dim_value"):
                dim.dim_param = name
    return finish_proto(proto, metadata, max_ir=max_ir)


def tf2onnx_optimizers():
    """tf2onnx's graph optimizers without its ``reshape_optimizer``.

    That pass turns a Reshape of a computed shape -- tf2onnx writes the channels-last <->
    channels-first Transpose of a one-channel tensor as one, ``Reshape(x, Gather(Shape(x), perm))``
    -- into a constant shape shifted by a leading 1: an Unsqueeze to rank 5 before the input's
    Reshape, a Squeeze after the output's. It is the only source of rank-5 tensors in our graphs,
    and one CI run (2026-12-02) exported a tiny RED-Net whose ONNX passed the ONNX checker yet
    returned ``(1, 1, 256, 256, 1)`` in ONNX Runtime (Python 1.32 and Java 1.13 alike); not
    reproduced here in 60 conversions in and across processes, nor under other CPU models (qemu).
    Without the pass the graph keeps the 4-D Shape/Gather/Reshape: the same output (max difference
    0.0 on the full SR-REDSIM and on RED-Net), and OpenVINO folds it for a fixed size."""
    from collections import OrderedDict

    from tf2onnx import optimizer

    return OrderedDict((name, opt) for name, opt in optimizer._get_optimizers().items() if name != "reshape_optimizer")


def keras_to_proto(model, spec, opset: int, input_id: str, output_id: str, what: str = "", **kwargs):
    """tf2onnx on a Keras model with one input ``spec``; the graph's single input and output must
    carry the RDF tensor ids, and it must return the Keras model's output shape on ONNX Runtime
    (:func:`check_output_shape`). ``what`` names the graph in errors."""
    import tf2onnx

    label = f"ONNX conversion{' of ' + what if what else ''}"
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=[spec], opset=opset,
                                              optimizers=tf2onnx_optimizers(), **kwargs)
    except Exception as exc:
        raise SrredsimError(f"{label} failed ({type(exc).__name__}: {exc})") from None
    if [i.name for i in proto.graph.input] != [input_id] or [o.name for o in proto.graph.output] != [output_id]:
        raise SrredsimError(
            f"ONNX conversion gave inputs {[i.name for i in proto.graph.input]} and outputs "
            f"{[o.name for o in proto.graph.output]}; expected [{input_id!r}] and [{output_id!r}] "
            "(the Keras model's output layer must be named like the output tensor)")
    nchw = bool(kwargs.get("inputs_as_nchw"))
    check_output_shape(proto, model, tuple(spec.shape), nchw=nchw, what=label)
    return proto


#: the batch, height and width of the probe that :func:`check_output_shape` feeds a dynamic graph
#: (two images, unequal sides, both multiples of 32: any depth of the encoder divides them)
PROBE_DIMS = (2, 64, 96)


def check_output_shape(proto, model, spec_shape: tuple, *, nchw: bool = False, what: str = "ONNX conversion"):
    """Run the converted graph once on ONNX Runtime (zeros; dynamic dimensions of ``spec_shape``
    filled from :data:`PROBE_DIMS`) and raise unless it returns ``model.compute_output_shape`` of
    the same input (channels first for ``nchw``). The ONNX checker cannot see every wrong graph: a
    Reshape's computed shape is only known when it runs."""
    import onnxruntime as ort

    probe = tuple(int(d) if d is not None else PROBE_DIMS[i] for i, d in enumerate(spec_shape))
    expected = tuple(int(d) for d in model.compute_output_shape(probe))
    feed = np.zeros((probe[0], probe[3], probe[1], probe[2]) if nchw else probe, np.float32)
    if nchw:
        expected = (expected[0], expected[3], expected[1], expected[2])
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(proto.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
        got = tuple(sess.run(None, {sess.get_inputs()[0].name: feed})[0].shape)
    except Exception as exc:
        raise SrredsimError(f"{what}: ONNX Runtime cannot run the converted graph on a {feed.shape} input "
                            f"({type(exc).__name__}: {exc})") from None
    if got != expected:
        raise SrredsimError(f"{what}: the converted graph returns {got} for a {feed.shape} input, the Keras model "
                            f"{expected}; the ONNX file would be wrong, so none was written")


def finish_proto(proto, metadata: dict[str, str] | None, max_ir: int = ONNX_MAX_IR,
                 producer: str = "srredsim (tf2onnx)"):
    """Cap the IR version (ONNX Runtime 1.13.1 reads <= 8), attach srredsim's metadata, name the
    producer, and run the full ONNX checker."""
    import onnx

    proto.ir_version = min(proto.ir_version, max_ir)
    for key, val in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, val
    proto.producer_name = producer
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise SrredsimError(f"converted ONNX model ({producer}) fails the ONNX checker: {exc}") from None
    return proto


def save_onnx(proto, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.write_bytes(proto.SerializeToString())
    return path


def onnx_info(path: str | os.PathLike) -> dict[str, Any]:
    """Opset, IR version, input/output names and shapes (None = dynamic) of an ONNX file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise SrredsimError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise SrredsimError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None

    def _shape(v):
        return [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]

    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    return {
        "ir_version": int(proto.ir_version),
        "opset": int(opsets.get("ai.onnx", 0)),
        "opsets": opsets,
        "inputs": {i.name: _shape(i) for i in proto.graph.input},
        "outputs": {o.name: _shape(o) for o in proto.graph.output},
        "metadata": {p.key: p.value for p in proto.metadata_props},
    }


def check_onnx(path: str | os.PathLike) -> None:
    """Run the ONNX checker; raise a clear error if it fails."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise SrredsimError(f"{path}: fails the ONNX checker: {exc}") from None


def onnx_providers() -> list[str]:
    """CUDA first when ONNX Runtime has it (onnxruntime-gpu), else the CPU provider."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available


def onnx_predict_fn(path: str | os.PathLike, input_id: str | None = None, nchw: bool | None = None):
    """A ``predict_fn`` (NHWC float32 in, NHWC out) running an ONNX file with ONNX Runtime.

    A channels-first model (input ``(N, C, H, W)``, detected from the static channel dimension
    or given by ``nchw``) is fed transposed and its output transposed back.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise SrredsimError(f"{path}: no such ONNX file")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # ONNX Runtime's memory pattern pre-plans one block per input shape: on the full network at
    # 512^2 it raised the peak from 1.8 to 2.6 GiB for the same CPU time (and a tiled 2048^2
    # prediction past 3 GB); without it the arena still reuses buffers between calls.
    opts.enable_mem_pattern = False
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=onnx_providers())
    except Exception as exc:
        raise SrredsimError(f"{path}: ONNX Runtime cannot load it ({type(exc).__name__}: {exc})") from None
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise SrredsimError(f"{path}: expected one input, found {[i.name for i in inputs]}")
    name = inputs[0].name if input_id is None or input_id not in {i.name for i in inputs} else input_id
    shape = inputs[0].shape
    if nchw is None:
        nchw = len(shape) == 4 and isinstance(shape[1], int) and not isinstance(shape[3], int)

    def predict(batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, np.float32)
        if nchw:
            x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
        y = sess.run(None, {name: x})[0]
        if nchw:
            y = np.transpose(y, (0, 2, 3, 1))
        return y

    predict.session = sess
    predict.nchw = nchw
    predict.channels = shape[1] if nchw else shape[-1]
    return predict
