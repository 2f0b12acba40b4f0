"""Benchmark: srredsim.classical.ops (numpy) against the scipy functions it replaced on the classical path.

    python benchmarks/classical_ops.py [--repeats 30] [--out benchmarks/results/classical_ops.md]

Why it exists: every ``srredsim predict`` first looks at the stack with the classical pattern
estimator (srredsim.datacheck.first_look_check). That estimator used scipy.fft and scipy.ndimage,
whose import cost more than the look itself. This script measures, in one run on this machine:

1. **Imports, each in a fresh interpreter** (wall time, median of 11): numpy and ``srredsim.config``
   (every command imports them); that + ``scipy.fft`` + ``scipy.ndimage`` (what the classical path
   imported before); ``srredsim.classical`` (now: numpy only); and the whole first look at a
   15 x 512² stack, imports included.
2. **Each operation**, median milliseconds of ``--repeats`` calls after one warm-up, for
   srredsim.classical.ops, the scipy function it replaces, and -- for the forward FFTs -- numpy's
   own default (``np.fft.fft2(a)``), whose single-precision forward pass numpy computes in double
   precision; the ratio is ops / scipy.
3. **Agreement with scipy**: the largest difference relative to the largest value.

The stack of (1) is made here (a striped pattern over random beads, Poisson noise); nothing is read.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOOK = """
import numpy as np
from srredsim.config import OpticsConfig
from srredsim.datacheck import first_look_check
raw = np.load({path!r})
first_look_check(raw, OpticsConfig(na=1.4, wavelength_nm=525, pixel_size_um=0.08, angles=3, phases=5))
"""


def fresh(code: str, repeats: int = 11) -> float:
    """Median wall seconds of a fresh interpreter running ``code``."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def timed(fn, repeats: int) -> float:
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return 1e3 * statistics.median(out)


def test_stack(n: int = 512, seed: int = 0) -> np.ndarray:
    """15 frames (3 angles x 5 phases) of random beads under a sinusoidal pattern, Poisson noise."""
    rng = np.random.default_rng(seed)
    obj = np.zeros((n, n))
    obj[rng.integers(0, n, 4000), rng.integers(0, n, 4000)] = 1.0
    f = np.fft.fftfreq(n)
    otf = np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * 0.08 ** 2))
    yy, xx = np.mgrid[:n, :n]
    frames = []
    for a in range(3):
        th = np.pi / 3 * a + 0.2
        k = 2 * np.pi * 0.21 * np.array([np.sin(th), np.cos(th)])
        for p in range(5):
            pattern = 1 + 0.8 * np.cos(k[0] * yy + k[1] * xx + 2 * np.pi * p / 5)
            img = np.real(np.fft.ifft2(np.fft.fft2(obj * pattern) * otf))
            frames.append(rng.poisson(np.clip(img, 0, None) * 400 + 20))
    return np.asarray(frames, np.uint16)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None, help="also write the tables to this Markdown file")
    args = ap.parse_args()

    import scipy
    import scipy.fft as sfft
    from scipy import ndimage

    from benchmarks._common import machine_info
    from srredsim.classical import ops

    lines = ["# srredsim.classical.ops against scipy", ""]
    info = machine_info()
    lines += [f"- {k}: {v}" for k, v in info.items()] + [f"- numpy {np.__version__}, scipy {scipy.__version__}", ""]

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "stack.npy")
        np.save(path, test_stack())
        base = fresh("import numpy, srredsim.config")
        rows = [("numpy + srredsim.config (pydantic): what every command imports", base),
                ("the same + scipy.fft + scipy.ndimage (what the classical path added before)",
                 fresh("import numpy, srredsim.config, scipy.fft, scipy.ndimage")),
                ("srredsim.classical (now)", fresh("import srredsim.classical")),
                ("the first look at a 15 x 512² stack, imports included (now)", fresh(LOOK.format(path=path)))]
    lines += ["## A fresh interpreter importing, or looking at a stack (wall seconds, median of 11)", "",
              "| what | seconds | beyond numpy + srredsim.config |", "|---|---|---|"]
    lines += [f"| {what} | {s:.3f} | {s - base:+.3f} |" for what, s in rows] + [""]

    rng = np.random.default_rng(0)
    r = args.repeats
    table = []
    for n in (256, 512, 1024):
        c = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
        x = rng.standard_normal((n, n)).astype(np.float32)
        spec = sfft.rfft2(x)
        table += [
            (f"fft2 complex64 {n}²", timed(lambda: ops.fft2(c), r), timed(lambda: sfft.fft2(c), r),
             timed(lambda: np.fft.fft2(c), r), _rel(ops.fft2(c), sfft.fft2(c))),
            (f"ifft2 complex64 {n}²", timed(lambda: ops.ifft2(c), r), timed(lambda: sfft.ifft2(c), r), None,
             _rel(ops.ifft2(c), sfft.ifft2(c))),
            (f"rfft2 float32 {n}²", timed(lambda: ops.rfft2(x), r), timed(lambda: sfft.rfft2(x), r),
             timed(lambda: np.fft.rfft2(x), r), _rel(ops.rfft2(x), sfft.rfft2(x))),
            (f"irfft2 {n}²", timed(lambda: ops.irfft2(spec, (n, n)), r), timed(lambda: sfft.irfft2(spec, s=(n, n)), r),
             None, _rel(ops.irfft2(spec, (n, n)), sfft.irfft2(spec, s=(n, n))))]
    for n in (256, 512):
        x = rng.random((n, n)).astype(np.float32)
        table += [
            (f"gaussian σ=1, wrap, {n}²", timed(lambda: ops.gaussian_filter_wrap(x, 1.0), r),
             timed(lambda: ndimage.gaussian_filter(x, 1.0, mode="wrap"), r), None,
             _rel(ops.gaussian_filter_wrap(x, 1.0), ndimage.gaussian_filter(x, 1.0, mode="wrap"))),
            (f"uniform 9, wrap, {n}²", timed(lambda: ops.uniform_filter_wrap(x, 9), r),
             timed(lambda: ndimage.uniform_filter(x, 9, mode="wrap"), r), None,
             _rel(ops.uniform_filter_wrap(x, 9), ndimage.uniform_filter(x, 9, mode="wrap")))]
    # the pattern search's polar resampling and widening at 256² (3 angles' maps; srredsim.classical.pattern)
    z = rng.random((3, 256, 256)).astype(np.float32)
    radii, t = np.arange(20, 110, 0.5), np.radians(np.arange(0, 360, 0.25))
    yy, xx = (radii[:, None] * np.sin(t)[None, :]) % 256, (radii[:, None] * np.cos(t)[None, :]) % 256

    def scipy_polar():
        return np.stack([ndimage.map_coordinates(m, [yy.ravel(), xx.ravel()], order=1, mode="grid-wrap")
                         .reshape(yy.shape) for m in z])

    p = scipy_polar()[0]
    table += [
        (f"polar resampling, 3 maps, {yy.size} points", timed(lambda: ops.bilinear_wrap(z, yy, xx), r),
         timed(scipy_polar, r), None, _rel(ops.bilinear_wrap(z, yy, xx), scipy_polar())),
        (f"maximum 5x13, nearest/wrap, {p.shape[0]}x{p.shape[1]}",
         timed(lambda: ops.maximum_filter(p, (5, 13), ("nearest", "wrap")), r),
         timed(lambda: ndimage.maximum_filter(p, size=(5, 13), mode=("nearest", "wrap")), r), None,
         _rel(ops.maximum_filter(p, (5, 13), ("nearest", "wrap")),
              ndimage.maximum_filter(p, size=(5, 13), mode=("nearest", "wrap"))))]
    lines += [f"## Operations (median ms of {r} calls after a warm-up)", "",
              "| operation | ops (numpy) | scipy | ops / scipy | numpy default | max diff vs scipy (relative) |",
              "|---|---|---|---|---|---|"]
    for what, ours, theirs, default, diff in table:
        lines.append(f"| {what} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} | "
                     f"{'-' if default is None else f'{default:.2f}'} | {diff:.1e} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
        print(f"written: {args.out}")
    return 0


def _rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a.astype(np.complex128) - b).max() / np.abs(b).max())


if __name__ == "__main__":
    sys.exit(main())
