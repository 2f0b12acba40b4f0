"""``srredsim fiji-check PACKAGE RAW.tif``: the command-line face of :mod:`srredsim.fiji_check`."""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.commands import _options as opt

HELP = "run a package with DeepImageJ and the stack with fairSIM in Fiji (pyimagej); compare with srredsim"
DESCRIPTION = (
    "Start Fiji headless through pyimagej, run the bioimage.io PACKAGE with DeepImageJ and reconstruct RAW "
    "with fairSIM, then compare both with srredsim's prediction and classical reconstruction (max |diff|, "
    "PSNR, SSIM). Without a Fiji installation it says exactly what is missing; --without-fiji runs the "
    "Fiji-free part (DeepImageJ's engines in a JVM, srredsim prediction, classical reconstruction). "
    "Exit code 0 when DeepImageJ and srredsim agree within --tolerance, 1 when not, 2 on bad input.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", type=Path, help="bioimage.io package (zip or folder) made by `srredsim export`")
    p.add_argument("raw", type=Path, help="raw SIM stack (TIFF, frames angle-major, phases fastest)")
    p.add_argument("--fiji", type=Path, default=None,
                   help="Fiji.app folder with DeepImageJ 3 and fairSIM (default: $FIJI_DIR)")
    p.add_argument("--without-fiji", action="store_true",
                   help="no Fiji: compare DeepImageJ's engines in a JVM, srredsim and the classical reconstruction")
    opt.add_output(p, "folder for the result TIFFs and report.json (default: a temporary folder)",
                   legacy=("--out",), metavar="DIR")
    opt.add_overwrite(p, "an existing report.json in the output folder")
    opt.add_quiet(p)
    opt.add_json(p, "the report", legacy_file=True)
    opt.add_engine(p, help="engine of srredsim's own prediction of the package (auto: ONNX when the package "
                           "has ONNX weights)")
    p.add_argument("--jvm-weights", choices=["onnx", "tensorflow_saved_model_bundle"], default="onnx",
                   help="weights the JVM (engine-equivalent DeepImageJ) run uses with --without-fiji")
    p.add_argument("--dij-version", choices=["auto", "3.1", "3.0"], default="auto",
                   help="DeepImageJ macro keys: 3.1+ model_path/input_path/..., 3.0 modelPath/inputPath/...")
    p.add_argument("--no-fairsim", action="store_true", help="skip fairSIM (and its comparison)")
    p.add_argument("--no-classical", action="store_true", help="skip srredsim's classical reconstruction")
    p.add_argument("--wiener", type=float, default=0.05, help="Wiener parameter for fairSIM")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest allowed max |DeepImageJ - srredsim|, relative to the range of srredsim's output")
    opt.add_optics(p, pixel_size_default="default: from the TIFF, else the package's, else "
                                         f"{opt.optics_default('pixel_size_um')}", legacy=True)


def run(args) -> int:
    import sys

    from srredsim.errors import SrredsimError, write_json
    from srredsim.fiji_check import FijiCheckSettings, fiji_dir_from_env, format_report, run_fiji_check

    if args.output_json is not None and args.output_json.exists() and not args.overwrite:
        raise SrredsimError(f"{args.output_json} exists; pass --overwrite to replace it")
    opt.optics_from_args(args)  # unphysical optics fail before anything starts
    settings = FijiCheckSettings(
        package=args.package, raw=args.raw, fiji_dir=fiji_dir_from_env(args.fiji), without_fiji=args.without_fiji,
        output=args.output, overwrite=args.overwrite, engine=args.engine, jvm_weights=args.jvm_weights,
        dij_version=None if args.dij_version == "auto" else args.dij_version, fairsim=not args.no_fairsim,
        classical=not args.no_classical, optics=opt.optics_given(args), wiener=args.wiener,
        tolerance=args.tolerance)
    report = run_fiji_check(settings, log=(lambda m: None) if args.quiet else lambda m: print(m, file=sys.stderr))
    print(opt.json_text(report) if args.json else format_report(report))
    if args.output_json is not None:
        write_json(args.output_json, report)
    return 0 if report["ok"] else 1
