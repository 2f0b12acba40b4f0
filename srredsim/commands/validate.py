"""``srredsim validate PACKAGE``: spec, bioimageio.core tests, engine parity, DeepImageJ lint."""

from __future__ import annotations

import argparse
import sys

from srredsim.commands import _options as opt

HELP = "check a bioimage.io package: spec, bioimageio.core tests, engine parity, DeepImageJ rules"
DESCRIPTION = (
    "Validate a bioimage.io package (zip or folder), fully offline: bioimageio.spec validation, "
    "bioimageio.core's test of every weight format, numerical parity of Keras, ONNX and SavedModel on "
    "the test input (<= 1e-4), and a lint of what DeepImageJ needs (ONNX opset <= 17 and IR <= 8, "
    "channel names, axis ids, supported pre/post-processing, TF zip layout, signature names). Prints "
    "one row per check; the exit code is 1 if any check fails, and the failed checks are named. "
    "--deepimagej runs the package through DeepImageJ 3.1's own code (built from source; docs/fiji.md) "
    "on each weight format it runs, offline, and compares the result with srredsim predict.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", help="package zip or unpacked folder with rdf.yaml")
    p.add_argument("--jvm", action="store_true",
                   help="also run the package on DeepImageJ's engines in a JVM (needs the JVM harness)")
    p.add_argument("--deepimagej", action="store_true",
                   help="also run the package through DeepImageJ's own code (headless, offline) for every weight "
                        "format it runs and compare with srredsim predict (needs Java 17, Maven and the "
                        "DeepImageJ/JDLL source builds: --vendor)")
    p.add_argument("--vendor", default=None, metavar="DIR",
                   help="folder holding DeepImageJ and JDLL as a file Maven repository (maven/); default "
                        "$SRREDSIM_DEEPIMAGEJ_VENDOR, else shared/vendor next to or above this folder")
    p.add_argument("--no-core", action="store_true", help="skip bioimageio.core's model tests (faster)")
    p.add_argument("--no-parity", action="store_true", help="skip the engine parity check")
    p.add_argument("--weight-format", nargs="+", default=None,
                   choices=["keras_hdf5", "tensorflow_saved_model_bundle", "onnx"],
                   help="test only these weight formats with bioimageio.core")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed max |difference| between two engines, relative to the output's range")
    opt.add_output(p, "also write the results to this JSON file", metavar="FILE.json")
    opt.add_overwrite(p, "an existing results file")
    opt.add_quiet(p)
    opt.add_json(p, legacy_file=True)


def run(args) -> int:
    from srredsim.errors import SrredsimError, write_json
    from srredsim.export.checks import failed_checks, format_table
    from srredsim.export.validate import validate_package

    if args.output is not None and args.output_json is not None:
        raise SrredsimError("two result files given (-o and --json FILE); use -o/--output")
    report = args.output if args.output is not None else args.output_json
    if report is not None and report.exists() and not args.overwrite:
        raise SrredsimError(f"{report} exists; pass --overwrite to replace it")

    def progress(r):
        if not args.quiet:
            print(f"  {r.name}: {r.status}", file=sys.stderr, flush=True)

    results = validate_package(args.package, jvm=args.jvm, core=not args.no_core, parity=not args.no_parity,
                               weight_formats=tuple(args.weight_format) if args.weight_format else None,
                               tolerance=args.tolerance, progress=progress, deepimagej=args.deepimagej,
                               vendor=args.vendor,
                               log=None if args.quiet else lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    rows = [r.to_dict() for r in results]
    print(opt.json_text(rows) if args.json else format_table(results))
    if report is not None:
        write_json(report, rows)
    fails = failed_checks(results)
    if fails:
        print(f"srredsim validate: {len(fails)} check(s) failed: {', '.join(r.name for r in fails)}",
              file=sys.stderr)
        return 1
    return 0
