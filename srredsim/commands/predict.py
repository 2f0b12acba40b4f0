"""srredsim predict MODEL RAW.tif|DIR -o OUT"""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.runtime.base import ENGINE_CHOICES, PRECISION_CHOICES

HELP = "reconstruct raw SIM stacks with a trained model (run folder, bioimage.io package, ONNX or SavedModel)"
DESCRIPTION = (
    "Predict 2x super-resolved images from raw stacks (frames, H, W). MODEL is a run folder from "
    "`srredsim train`, an exported bioimage.io package (zip or folder), an .onnx file or a "
    "SavedModel folder. Large images are predicted in overlapping, blended tiles. With a folder "
    "of stacks, OUT is a folder and every *.tif is processed.")

ENGINES = list(ENGINE_CHOICES)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="run folder, bioimage.io package, .onnx, SavedModel folder, "
                   "or a shipped pretrained model: 'default' or 'faithful'")
    p.add_argument("input", type=Path, help="raw stack TIFF or a folder of them")
    p.add_argument("-o", "--out", type=Path, required=True, help="output TIFF (or folder for folder input)")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="inference engine; auto = the fastest of onnx and openvino here (measured once per model "
                        "and machine)")
    p.add_argument("--precision", choices=list(PRECISION_CHOICES), default="auto",
                   help="arithmetic; auto = bf16 where the CPU computes it natively (AMX, AVX512-BF16) and the "
                        "output stays within 65 dB PSNR of fp32 on the model's test tensor, else fp32")
    p.add_argument("--weights", choices=["best", "last"], default="best", help="which weights of a run folder")
    p.add_argument("--tile", type=int, default=None,
                   help="tile edge in raw pixels (default: whole image up to 1024 px, else 512)")
    p.add_argument("--halo", type=int, default=None, help="context pixels per tile side (default: receptive radius)")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per engine call")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def default_tile(h: int, w: int) -> int | None:
    return None if max(h, w) <= 1024 else 512


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from srredsim.errors import SrredsimError, ensure_writable_dir
    from srredsim.runtime import open_model
    from srredsim.predict import count_tiles
    from srredsim.tiff import TIFF_SUFFIXES, list_tiffs, read_raw_stack, write_sr_image

    if args.input.is_dir():
        inputs = list_tiffs(args.input)
        if not inputs:
            raise SrredsimError(f"{args.input}: no TIFF files to predict")
        if args.out.exists() and not args.out.is_dir():
            raise SrredsimError(f"{args.out}: is a file; a folder input needs an output folder")
        ensure_writable_dir(args.out)
        outputs = [args.out / (p.stem + "_sr.tif") for p in inputs]
    else:
        if not args.input.exists():
            raise SrredsimError(f"{args.input}: no such file")
        inputs = [args.input]
        out = args.out
        if out.is_dir():
            out = out / (args.input.stem + "_sr.tif")
        elif out.suffix.lower() not in TIFF_SUFFIXES:
            raise SrredsimError(f"{out}: output must be a .tif file (or an existing folder)")
        outputs = [out]
    existing = [o for o in outputs if o.exists()]
    if existing and not args.overwrite:
        raise SrredsimError(f"{existing[0]} exists; pass --overwrite to replace it")
    for o in outputs:
        ensure_writable_dir(o.parent)

    # read and check every input before the (slow) model is loaded
    model = open_model(args.model, engine=args.engine, precision=args.precision, weights=args.weights, log=print)
    stacks = []
    for path in inputs:
        raw, meta = read_raw_stack(path, frames=model.frames)
        if not np.any(raw):
            raise SrredsimError(f"{path}: the stack is all zeros")
        stacks.append((path, raw, meta))

    halo = args.halo if args.halo is not None else model.halo
    plans = []
    for path, raw, meta in stacks:
        tile = args.tile if args.tile else default_tile(*raw.shape[1:])
        plans.append((tile, count_tiles(raw.shape[1:], tile, halo, 8, model.size_multiple)))
    total = sum(n for _, n in plans)
    print(f"{model.describe()}; {len(stacks)} stack(s), {total} tile(s)")
    with tqdm(total=total, unit="tile", disable=None) as bar:
        for (path, raw, meta), (tile, _), out in zip(stacks, plans, outputs):
            sr = model.predict(raw, tile=tile, halo=halo, batch_size=args.batch_size, progress=bar.update)
            px = meta.pixel_size_um or model.pixel_size_um
            write_sr_image(out, sr, raw_pixel_size_um=px)
            note = "" if meta.pixel_size_um else " (pixel size from the model's optics)"
            bar.write(f"{path.name} -> {out}  {sr.shape[1]}x{sr.shape[0]}"
                      + (f", {px / 2:.4g} um/px{note}" if px else ""))
    return 0
