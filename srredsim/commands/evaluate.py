"""``srredsim evaluate TRUTH.tif [NAME=]RESULT.tif ... -o DIR``: scores, tables and a figure."""

from __future__ import annotations

import argparse

from srredsim.commands import _options as opt

HELP = "score results against a ground truth (PSNR, SSIM, NRMSE, FRC, FWHM) with a comparison figure"
DESCRIPTION = (
    "Compare each result with the ground truth after sub-pixel registration, a border crop and a "
    "least-squares affine intensity fit; report PSNR, SSIM, NRMSE, FRC resolution (1/7 threshold, "
    "against the truth) and, with --beads, the mean bead FWHM. Results of half the truth's size "
    "(e.g. widefield on the raw grid) are Fourier-upsampled first. Writes DIR/metrics.csv, "
    "DIR/metrics.md and DIR/comparison.png (results in the order given, then the truth, with their "
    "power spectra). The protocol is written down in docs/physics.md.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("truth", help="ground-truth TIFF on the 2x grid")
    p.add_argument("results", nargs="+", metavar="[NAME=]RESULT.tif",
                   help="result images; NAME defaults to the file name without extension")
    opt.add_output(p, "output folder (metrics.csv, metrics.md, comparison.png)", required=True, metavar="DIR")
    opt.add_overwrite(p, "existing result files in the output folder")
    opt.add_quiet(p)
    opt.add_json(p, "the scores")
    p.add_argument("--sr-pixel-size", type=float, default=None,
                   help="pixel size of the truth (the 2x super-resolved grid) in µm, for FRC and FWHM in nm "
                        "(default: from the truth TIFF)")
    # evaluate's old --pixel-size meant the 2x-grid pixel; everywhere else it is the raw camera pixel
    opt.add_legacy(p, "--pixel-size", "sr_pixel_size", "--sr-pixel-size (the truth's 2x-grid pixel)", type=float)
    p.add_argument("--crop", type=int, default=32, help="border crop in truth pixels")
    p.add_argument("--beads", action="store_true", help="also measure the FWHM of isolated beads")
    p.add_argument("--no-register", action="store_true", help="skip the sub-pixel registration")
    p.add_argument("--no-figure", action="store_true", help="skip the comparison figure")


def _parse_results(items):
    from pathlib import Path

    from srredsim.errors import SrredsimError

    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or Path(item).exists():
            name, path = Path(item).stem, item
        if name in [n for n, _ in out]:
            raise SrredsimError(f"result name {name!r} given twice; use NAME=FILE to tell them apart")
        out.append((name, path))
    return out


def run(args) -> int:
    import sys

    from srredsim.errors import SrredsimError, ensure_writable_dir
    from srredsim.evaluate import comparison_figure, markdown_table, score_images, write_table
    from srredsim.tiff import read_reference

    files = ["metrics.csv", "metrics.md"] + ([] if args.no_figure else ["comparison.png"])
    existing = [args.output / f for f in files if (args.output / f).exists()]
    if existing and not args.overwrite:
        raise SrredsimError(f"{existing[0]} exists; pass --overwrite to replace it")
    truth, meta = read_reference(args.truth)
    px = args.sr_pixel_size or meta.pixel_size_um
    images = {name: read_reference(path)[0] for name, path in _parse_results(args.results)}
    rows = score_images(truth, images, pixel_size_um=px, border=args.crop, beads=args.beads,
                        register=not args.no_register)
    out = ensure_writable_dir(args.output)
    write_table(rows, out / "metrics.csv", out / "metrics.md")
    if not args.no_figure:
        comparison_figure(truth, images, out / "comparison.png", pixel_size_um=px)
    if args.json:
        print(opt.json_text(rows))
    else:
        print(markdown_table(rows), end="")
    if not args.quiet:
        print(f"srredsim evaluate: wrote {', '.join(str(out / f) for f in files)}", file=sys.stderr)
    return 0
