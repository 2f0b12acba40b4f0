"""OpenVINO engine on the ONNX weights, fp32, bf16 or int8 (PyPI ``openvino``).

OpenVINO reads the same ``.onnx`` file ONNX Runtime runs and compiles it for the CPU. Its
``INFERENCE_PRECISION_HINT`` chooses the arithmetic: ``f32``, or ``bf16`` where the CPU has
bfloat16 instructions (OpenVINO lists ``BF16`` in the CPU's ``OPTIMIZATION_CAPABILITIES`` on CPUs
with AMX or AVX512-BF16). Note that OpenVINO's *default* on such CPUs is already bf16, so fp32 is
always asked for explicitly here: an ``fp32`` engine really computes in float32.

OpenVINO's Python package sends a usage event to Google Analytics each time it is imported
(``openvino.tools.ovc`` via ``openvino_telemetry``) and keeps a client id and counters under
``~/intel``, unless its telemetry package is missing -- then it uses its own no-op stub. srredsim
imports it that way (:func:`_import_openvino`): predicting an image must not talk to the network.

``int8`` runs a quantised copy of the network (:mod:`srredsim.runtime.quantize`: an OpenVINO
``.xml`` whose convolutions compute in 8-bit integers); the layers it keeps in floating point run
bf16 where the CPU has it, else f32.

Shapes stay dynamic (any batch, height and width) unless the engine is opened for one input
``shape``: then it is compiled for that fixed size, which moves work OpenVINO otherwise does at the
first call of a new shape into the compile -- ``srredsim predict`` compiles in the background for
its first stack's shape while it reads and checks the stack (the whole command took 3.81 s instead
of 3.91 s for the full network on a 2-core EPYC when this came in; docs/runtime.md).
Another shape then gets the dynamic network, compiled at its first call. Every compile goes through
OpenVINO's model cache (:func:`compile_cache`): the full network's fixed-size compile for a 512²
stack loads from there in 0.10 s instead of 0.2 s, which keeps the background opening shorter than
the first look at the stack now that the look no longer imports scipy. One entry per model,
precision and image size accumulates, so the folder is kept under :data:`COMPILE_CACHE_LIMIT`
bytes (:func:`prune_compile_cache`: the least recently written entries go first). The fixed-size
network itself (reshaped, and trimmed where the caller discards a band) is saved once as OpenVINO
IR in ``openvino-fixed/`` (:func:`_save_prepared`, pruned alike) and compiled from that file
afterwards: OpenVINO then finds it in its cache without reading, reshaping and trimming the
network again, which took 0.07-0.1 s while the stack was being checked.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np

from srredsim.errors import SrredsimError
from srredsim.runtime.base import Engine

HINTS = {"fp32": "f32", "bf16": "bf16"}
INSTALL_HINT = "pip install openvino==2026.4.1"


def import_without_telemetry(name: str, also_hidden: tuple[str, ...] = ()):
    """``import name`` with OpenVINO's telemetry package (and the modules ``also_hidden``) hidden,
    so that the package (OpenVINO, or NNCF, which uses the same telemetry) falls back to its no-op
    stub: nothing sent, nothing written under ``~/intel``. If some other code imported them first,
    that import decided already. Hidden only during this import: a later ``import`` of a hidden
    module works as usual."""
    import importlib

    hidden = [m for m in ("openvino_telemetry", *also_hidden) if m not in sys.modules] \
        if name not in sys.modules else []
    for module in hidden:
        sys.modules[module] = None  # makes ``import module`` raise ImportError
    try:
        return importlib.import_module(name)
    finally:
        for module in hidden:
            if sys.modules.get(module, 0) is None:
                del sys.modules[module]


def _import_openvino():
    """``import openvino`` without its telemetry and without its model-conversion API
    (``openvino.tools.ovc``: ``convert_model``, which OpenVINO's ``__init__`` imports if it can).
    srredsim reads ONNX with ``Core.read_model`` and never converts; importing ovc costs 40-100 ms
    of every command (absl logging, the TensorFlow frontend). ``openvino.convert_model`` then stays
    unset in this process; ``import openvino.tools.ovc`` still works."""
    return import_without_telemetry("openvino", also_hidden=("openvino.tools.ovc",))


@functools.lru_cache(maxsize=1)
def core():
    """The process's one ``openvino.Core`` (it holds the device plugins)."""
    try:
        ov = _import_openvino()
    except ImportError:
        raise SrredsimError(f"the openvino engine needs the OpenVINO runtime: {INSTALL_HINT} "
                            "(or use --engine onnx)") from None
    return ov.Core()


def compile_cache() -> dict[str, str]:
    """OpenVINO's model cache in the per-user cache (``cache_dir("openvino")``): a network compiled
    once loads from there later (0.10 s instead of 0.32 s for the full SR-REDSIM on a 2-core EPYC).
    OpenVINO keys each entry by the network with its weights, the compile settings, the device and
    its own version. An unwritable cache only costs compiling each time."""
    try:
        from srredsim.cache import cache_dir

        return {"CACHE_DIR": str(cache_dir("openvino"))}
    except OSError:
        return {}


COMPILE_CACHE_LIMIT = 256 * 2**20  # bytes: ~40 compiled full networks (6.4 MB each)
#: the version of what :func:`_save_prepared` writes (raise it when the reshaping or trimming changes)
PREPARED_VERSION = 1


def _prepared_path(source: Path, shape: tuple[int, ...], discard: int) -> Path | None:
    """Where the fixed-size (and trimmed) network for ``source`` is kept: the per-user cache's
    ``openvino-fixed/<key>.xml``, the key naming the source's content (a package's weights are
    unpacked into a new folder each run; hashing the full network takes ~5 ms), the shape, the
    discarded band, this format and OpenVINO's version. None when the cache is unusable."""
    import hashlib

    import openvino

    from srredsim.runtime.conversions import file_hash

    digest = hashlib.sha256(f"{shape}|{discard}|{PREPARED_VERSION}|{openvino.get_version()}|".encode())
    try:
        from srredsim.cache import cache_dir

        for part in (source, source.with_suffix(".bin")) if source.suffix == ".xml" else (source,):
            key = file_hash(part, digest)  # the digest accumulates over the parts
        return cache_dir("openvino-fixed") / f"{key}.xml"
    except OSError:
        return None


def _read_prepared(xml: Path | None) -> dict | None:
    """The layout and trimming recorded beside a prepared network (None: none complete there)."""
    import json

    if xml is None:
        return None
    try:
        if not xml.with_suffix(".bin").is_file():
            return None
        info = json.loads(xml.with_suffix(".json").read_text())
        return info if info.get("version") == PREPARED_VERSION and xml.is_file() else None
    except (OSError, ValueError):
        return None


def _save_prepared(model, xml: Path | None, info: dict) -> bool:
    """Save the fixed-size network as OpenVINO IR at ``xml`` (with ``info`` beside it, written
    last: an entry counts only once it is complete), so that the next run with this input size
    compiles from the file: OpenVINO then loads it from its cache in 0.08 s without reading,
    reshaping and trimming the network again (0.07-0.1 s, and less of the interpreter held
    while the stack is checked). Old entries are pruned as OpenVINO's own cache is."""
    from srredsim.errors import write_json

    if xml is None:
        return False
    ov = _import_openvino()
    tmp = xml.with_name(f"{xml.stem}.{os.getpid()}.tmp.xml")
    try:
        ov.save_model(model, str(tmp), compress_to_fp16=False)  # writes the .xml and its .bin together
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
        write_json(xml.with_suffix(".json"), {**info, "version": PREPARED_VERSION})
    except (OSError, RuntimeError, SrredsimError):
        for leftover in (tmp, tmp.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)
        return False
    prune_compile_cache(xml.parent)
    return True


def prune_compile_cache(folder: Path, limit: int = COMPILE_CACHE_LIMIT) -> list[Path]:
    """Delete the oldest files (by the time they were written) of a cache folder (OpenVINO's model
    cache, ``openvino-fixed/``) until the rest fits in ``limit`` bytes; the newest always stays.
    Returns what was deleted. A file that cannot be removed (in use elsewhere, read-only folder)
    is left: the cache is only a speed-up."""
    try:
        stats = [(e.stat(), Path(e.path)) for e in os.scandir(folder) if e.is_file()]
    except OSError:
        return []
    entries = sorted(((st.st_mtime, st.st_size, path) for st, path in stats), reverse=True)
    removed, total = [], 0
    for i, (_, size, path) in enumerate(entries):
        total += size
        if i and total > limit:
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def available() -> bool:
    """Whether the ``openvino`` package can be imported (without importing it twice)."""
    try:
        core()
    except SrredsimError:
        return False
    return True


def cpu_capabilities() -> frozenset[str]:
    """What OpenVINO's CPU plugin says this CPU can do (``BF16``, ``FP32``, ``INT8`` ...)."""
    try:
        return frozenset(str(c) for c in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except SrredsimError:
        raise
    except Exception:
        return frozenset()


def supports_bf16() -> bool:
    return "BF16" in cpu_capabilities()


def check_bf16() -> None:
    """One line of error where OpenVINO has no bf16 arithmetic on this CPU."""
    if not supports_bf16():
        raise SrredsimError("OpenVINO has no bf16 arithmetic on this CPU (it needs AMX or AVX512-BF16); "
                            "use --precision fp32")


class OpenVinoEngine(Engine):
    name = "openvino"
    precisions = ("fp32", "bf16", "int8")

    def __init__(self, path: Path, precision: str = "fp32", shape: tuple[int, ...] | None = None,
                 discard: int = 0):
        """``path``: an ONNX file (fp32, bf16) or the int8 ``.xml`` :mod:`srredsim.runtime.quantize` made.
        ``shape``: compile for this one batch shape ``(B, h, w, C)`` (others still run; see above).
        ``discard``: with ``shape``, the input pixels per side of each window whose output the
        caller throws away: the network skips computing most of that band
        (:func:`srredsim.runtime.trim.trim_discarded_border`) and its output there is zero."""
        super().__init__(precision)
        path = Path(path)
        self._path, self._dynamic = path, None
        self.trimmed, self._pad = 0, None  # input pixels per side not computed; the output's zero border
        if (self.precision == "int8") != (path.suffix == ".xml"):
            raise SrredsimError(f"{path}: the openvino engine runs int8 from a quantised .xml and fp32/bf16 "
                                "from an .onnx file")
        if self.precision == "bf16":
            check_bf16()
        # int8: the layers kept in floating point run in the fastest float arithmetic here
        hint = self.precision if self.precision != "int8" else "bf16" if supports_bf16() else "fp32"
        self._hint = hint
        self.fixed_shape = None if shape is None else tuple(int(d) for d in shape)
        prepared = None if self.fixed_shape is None else _prepared_path(path, self.fixed_shape, discard)
        info = _read_prepared(prepared)
        if info is not None:  # made by an earlier run: OpenVINO loads it from its cache without reading it
            try:
                self.compiled = self._compile(str(prepared))
            except SrredsimError:  # a damaged entry: made again below
                info = None
                for part in (prepared, prepared.with_suffix(".bin"), prepared.with_suffix(".json")):
                    part.unlink(missing_ok=True)
        if info is not None:
            self.nchw, self.channels, self.trimmed = info["nchw"], info["channels"], info["trimmed"]
            self._pad = None if info["pad"] is None else tuple(tuple(p) for p in info["pad"])
        else:
            model = self._read(path)
            if self.fixed_shape is not None:
                b, h, w, ch = self.fixed_shape
                target = [b, ch, h, w] if self.nchw else [b, h, w, ch]
                try:
                    model.reshape(target)
                except Exception:  # a shape this network cannot take: dynamic, and the call says why
                    self.fixed_shape = None
                    model = self._read(path)
                else:
                    model = self._trim(model, discard, target)
                    if _save_prepared(model, prepared, {"nchw": self.nchw, "channels": self.channels,
                                                        "trimmed": self.trimmed, "pad": self._pad}):
                        model = str(prepared)  # compiled from the file, as the next run will
            self.compiled = self._compile(model)
        ran = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        if HINTS[hint] not in ran and not (hint == "fp32" and "float32" in ran) \
                and not (hint == "bf16" and "bfloat16" in ran):
            raise SrredsimError(f"OpenVINO compiled the model in {ran}, not {hint}")
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self._request = self.compiled.create_infer_request()

    def _read(self, path: Path):
        """The network from ``path``, and its layout (channels first or last, channel count)."""
        try:
            model = core().read_model(str(path))
        except Exception as exc:
            raise SrredsimError(f"{path}: OpenVINO cannot read it ({type(exc).__name__}: {exc})") from None
        if len(model.inputs) != 1:
            raise SrredsimError(f"{path}: expected one input, found {len(model.inputs)}")
        partial = model.inputs[0].get_partial_shape()
        # channels-first (the --nchw export): static channel dimension 1, dynamic width
        self.nchw = partial.rank.is_static and len(partial) == 4 and partial[1].is_static and not partial[3].is_static
        dim = partial[1] if self.nchw else partial[len(partial) - 1] if partial.rank.is_static else None
        self.channels = dim.get_length() if dim is not None and dim.is_static else None
        return model

    def _trim(self, model, discard: int, shape: list[int]):
        """``model`` (reshaped to ``shape``) without the layers' work on the discarded band, where
        it has the form :mod:`srredsim.runtime.trim` rewrites; else the whole network."""
        if discard <= 0:
            return model
        from srredsim.runtime.trim import trim_discarded_border

        before = model.outputs[0].get_partial_shape().to_shape()
        try:
            trimmed = trim_discarded_border(model, discard)
            after = model.outputs[0].get_partial_shape().to_shape()
        except Exception:  # a graph the rewrite did not foresee
            trimmed = -1
        axes = (2, 3) if self.nchw else (1, 2)
        if trimmed > 0:
            cut = [(before[a] - after[a]) // 2 for a in axes]
            if all(before[a] - after[a] == 2 * k > 0 for a, k in zip(axes, cut)):
                self.trimmed = trimmed
                self._pad = ((0, 0), (cut[0], cut[0]), (cut[1], cut[1]), (0, 0))  # in NHWC
                return model
        if trimmed == 0:
            return model  # left as it was
        whole = self._read(self._path)  # failed half-way, or not the promised shape
        whole.reshape(shape)
        return whole

    def _compile(self, model):
        """``model``: an ``openvino.Model``, or the path of a saved one (OpenVINO then finds it in
        its cache without reading it)."""
        cache = compile_cache()
        try:
            compiled = core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": HINTS[self._hint],
                                                           "PERFORMANCE_HINT": "LATENCY", **cache})
        except Exception as exc:
            raise SrredsimError(f"{self._path}: OpenVINO cannot compile it ({type(exc).__name__}: {exc})") from None
        if cache and not compiled.get_property("LOADED_FROM_CACHE"):  # a new entry was written
            prune_compile_cache(Path(cache["CACHE_DIR"]))
        return compiled

    def _request_for(self, shape: tuple[int, ...]):
        """The fixed-size network for its shape, else the dynamic one (compiled at its first use)."""
        if self.fixed_shape is None or shape == self.fixed_shape:
            return self._request
        if self._dynamic is None:
            self._dynamic = self._compile(self._read(self._path)).create_infer_request()
        return self._dynamic

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._request is None:
            raise SrredsimError("the openvino engine was closed")
        x = np.asarray(batch, np.float32)
        request = self._request_for(x.shape)
        if self.nchw:
            x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
        y = np.asarray(request.infer({0: np.ascontiguousarray(x)})[0])
        if self.nchw:
            y = np.transpose(y, (0, 2, 3, 1))
        if self._pad is not None and request is self._request:  # the trimmed network: a zero border
            y = np.pad(y, self._pad)
        return y

    def close(self) -> None:
        self._request = None
        self._dynamic = None
        self.compiled = None
