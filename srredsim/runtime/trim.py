"""Skip computing the border a prediction throws away: an OpenVINO graph trimmed layer by layer.

``srredsim predict`` extends every window by the model's halo (mirroring, as DeepImageJ does) and
discards the output over that band. The network still computes every layer on the whole window,
but a 3x3 convolution's output a pixel from the border only feeds the layers after it through
pixels that are discarded anyway once few enough layers remain. :func:`trim_discarded_border`
rewrites a fixed-size OpenVINO model of SR-REDSIM so that those trailing convolutions run without
padding ("valid": each trims one pixel per side, and its output equals the padded convolution's
inside the trimmed frame exactly, as no padded zero enters it), and the encoder's skip tensors are
cropped to match before they are added. The up-sampling tail (the stride-2 transposed convolution
and the output layer) runs unchanged on the smaller map and keeps :data:`TAIL_MARGIN` pixels of
exact context.

For the full network with bf16's 24-pixel halo, 22 of its 43 convolutions run valid, the network
call on a 512² stack takes 5-6 % less time, and the kept output is bit for bit the untrimmed
network's, in fp32 and in bf16 (tests/test_trim.py checks both on a small SR-REDSIM; the
full-network numbers in docs/runtime.md). A graph that is not SR-REDSIM's body (another
operation on the image path, no single transposed convolution, a padded convolution that would
have to pad inside the image) is left as it is.
"""

from __future__ import annotations

import numpy as np

#: raw pixels of exact context the up-sampling tail needs around what is kept: the transposed
#: convolution (3x3, stride 2) reaches one raw pixel, the output layer (3x3 on the 2x grid) half a one
TAIL_MARGIN = 2
#: operations that act pixel by pixel on the image tensors between the convolutions
ELEMENTWISE = ("Relu", "Add", "Multiply", "Subtract", "FakeQuantize", "Convert")


def _key(value) -> tuple[str, int]:
    """A tensor's identity: its node's unique name and the output's index."""
    return value.get_node().get_name(), value.get_index()


def _is_image(value) -> bool:
    """A static NCHW tensor with an image extent (not a per-channel constant ``(1, C, 1, 1)``)."""
    shape = value.get_partial_shape()
    if not shape.is_static or len(shape) != 4:
        return False
    h, w = shape[2].get_length(), shape[3].get_length()
    return h > 1 or w > 1


def _start(model):
    """The first NCHW image tensor: the input, or its channels-first Transpose."""
    if len(model.inputs) != 1:
        return None
    param = model.inputs[0]
    users = list(param.get_target_inputs())
    if len(users) == 1 and users[0].get_node().get_type_name() == "Transpose":
        node = users[0].get_node()
        perm = node.input_value(1).get_node()
        if perm.get_type_name() == "Constant" and list(perm.get_data()) == [0, 3, 1, 2]:
            return node.output(0)
    return param if _is_image(param) else None


def trim_discarded_border(model, discard: int, tail_margin: int = TAIL_MARGIN) -> int:
    """Rewrite ``model`` (an ``openvino.Model`` with static shapes) in place so that it skips what
    lies within ``discard`` input pixels of each border of its output; returns by how many input
    pixels per side its output shrank (0: left unchanged). What is kept -- the output more than
    ``discard`` input pixels from every border -- is unchanged."""
    if discard <= tail_margin:
        return 0
    start = _start(model)
    if start is None:
        return 0
    order = model.get_ordered_ops()
    tails = [n for n in order if n.get_type_name() == "ConvolutionBackpropData"]
    if len(tails) != 1 or not _is_image(tails[0].input_value(0)):
        return 0
    tail_in = tails[0].input_value(0)
    # backward: the margin (input pixels) within which each image tensor must be exact
    need = {_key(tail_in): tail_margin}
    for node in reversed(order):
        if node is tails[0] or node.get_output_size() != 1 or _key(node.output(0)) not in need:
            continue
        if _key(node.output(0)) == _key(start):
            break
        margin, kind = need[_key(node.output(0))], node.get_type_name()
        if kind == "Convolution":
            reach = _reach(node)
            if reach is None:
                return 0
            sources = [(node.input_value(0), margin + reach)]
        elif kind in ELEMENTWISE:
            sources = [(v, margin) for v in node.input_values() if _is_image(v)]
        else:
            return 0  # not a layer this rewrite understands
        for value, m in sources:
            need[_key(value)] = max(need.get(_key(value), -1), m)
    if _key(start) not in need:
        return 0
    # forward: how far each tensor reaches beyond the kept core, and what to change (nothing yet)
    extent = {_key(start): discard}
    valid, crops = [], []
    started = False
    for node in order:
        if node.get_output_size() != 1:
            continue
        out = node.output(0)
        if _key(out) == _key(start):
            started = True
            continue
        if not started or _key(out) not in need or node is tails[0]:
            continue
        kind = node.get_type_name()
        if kind == "Convolution":
            have, reach = extent[_key(node.input_value(0))], _reach(node)
            if have - reach >= need[_key(out)]:
                valid.append(node)
                extent[_key(out)] = have - reach
            elif have == discard:  # padded as before, on the whole window
                extent[_key(out)] = have
            else:
                return 0  # its padding would fall inside the image
        else:
            images = [i for i, v in enumerate(node.input_values()) if _is_image(v)]
            if any(_key(node.input_value(i)) not in extent for i in images):
                return 0
            have = min(extent[_key(node.input_value(i))] for i in images)
            crops += [(node, i, extent[_key(node.input_value(i))] - have) for i in images
                      if extent[_key(node.input_value(i))] > have]
            extent[_key(out)] = have
    trimmed = discard - extent.get(_key(tail_in), discard)
    if trimmed <= 0:
        return 0
    _apply(valid, crops)
    model.validate_nodes_and_infer_types()
    return trimmed


def _reach(conv) -> int | None:
    """Pixels per side a stride-1, odd, square, undilated 2-D convolution reaches (None: another kind)."""
    attrs = conv.get_attributes()
    kernel = conv.input_value(1).get_partial_shape()
    if len(kernel) != 4 or not kernel.is_static or list(attrs.get("strides", [])) != [1, 1] \
            or list(attrs.get("dilations", [])) != [1, 1]:
        return None
    kh, kw = kernel[2].get_length(), kernel[3].get_length()
    if kh != kw or kh % 2 == 0:
        return None
    return kh // 2


def _apply(valid, crops) -> None:
    import openvino.opset13 as ops  # openvino itself is imported already, without its telemetry
    for conv in valid:
        conv.set_attribute("auto_pad", "explicit")
        conv.set_attribute("pads_begin", [0, 0])
        conv.set_attribute("pads_end", [0, 0])
    for node, index, d in crops:
        value = node.input_value(index)
        cut = ops.slice(value, np.array([d, d], np.int64), np.array([-d, -d], np.int64),
                        np.array([1, 1], np.int64), np.array([2, 3], np.int64))
        node.input(index).replace_source_output(cut.output(0))
