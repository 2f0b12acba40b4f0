"""``srredsim train DATA -o RUN [--config FILE] [overrides]``"""

from __future__ import annotations

import argparse
from pathlib import Path

from srredsim.commands import _options as opt
from srredsim.config import ModelConfig, NormalizationConfig, TrainConfig, literal_choices

HELP = "train SR-REDSIM (or the U-Net) on a trainx/trainy data folder; the run folder is the model"
DESCRIPTION = (
    "Train on DATA/trainx (raw stacks) and DATA/trainy (references), paired by file name; "
    "DATA/testx, DATA/testy are used for validation when present. Defaults are the paper's "
    "(MSE, Adam 1e-3, batch 1, 100 epochs) on random patches. The run folder RUN receives "
    "config.json, weights_best/weights_last, history.csv, training_curve.png and TensorBoard "
    "logs. A killed run continues with --resume. Set TF_CONFIG for multi-worker training.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, help="data folder with trainx/ and trainy/")
    opt.add_output(p, "run folder to create (or to continue with --resume)", required=True, legacy=("--out",),
                   metavar="RUN")
    opt.add_overwrite(p, "an existing run folder (it is deleted before training starts)")
    opt.add_quiet(p)
    p.add_argument("--config", type=Path, help="configuration file (YAML or JSON, a RunConfig)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --output")
    p.add_argument("--init-from", type=Path, metavar="RUN|WEIGHTS",
                   help="start from trained weights (fine-tuning), e.g. the pretrained default model")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--batch-size", type=int, help="override train.batch_size")
    p.add_argument("--learning-rate", type=float, help="override train.learning_rate")
    p.add_argument("--steps-per-epoch", type=int, help="override train.steps_per_epoch")
    p.add_argument("--patch-size", type=int, help="override data.patch_size (raw pixels)")
    # choices from the configuration's Literal fields, so that the two cannot drift apart
    p.add_argument("--architecture", choices=literal_choices(ModelConfig, "architecture"),
                   help="override model.architecture (model.in_channels follows: 1 for red_net, the raw frames "
                        "otherwise, unless --set model.in_channels=N)")
    p.add_argument("--filters", type=int, help="override model.filters")
    p.add_argument("--depth", type=int, help="override model.depth")
    p.add_argument("--normalization", choices=literal_choices(NormalizationConfig, "mode"),
                   help="override normalization.mode")
    p.add_argument("--seed", type=int, help="override train.seed")
    p.add_argument("--strategy", choices=literal_choices(TrainConfig, "strategy"), help="override train.strategy")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other override, e.g. --set data.augment=false")


def run(args) -> int:
    cfg = run_config(args)
    if args.overwrite:
        _remove_old_run(args.output, args.data)
    from srredsim.train import train

    # --resume without --epochs keeps the saved run's epoch count (not the default configuration's)
    keep_saved = args.resume and args.epochs is None
    train(args.data, args.output, None if keep_saved else cfg, resume=args.resume, verbose=0 if args.quiet else None,
          init_from=args.init_from)
    return 0


def run_config(args):
    """The RunConfig the flags describe (``--config``, the override flags, ``--set``), checked
    before anything is written or trained; separate from :func:`run` so that it can be tested
    without training."""
    from srredsim.config import RunConfig, parse_set_option

    cfg = RunConfig.load(args.config) if args.config else RunConfig()
    overrides = {
        "train.epochs": args.epochs, "train.batch_size": args.batch_size,
        "train.learning_rate": args.learning_rate, "train.steps_per_epoch": args.steps_per_epoch,
        "data.patch_size": args.patch_size, "model.architecture": args.architecture,
        "model.filters": args.filters, "model.depth": args.depth,
        "normalization.mode": args.normalization, "train.seed": args.seed,
        "train.strategy": args.strategy,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}  # flags that were given
    overrides.update(parse_set_option(args.set))
    from srredsim.errors import SrredsimError

    if args.resume:
        extra = [k for k in overrides if k != "train.epochs"]
        if extra or args.config:
            raise SrredsimError("--resume continues the saved configuration; only --epochs may be changed "
                                f"(got {', '.join(extra) or '--config'})")
        if args.overwrite:
            raise SrredsimError("--resume continues the run in --output, --overwrite replaces it: choose one")
    architecture = overrides.get("model.architecture")  # --architecture or --set model.architecture=
    if isinstance(architecture, str) and "model.in_channels" not in overrides:
        # the input channels follow the architecture (and the optics), as the config's check demands
        angles, phases = (overrides.get(f"optics.{k}", getattr(cfg.optics, k)) for k in ("angles", "phases"))
        frames = angles * phases if isinstance(angles, int) and isinstance(phases, int) else cfg.optics.frames
        overrides["model.in_channels"] = ModelConfig.channels_for(architecture, frames)
    return cfg.with_overrides(overrides)


def _remove_old_run(out: Path, data: Path) -> None:
    """--overwrite: delete an existing run folder, after the cheap checks (data pairs) have passed."""
    from srredsim.errors import SrredsimError
    from srredsim.pairs import find_pairs
    from srredsim.runfolder import remove_run_folder

    if out.exists() and out.resolve() in (Path(data).resolve(), *Path(data).resolve().parents):
        raise SrredsimError(f"{out} holds the training data; choose another --output")
    find_pairs(data)  # a bad data folder fails before the old run is gone
    remove_run_folder(out)
