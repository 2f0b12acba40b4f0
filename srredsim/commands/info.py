"""srredsim info RUN"""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.commands import _options as opt

HELP = "show a model's architecture, parameter count, FLOPs and training configuration"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, help="run folder, RunConfig file, or shipped model name (sim-3x5, sim-3x3, "
                                          "red-fairsim, default)")
    p.add_argument("--summary", action="store_true", help="also print the layer-by-layer Keras summary")
    p.add_argument("--size", type=int, default=512,
                   help="input edge for the FLOP count (raw frames; for RED-fairSIM the reconstruction)")
    opt.add_json(p, "the facts")


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
    m, s, n, t = cfg.model, args.size, cfg.normalization, cfg.train
    facts = {
        "model": m.model_dump(), "parameters": model.count_params(),
        "weight_layers": sum(1 for layer in model.layers if layer.weights),
        "size_multiple": size_multiple(m), "gflop": conv_flops(model, s, s) / 1e9, "gflop_size": s,
        "optics": cfg.optics.model_dump(), "normalization": n.model_dump(), "train": t.model_dump(),
        "patch_size": cfg.data.patch_size, "weights": None, "history": None,
    }
    if run is not None:
        try:
            facts["weights"] = run.weights_path("best").name
        except SrredsimError:
            facts["weights"] = None
        hist = read_history(run.path / "history.csv")
        if hist:
            best = min(hist, key=lambda r: r.get("val_loss", float("inf")))
            facts["history"] = {"epochs": len(hist), "best_epoch": best["epoch"],
                                "val_loss": best.get("val_loss"), "val_psnr": best.get("val_psnr")}
    if args.json:
        print(opt.json_text(facts))
        return 0
    print(f"model:          {m.architecture}  ({facts['parameters']:,} parameters, {facts['weight_layers']} weight layers)")
    if m.architecture == "sr_redsim":
        print(f"                filters {m.filters}, depth {m.depth} ({2 * m.depth + 1} Conv2D + "
              f"{2 * m.depth + 1} Conv2DTranspose + 2 up-sampling layers)")
    elif m.architecture == "red_net":
        print(f"                RED-fairSIM's RED-Net: filters {m.filters}, depth {m.depth} ({2 * m.depth + 1} Conv2D + "
              f"{2 * m.depth + 2} Conv2DTranspose, the input added to the output)")
    else:
        print(f"                base filters {m.unet_base_filters}, {m.unet_levels} levels; H, W multiple of "
              f"{facts['size_multiple']}")
    o = m.scale * s
    print(f"FLOPs:          {facts['gflop']:.1f} GFLOP per {s}x{s} -> {o}x{o} pass")
    optics = (f"pixel size {cfg.optics.pixel_size_um} um, NA {cfg.optics.na}, emission {cfg.optics.wavelength_nm} nm")
    if m.takes_raw:
        print(f"input:          {m.in_channels} frames ({cfg.optics.angles} angles x {cfg.optics.phases} phases), {optics}")
    else:
        print(f"input:          one classical SIM reconstruction on the 2x grid (of a 3x3 or 3x5 raw stack; "
              f"default raw optics: {optics})")
        print(f"classical step: Wiener {m.classical_wiener:g}, apodisation cutoff {m.classical_apo_cutoff:g}, bend "
              f"{m.classical_apo_bend:g} (the settings it was trained on; fairSIM's defaults are 0.05, 2, 0.9)")
    if n.mode == "global":
        print(f"normalisation:  global min/max  x [{n.x_min}, {n.x_max}]  y [{n.y_min}, {n.y_max}]")
    else:
        print(f"normalisation:  per-image percentiles {n.low_percentile} / {n.high_percentile}")
    budget = f" (or {t.max_minutes:g} min, whichever ends first)" if t.max_minutes else ""
    print(f"training:       up to {t.epochs} epochs{budget}, {t.steps_per_epoch or 'auto'} steps/epoch, batch "
          f"{t.batch_size}, Adam lr {t.learning_rate}, loss {t.loss}, {cfg.data.patch_size}px patches, seed {t.seed}")
    if run is not None:
        print(f"weights:        {facts['weights'] or 'none (untrained)'}")
        h = facts["history"]
        if h:
            print(f"history:        {h['epochs']} epochs; best epoch {h['best_epoch']}: val_loss "
                  f"{h['val_loss'] if h['val_loss'] is not None else float('nan'):.4g}, val_psnr "
                  f"{h['val_psnr'] if h['val_psnr'] is not None else float('nan'):.2f} dB")
    # how this machine runs the model (from the per-user cache; nothing is measured here)
    from srredsim.hardware import cpu_model, cpu_path

    print(f"CPU:            {cpu_model()}, CPU path {cpu_path()}")
    if run is not None and run.has_weights():
        from srredsim.runtime import read_model

        with read_model(run.path) as artifact:
            print(f"predict runs:   {artifact.auto_choice()}")
            print(f"context:        {artifact.halo_line()}")
        from srredsim.runtime.quantize import int8_status

        print(f"int8:           {int8_status()}")
    if args.summary:
        model.summary()
    return 0
