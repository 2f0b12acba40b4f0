#!/usr/bin/env python
"""SR-REDSIM step by step: the seed notebook's workflow, written with srredsim's Python API.

The seed notebook (Shah et al., Photonics Research 9, B168, 2021) loaded a folder of raw SIM
stacks and reference images, scaled them with one global min/max, built SR-REDSIM, trained it,
predicted a test stack, looked at the result and saved the model. This script does the same on
*simulated* data, so it runs anywhere without downloads, and adds the steps a real project needs:
a classical reconstruction to compare against, scores against the known ground truth, and a
bioimage.io package for Fiji/DeepImageJ that is validated before you ship it.

    python examples/seed_workflow.py -o /tmp/srredsim-example --quick   # ~1 minute, tiny network
    python examples/seed_workflow.py -o /tmp/srredsim-example           # a few minutes on 2 cores
    python examples/seed_workflow.py -o runs/paper --full               # the paper's settings (GPU)

Steps (each prints what it does):

 1. simulate a data folder ``DATA/trainx trainy testx testy`` (+ ``truth/``, ``params/``)
    with :func:`srredsim.simulate.simulate_dataset`;
 2. load and pair it (:func:`srredsim.pairs.find_pairs`, :class:`srredsim.pairs.PairedData`);
 3. normalisation: the paper's global min/max versus per-image percentiles;
 4. build SR-REDSIM (:func:`srredsim.models.build_sr_redsim`);
 5. train (:func:`srredsim.train.train`) into a run folder;
 6. predict a test stack (:func:`srredsim.runtime.open_model`, its ``predict``)
    and reconstruct it classically (:func:`srredsim.classical.reconstruct`);
 7. look at the result: ``result.png`` (raw frame | widefield | classical | SR-REDSIM | truth);
 8. score it against the ground truth (:func:`srredsim.evaluate.score_images`);
 9. export a bioimage.io package (:func:`srredsim.export.api.export_run`) and validate it
    (:func:`srredsim.export.validate.validate_package`).

Everything lands in ``--output``; ``summary.json`` there records settings, timings and scores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

# Environment before TensorFlow/Keras/bioimageio are imported: Keras on TensorFlow, no GUI for
# matplotlib, quiet TensorFlow, and bioimageio tools that never wait long for the network.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("BIOIMAGEIO_HTTP_TIMEOUT", "3")

MARKER = "summary.json"  # written by this script; --overwrite only removes folders that have it

# Three sizes of the same workflow. Light: mean detected photons per camera pixel per raw frame,
# drawn log-uniformly per stack, so the data set mixes dim and bright stacks.
PRESETS = {
    "quick": dict(size=64, train=8, test=1, photons=(10.0, 200.0), filters=8, depth=2, patch=32,
                  patches_per_image=8, batch=4, epochs=3, validate=("onnx",)),
    "default": dict(size=128, train=24, test=2, photons=(10.0, 200.0), filters=24, depth=4, patch=48,
                    patches_per_image=8, batch=4, epochs=8, validate=None),
    "full": dict(size=256, train=128, test=4, photons=(10.0, 200.0), filters=64, depth=10, patch=128,
                 patches_per_image=8, batch=1, epochs=100, validate=None),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="The seed notebook's SR-REDSIM workflow on simulated data: simulate, pair, normalise, "
                    "build, train, predict, look, score, export, validate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", dest="out", type=Path, help="output folder (created; must be empty or absent)")
    out.add_argument("--out", dest="out", type=Path, help=argparse.SUPPRESS)  # the old spelling
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="tiny: 64 px stacks, 8 filters, depth 2, 3 epochs (about a minute on 2 cores)")
    size.add_argument("--full", action="store_true",
                      help="the paper's network and schedule: 64 filters, depth 10, batch 1, 100 epochs "
                           "(hours on a CPU; use a GPU)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    p.add_argument("--normalization", choices=["percentile", "global"], default="percentile",
                   help="percentile: every stack scaled by its own 0.1/99.9 percentiles (srredsim's default); "
                        "global: one min/max over the training set, as in the paper")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop training after the epoch that passes this many minutes (train.max_minutes)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the simulation and of the training (weights, patches, TensorFlow op determinism)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --output if it holds the results of an earlier run of this script")
    return p.parse_args(argv)


# ---- narration ----------------------------------------------------------------------------------
_T0 = time.perf_counter()


def step(n: int, title: str, text: str = "") -> None:
    print(f"\n[{n}/9] {title}   (t = {time.perf_counter() - _T0:.0f} s)", flush=True)
    if text:
        print(textwrap.indent(textwrap.fill(" ".join(text.split()), 96), "      "), flush=True)


def say(text: str) -> None:
    print(textwrap.indent(text, "      "), flush=True)


# ---- the figure ---------------------------------------------------------------------------------
def result_figure(path: Path, panels: list[tuple[str, "np.ndarray"]], raw_px_um: float, title: str) -> Path:
    """One row of images with the same field of view: raw frame (raw grid) and 2x images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.4), squeeze=False)
    for ax, (name, img) in zip(axes[0], panels):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = np.percentile(a, [0.5, 99.8])
        fov = a.shape[0] * (raw_px_um if a.shape[0] == panels[0][1].shape[0] else raw_px_um / 2)
        ax.imshow(a, cmap="magma", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest",
                  extent=(0, fov, fov, 0))
        ax.set_title(f"{name}\n{a.shape[1]}x{a.shape[0]} px", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_xlabel(f"field of view {panels[0][1].shape[1] * raw_px_um:.2f} um")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


# ---- the workflow -------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full" if args.full else "default"
    s = dict(PRESETS[mode])
    if args.epochs is not None:
        s["epochs"] = args.epochs
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        if args.overwrite and (out / MARKER).is_file():
            shutil.rmtree(out)
        else:
            sys.exit(f"{out} exists and is not empty" + (
                "; --overwrite only replaces a folder written by this script (it has summary.json)"
                if args.overwrite else "; choose another --output or pass --overwrite"))
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    summary = {"mode": mode, "settings": s, "normalization": args.normalization, "seed": args.seed}

    import numpy as np

    print(f"SR-REDSIM seed workflow ({mode} settings) -> {out}")

    # 1. simulate ------------------------------------------------------------------------------
    from srredsim.recipes import default_optics
    from srredsim.simulate import SimulationConfig, simulate_dataset

    step(1, "simulate a training folder",
         f"The seed expects DATA/trainx/*.tif (raw stacks: 15 frames = 3 angles x 5 phases, angle-major) "
         f"and DATA/trainy/*.tif (references on the 2x grid), paired by file name. We simulate "
         f"{s['train']} training and {s['test']} test stacks of {s['size']}x{s['size']} pixels: mixed "
         f"filaments, vesicles and beads; NA 1.4, 525 nm emission, 80 nm camera pixels, 2-beam SIM; "
         f"{s['photons'][0]:g}-{s['photons'][1]:g} mean photons per pixel per frame; Poisson and camera "
         f"noise. The reference (trainy) is the known ground-truth structure, lightly blurred.")
    t = time.perf_counter()
    optics = default_optics()
    sim = SimulationConfig.build(size=s["size"], optics=optics, photons=s["photons"], structures="mixed",
                                 target="truth")
    data = simulate_dataset(out / "data", sim, count=s["train"], test_count=s["test"], seed=args.seed,
                            progress=False)
    timings["simulate"] = time.perf_counter() - t
    say(f"wrote {data}: " + ", ".join(f"{d.name}/ ({len(list(d.iterdir()))})" for d in sorted(data.iterdir())
                                       if d.is_dir()) + f" in {timings['simulate']:.1f} s")
    say("truth/ holds the exact ground truth and params/ the exact pattern parameters of every stack.")

    # 2. load and pair -------------------------------------------------------------------------
    from srredsim.config import NormalizationConfig
    from srredsim.pairs import PairedData, find_pairs

    step(2, "load and pair the data",
         "find_pairs() pairs trainx/ with trainy/ by file name and names any file without a partner; "
         "PairedData reads every pair, checks 15 frames and a reference of exactly twice the raw size, "
         "and records the statistics both normalisations need.")
    pairs = find_pairs(data, "train")
    test_pairs = find_pairs(data, "test")
    paired = PairedData(pairs, frames=optics.frames, norm=NormalizationConfig())
    p0 = paired.pairs[0]
    say(f"{len(pairs)} training pair(s), {len(test_pairs)} test pair(s); e.g. {p0.x_path.name}: raw {p0.shape} "
        f"-> reference {(2 * p0.shape[1], 2 * p0.shape[2])}")

    # 3. normalisation -------------------------------------------------------------------------
    from srredsim.normalization import normalize_raw

    step(3, "normalisation: global min/max (paper) versus per-image percentiles",
         "The paper scales all raw stacks with one min/max over the whole training set (and the "
         "references with theirs) to [0, 1]. With stacks at different light levels a dim stack then "
         "fills only a sliver of [0, 1]. Per-image percentile scaling maps every stack to about [0, 1] "
         "whatever its brightness. Whichever you train with is stored in the model's config and "
         "applied identically by predict, by the exported package and in Fiji.")
    stats = paired.global_stats()
    glob = NormalizationConfig(mode="global", **stats)
    perc = NormalizationConfig(mode="percentile")
    say(f"global statistics over the training set: raw {stats['x_min']:.0f}..{stats['x_max']:.0f} ADU, "
        f"reference {stats['y_min']:.3g}..{stats['y_max']:.3g}")
    params = {p.stem: json.loads(p.read_text()) for p in sorted((data / "params").glob("*.json"))}
    say(f"{'stack':<11} {'photons':>7} {'raw range (ADU)':>16}   {'global: mean  p99.9':>20}   "
        f"{'percentile: mean  p99.9':>24}")
    order = sorted(range(len(paired)), key=lambda i: params[paired.pairs[i].x_path.stem]["photons"]["mean"])
    for i in [order[0], order[len(order) // 2], order[-1]]:
        x, _ = paired.arrays(i)
        g, q = normalize_raw(x, glob), normalize_raw(x, perc)
        name = paired.pairs[i].x_path.stem
        say(f"{name:<11} {params[name]['photons']['mean']:7.1f} {x.min():7.0f}..{x.max():<7.0f}   "
            f"{g.mean():12.3f} {np.percentile(g, 99.9):6.3f}   {q.mean():16.3f} {np.percentile(q, 99.9):6.3f}")
    say(f"training with: {args.normalization}" + (" (the paper's choice)" if args.normalization == "global"
                                                   else " (srredsim's default; --normalization global for the paper's)"))

    # 4. build ---------------------------------------------------------------------------------
    import keras

    from srredsim.models import SR_REDSIM_PARAMS_64, build_sr_redsim, conv_flops

    step(4, "build SR-REDSIM",
         f"RED-Net style encoder-decoder at the raw resolution: {2 * s['depth'] + 1} 3x3 convolutions, "
         f"{s['depth']} decoder blocks with symmetric additive skips, then a learned 2x up-sampling "
         f"(Conv2DTranspose, stride 2). The paper's network has 64 filters and depth 10 "
         f"({SR_REDSIM_PARAMS_64:,} parameters); this run uses {s['filters']} filters and depth {s['depth']}.")
    net = build_sr_redsim(in_channels=optics.frames, filters=s["filters"], depth=s["depth"])
    probe = net.predict_on_batch(np.zeros((1, 64, 64, optics.frames), np.float32))
    weight_layers = [l for l in net.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    say(f"{len(weight_layers)} weight layers, {net.count_params():,} parameters, "
        f"{conv_flops(net, 512, 512) / 1e9:.1f} GFLOP per 512x512 stack; "
        f"(1, 64, 64, 15) -> {tuple(probe.shape)}")
    say("train() builds the same network from the run's config (model.filters, model.depth), so the\n"
        "run folder alone is enough to rebuild it later.")
    del net

    # 5. train ---------------------------------------------------------------------------------
    from srredsim.config import RunConfig
    from srredsim.train import train

    run_dir = out / "run"
    # The run's configuration, as one would write it in YAML for `srredsim train --config`.
    cfg = RunConfig.from_dict({
        "model": {"architecture": "sr_redsim", "filters": s["filters"], "depth": s["depth"]},
        "normalization": {"mode": args.normalization},
        "data": {"patch_size": s["patch"], "patches_per_image": s["patches_per_image"]},
        "train": {"epochs": s["epochs"], "batch_size": s["batch"], "learning_rate": 1e-3, "loss": "mse",
                  "seed": args.seed, "max_minutes": args.max_minutes},
        "metadata": {"name": "SR-REDSIM example",
                     "training_data": f"{s['train']} stacks simulated with srredsim.simulate "
                                      "(examples/seed_workflow.py)"},
    })
    steps = -(-s["patches_per_image"] * len(pairs) // s["batch"])
    step(5, "train",
         f"MSE loss, Adam (learning rate 1e-3), as in the paper. Training runs on random paired patches "
         f"({s['patch']}x{s['patch']} raw -> {2 * s['patch']}x{2 * s['patch']} reference, rotated/flipped "
         f"alike), {s['patches_per_image']} per image and epoch, batch {s['batch']}: {steps} steps per epoch, "
         f"{s['epochs']} epochs; validation on the test pairs. Seeded (--seed {args.seed}): weights, patches "
         f"and TensorFlow's ops are deterministic. The run folder {run_dir} is the model: "
         f"config.json, weights_best/last, history.csv, training_curve.png.")
    t = time.perf_counter()
    run = train(data, run_dir, cfg, verbose=2)
    timings["train"] = time.perf_counter() - t
    say(f"trained in {timings['train']:.0f} s; stored normalisation: {run.config.normalization.mode}"
        + (f" (x {run.config.normalization.x_min:.0f}..{run.config.normalization.x_max:.0f} ADU)"
           if run.config.normalization.mode == "global" else ""))

    # 6. predict + classical -------------------------------------------------------------------
    from srredsim.classical import SimParams, reconstruct
    from srredsim.errors import SrredsimError
    from srredsim.runtime import open_model
    from srredsim.tiff import read_raw_stack, read_reference, write_sr_image

    x_path, y_path = test_pairs[0]
    raw, meta = read_raw_stack(x_path, frames=optics.frames)
    truth, _ = read_reference(data / "truth" / x_path.name)
    tp = params[x_path.stem]
    step(6, f"predict the test stack {x_path.name} ({tp['photons']['mean']:.1f} photons/pixel/frame)",
         "open_model() loads the run folder (any exported model works too); its predict() normalises the "
         "stack as in training, runs the network (in overlapping tiles if the image is large) and maps the "
         "output back. For comparison the same stack is reconstructed classically (fairSIM-style: pattern "
         "estimation, band separation, Wiener filter) and the widefield image is the frame mean.")
    model = open_model(run_dir)
    t = time.perf_counter()
    sr = model.predict(raw)
    timings["predict"] = time.perf_counter() - t
    write_sr_image(out / "sr-redsim.tif", sr, raw_pixel_size_um=optics.pixel_size_um)
    t = time.perf_counter()
    try:
        rec = reconstruct(raw, optics)
        how = "estimated"
    except SrredsimError as exc:  # very dim or tiny stacks: fall back to the simulator's true pattern
        known = SimParams.from_dict({"angles": tp["angles"], "phases": tp["phases"], "beams": tp["beams"],
                                     "size": tp["size"], "pixel_size_um": tp["pixel_size_um"]})
        rec = reconstruct(raw, optics, params=known)
        how = f"true (estimation failed: {exc})"
    timings["classical"] = time.perf_counter() - t
    write_sr_image(out / "classical.tif", rec.sr, raw_pixel_size_um=optics.pixel_size_um)
    say(f"SR-REDSIM {raw.shape} -> {sr.shape} in {timings['predict']:.2f} s on {model.engine}; "
        f"classical in {timings['classical']:.2f} s (pattern parameters {how}); "
        f"written: sr-redsim.tif, classical.tif")

    # 7. look ----------------------------------------------------------------------------------
    from srredsim.evaluate import comparison_figure

    step(7, "look at the result",
         "result.png: one raw frame (camera resolution), widefield, classical SIM, SR-REDSIM and the ground "
         "truth over the same field of view; spectra.png adds their power spectra (srredsim's "
         "comparison_figure): resolution shows as the radius of the spectrum's support.")
    panels = [("raw frame 1 of 15", raw[0]), ("widefield", rec.widefield), ("classical SIM", rec.sr),
              ("SR-REDSIM", sr), ("ground truth", truth)]
    result_figure(out / "result.png", panels, optics.pixel_size_um,
                  f"{x_path.name}: {tp['photons']['mean']:.1f} mean photons/pixel/frame "
                  f"(peak {tp['photons']['peak']:.0f})")
    comparison_figure(truth, {"widefield": rec.widefield, "classical": rec.sr, "SR-REDSIM": sr},
                      out / "spectra.png", pixel_size_um=optics.pixel_size_um / 2)
    say(f"wrote {out / 'result.png'} and {out / 'spectra.png'}")

    # 8. score ---------------------------------------------------------------------------------
    from srredsim.evaluate import markdown_table, score_images, write_table

    border = min(32, s["size"] // 4)
    step(8, "score against the ground truth",
         f"score_images(): sub-pixel registration, a {border}-pixel border crop, a least-squares affine "
         "intensity fit, then PSNR, SSIM and NRMSE against the true structure (and FRC resolution).")
    rows = score_images(truth, {"widefield": rec.widefield, "classical": rec.sr, "SR-REDSIM": sr},
                        pixel_size_um=optics.pixel_size_um / 2, border=border)
    write_table(rows, out / "scores.csv", out / "scores.md")
    say(markdown_table(rows, ["name", "psnr", "ssim", "nrmse", "frc_resolution_nm"]).rstrip())
    best = max(rows, key=lambda r: r["psnr"])["name"]
    say(f"best PSNR: {best}." + (" A network this small and this briefly trained is not expected to beat the "
                                 "classical reconstruction; the pretrained 'default' model (srredsim demo) does."
                                 if mode != "full" and best != "SR-REDSIM" else ""))

    # 9. export and validate -------------------------------------------------------------------
    from srredsim.export.api import export_run
    from srredsim.export.checks import failed_checks, format_table
    from srredsim.export.validate import validate_package

    package = out / "sr-redsim-example.bioimageio.zip"
    step(9, "export a bioimage.io package and validate it",
         "export_run() writes the Keras weights, an ONNX file (opset 17) and a TensorFlow SavedModel into "
         "one bioimage.io package with the normalisation as pre-processing, the test stack as test "
         "input, documentation and a cover; every engine must reproduce Keras to 1e-4 before the zip "
         "appears. validate_package() runs bioimageio.core's own test, engine parity and the DeepImageJ "
         "lint rules, offline." + (" (--quick: bioimageio.core tests the ONNX weights only.)"
                                   if s["validate"] else ""))
    t = time.perf_counter()
    export_run(run_dir, "bioimageio", package, overwrite=True, test_input=x_path, test_size=s["size"],
               log=lambda m: say(m))
    timings["export"] = time.perf_counter() - t
    t = time.perf_counter()
    results = validate_package(package, weight_formats=s["validate"])
    timings["validate"] = time.perf_counter() - t
    table = format_table(results)
    (out / "validation.txt").write_text(table + "\n")
    say(table)
    failed = failed_checks(results)

    timings["total"] = time.perf_counter() - _T0
    summary.update({
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "test_stack": x_path.name, "photons": tp["photons"],
        "scores": [{k: r.get(k) for k in ("name", "psnr", "ssim", "nrmse")} for r in rows],
        "prediction": {"shape": list(sr.shape), "finite": bool(np.all(np.isfinite(sr))),
                       "min": float(sr.min()), "max": float(sr.max())},
        "validation_failed": [r.name for r in failed],
        "outputs": {k: str(v) for k, v in {"data": data, "run": run_dir, "package": package,
                                           "figure": out / "result.png", "spectra": out / "spectra.png",
                                           "scores": out / "scores.csv", "prediction": out / "sr-redsim.tif"}.items()},
    })
    (out / MARKER).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\ndone in {timings['total']:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()
                                                          if k != "total") + f"); summary: {out / MARKER}")
    print(f"next: srredsim predict {package} {x_path} -o sr.tif   |   open {package.name} in Fiji with DeepImageJ")
    if failed:
        print("the package FAILED validation: " + ", ".join(r.name for r in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
