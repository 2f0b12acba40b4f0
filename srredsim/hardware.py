"""What this machine can do fast: CPU features read from the machine, never assumed.

Machines differ (seen: AMD EPYC with AVX512-BF16 but no AMX; Intel Xeon with AMX and
AVX512-BF16). bfloat16 matrix arithmetic is fast only with AMX (``amx_bf16``) or AVX512-BF16
(``avx512_bf16``); elsewhere it is emulated and slower than float32, so bf16 is chosen only where
a flag says the hardware has it.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty where unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_path() -> str:
    """The fastest matrix path of this CPU, in words: ``amx``, ``avx512_bf16``, ``avx512``,
    ``avx2`` or ``baseline``."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "baseline"


def cpu_has_fast_bf16() -> bool:
    return any(f in cpu_flags() for f in BF16_FLAGS)


def _gpu_compute_capability() -> tuple[int, int] | None:
    """Compute capability of the first GPU Keras' backend sees, or None (no GPU / unknown)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return None
            cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
            return tuple(cc) if cc else (0, 0)
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if not gpus:
                return None
            cc = getattr(gpus[0], "compute_capability", "0.0")
            major, minor = (int(v) for v in str(cc).split(".")[:2])
            return major, minor
    except Exception:
        return None
    return None


def training_policy(precision: str = "auto") -> str:
    """The Keras dtype policy for ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``).

    ``auto``: ``mixed_bfloat16`` on GPUs of compute capability >= 8 and on CPUs with AMX or
    AVX512-BF16, ``mixed_float16`` on older GPUs, ``float32`` elsewhere. Mixed policies keep the
    weights (and the optimizer) in float32; only the arithmetic is in 16 bits.
    """
    if precision == "fp32":
        return "float32"
    if precision == "bf16":
        return "mixed_bfloat16"
    if precision == "fp16":
        return "mixed_float16"
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}")
    cc = _gpu_compute_capability()
    if cc is not None:
        return "mixed_bfloat16" if cc >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16" if cpu_has_fast_bf16() else "float32"


POLICY_WORDS = {"float32": "fp32", "mixed_bfloat16": "bf16 (mixed, fp32 weights)",
                "mixed_float16": "fp16 (mixed, fp32 weights, loss scaling)"}
