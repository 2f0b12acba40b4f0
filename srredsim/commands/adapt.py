"""srredsim adapt RAW... -o RUN [--na --wavelength --pixel-size] [--minutes M]"""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.commands import _options as opt

HELP = "make a model for your own microscope from your own raw stacks (no ground truth needed)"
DESCRIPTION = (
    "Measure the illumination pattern (|k|, angles, phases, modulation), background and photon level "
    "of your raw stacks, simulate training pairs that look like them, and fine-tune a pretrained model "
    "on them within --minutes (simulation included; bf16 where the CPU has it). RUN is an ordinary run "
    "folder: predict and export take it. A killed run continues with --resume (for another --minutes).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from srredsim.frameorder import ORDER_HELP, ORDERS

    p.add_argument("raw", nargs="+", type=Path, help="raw SIM stack TIFFs (or folders of them) from your microscope")
    opt.add_output(p, "run folder to create (or to continue with --resume)", required=True, metavar="RUN")
    opt.add_overwrite(p, "an existing run folder (deleted once the raw stacks have been read)")
    opt.add_quiet(p)
    p.add_argument("--from", dest="base", default="default", metavar="MODEL",
                   help="pretrained model to start from: a run folder or a shipped name")
    p.add_argument("--minutes", type=float, default=10.0, help="time budget, simulation included")
    o = opt.add_optics(p, pixel_size_default="default: from the TIFF", others_default="default: the base model's")
    o.add_argument("--order", choices=ORDERS, default="angle-major", help=ORDER_HELP)
    p.add_argument("--content", default="generic",
                   help="structures of the simulated training fields: generic (textures, points, gratings, "
                        "filaments: no prior can guess them; the sim recipe), or filaments, vesicles, beads, mixed")
    p.add_argument("--count", type=int, default=256, help="simulated training stacks (fewer if time runs out)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation and training")
    p.add_argument("--resume", action="store_true", help="continue an interrupted adapt run in --output")
    p.add_argument("--keep-data", action="store_true", help="keep the simulated data in the cache afterwards")


def run(args) -> int:
    from srredsim.adapt import adapt
    from srredsim.errors import SrredsimError

    if args.count < 16:
        raise SrredsimError(f"--count must be at least 16, got {args.count}")
    if args.resume and args.overwrite:
        raise SrredsimError("--resume continues the run in --output, --overwrite replaces it: choose one")
    missing = [p for p in args.raw if not p.exists()]
    if missing:
        raise SrredsimError(f"{missing[0]}: no such file or folder")
    if args.overwrite:
        from srredsim.runfolder import remove_run_folder

        remove_run_folder(args.output)
    given = opt.optics_given(args)
    if given:  # unphysical optics fail before anything is read
        opt.optics_from_args(args)
    adapt(args.raw, args.output, optics=given, base=args.base, minutes=args.minutes, order=args.order,
          resume=args.resume, count=args.count, seed=args.seed, keep_data=args.keep_data, content=args.content,
          progress=False if args.quiet else None, say=(lambda m: None) if args.quiet else print)
    print(f"adapted model -> {args.output} (use it with: srredsim predict {args.output} RAW.tif -o SR.tif)")
    return 0
