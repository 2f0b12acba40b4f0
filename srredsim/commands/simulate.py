"""``srredsim simulate -o OUT --count N --size S``: a simulated training folder with ground truth."""

from __future__ import annotations

import argparse

from srredsim.commands import _options as opt

HELP = "simulate raw SIM stacks with ground truth as a training folder (trainx/trainy/...)"
DESCRIPTION = (
    "Simulate noisy raw SIM stacks (angles x phases frames, uint16) from random structures, with "
    "the ground truth, a training target and the exact illumination parameters of every stack. "
    "Writes OUT/trainx, OUT/trainy, [OUT/testx, OUT/testy,] OUT/truth, OUT/params/<name>.json and "
    "OUT/simulation.json. Photons = mean detected photons per camera pixel per raw frame; a range "
    "LOW:HIGH is drawn log-uniformly per stack. The same seed gives identical files for any number "
    "of workers. The folder appears only when complete.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    opt.add_output(p, "output folder (refused if it exists, unless --overwrite)", metavar="DIR")
    opt.add_legacy_positional(p, "legacy_output", "-o/--output", "OUT")
    p.add_argument("--count", type=int, default=16, help="training stacks")
    p.add_argument("--test-count", type=int, default=0, help="extra stacks written to testx/testy")
    p.add_argument("--size", type=int, default=256, help="raw frame edge in pixels (even)")
    p.add_argument("--photons", default="2:300",
                   help="mean photons per pixel per frame: a value or a range LOW:HIGH (log-uniform)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--structures", default="mixed", choices=["filaments", "vesicles", "beads", "mixed", "textures",
                                                             "points", "gratings", "generic"],
                   help="structure family (textures, points, gratings, generic: detail no prior can guess)")
    p.add_argument("--target", default="truth", choices=["truth", "bandlimited", "classical", "support"],
                   help="what trainy holds: the lightly blurred truth; the truth band-limited to the SIM "
                        "support with an OTF-shaped filter; a classical reconstruction of a high-photon copy; "
                        "or 'support': the truth inside the measured SIM support, unapodised (the shipped "
                        "models' target)")
    p.add_argument("--classical-photons", type=float, default=1000.0,
                   help="photons of the high-light copy behind --target classical")
    p.add_argument("--workers", type=int, default=1, help="processes")
    opt.add_overwrite(p, "an existing output folder")
    opt.add_quiet(p, legacy_no_progress=True)
    p.add_argument("--config", default=None,
                   help="YAML/JSON SimulationConfig (all fields of srredsim.simulate.SimulationConfig); "
                        "replaces the simulation and optics options; --count, --test-count, --seed, "
                        "--workers still apply")
    opt.add_optics(p)
    o = p.add_argument_group("illumination")
    o.add_argument("--k-fraction", default="0.75:0.95", help="|k| / widefield cutoff (value or range)")
    o.add_argument("--modulation", default="0.5:0.95", help="pattern contrast (value or range)")


def _load_config(path):
    import json
    from pathlib import Path

    from srredsim.errors import SrredsimError

    p = Path(path)
    if not p.exists():
        raise SrredsimError(f"{p}: no such configuration file")
    try:
        text = p.read_text()
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        return json.loads(text)
    except Exception as exc:
        raise SrredsimError(f"{p}: cannot parse configuration ({exc})") from None


def run(args) -> int:
    import sys

    from srredsim.errors import SrredsimError
    from srredsim.simulate import SimulationConfig, parse_range, simulate_dataset

    output = opt.output_or_legacy(args)
    optics = opt.optics_from_args(args)
    values = {
        "size": args.size, "photons": parse_range(args.photons), "structures": args.structures,
        "target": args.target, "classical_photons": args.classical_photons,
        "k_fraction": parse_range(args.k_fraction), "modulation": parse_range(args.modulation),
        "optics": optics.model_dump(),
    }
    if args.config:
        values = _load_config(args.config)
        if not isinstance(values, dict):
            raise SrredsimError(f"{args.config}: expected a mapping of SimulationConfig fields")
    cfg = SimulationConfig.build(**values)
    out = simulate_dataset(output, cfg, count=args.count, test_count=args.test_count, seed=args.seed,
                           workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    if not args.quiet:
        print(f"srredsim simulate: wrote {args.count} training"
              + (f" and {args.test_count} test" if args.test_count else "")
              + f" stacks of {cfg.optics.frames}x{cfg.size}x{cfg.size} to {out}", file=sys.stderr)
    return 0
