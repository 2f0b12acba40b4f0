"""``srredsim export RUN --format bioimageio|onnx|savedmodel|all -o OUT``."""

from __future__ import annotations

import argparse
import sys

from srredsim.commands import _options as opt

HELP = "export a trained model as a bioimage.io package, ONNX or TensorFlow SavedModel"
DESCRIPTION = (
    "Export a run folder. bioimageio: a format 0.5 package zip (Keras HDF5, TF SavedModel bundle and "
    "ONNX weights, test data, cover, documentation) for Fiji/DeepImageJ and bioimageio.core; onnx: "
    "opset 17, IR 8, dynamic batch/H/W (--nchw for the seed's (N, 15, H, W) layout); savedmodel: "
    "tag serve, signatures serve and serving_default; all: everything into one folder. The output is "
    "built in a temporary place and moved there only when complete; an existing output is refused "
    "unless --overwrite. Metadata defaults come from the run's config (metadata section). With "
    "--na/--wavelength/--pixel-size (bioimageio only) the package is matched to that microscope: its "
    "graph resamples stacks of --input-size pixels as srredsim predict does with the same flags.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run folder (config.json + weights) or a shipped model: sim-3x5, sim-3x3, default (= sim-3x5)")
    p.add_argument("--format", "-f", default="bioimageio", choices=["bioimageio", "onnx", "savedmodel", "all"],
                   help="what to write")
    opt.add_output(p, "output: .zip for bioimageio, .onnx for onnx, a folder for savedmodel/all "
                      "(default: <name>.bioimageio.zip, <name>.onnx, <name>_savedmodel/ or <name>_export/ "
                      "in the current folder)")
    opt.add_overwrite(p)
    opt.add_quiet(p)
    p.add_argument("--weights", default="best", choices=["best", "last"], help="which weights of the run")
    p.add_argument("--nchw", action="store_true",
                   help="ONNX channels-first (N, C, H, W) as in the seed notebook (format onnx, or an extra file with all)")
    g = p.add_argument_group("package metadata (defaults from the run's config)")
    g.add_argument("--name", default=None, help="model name (letters, digits, spaces, _+-())")
    g.add_argument("--description", default=None)
    g.add_argument("--authors", nargs="+", default=None, metavar="NAME", help="author names")
    g.add_argument("--maintainers", nargs="+", default=None, metavar="GITHUB_USER",
                   help="GitHub user names (validated online by bioimage.io tools)")
    g.add_argument("--license", default=None, help="SPDX license id, e.g. MIT, CC-BY-4.0")
    g.add_argument("--version", dest="model_version", default=None, help="package version (SemVer)")
    g.add_argument("--tags", nargs="+", default=None, help="extra tags (deepimagej, sim, ... are always set)")
    g.add_argument("--training-data", default=None, help="one line describing the training data")
    g.add_argument("--documentation", default=None, help="your own documentation.md instead of the generated one")
    g.add_argument("--git-repo", default=None, help="repository URL (note: any URL is probed when validating)")
    g.add_argument("--test-input", default=None,
                   help="raw stack TIFF for the package's test input and cover (default: a synthetic stack); "
                        "for a RED-fairSIM (red_net) model the stack is reconstructed classically, or give "
                        "one reconstructed image")
    g.add_argument("--test-size", type=int, default=128,
                   help="edge of the test input in raw pixels (red_net: its reconstruction has twice as many)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the self-check that the exported engines reproduce Keras to 1e-4")
    # microscope-matched package (srredsim.export.matched; docs/microscopes.md)
    g = opt.add_optics(p, pixel_size_default="default: the model's", others_default="default: the model's")
    g.title = "microscope-matched package (--format bioimageio): the optics of its stacks, as for srredsim predict"
    g.add_argument("--input-size", default=None, metavar="H[xW]",
                   help="raw frame size in pixels (height x width) a matched package takes; fixed, since the "
                        "resampling is sized for it (default 512, the paper's frames)")


def run(args) -> int:
    from srredsim.export.api import export_run

    metadata = {
        "name": args.name, "description": args.description, "authors": args.authors,
        "maintainers": args.maintainers, "license": args.license, "version": args.model_version,
        "tags": args.tags, "training_data": args.training_data, "documentation": args.documentation,
        "git_repo": args.git_repo,
    }
    result = export_run(args.run, args.format, args.output, overwrite=args.overwrite, which=args.weights,
                        nchw=args.nchw, metadata=metadata, test_input=args.test_input,
                        test_size=args.test_size, verify=not args.no_verify,
                        log=None if args.quiet else lambda msg: print(f"srredsim export: {msg}", file=sys.stderr),
                        optics=opt.optics_given(args), input_size=args.input_size)
    print(result.summary())
    return 0
