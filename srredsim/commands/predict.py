"""``srredsim predict MODEL RAW.tif|SR.tif|DIR -o OUT``"""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.commands import _options as opt

HELP = "reconstruct raw SIM stacks with a trained model (run folder, bioimage.io package, ONNX or SavedModel)"
DESCRIPTION = (
    "Predict 2x super-resolved images from raw stacks (frames, H, W). MODEL is a run folder from "
    "`srredsim train`, an exported bioimage.io package (zip or folder), an .onnx file, a "
    "SavedModel folder, or a shipped model by name (`srredsim info` lists them). Images larger than "
    "1024 pixels are predicted in overlapping, blended tiles. With a folder of stacks, OUT is a folder "
    "and every *.tif is processed, one stack at a time. Each stack is checked first (frame order, "
    "phases, pattern, the model's training range: one line per warning; --strict makes them errors). "
    "The optics flags say how the data were taken; a stack whose OTF cutoff per pixel lies outside "
    "the model's training range is resampled in Fourier space to the model's sampling and the result "
    "back to twice the stack's grid. Without optics flags the model's optics are assumed (the pixel "
    "size from the TIFF when it has one), and the output line says so. A RED-fairSIM model (a RED-Net "
    "on the 2x grid) takes a raw stack -- 9 frames read as 3x3, 15 as 3x5, others with --angles/--phases "
    "--, reconstructs it classically (fairSIM-equivalent, as `srredsim reconstruct`) and denoises the "
    "reconstruction; or it takes one already reconstructed SR image (e.g. fairSIM's in Fiji) and only "
    "denoises it. The output line says which.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from srredsim.frameorder import ORDER_HELP, ORDERS
    from srredsim.predict import BORDER_CHOICES

    p.add_argument("model", type=Path, help="run folder, bioimage.io package, .onnx, SavedModel folder, "
                   "or a shipped model: sim-3x5, sim-3x3, or default (the one whose frame count fits the data)")
    p.add_argument("input", type=Path, help="raw stack TIFF or a folder of them (a RED-fairSIM model also "
                   "takes reconstructed 2-D SR images)")
    opt.add_output(p, "output TIFF (or folder for a folder input)", required=True, legacy=("--out",))
    opt.add_overwrite(p, "existing output files")
    opt.add_quiet(p)
    opt.add_engine(p)
    opt.add_precision(p)
    p.add_argument("--weights", choices=["best", "last"], default="best", help="which weights of a run folder")
    p.add_argument("--tile", type=int, default=None,
                   help="tile edge in the network's input pixels: raw pixels, or the reconstruction's for a "
                        "RED-fairSIM model (default: whole image up to 1024 px, else 512; 0: never tile)")
    p.add_argument("--halo", type=int, default=None,
                   help="context pixels per tile side and mirrored border (default: the context the network "
                        "needs, measured once per model; see srredsim info)")
    p.add_argument("--batch-size", type=int, default=1, help="tiles per engine call")
    p.add_argument("--border", choices=list(BORDER_CHOICES), default="symmetric",
                   help="how the image is extended beyond its edges: symmetric (mirrored by the receptive "
                        "radius, as DeepImageJ does: the same result in Fiji) or none (the network's own zero "
                        "padding: 1.2-1.4x less work for a whole image, better within 4 px of the edge for "
                        "sim-3x5 in our measurement, but different from DeepImageJ there)")
    p.add_argument("--order", choices=ORDERS, default="angle-major", help=ORDER_HELP)
    p.add_argument("--strict", action="store_true", help="turn the data checks' warnings into errors")
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


def _predict_all(args, model, inputs, outputs, given, headers) -> None:
    import sys

    from tqdm import tqdm

    from srredsim.predict import BORDER_CHOICES, predict_files

    with tqdm(total=None, unit="tile", disable=True if args.quiet else None, file=sys.stderr) as bar:
        def total(n):
            bar.total = n
            bar.refresh()
            if not args.quiet:
                what = "stack(s)" if model.takes_raw else "file(s)"  # RED-fairSIM: raw stacks or SR images
                edges = "; edges: the network's own padding (--border none)" if args.border == "none" else ""
                bar.write(f"{model.describe()}; {len(inputs)} {what}, {n} tile(s){edges}", file=sys.stderr)

        def warn(line):
            bar.write(line, file=sys.stderr)

        for done in predict_files(model, inputs, outputs, optics=given, order=args.order, strict=args.strict,
                                  tile=args.tile, halo=args.halo, batch_size=args.batch_size,
                                  progress=bar.update, log=total, warn=warn, headers=headers,
                                  border=BORDER_CHOICES[args.border]):
            px = f", {done.pixel_size_um:.4g} um/px" if done.pixel_size_um else ""
            # the result line (stdout, also under --quiet): where it went and what was assumed
            bar.write(f"{done.input.name} -> {done.output}  {done.shape[1]}x{done.shape[0]}{px}; {done.note}",
                      file=sys.stdout)


def run(args) -> int:
    import sys

    from srredsim.predict import read_input_headers
    from srredsim.runtime import read_model
    from srredsim.tiff import read_stack_header

    inputs, outputs = _plan_outputs(args)
    given = opt.optics_given(args)
    if given:  # bad optics fail before the model is loaded
        opt.optics_from_args(args)
    from srredsim.errors import SrredsimError
    from srredsim.pretrained import DEFAULT, is_shipped_name, resolve

    if is_shipped_name(args.model) and str(args.model) == DEFAULT:  # the shipped model for the data's layout
        frames = read_stack_header(inputs[0], images=True).shape[0]
        if frames == 1:
            raise SrredsimError(f"{inputs[0]}: one image, not a raw SIM stack; 'default' is an SR-REDSIM model "
                                "(raw stacks). For an already reconstructed SIM image use red-fairsim")
        args.model = resolve(DEFAULT, frames=frames)
    progress_line = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    # one artifact for the input check and the opening: a zipped package is unpacked once (and removed
    # at the end; the engine holds its weights in memory once open)
    with read_model(args.model, args.weights) as artifact:
        io = artifact.io
        # bad headers fail before the model is opened (and its engine measured); predict_files reuses them
        headers = read_input_headers(inputs, io.frames, io.scale, given)
        # an OpenVINO engine compiles in the background while the first stack is read and checked
        model = artifact.open(engine=args.engine, precision=args.precision, log=progress_line, background=True,
                              halo=args.halo)
        _predict_all(args, model, inputs, outputs, given, headers)
    from srredsim.cli import keep_until_exit

    keep_until_exit(model)  # the console script's exit frees it with the process
    return 0
