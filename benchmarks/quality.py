"""Quality versus light: widefield, classical, RED-fairSIM and SR-REDSIM on held-out stacks.

The shape of the paper's comparison (Shah et al. 2021, Figs. 3-5), on simulated data with known
ground truth. For each light level (mean detected photons per camera pixel per raw frame) it
simulates held-out stacks (`srredsim.recipes.heldout_stack`: a seed, structure mix and pattern
angles the shipped models never saw in training), reconstructs them with every method and
scores them with the evaluation protocol (docs/physics.md) against

* the ground-truth structure on the 2x grid, and
* that ground truth band-limited to the SIM support.

Methods: upsampled widefield, the classical (fairSIM-equivalent) reconstruction, the shipped
SR-REDSIM model of the layout (--phases 5: sim-3x5, 3: sim-3x3), the shipped RED-fairSIM
(``red-fairsim``: the classical reconstruction, then a RED-Net; the paper's second method), each
network also on the pattern-removed stack (the standing control, srredsim.controls), and any
extra models given with --model NAME=PATH (e.g. a U-Net; see benchmarks/equal_budget.sh).

Prints the tables, the light-efficiency statements against the issue's targets, and writes
Markdown + CSV (default: benchmarks/results/quality.md, quality.csv).

    python benchmarks/quality.py                 # 5 levels x 4 stacks of 256^2 (~5 min on 2 cores)
    python benchmarks/quality.py --quick         # 3 levels x 1 stack of 128^2
    python benchmarks/quality.py --phases 3 --out benchmarks/results/quality_3x3.md
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photons", default="2,6,20,60,200")
    p.add_argument("--count", type=int, default=4, help="held-out stacks per light level")
    p.add_argument("--size", type=int, default=256, help="raw frame edge")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="extra model (run folder or package) to compare; repeatable")
    p.add_argument("--no-shipped", action="store_true", help="leave out the shipped model")
    p.add_argument("--phases", type=int, choices=[3, 5], default=5, help="phases per angle of the held-out stacks")
    p.add_argument("--quick", action="store_true", help="3 levels x 1 stack of 128^2")
    p.add_argument("--no-ceiling", action="store_true",
                   help="leave out the 'target: SIM support' row (the shipped models' noise-free training "
                        "target, scored like a result: a ceiling)")
    p.add_argument("--note", default="",
                   help="a sentence for the report saying where the extra models come from (budget, config)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "quality.md")
    args = p.parse_args(argv)
    if args.quick:
        args.photons, args.count, args.size = "2,20,200", 1, 128

    from srredsim.comparison import light_equivalent, markdown_tables, run_comparison, summarize
    from srredsim.controls import layout_optics
    from srredsim.redfairsim import RawStackModel
    from srredsim.runtime import open_model

    def opened(path):
        """A model for raw stacks: RED-fairSIM models run the classical step first (a stack
        without a pattern -- the control -- goes through as its widefield image)."""
        m = open_model(path)
        if m.frames == 1 and getattr(m, "scale", 2) == 1:
            return RawStackModel(m, layout_optics(args.phases), fallback="widefield")
        return m

    photons = tuple(float(x) for x in args.photons.split(","))
    models = {}
    if not args.no_shipped:
        name = "sim-3x5" if args.phases == 5 else "sim-3x3"
        models[f"SR-REDSIM {name}"] = opened(name)
        models["RED-fairSIM"] = opened("red-fairsim")
    for item in args.model:
        name, _, path = item.partition("=")
        if not path:
            p.error(f"--model expects NAME=PATH, got {item!r}")
        models[name] = opened(path)
    t0 = time.perf_counter()
    res = run_comparison(models, photons=photons, count=args.count, size=args.size,
                         progress=lambda m: print(m, file=sys.stderr, flush=True),
                         reference_images=not args.no_ceiling, phases=args.phases, controls=True)
    summary = summarize(res.rows)
    tables = markdown_tables(summary)
    lo = min(photons)
    hi = max(photons)

    def score(method, ph, metric="psnr", ref="truth"):
        r = next((x for x in summary if x["method"] == method and x["photons"] == ph and x["reference"] == ref), None)
        return None if r is None else r[metric]

    lines = []
    for ref in ("truth", "bandlimited"):
        lines.append(f"Against the {'ground truth' if ref == 'truth' else 'SIM-band-limited truth'}:")
        for m in models:  # (the ceiling row is noise-free: no light statement for it)
            eq = light_equivalent(summary, m, lo, reference=ref)
            eqs = light_equivalent(summary, m, lo, metric="ssim", reference=ref)
            fmt = lambda v: "n/a" if v is None else (f"> {hi:g}" if v == float("inf") else f"{v:.3g}")  # noqa: E731
            gains = [f"{ph:g}: {score(m, ph, ref=ref) - score('classical', ph, ref=ref):+.2f} dB"
                     for ph in photons]
            lines.append(f"- {m}: the classical reconstruction needs {fmt(eq)} photons (PSNR) / {fmt(eqs)} (SSIM) "
                         f"to match it at {lo:g} photons; PSNR gain over classical at " + ", ".join(gains))
        lines.append("")
    times = {k: sum(v) / len(v) for k, v in res.seconds.items()}
    head = [
        "# Quality versus light (benchmarks/quality.py)", "",
        f"Held-out simulated stacks: {args.count} per level, {3 * args.phases} x {args.size}^2, mixed structures, unseen seed and "
        "pattern angles (`srredsim.recipes`). Light = mean detected photons per camera pixel per raw frame / peak. "
        "Protocol: registration, 32-px border crop, affine intensity fit (docs/physics.md). Mean ± std over stacks.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (timings are indicative; benchmarks/inference.py measures speed); run took "
        f"{time.perf_counter() - t0:.0f} s; seconds per stack: "
        + ", ".join(f"{k} {v:.2f}" for k, v in times.items()) + ".", "",
        *([args.note, ""] if args.note else []),
        ("Extra models (run folders given with --model): " + ", ".join(m.partition("=")[0] for m in args.model) + "."
         if args.model
         else "A U-Net was not trained for this table (benchmarks/results/equal_budget.md compares one "
              "with SR-REDSIM at an equal CPU budget)."),
        "RED-fairSIM = the classical reconstruction of the same stack, then the shipped RED-Net (`red-fairsim`); "
        "its *(pattern removed)* row: the classical step finds no pattern and passes the Wiener-filtered widefield "
        "image on.", "",
        "## Light efficiency", "", *lines, "## Tables", "", tables]
    text = "\n".join(head)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    with open(args.out.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(res.rows[0]))
        w.writeheader()
        w.writerows(res.rows)
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
