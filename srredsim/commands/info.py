"""srredsim info RUN"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "show a model's architecture, parameter count, FLOPs and training configuration"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="run folder, RunConfig file, or pretrained model name ('default', 'faithful')")
    p.add_argument("--summary", action="store_true", help="also print the layer-by-layer Keras summary")
    p.add_argument("--size", type=int, default=512, help="raw image edge for the FLOP count")


def run(args) -> int:
    from srredsim.config import RunConfig
    from srredsim.errors import SrredsimError
    from srredsim.runfolder import load_run
    from srredsim.train import read_history

    if args.run.is_file() and args.run.suffix.lower() in (".json", ".yaml", ".yml"):
        cfg, run = RunConfig.load(args.run), None
    else:
        run = load_run(args.run)
        cfg = run.config
    from srredsim.models import build_model, conv_flops, size_multiple

    model = build_model(cfg.model)
    m = cfg.model
    weight_layers = sum(1 for layer in model.layers if layer.weights)
    print(f"model:          {m.architecture}  ({model.count_params():,} parameters, {weight_layers} weight layers)")
    if m.architecture == "sr_redsim":
        print(f"                filters {m.filters}, depth {m.depth} ({2 * m.depth + 1} Conv2D + "
              f"{2 * m.depth + 1} Conv2DTranspose + 2 up-sampling layers)")
    else:
        print(f"                base filters {m.unet_base_filters}, {m.unet_levels} levels; H, W multiple of {size_multiple(m)}")
    s = args.size
    print(f"FLOPs:          {conv_flops(model, s, s) / 1e9:.1f} GFLOP per {s}x{s} -> {2 * s}x{2 * s} pass")
    print(f"input:          {m.in_channels} frames ({cfg.optics.angles} angles x {cfg.optics.phases} phases), "
          f"pixel size {cfg.optics.pixel_size_um} um, NA {cfg.optics.na}, emission {cfg.optics.wavelength_nm} nm")
    n = cfg.normalization
    if n.mode == "global":
        print(f"normalisation:  global min/max  x [{n.x_min}, {n.x_max}]  y [{n.y_min}, {n.y_max}]")
    else:
        print(f"normalisation:  per-image percentiles {n.low_percentile} / {n.high_percentile}")
    t = cfg.train
    budget = f" (or {t.max_minutes:g} min, whichever ends first)" if t.max_minutes else ""
    print(f"training:       up to {t.epochs} epochs{budget}, {t.steps_per_epoch or 'auto'} steps/epoch, batch "
          f"{t.batch_size}, Adam lr {t.learning_rate}, loss {t.loss}, {cfg.data.patch_size}px patches, seed {t.seed}")
    if run is not None:
        try:
            weights = run.weights_path("best").name
        except SrredsimError:
            weights = "none (untrained)"
        hist = read_history(run.path / "history.csv")
        print(f"weights:        {weights}")
        if hist:
            best = min(hist, key=lambda r: r.get("val_loss", float("inf")))
            print(f"history:        {len(hist)} epochs; best epoch {best['epoch']}: val_loss "
                  f"{best.get('val_loss', float('nan')):.4g}, val_psnr {best.get('val_psnr', float('nan')):.2f} dB")
    # how this machine runs the model (from the per-user cache; nothing is measured here)
    from srredsim.hardware import cpu_model, cpu_path

    print(f"CPU:            {cpu_model()}, CPU path {cpu_path()}")
    if run is not None and run.has_weights():
        from srredsim.runtime import auto_choice

        print(f"predict runs:   {auto_choice(run.path)}")
    if args.summary:
        model.summary()
    return 0
