"""srredsim adapt RAW... -o RUN [--na --wavelength --pixel-size] [--minutes M]"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "make a model for your own microscope from your own raw stacks (no ground truth needed)"
DESCRIPTION = (
    "Measure the illumination pattern (|k|, angles, phases, modulation), background and photon level "
    "of your raw stacks, simulate training pairs that look like them, and fine-tune a pretrained model "
    "on them within --minutes (simulation included; bf16 where the CPU has it). RUN is an ordinary run "
    "folder: predict and export take it. A killed run continues with --resume (for another --minutes).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from srredsim.frameorder import ORDER_HELP, ORDERS

    p.add_argument("raw", nargs="+", type=Path, help="raw SIM stack TIFFs (or folders of them) from your microscope")
    p.add_argument("-o", "--output", type=Path, required=True, help="run folder to create (or resume)")
    p.add_argument("--from", dest="base", default="default", metavar="MODEL",
                   help="pretrained model to start from: a run folder or a shipped name")
    p.add_argument("--minutes", type=float, default=10.0, help="time budget, simulation included")
    o = p.add_argument_group("optics (default: the base model's NA and wavelength, the TIFF's pixel size)")
    o.add_argument("--na", type=float, default=None, help="objective NA")
    o.add_argument("--wavelength", type=float, default=None, help="emission wavelength, nm")
    o.add_argument("--pixel-size", type=float, default=None, help="raw pixel size in µm")
    o.add_argument("--refractive-index", type=float, default=None, help="immersion refractive index")
    o.add_argument("--angles", type=int, default=None, help="pattern angles (default: the model's)")
    o.add_argument("--phases", type=int, default=None, help="phases per angle (default: frames / angles)")
    o.add_argument("--beams", type=int, default=None, choices=[2, 3], help="interfering beams")
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
    given = {"na": args.na, "wavelength_nm": args.wavelength, "pixel_size_um": args.pixel_size,
             "refractive_index": args.refractive_index, "angles": args.angles, "phases": args.phases,
             "beams": args.beams}
    adapt(args.raw, args.output, optics=given, base=args.base, minutes=args.minutes, order=args.order,
          resume=args.resume, count=args.count, seed=args.seed, keep_data=args.keep_data, content=args.content)
    print(f"adapted model -> {args.output} (use it with: srredsim predict {args.output} RAW.tif -o SR.tif)")
    return 0
