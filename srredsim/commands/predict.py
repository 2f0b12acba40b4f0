"""``srredsim predict MODEL RAW.tif|DIR -o OUT``"""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.commands import _options as opt

HELP = "reconstruct raw SIM stacks with a trained model (run folder, bioimage.io package, ONNX or SavedModel)"
DESCRIPTION = (
    "Predict 2x super-resolved images from raw stacks (frames, H, W). MODEL is a run folder from "
    "`srredsim train`, an exported bioimage.io package (zip or folder), an .onnx file, a "
    "SavedModel folder, or a shipped model ('default', 'faithful'). Images larger than 1024 pixels "
    "are predicted in overlapping, blended tiles. With a folder of stacks, OUT is a folder and every "
    "*.tif is processed, one stack at a time. The optics flags say how the data were taken; without "
    "them the model's optics are assumed (the pixel size from the TIFF when it has one), and a "
    "one-line warning says when the data's sampling differs from the model's.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="run folder, bioimage.io package, .onnx, SavedModel folder, "
                   "or a shipped pretrained model: 'default' or 'faithful'")
    p.add_argument("input", type=Path, help="raw stack TIFF or a folder of them")
    opt.add_output(p, "output TIFF (or folder for a folder input)", required=True, legacy=("--out",))
    opt.add_overwrite(p, "existing output files")
    opt.add_quiet(p)
    opt.add_engine(p)
    p.add_argument("--weights", choices=["best", "last"], default="best", help="which weights of a run folder")
    p.add_argument("--tile", type=int, default=None,
                   help="tile edge in raw pixels (default: whole image up to 1024 px, else 512; 0: never tile)")
    p.add_argument("--halo", type=int, default=None, help="context pixels per tile side (default: receptive radius)")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per engine call")
    opt.add_optics(p, pixel_size_default="default: from the TIFF, else the model's",
                   others_default="default: the model's")


def _plan_outputs(args) -> tuple[list[Path], list[Path]]:
    from srredsim.errors import SrredsimError, ensure_writable_dir
    from srredsim.tiff import TIFF_SUFFIXES, list_tiffs

    if args.input.is_dir():
        inputs = list_tiffs(args.input)
        if not inputs:
            raise SrredsimError(f"{args.input}: no TIFF files to predict")
        if args.output.exists() and not args.output.is_dir():
            raise SrredsimError(f"{args.output}: is a file; a folder input needs an output folder")
        ensure_writable_dir(args.output)
        outputs = [args.output / (p.stem + "_sr.tif") for p in inputs]
    else:
        if not args.input.exists():
            raise SrredsimError(f"{args.input}: no such file")
        inputs = [args.input]
        out = args.output
        if out.is_dir():
            out = out / (args.input.stem + "_sr.tif")
        elif out.suffix.lower() not in TIFF_SUFFIXES:
            raise SrredsimError(f"{out}: output must be a .tif file (or an existing folder)")
        outputs = [out]
    existing = [o for o in outputs if o.exists()]
    if existing and not args.overwrite:
        raise SrredsimError(f"{existing[0]} exists; pass --overwrite to replace it")
    clash = [i for i, o in zip(inputs, outputs) if o.resolve() == i.resolve()]
    if clash:
        raise SrredsimError(f"{clash[0]}: refusing to overwrite the input")
    for o in outputs:
        ensure_writable_dir(o.parent)
    return inputs, outputs


def _model_optics(model_arg):
    """The optics a run folder (or shipped model) was trained for; None for exported artifacts."""
    from srredsim.pretrained import resolve
    from srredsim.runfolder import is_run, load_run

    path = resolve(model_arg)
    return load_run(path).config.optics if is_run(path) else None


def run(args) -> int:
    import sys

    from tqdm import tqdm

    from srredsim.errors import SrredsimError
    from srredsim.inference import open_model
    from srredsim.predict import predict_files, sampling_mismatch
    from srredsim.tiff import read_stack_header

    inputs, outputs = _plan_outputs(args)
    given = opt.optics_given(args)
    if given:  # bad optics fail before the model is loaded
        opt.optics_from_args(args)
    model = open_model(args.model, engine=args.engine, weights=args.weights)
    trained = _model_optics(args.model)
    first = read_stack_header(inputs[0], frames=model.frames)
    # the data's optics: the flags, else the TIFF's pixel size, else the model's optics
    fallback_px = first.meta.pixel_size_um or (None if trained else model.pixel_size_um)
    data = opt.optics_from_args(args, file_pixel_size_um=fallback_px, base=trained)
    if ("angles" in given or "phases" in given) and data.frames != model.frames:
        raise SrredsimError(f"--angles x --phases = {data.angles} x {data.phases} = {data.frames} frames, "
                            f"but the model takes {model.frames}")
    warning = sampling_mismatch(data, trained, model_pixel_size_um=model.pixel_size_um)
    if warning:
        print(f"srredsim predict: warning: {warning}", file=sys.stderr)

    with tqdm(total=None, unit="tile", disable=True if args.quiet else None, file=sys.stderr) as bar:
        def total(n):
            bar.total = n
            bar.refresh()
            if not args.quiet:
                bar.write(f"{model.describe()}; {len(inputs)} stack(s), {n} tile(s)", file=sys.stderr)

        for path, out, shape, px in predict_files(model, inputs, outputs, tile=args.tile, halo=args.halo,
                                                  batch_size=args.batch_size, pixel_size_um=given.get("pixel_size_um"),
                                                  progress=bar.update, log=total):
            if not args.quiet:
                bar.write(f"{path.name} -> {out}  {shape[1]}x{shape[0]}" + (f", {px / 2:.4g} um/px" if px else ""),
                          file=sys.stderr)
    return 0
