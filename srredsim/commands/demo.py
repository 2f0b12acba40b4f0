"""srredsim demo [--quick]"""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.commands import _options as opt

HELP = "run the whole pipeline on built-in defaults and write a report (no data needed)"
DESCRIPTION = (
    "Simulate held-out raw SIM stacks at several light levels, reconstruct them classically and "
    "with the pretrained SR-REDSIM, score against the ground truth, export and validate the "
    "bioimage.io package, and write a report folder (report.md, metrics, figures, the package, "
    "example TIFFs). Takes a few minutes on 2 CPU cores; --quick takes about one.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    opt.add_output(p, "report folder (default: srredsim-demo)", legacy=("--out",), default=Path("srredsim-demo"),
                   metavar="DIR")
    p.add_argument("--quick", action="store_true",
                   help="smaller version: 3 light levels, one 128x128 stack each, ONNX-only core test")
    p.add_argument("--model", default="default",
                   help="shipped model name (sim-3x5, sim-3x3, default) or a run folder")
    p.add_argument("--photons", help="comma-separated mean photons per pixel per frame, e.g. 2,20,200")
    p.add_argument("--count", type=int, help="held-out stacks per light level")
    p.add_argument("--size", type=int, help="raw frame edge (even, >= 128)")
    p.add_argument("--no-export", action="store_true", help="skip export and validation")
    opt.add_overwrite(p, "an existing report folder")
    opt.add_quiet(p)
    opt.add_engine(p, help="engine the SR-REDSIM model runs on in the comparison")


def run(args) -> int:
    from srredsim.demo import DemoSettings, run_demo
    from srredsim.errors import SrredsimError

    kw = {"model": args.model, "export": not args.no_export, "overwrite": args.overwrite, "engine": args.engine}
    if args.photons:
        try:
            kw["photons"] = tuple(float(p) for p in args.photons.split(",") if p.strip())
        except ValueError:
            raise SrredsimError(f"--photons expects numbers separated by commas, got {args.photons!r}") from None
        if not kw["photons"] or min(kw["photons"]) <= 0:
            raise SrredsimError("--photons must list positive numbers")
    if args.count is not None:
        if args.count < 1:
            raise SrredsimError("--count must be at least 1")
        kw["count"] = args.count
    if args.size is not None:
        if args.size < 128 or args.size % 2:
            raise SrredsimError("--size must be even and at least 128")
        kw["size"] = args.size
    settings = DemoSettings.quick(args.output, **kw) if args.quick else DemoSettings(out=args.output, **kw)
    out = run_demo(settings, log=(lambda m: None) if args.quiet else (lambda m: print(m, flush=True)))
    if args.quiet:
        print(f"srredsim demo: report in {out / 'report.md'}")
    return 0
