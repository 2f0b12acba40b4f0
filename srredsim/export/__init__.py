"""Export of a trained run folder: TensorFlow SavedModel, ONNX and bioimage.io packages.

The writers (:mod:`.savedmodel`, :mod:`.onnx_export`, :mod:`.bioimageio_package`) and the checker
(:mod:`.validate`) live in their own modules (running any exported artifact is
:mod:`srredsim.runtime`'s job) and import TensorFlow, ONNX or bioimageio only when called, so importing this package
is cheap. The entry point for everything is :func:`srredsim.export.api.export_run`.

Fixed names shared by every artifact (docs/architecture.md, sections 2, 5 and 6):

* input tensor id ``raw``: ``(batch, y, x, channel)`` with one channel per raw frame;
* output tensor id ``sr``: ``(batch, 2y, 2x, 1)``.

A RED-fairSIM network (``model.architecture: red_net``) reads one classical SIM reconstruction
instead of the raw stack: its input tensor id is ``image`` (``(batch, y, x, 1)``, on the 2x grid)
and its output ``sr`` has the input's size (:func:`input_id`).
"""

from __future__ import annotations

INPUT_ID = "raw"
IMAGE_INPUT_ID = "image"  # red_net: a reconstructed SR image (the Keras input's name too)
OUTPUT_ID = "sr"
FORMATS = ("bioimageio", "onnx", "savedmodel")
ONNX_OPSET = 17
ONNX_MAX_IR = 8  # ONNX Runtime 1.13.1 (DeepImageJ / JDLL) reads IR <= 8
SIGNATURE = "serving_default"  # what JDLL / TF Java calls
SERVE_ENDPOINT = "serve"  # what bioimageio.core's TFSMLayer calls


def input_id(model) -> str:
    """The input tensor id of a network (a :class:`srredsim.config.ModelConfig`): ``raw`` for the
    networks that read the raw stack, ``image`` for RED-Net, which reads a reconstructed image."""
    return INPUT_ID if model.takes_raw else IMAGE_INPUT_ID
