#!/usr/bin/env python
"""Run an exported SR-REDSIM bioimage.io package with bioimageio.core, and compare with srredsim.

An exported package does not need srredsim to run: any tool that reads bioimage.io packages can
load it (DeepImageJ in Fiji, bioimageio.core in Python). This example uses only bioimageio.core's
public API:

1. ``load_model_description(package)`` reads and checks the package (offline: srredsim packages
   contain no URLs);
2. a ``Sample`` is built from a numpy raw stack ``(15, H, W)``, laid out as the package's input
   axes (batch, y, x, channel);
3. ``create_prediction_pipeline(descr, weight_format=...)`` plus ``predict(model=pipeline,
   inputs=sample)`` runs pre-processing (the stored normalisation), the network and
   post-processing -- once as it comes, once with ``input_block_shape`` set to the whole stack
   (one block);

and then compares both results with ``srredsim predict`` on the same stack (TIFF in, TIFF out).

Both extend the border the way the package declares (``pad: symmetric``, by the halo), as
``srredsim predict`` and DeepImageJ do (docs/fiji.md, "Borders: one result everywhere"); they
differ in the order. ``predict()`` as it comes pads the input *before* normalising, so the
per-stack percentiles of ``scale_range`` include the padding and its result differs by about
1e-3..1e-2 of the output range everywhere (docs/export.md, "Notes on bioimageio.core"). With
``input_block_shape`` bioimageio.core normalises the whole stack first and then pads the block,
as srredsim does: it reproduces ``srredsim predict`` over the whole image, border included, to
~1e-6 (the script fails above 1e-4 of the output's maximum).

    python examples/run_package_with_bioimageio_core.py                       # exports 'default' first
    python examples/run_package_with_bioimageio_core.py my.bioimageio.zip     # any SR-REDSIM package
    python examples/run_package_with_bioimageio_core.py my.bioimageio.zip --input raw.tif -o results/
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# Before bioimageio/keras are imported: Keras on TensorFlow (bioimageio.core's default is torch),
# and never wait long for the network (we run offline; a package with URLs would otherwise stall).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("BIOIMAGEIO_HTTP_TIMEOUT", "2")

import numpy as np  # noqa: E402

WEIGHT_FORMATS = ("keras_hdf5", "onnx", "tensorflow_saved_model_bundle")
SRREDSIM_ENGINE = {"keras_hdf5": "keras", "onnx": "onnx", "tensorflow_saved_model_bundle": "savedmodel"}
TOLERANCE_EXACT = 1e-4  # bioimageio.core in one block vs srredsim, whole image, relative to the output's maximum


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("package", type=Path, nargs="?", default=None,
                   help="a bioimage.io package (.zip or folder); default: export the shipped 'default' model "
                        "to a temporary folder first")
    p.add_argument("--input", type=Path, default=None,
                   help="raw SIM stack TIFF (frames, H, W); default: simulate a held-out stack (srredsim.recipes)")
    p.add_argument("--size", type=int, default=128,
                   help="edge of the simulated stack, rounded up to a size the package accepts")
    p.add_argument("--photons", type=float, default=20.0, help="light of the simulated stack "
                   "(mean photons per pixel per frame)")
    p.add_argument("--weight-format", default="onnx",
                   choices=WEIGHT_FORMATS,
                   help="which weights of the package bioimageio.core runs")
    p.add_argument("-o", "--output", dest="out", type=Path, default=None,
                   help="folder for raw.tif and both predictions; default: a temporary folder")
    p.add_argument("--out", dest="out", type=Path, help=argparse.SUPPRESS)  # the old spelling
    return p.parse_args(argv)


def valid_size(axis, want: int) -> int:
    """The smallest size ``min + n*step`` >= ``want`` of a parameterized v0.5 axis."""
    size = axis.size
    lo, step = getattr(size, "min", None), getattr(size, "step", None)
    if lo is None:  # a fixed size
        return int(size)
    if want <= lo:
        return int(lo)
    return int(lo + -(-(want - lo) // step) * step)


def to_input_layout(raw: np.ndarray, axes) -> tuple[np.ndarray, list[str]]:
    """``(C, H, W)`` raw stack -> the array and dims of the package's input axes."""
    src = {"channel": 0, "y": 1, "x": 2}
    arr = raw.astype(np.float32)
    order, dims = [], []
    for a in axes:
        kind = str(a.type)
        aid = str(a.id)
        if kind == "batch":
            dims.append(aid)
            order.append(None)
        elif kind == "channel":
            dims.append(aid)
            order.append(src["channel"])
        elif aid in ("y", "x"):
            dims.append(aid)
            order.append(src[aid])
        else:
            raise SystemExit(f"unexpected input axis {aid!r} ({kind}); this example handles batch/channel/y/x")
    arr = np.transpose(arr, [o for o in order if o is not None])
    for i, o in enumerate(order):
        if o is None:
            arr = np.expand_dims(arr, i)
    return arr, dims


def output_image(sample, output_id) -> np.ndarray:
    """The 2-D super-resolved image from an output Sample (batch and channel squeezed)."""
    t = sample.members[output_id]
    return np.squeeze(t.data.transpose(*[d for d in t.dims if str(d) not in ("y", "x")], "y", "x").to_numpy())


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="srredsim-bioimageio-example-"))
    try:
        return run(args, workdir)
    finally:
        if args.out is not None:  # everything worth keeping is in --output
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir} (the package and the results); delete it when done")


def run(args: argparse.Namespace, workdir: Path) -> int:
    t_start = time.perf_counter()
    out = (args.out or workdir / "results").absolute()
    out.mkdir(parents=True, exist_ok=True)

    # 0. the package ---------------------------------------------------------------------------
    package = args.package
    if package is None:
        from srredsim.export.api import export_run

        package = workdir / "sr-redsim-sim-3x5.bioimageio.zip"
        print(f"[0] no package given: exporting srredsim's pretrained 'default' model -> {package}")
        t = time.perf_counter()
        export_run("default", "bioimageio", package, log=lambda m: print(f"    {m}"))
        print(f"    exported in {time.perf_counter() - t:.0f} s")
    package = package.absolute()
    if not package.exists():
        raise SystemExit(f"{package}: no such package")

    # 1. load the description --------------------------------------------------------------------
    from bioimageio.core import (Sample, Tensor, create_prediction_pipeline, load_model_description,
                                 predict)

    print(f"[1] bioimageio.core.load_model_description({package.name})")
    t = time.perf_counter()
    descr = load_model_description(package)
    inp, outp = descr.inputs[0], descr.outputs[0]
    formats = [wf for wf in WEIGHT_FORMATS if getattr(descr.weights, wf, None) is not None]
    print(f"    '{descr.name}' (format {descr.format_version}); weights: {', '.join(formats)}; "
          f"loaded in {time.perf_counter() - t:.1f} s")
    print(f"    input  '{inp.id}': axes {[str(a.id) for a in inp.axes]}; pre-processing "
          f"{[p.id for p in inp.preprocessing]}")
    print(f"    output '{outp.id}': axes {[str(a.id) for a in outp.axes]}; halo "
          f"{max((getattr(a, 'halo', 0) or 0) for a in outp.axes)} px; post-processing "
          f"{[p.id for p in outp.postprocessing]}")
    if args.weight_format not in formats:
        raise SystemExit(f"the package has no {args.weight_format} weights")

    # 2. a raw stack -----------------------------------------------------------------------------
    from srredsim.tiff import read_raw_stack, write_tiff

    ch_axis = next(a for a in inp.axes if str(a.type) == "channel")
    frames = len(ch_axis.channel_names)
    y_axis = next(a for a in inp.axes if str(a.id) == "y")
    if args.input is not None:
        raw, meta = read_raw_stack(args.input, frames=frames)
        px = meta.pixel_size_um
        print(f"[2] raw stack {args.input}: {raw.shape} {raw.dtype}")
    else:
        from srredsim.recipes import heldout_stack

        if frames != 15:
            raise SystemExit(f"the package expects {frames} frames; pass --input with such a stack")
        size = valid_size(y_axis, args.size)
        stack = heldout_stack(args.photons, size=size, index=0, targets=())
        raw, px = stack.raw, stack.params["pixel_size_um"]
        print(f"[2] simulated a held-out raw stack {raw.shape} {raw.dtype} at {args.photons:g} photons/pixel/frame "
              f"(size {size}: the package accepts min + n*step)")
    raw_tif = write_tiff(out / "raw.tif", raw, pixel_size_um=px, axes="ZYX")

    def make_sample() -> Sample:
        # a fresh Sample per call: pre-processing may modify the sample's tensors in place
        arr, dims = to_input_layout(raw, inp.axes)
        return Sample(members={inp.id: Tensor.from_numpy(arr, dims=dims)}, stat={}, id="raw")

    arr, dims = to_input_layout(raw, inp.axes)
    print(f"    as the package's input: dims {dims}, shape {arr.shape}")

    # 3. bioimageio.core.predict -------------------------------------------------------------------
    with contextlib.chdir(workdir):  # bioimageio.core unzips TensorFlow weights into the working directory
        print(f"[3] bioimageio.core.predict(model=create_prediction_pipeline(descr, weight_format="
              f"'{args.weight_format}'), inputs=sample)")
        t = time.perf_counter()
        pipeline = create_prediction_pipeline(descr, weight_format=args.weight_format)
        result = predict(model=pipeline, inputs=make_sample())  # predict() loads and unloads the pipeline
        y_core = output_image(result, outp.id)
        print(f"    output {y_core.shape} in {time.perf_counter() - t:.1f} s (input padded by the halo, then normalised)")

        # one block of the whole stack: core normalises the stack first, then pads the block by the halo
        # (the RDF's pad: symmetric) -- the order srredsim predict and DeepImageJ follow
        whole = {inp.id: {a.id: int(n) for a, n in zip(inp.axes, arr.shape)}}
        print(f"    the same with one block of the whole stack: predict(..., input_block_shape="
              f"{{'{inp.id}': {dict((str(k), v) for k, v in whole[inp.id].items())}}})")
        t = time.perf_counter()
        block_pipeline = create_prediction_pipeline(descr, weight_format=args.weight_format)
        y_block = output_image(predict(model=block_pipeline, inputs=make_sample(), input_block_shape=whole), outp.id)
        print(f"    output {y_block.shape} in {time.perf_counter() - t:.1f} s (normalised, then padded by the halo)")
    write_tiff(out / "sr_bioimageio_core.tif", y_core, pixel_size_um=px / 2 if px else None, axes="YX")
    write_tiff(out / "sr_bioimageio_core_block.tif", y_block, pixel_size_um=px / 2 if px else None, axes="YX")

    # 4. srredsim predict --------------------------------------------------------------------------
    sr_tif = out / "sr_srredsim.tif"
    engine = SRREDSIM_ENGINE[args.weight_format]  # the same weights bioimageio.core ran
    cmd = [sys.executable, "-m", "srredsim", "predict", str(package), str(raw_tif), "-o", str(sr_tif),
           "--engine", engine, "--overwrite"]
    print(f"[4] srredsim predict {package.name} raw.tif -o sr_srredsim.tif --engine {engine}")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        raise SystemExit("srredsim predict failed")
    print("    " + proc.stdout.strip().replace("\n", "\n    ") + f"   ({time.perf_counter() - t:.1f} s in a new process)")
    from srredsim.tiff import read_reference

    y_srredsim, _ = read_reference(sr_tif)

    # 5. compare -----------------------------------------------------------------------------------
    out_halo = max(int(getattr(a, "halo", 0) or 0) for a in outp.axes)  # output pixels
    # in raw pixels: the spec's halo * out.scale / in.scale (output y is sized from input y)
    out_y = next(a for a in outp.axes if str(a.id) == "y")
    in_halo = int(round(out_halo * float(out_y.scale or 1.0) / float(y_axis.scale or 1.0)))
    scale = float(np.abs(y_srredsim).max()) or 1.0
    n_out = min(y_srredsim.shape)
    yy, xx = np.mgrid[0:y_srredsim.shape[0], 0:y_srredsim.shape[1]]
    dist = np.minimum(np.minimum(yy, xx), np.minimum(y_srredsim.shape[0] - 1 - yy, y_srredsim.shape[1] - 1 - xx))

    def diff(a: np.ndarray, lo: int = 0, hi: int | None = None) -> tuple[float, float, float] | None:
        d = np.abs(a.astype(np.float64) - y_srredsim)
        d = d[(dist >= lo) & (dist < (hi if hi is not None else n_out))]
        return (float(d.max()), float(d.mean()), float(np.percentile(d, 99))) if d.size else None

    print(f"[5] compared with srredsim predict (output maximum {scale:.4g}; distances in output pixels)")
    edges = sorted({0, 4, 16, out_halo} | ({out_halo // 2} if out_halo > 32 else set()))
    rows = [("bioimageio.core predict(), whole image", diff(y_core))]
    for lo, hi in zip(edges, edges[1:] + [None]):
        where = f"{lo}-{hi} px from the border" if hi is not None else f">= {lo} px from the border (halo)"
        rows.append((f"  {where}", diff(y_core, lo, hi)))
    rows.append(("bioimageio.core in one block, whole image", diff(y_block)))
    print(f"    {'':<50} {'max |diff|':>11} {'mean |diff|':>12} {'99% |diff|':>11} {'max / maximum':>14}")
    for name, r in rows:
        if r is None:
            print(f"    {name:<50} {'(no such pixels: use a larger --size)':>50}")
        else:
            print(f"    {name:<50} {r[0]:11.2e} {r[1]:12.2e} {r[2]:11.2e} {r[0] / scale:14.2e}")
    scale_range = next((p for p in inp.preprocessing if p.id == "scale_range"), None)
    if scale_range is not None and in_halo:
        from srredsim.normalization import percentile_range

        lo_p, hi_p = scale_range.kwargs.min_percentile, scale_range.kwargs.max_percentile
        padded = np.pad(raw, ((0, 0), (in_halo, in_halo), (in_halo, in_halo)), mode="symmetric")
        lo, hi = percentile_range(raw, lo_p, hi_p)
        plo, phi = percentile_range(padded, lo_p, hi_p)
        why = (f"predict() pads the input by the halo ({in_halo} raw px, symmetric) before scale_range, so the "
               f"{lo_p:g}/{hi_p:g} percentiles become {plo:.1f}/{phi:.1f} instead of {lo:.1f}/{hi:.1f} ADU "
               f"({max(abs(plo - lo), abs(phi - hi)) / (hi - lo):.1e} of the range)")
    else:
        why = f"predict() pads the input by the halo ({in_halo} raw px, symmetric) before pre-processing"
    print(textwrap.fill(why + ". In one block bioimageio.core normalises first and then pads by the halo, as "
                        "srredsim predict does: the same numbers, border included.", 104,
                        initial_indent="    why: ", subsequent_indent="    "))
    print(f"files: {out} (raw.tif, sr_bioimageio_core.tif, sr_bioimageio_core_block.tif, sr_srredsim.tif); "
          f"total {time.perf_counter() - t_start:.0f} s")
    if y_core.shape != y_srredsim.shape or y_block.shape != y_srredsim.shape:
        print(f"shape mismatch: {y_core.shape}, {y_block.shape} vs {y_srredsim.shape}", file=sys.stderr)
        return 1
    if not rows[-1][1][0] <= TOLERANCE_EXACT * scale:
        print(f"bioimageio.core in one block differs from srredsim by more than {TOLERANCE_EXACT:g} of the "
              "output's maximum", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
