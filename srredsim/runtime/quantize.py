"""int8 weights and activations for the OpenVINO engine: post-training quantisation, made once.

CPUs with 8-bit dot-product instructions (AVX512-VNNI, AVX-VNNI, AMX-INT8) multiply int8 twice as
fast as bf16 and four times as fast as float32 (measured on the full SR-REDSIM, 15x512^2, 2-core
AMD EPYC with AVX512-VNNI and AVX512-BF16: OpenVINO fp32 3.97 s, bf16 1.93 s, int8 1.15 s:
benchmarks/results/inference.md). This module turns a model's ONNX file into an OpenVINO model
whose convolutions compute in int8, with NNCF's post-training quantisation (Intel's Neural
Network Compression Framework, ``nncf.quantize``; its documentation describes the method):
per-channel weight scales, per-tensor activation ranges collected on calibration inputs.

Choices, each measured on the full network (PSNR against the fp32 output on held-out stacks at
20 and 200 photons; change of the PSNR against the truth):

* Activation ranges from the global minimum and maximum over the calibration inputs
  (``RangeEstimatorParametersSet.MINMAX``). NNCF's default (the mean of per-input extremes)
  clipped bright spots: single pixels 15 % of the image's range off (63 dB); min/max: 2 %.
* The convolutions nearest the data stay in floating point (bf16 where the CPU has it): the
  first :data:`KEEP_FIRST` (they read the normalised raw frames, whose range the noise sets)
  and the last :data:`KEEP_LAST` (they write the image). All others in int8: 67.3 dB, PSNR vs
  truth -0.005 dB, 1.13 s; quantising every convolution: 63.5 dB, -0.15 dB, 1.11 s.
* Calibration inputs: :data:`CALIBRATION_PHOTONS` light levels of the model's own synthetic input
  (the kind of stack its test tensor is, other seeds), so that dim and bright data set the ranges.

How exact it is, and why ``--precision auto`` never picks it: 8-bit activations with one scale
per tensor leave an error of ~1/255 of each layer's range, and it adds up over 40 layers. On
held-out stacks the full network's int8 output is 64-67 dB PSNR against fp32 and its score
against the truth moves by -0.005 to -0.013 dB; on the model's own synthetic test tensor it is
58.7 dB (``sim-3x5``: 56.3 dB), below the 65 dB ``auto`` asks of a reduced precision
(:mod:`srredsim.runtime.choice`; bf16: 68.8 dB). So int8 runs only when asked for
(``--precision int8``), for users who accept that error for ~1.8x the speed of bf16. The result is
kept in the per-user cache, named by the ONNX file's content, this recipe and the NNCF version;
the bioimage.io packages keep fp32 weights. NNCF is an extra: ``pip install "srredsim[int8]"``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from srredsim.cache import cache_dir
from srredsim.errors import SrredsimError, atomic_dir

#: bump when the recipe below changes what it produces
RECIPE_VERSION = "int8-v1-minmax-keep2+4"
KEEP_FIRST = 2
KEEP_LAST = 4
#: a network with fewer convolutions than this keeps only its first and last one in floating point
SMALL_NETWORK = 12
CALIBRATION_PHOTONS = (2.0, 6.0, 20.0, 60.0, 200.0, 1000.0)
CALIBRATION_SIZE = 256
INSTALL_HINT = 'pip install "srredsim[int8]"'
CONV_TYPES = ("Convolution", "ConvolutionBackpropData", "GroupConvolution")
#: CPU flags of 8-bit dot-product instructions (without them int8 is emulated, and no faster)
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_status() -> str:
    """One line for ``srredsim info``: whether ``--precision int8`` can run here, and how fast."""
    import importlib.util

    from srredsim.hardware import cpu_flags
    from srredsim.runtime.choice import package_version

    if importlib.util.find_spec("nncf") is None:
        return f'--precision int8 needs NNCF: {INSTALL_HINT}'
    flags = [f for f in INT8_FLAGS if f in cpu_flags()]
    speed = (f"8-bit dot products: {', '.join(flags)}" if flags
             else "no 8-bit dot-product instructions on this CPU: emulated, likely no faster than fp32")
    return f"--precision int8 runs OpenVINO int8 (NNCF {package_version('nncf')}; {speed}); auto never picks it"


def int8_key(onnx_file: Path) -> str:
    """Content hash of the int8 copy: the ONNX file's bytes (weights and srredsim metadata, hence
    the normalisation), everything in this recipe, and the NNCF and OpenVINO versions."""
    import hashlib

    from srredsim.runtime.choice import package_version
    from srredsim.runtime.conversions import file_hash

    recipe = (RECIPE_VERSION, KEEP_FIRST, KEEP_LAST, SMALL_NETWORK, CALIBRATION_PHOTONS, CALIBRATION_SIZE,
              package_version("nncf"), package_version("openvino"))
    return file_hash(onnx_file, hashlib.sha256(repr(recipe).encode()))


def int8_path(onnx_file: Path) -> Path:
    """Where the int8 copy of ``onnx_file`` is kept (``model.xml`` in a folder of the engine cache)."""
    return cache_dir("engines") / f"{int8_key(Path(onnx_file))}.int8" / "model.xml"


def cached_int8(onnx_file: Path, calibration: Callable[[], Iterable[np.ndarray]],
                log: Callable[[str], None] | None = None) -> Path:
    """The OpenVINO int8 model (``.xml`` beside its ``.bin``) of ``onnx_file``, quantised on the
    batches ``calibration()`` yields (network units, ``(1, H, W, C)``) on first use."""
    xml = int8_path(onnx_file)
    folder = xml.parent
    if xml.is_file() and (folder / "model.bin").is_file():
        return xml
    _import_nncf()  # a missing NNCF fails before the calibration inputs are made
    if log:
        log("quantising the network to int8 (once; kept in the cache) ...")
    model = quantize(Path(onnx_file), list(calibration()))
    from srredsim.runtime.openvino_engine import _import_openvino

    ov = _import_openvino()
    with atomic_dir(folder, overwrite=True) as tmp:
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
    return xml


def _import_nncf():
    """``import nncf`` without its usage telemetry (as OpenVINO is imported), or one line saying
    which extra to install."""
    from srredsim.runtime.openvino_engine import _import_openvino, import_without_telemetry

    try:
        _import_openvino()  # first, so that NNCF's own import of it does not bring the unused ovc
        return import_without_telemetry("nncf")
    except ImportError:
        raise SrredsimError(f"int8 needs NNCF: {INSTALL_HINT} (or use --precision bf16/fp32)") from None


def kept_in_float(conv_names: list[str]) -> list[str]:
    """The convolutions that keep floating-point arithmetic (see the module docstring)."""
    n = len(conv_names)
    first, last = (KEEP_FIRST, KEEP_LAST) if n >= SMALL_NETWORK else (1, 1)
    return conv_names[:first] + conv_names[max(first, n - last):]


def quantize(onnx_file: Path, batches: list[np.ndarray]):
    """The quantised ``openvino.Model`` of ``onnx_file`` (see the module docstring)."""
    if not batches:
        raise SrredsimError("int8 quantisation needs at least one calibration input")
    from srredsim.runtime.openvino_engine import core

    nncf = _import_nncf()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    model = core().read_model(str(onnx_file))
    convs = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() in CONV_TYPES]
    if len(convs) < 3:
        raise SrredsimError(f"{onnx_file}: {len(convs)} convolutions; int8 needs a network with at least 3")
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)  # NNCF reports every node it leaves alone
    try:
        # NNCF draws its progress bars on stdout, which carries srredsim's result lines
        with contextlib.redirect_stdout(sys.stderr):
            return nncf.quantize(
                model, nncf.Dataset([np.asarray(b, np.float32) for b in batches]),
                preset=nncf.QuantizationPreset.MIXED, subset_size=len(batches),
                ignored_scope=nncf.IgnoredScope(names=kept_in_float(convs)),
                advanced_parameters=AdvancedQuantizationParameters(
                    activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX))
    except SrredsimError:
        raise
    except Exception as exc:
        raise SrredsimError(f"{onnx_file}: int8 quantisation failed ({type(exc).__name__}: {exc})") from None
    finally:
        logger.setLevel(level)
