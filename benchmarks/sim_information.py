"""Does each model take its resolution from the illumination pattern? The standing controls.

For every model (the shipped ones by default, or --model NAME=PATH) and its frame layout (3x5 or
3x3, from the model; a RED-fairSIM model -- classical reconstruction, then RED-Net -- runs in both
layouts), on data the models never saw in training (NA 1.4, 525 nm, 80 nm pixels):

1. held-out stacks (srredsim.recipes.heldout_stack: mixed filaments/vesicles/beads fields) at
   each light level: PSNR/SSIM/NRMSE against the ground truth and against the truth band-limited
   to the SIM support, for widefield, classical, and each model from the SIM stack and from the
   pattern-removed stack (every frame replaced by the mean frame);
2. a line-pair chart (srredsim.chart: pairs 60-300 nm apart, random orientations, pattern |k| at
   0.85 of the cutoff, modulation 0.8): mean dip visibility per spacing and the finest resolved
   spacing (mean visibility >= 0.15, about Rayleigh's dip), for the same methods and inputs.

It prints the tables and the issue's targets as computed pass/fail lines, and writes Markdown +
CSV (default benchmarks/results/sim_information.md/.csv). Protocol: docs/sim_information.md.

    python benchmarks/sim_information.py                     # shipped models, 4 stacks/level (~15 min)
    python benchmarks/sim_information.py --quick             # 1 stack of 128^2, 1 chart (~3 min)
    python benchmarks/sim_information.py --model probe=RUN --no-shipped
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the issues' targets (issue 10: SR-REDSIM; issue 15: RED-fairSIM), checked from the measurements below
TARGET_CHART = {(5, 200.0): 120.0, (5, 20.0): 140.0, (3, 200.0): 140.0}
#: RED-fairSIM: <= 140 nm at 20 photons in both layouts; at 200 photons what classical resolves (None)
TARGET_CHART_RED = {20.0: 140.0, 200.0: None}
CONTROL_SPACING_NM = 160
CONTROL_MAX_VISIBILITY = 0.15
CONTROL_MIN_GAIN_DB = 2.0
TARGET_GAIN_DB = {6.0: 3.0, 200.0: 1.0}


def _fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def heldout_table(summary, layout, methods, photons) -> str:
    head = ["method"] + [f"PSNR truth @{p:g}" for p in photons] + [f"SSIM truth @{p:g}" for p in photons] \
        + [f"PSNR band-lim. @{p:g}" for p in photons]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        cells = [m]
        for ref, key in (("truth", "psnr"), ("truth", "ssim"), ("bandlimited", "psnr")):
            for p in photons:
                r = [x for x in summary if (x["layout"], x["reference"], x["photons"], x["method"]) == (layout, ref, p, m)]
                cells.append(_fmt(r[0][key], 3 if key == "ssim" else 2) if r else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart_table(rows, layout, photons) -> str:
    sel = [r for r in rows if r["layout"] == layout and r["photons"] == photons]
    if not sel:
        return ""
    vkeys = [k for k in sel[0] if k.startswith("v")]
    head = ["method", "finest resolved"] + [f"{k[1:]} nm" for k in vkeys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sel:
        fin = f"{r['finest_resolved_nm']:.0f} nm" if r["finest_resolved_nm"] else "none"
        lines.append("| " + " | ".join([r["method"], fin] + [_fmt(r[k]) for k in vkeys]) + " |")
    return "\n".join(lines)


def target_lines(summary, chart, name, phases, photons, red: bool = False) -> list[str]:
    """The issue's targets as PASS/FAIL lines; ``red``: a RED-fairSIM model (issue 15's chart
    targets, in both layouts; the controls and PSNR targets are the same)."""
    from srredsim.controls import REMOVED

    layout = f"3x{phases}"
    out = []

    def psnr(method, p, ref="truth"):
        r = [x for x in summary if (x["layout"], x["reference"], x["photons"], x["method"]) == (layout, ref, p, method)]
        return r[0]["psnr"] if r else None

    def chart_row(method, p):
        r = [x for x in chart if (x["layout"], x["photons"], x["method"]) == (layout, p, method)]
        return r[0] if r else None

    chart_targets = ({(phases, p): lim for p, lim in TARGET_CHART_RED.items()} if red else TARGET_CHART)
    for (ph_layout, p), limit in chart_targets.items():
        if ph_layout != phases:
            continue
        r = chart_row(name, p)
        if r is None:
            continue
        fin = r["finest_resolved_nm"]
        c = chart_row("classical", p)
        if limit is None:  # keep the classical resolution
            limit = c["finest_resolved_nm"] if c and c["finest_resolved_nm"] else None
            if limit is None:
                continue
        ok = fin is not None and fin <= limit
        out.append(f"- {'PASS' if ok else 'FAIL'}: chart at {p:g} photons resolves "
                   f"{fin if fin else 'nothing'} nm (target <= {limit:g} nm; classical "
                   f"{c['finest_resolved_nm'] if c and c['finest_resolved_nm'] else 'nothing'} nm)")
    for p in sorted({x["photons"] for x in chart if x["layout"] == layout}):
        r = chart_row(f"{name} ({REMOVED})", p)
        if r and f"v{CONTROL_SPACING_NM}" in r:
            v = r[f"v{CONTROL_SPACING_NM}"]
            out.append(f"- {'PASS' if v < CONTROL_MAX_VISIBILITY else 'FAIL'}: pattern removed, {p:g} photons: "
                       f"{CONTROL_SPACING_NM} nm visibility {v:.2f} (must be < {CONTROL_MAX_VISIBILITY})")
    for p in photons:
        a, b = psnr(name, p), psnr(f"{name} ({REMOVED})", p)
        if a is not None and b is not None and p >= 200:
            out.append(f"- {'PASS' if a - b >= CONTROL_MIN_GAIN_DB else 'FAIL'}: held-out {p:g} photons: SIM "
                       f"{a:.2f} dB vs pattern removed {b:.2f} dB (gain {a - b:+.2f} dB, must be >= "
                       f"{CONTROL_MIN_GAIN_DB:g})")
        if p in TARGET_GAIN_DB and a is not None:
            c = psnr("classical", p)
            need = TARGET_GAIN_DB[p]
            out.append(f"- {'PASS' if a - c >= need else 'FAIL'}: held-out {p:g} photons vs truth: {a:.2f} dB, "
                       f"classical {c:.2f} dB ({a - c:+.2f} dB, target >= +{need:g})")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH", help="a model to test; repeatable")
    p.add_argument("--no-shipped", action="store_true", help="leave out the shipped models")
    p.add_argument("--photons", default="6,200", help="held-out light levels")
    p.add_argument("--chart-photons", default="20,200")
    p.add_argument("--count", type=int, default=4, help="held-out stacks per level")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--chart-count", type=int, default=2, help="charts per level (10 pairs per spacing each)")
    p.add_argument("--chart-first", type=int, default=0,
                   help="index of the first chart; e.g. 2 scores charts the default run never does (a check "
                        "that a model chosen on charts 0-1 holds on others)")
    p.add_argument("--engine", default="auto")
    p.add_argument("--quick", action="store_true", help="1 stack of 128^2 per level, 1 chart")
    p.add_argument("--output", "-o", type=Path, default=ROOT / "benchmarks" / "results" / "sim_information.md")
    args = p.parse_args(argv)
    if args.quick:
        args.count, args.size, args.chart_count = 1, 128, 1

    from srredsim.controls import ControlSettings, chart_rows, heldout_rows, summarize_heldout
    from srredsim.runtime import open_model
    from srredsim.pretrained import SHIPPED

    specs = []
    if not args.no_shipped:
        specs += [(name, name) for name in SHIPPED]  # (default is one of them)
    for item in args.model:
        if "=" not in item:
            p.error(f"--model expects NAME=PATH, got {item!r}")
        specs.append(tuple(item.split("=", 1)))
    if not specs:
        p.error("no models: give --model NAME=PATH or drop --no-shipped")
    from srredsim.controls import layout_optics
    from srredsim.redfairsim import RawStackModel

    by_layout: dict[int, dict] = {}
    red_models: list[tuple[str, object]] = []
    for name, path in specs:
        model = open_model(path, engine=args.engine)
        if model.frames == 1 and getattr(model, "scale", 2) == 1:  # RED-fairSIM: any layout
            red_models.append((name, model))
            continue
        if model.frames % 3:
            p.error(f"{name}: {model.frames} frames is not 3 angles x phases")
        by_layout.setdefault(model.frames // 3, {})[name] = model
    for phases in sorted(set(by_layout) | ({3, 5} if red_models else set())):
        for name, model in red_models:  # the pattern-removed stack goes through as widefield (no pattern)
            by_layout.setdefault(phases, {})[name] = RawStackModel(model, layout_optics(phases), fallback="widefield")
    photons = tuple(float(x) for x in args.photons.split(","))
    chart_photons = tuple(float(x) for x in args.chart_photons.split(","))
    t0 = time.time()
    held, chart = [], []
    for phases, models in sorted(by_layout.items(), reverse=True):
        s = ControlSettings(phases=phases, photons=photons, count=args.count, size=args.size,
                            chart_photons=chart_photons, chart_count=args.chart_count, chart_first=args.chart_first)
        log = lambda msg: print(f"[{time.time() - t0:6.0f} s] {msg}", flush=True)  # noqa: E731
        held += heldout_rows(models, s, progress=log)
        chart += chart_rows(models, s, progress=log)
    summary = summarize_heldout(held)

    import platform

    from srredsim.hardware import cpu_model

    lines = ["# The standing controls: SIM stack vs pattern-removed stack",
             "", f"`python benchmarks/{Path(__file__).name} {' '.join(argv if argv is not None else sys.argv[1:])}`"
             f" — {time.strftime('%Y-%m-%d')}, {cpu_model()}, Python {platform.python_version()}, "
             f"{time.time() - t0:.0f} s.", "",
             "Held-out data never used in training: NA 1.4, 525 nm, 80 nm camera pixels, 2-beam; "
             f"{args.count} stacks of {args.size}² per light level (mixed filaments, vesicles, beads); light = mean "
             "detected photons per camera pixel per raw frame. *(pattern removed)* = the same stack with every "
             "frame replaced by the mean frame. Protocol: docs/sim_information.md.", ""]
    for phases, models in sorted(by_layout.items(), reverse=True):
        layout = f"3x{phases}"
        methods = [m for m in dict.fromkeys(r["method"] for r in summary if r["layout"] == layout)]
        lines += [f"## Layout {layout}", "", "### Held-out stacks (mean over stacks)", "",
                  heldout_table(summary, layout, methods, photons), ""]
        for cp in chart_photons:
            lines += [f"### Line-pair chart, {cp:g} photons: mean dip visibility per spacing "
                      f"({args.chart_count * 10} pairs each)", "", chart_table(chart, layout, cp), ""]
        lines += ["### Targets (issue 10: SR-REDSIM; issue 15: RED-fairSIM)", ""]
        for name, model in models.items():
            red = isinstance(model, RawStackModel)
            lines += [f"**{name}**" + (" (RED-fairSIM: classical reconstruction, then RED-Net)" if red else ""), ""]
            lines += target_lines(summary, chart, name, phases, photons, red=red) + [""]
    text = "\n".join(lines)
    print(text)
    out = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in summary for k in r)))
        w.writeheader()
        w.writerows(summary)
    chart_csv = out.with_name(out.stem + "_chart.csv")
    with open(chart_csv, "w", newline="") as fh:
        keys = list(dict.fromkeys(k for r in chart for k in r))
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(chart)
    print(f"wrote {out}, {out.with_suffix('.csv').name}, {chart_csv.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
