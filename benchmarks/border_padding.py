"""Border handling for prediction: which extension of the image gives the best result near its borders?

A network sees, for every output pixel, a window of raw pixels around it (SR-REDSIM: ~42 raw
pixels of radius). Near an image border part of that window lies outside the image, and what is put
there decides the result. This benchmark compares, on simulated held-out stacks with ground truth:

* ``none``       no extension: the network's own zero padding, layer by layer (srredsim before 2026-12)
* ``symmetric``  mirror, edge pixel repeated (numpy ``symmetric``; ImgLib2 ``extendMirrorDouble``:
                 what JDLL/DeepImageJ does, and bioimageio.core's default)
* ``reflect``    mirror, edge pixel not repeated (numpy ``reflect``; ImgLib2 ``extendMirrorSingle``)
* ``edge``       the edge pixel replicated
* ``constant``   zeros (in normalised units) beyond the border

each extending by the model's halo (48 raw pixels). The images are *crops*: a held-out stack
(`srredsim.recipes.heldout_stack`, a field the shipped models never saw) is simulated with a margin,
and its centre is cut out, so that structures run across the crop's borders as in a camera
image. ``true context`` predicts the whole simulated field and crops the result: what a perfect
extension would give (the ceiling).

Scoring: every prediction is mapped onto the ground truth with one least-squares gain/offset, fitted
on the crop's interior (at least one halo from every border, where all extensions give the same
prediction), then PSNR (against the truth's data range) and NRMSE are computed in bands of distance
from the nearest border, in raw pixels: 0-4, 4-12, 12-24, 24-48 and the interior (>= 48).

    python benchmarks/border_padding.py            # sim-3x5, 2 light levels x 4 stacks
    python benchmarks/border_padding.py --quick    # default only, 1 level x 2 stacks
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

MODES = ("none", "symmetric", "reflect", "edge", "constant")
BANDS = ((0, 4), (4, 12), (12, 24), (24, 48), (48, None))


def band_masks(h: int, w: int, bands=BANDS):
    """Boolean masks on the 2x output grid, by distance (raw pixels) from the nearest border."""
    import numpy as np

    yy, xx = np.mgrid[0:2 * h, 0:2 * w]
    d_out = np.minimum(np.minimum(yy, 2 * h - 1 - yy), np.minimum(xx, 2 * w - 1 - xx))
    d = d_out / 2.0  # in raw pixels
    out = {}
    for lo, hi in bands:
        out[(lo, hi)] = (d >= lo) & (d < hi) if hi is not None else (d >= lo)
    return out


def band_name(b) -> str:
    lo, hi = b
    return f"{lo}-{hi} px" if hi is not None else f">= {lo} px"


def score(pred, truth, masks):
    """Per band: PSNR and NRMSE of ``pred`` after a gain/offset fitted on the interior band."""
    import numpy as np

    from srredsim.metrics import data_range

    interior = masks[BANDS[-1]]
    x, y = pred[interior].astype(np.float64), truth[interior].astype(np.float64)
    xm, ym = x.mean(), y.mean()
    a = float(np.mean((x - xm) * (y - ym)) / max(np.mean((x - xm) ** 2), 1e-30))
    b = ym - a * xm
    fitted = a * pred.astype(np.float64) + b
    rng = data_range(truth)
    out = {}
    for band, m in masks.items():
        err = fitted[m] - truth[m]
        mse = float(np.mean(err ** 2))
        out[band] = {"psnr": 10 * np.log10(rng ** 2 / mse) if mse > 0 else float("inf"),
                     "nrmse": float(np.sqrt(mse) / max(np.sqrt(np.mean(truth[m].astype(np.float64) ** 2)), 1e-30))}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="sim-3x5", help="shipped model names or paths, comma-separated")
    p.add_argument("--photons", default="20,200")
    p.add_argument("--count", type=int, default=4, help="held-out stacks per light level")
    p.add_argument("--size", type=int, default=192, help="edge of the crop in raw pixels")
    p.add_argument("--quick", action="store_true", help="default model, 1 level x 2 stacks of 128^2, prints only")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "border_padding.md")
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.photons, args.count, args.size = "default", "200", 2, 128

    import numpy as np

    from srredsim.runtime import open_model
    from srredsim.predict import predict_stack
    from srredsim.recipes import heldout_stack

    photons = [float(v) for v in args.photons.split(",")]
    rows = []
    t0 = time.perf_counter()
    for name in args.models.split(","):
        model = open_model(name)
        halo = model.halo
        margin = 2 * halo  # the simulated field is larger; structures cross the crop's borders
        masks = band_masks(args.size, args.size)
        for ph in photons:
            for index in range(args.count):
                stack = heldout_stack(ph, size=args.size + 2 * margin, index=index, targets=("truth",))
                raw_full = stack.raw
                truth_full = stack.targets.get("truth", stack.truth)
                raw = raw_full[:, margin:margin + args.size, margin:margin + args.size]
                truth = truth_full[2 * margin:2 * (margin + args.size), 2 * margin:2 * (margin + args.size)]
                preds = {}
                for mode in MODES:
                    preds[mode] = predict_stack(model.predict_fn, raw, model.normalization, halo=halo,
                                                multiple=model.size_multiple, border=None if mode == "none" else mode)
                # the ceiling: the whole field predicted (normalised on its own statistics), then cropped
                full = predict_stack(model.predict_fn, raw_full, model.normalization, halo=halo,
                                     multiple=model.size_multiple, border=None)
                preds["true context"] = full[2 * margin:2 * (margin + args.size), 2 * margin:2 * (margin + args.size)]
                for mode, pred in preds.items():
                    s = score(pred, truth, masks)
                    for band, v in s.items():
                        rows.append({"model": name, "photons": ph, "index": index, "mode": mode,
                                     "band": band_name(band), **v})
                print(f"  {name} {ph:g} photons stack {index}: done ({time.perf_counter() - t0:.0f} s)",
                      file=sys.stderr, flush=True)

    # mean PSNR per model x mode x band, and the difference to 'none' and to 'true context'
    modes = list(MODES) + ["true context"]
    bands = [band_name(b) for b in BANDS]
    summary = []
    for name in args.models.split(","):
        for mode in modes:
            r = {"model": name, "mode": mode}
            for b in bands:
                vals = [x["psnr"] for x in rows if x["model"] == name and x["mode"] == mode and x["band"] == b]
                r[b] = float(np.mean(vals))
            summary.append(r)
    lines = []
    head = "| model | border | " + " | ".join(f"PSNR {b}" for b in bands) + " | mean 0-24 px vs none | vs true context |"
    lines += [head, "|" + "---|" * (len(bands) + 4)]
    for name in args.models.split(","):
        ref_none = next(r for r in summary if r["model"] == name and r["mode"] == "none")
        ref_true = next(r for r in summary if r["model"] == name and r["mode"] == "true context")
        for r in (x for x in summary if x["model"] == name):
            near = bands[:3]
            d_none = np.mean([r[b] - ref_none[b] for b in near])
            d_true = np.mean([r[b] - ref_true[b] for b in near])
            lines.append(f"| {name} | {r['mode']} | " + " | ".join(f"{r[b]:.2f}" for b in bands)
                         + f" | {d_none:+.2f} dB | {d_true:+.2f} dB |")
    best = {}
    for name in args.models.split(","):
        cand = [r for r in summary if r["model"] == name and r["mode"] in MODES]
        best[name] = max(cand, key=lambda r: np.mean([r[b] for b in bands[:3]]))["mode"]
    table = "\n".join(lines)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent).stdout.strip()
    except OSError:
        commit = "?"
    header = (f"# Border handling near image borders\n\n"
              f"`python benchmarks/border_padding.py {' '.join(argv or sys.argv[1:])}`; commit {commit}; "
              f"{platform.machine()} {os.cpu_count()} cores; {time.perf_counter() - t0:.0f} s.\n\n"
              f"Crops of {args.size}² raw pixels from held-out fields (photons {args.photons}, {args.count} stacks "
              "each); PSNR in dB against the ground truth after one gain/offset fitted on the interior, mean over "
              "stacks and light levels, in bands of distance from the nearest border (raw pixels). "
              "'mean 0-24 px': the mean PSNR difference over the three outer bands.\n\n")
    verdict = "\n\nBest extension near the borders (mean PSNR over 0-24 px): " + ", ".join(
        f"{k}: **{v}**" for k, v in best.items()) + ".\n"
    print(header + table + verdict)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(header + table + verdict)
        with open(args.out.with_suffix(".csv"), "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
            wr.writeheader()
            wr.writerows(rows)
        print(f"wrote {args.out} and {args.out.with_suffix('.csv')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
