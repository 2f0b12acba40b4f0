"""The recipe behind the pretrained default model: its training data and its held-out test set.

Training stacks (``training_stack``) and held-out stacks (``heldout_stack``) differ in three
ways, so that the comparison in ``benchmarks/quality.py`` measures generalisation rather than
memory:

* **seed** -- training uses seed stream ``(TRAIN_SEED, i)``, held-out ``(HELDOUT_SEED, i)``;
* **structure mix** -- each training stack holds *one* kind of structure (filaments 45 %,
  vesicles 45 %, beads 10 %) at a random density 0.5-2; held-out stacks hold all three
  overlapping in one field (``mixed``, density 1);
* **pattern angles** -- the direction of the first illumination angle (modulo the 60 degrees
  between angles) is drawn from [0, 25) U [35, 60) degrees for training and from [25, 35) for
  held-out stacks. Training therefore uses no rotation/flip augmentation, which would map
  training angles onto held-out ones.

Light: training photons are log-uniform in 1-300 mean detected photons per camera pixel per
raw frame (about 10-6000 peak photons, structure-dependent); every training stack carries all
three targets (``truth``, ``bandlimited``, ``classical``) so the choice of target can be measured.

``python -m srredsim.recipes training-data -o OUT --count N --workers W`` writes
``OUT/trainx`` and one folder per target, ``OUT/<target>/{trainx -> ../trainx, trainy}``, plus a
validation split in ``testx``/``testy``, ready for ``srredsim train OUT/truth ...``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError, atomic_dir
from srredsim.simulate import TARGETS, SimulatedStack, SimulationConfig, simulate_stack

TRAIN_SEED = 20210
HELDOUT_SEED = 99173
TRAIN_PHOTONS = (1.0, 300.0)
HELDOUT_ANGLE_BAND_DEG = (25.0, 35.0)
ANGLE_PERIOD_DEG = 60.0  # 180 / 3 angles


def default_optics() -> OpticsConfig:
    """The default model's optics: OpticsConfig's defaults (NA 1.4 oil, 525 nm emission, 80 nm camera
    pixels, 3x5, 2-beam), the one place they are written."""
    return OpticsConfig()


def _training_angle(rng: np.random.Generator) -> float:
    lo, hi = HELDOUT_ANGLE_BAND_DEG
    width = ANGLE_PERIOD_DEG - (hi - lo)
    a = rng.uniform(0.0, width)
    return float(a if a < lo else a + (hi - lo))


def training_config(size: int = 128, structures: str = "filaments", density: float = 1.0,
                    angle_deg: float = 0.0, photons=TRAIN_PHOTONS, truth_blur_px: float = 1.0) -> SimulationConfig:
    return SimulationConfig(size=size, optics=default_optics(), photons=photons, structures=structures,
                            density=density, angle_offset_deg=angle_deg, target="truth",
                            truth_blur_px=truth_blur_px)


def training_stack(index: int, size: int = 128, seed: int = TRAIN_SEED,
                   targets=TARGETS, truth_blur_px: float = 1.0) -> SimulatedStack:
    """Training stack ``index``: one structure kind, random density and an in-band angle."""
    rng = np.random.default_rng([seed, index, 1])
    kind = rng.choice(["filaments", "vesicles", "beads"], p=[0.45, 0.45, 0.10])
    density = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    cfg = training_config(size, str(kind), density, _training_angle(rng), truth_blur_px=truth_blur_px)
    return simulate_stack(cfg, seed=(seed, index), targets=list(targets))


def heldout_config(photons: float, size: int = 256, index: int = 0, seed: int = HELDOUT_SEED,
                   phases: int = 5) -> SimulationConfig:
    rng = np.random.default_rng([seed, index, 2])
    angle = float(rng.uniform(*HELDOUT_ANGLE_BAND_DEG))
    optics = default_optics().model_copy(update={"phases": phases})
    return SimulationConfig(size=size, optics=optics, photons=float(photons), structures="mixed",
                            density=1.0, angle_offset_deg=angle, target="truth")


def heldout_stack(photons: float, size: int = 256, index: int = 0, seed: int = HELDOUT_SEED,
                  targets=("truth", "bandlimited"), phases: int = 5) -> SimulatedStack:
    """Held-out stack ``index`` at a given light level (mixed structures, out-of-band angle).

    The structure and pattern depend on ``(seed, index)`` only, not on ``photons``, so a light
    series shows the same field at every level.
    """
    return simulate_stack(heldout_config(photons, size, index, seed, phases), seed=(seed, index),
                          targets=list(targets))


# ---------------------------------------------------------------------------------------------
# the SIM recipe: content and acquisitions that force a network to use the pattern
# ---------------------------------------------------------------------------------------------
SIM_SEED = 31337
SIM_PHOTONS = (1.0, 1000.0)
SIM_WAVELENGTH_NM = (490.0, 570.0)  # cutoff 0.39-0.46 cycles per 80 nm raw pixel at NA 1.4
SIM_K_FRACTION = (0.70, 0.98)
SIM_MODULATION = (0.2, 0.95)
EASY_PHOTONS = (50.0, 1000.0)  # the sim-easy curriculum stage
EASY_K_FRACTION = (0.75, 0.95)
EASY_MODULATION = (0.6, 0.95)
SIM_WEAK_PATTERN = 0.06  # share of stacks with an almost absent pattern (modulation 0-0.1)


def sim_training_config(rng: np.random.Generator, size: int = 128, phases: int = 5,
                        truth_blur_px: float = 1.0, easy: bool = False) -> SimulationConfig:
    """A randomised acquisition of generic content (srredsim.content) for one training stack.

    Randomised over the range of 2-beam 2D-SIM / TIRF-SIM systems: emission wavelength (so the
    OTF cutoff in cycles per pixel varies by +-8 % around the model's), pattern |k| 0.70-0.98 of
    the cutoff (one value per stack, 1 % between angles, as on a real system), any orientation,
    angle errors up to ~2 degrees, modulation 0.2-0.95 per angle (and a few stacks with an almost
    absent pattern, where nothing beyond widefield can be learned), phase-step errors, OTF damping
    and aberrations, haze, bleaching, 1-1000 photons, camera gain/read noise/offset.
    """
    if easy:  # the first curriculum stage: clear patterns and plenty of light (see module docstring)
        return SimulationConfig(
            size=size, optics=default_optics().model_copy(update={"phases": phases}), photons=EASY_PHOTONS,
            structures="generic", density=float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))), target="truth",
            k_fraction=EASY_K_FRACTION, modulation=EASY_MODULATION, angle_offset_deg=None, haze=(0.0, 0.3),
            truth_blur_px=truth_blur_px)
    optics = OpticsConfig(na=1.4, wavelength_nm=float(rng.uniform(*SIM_WAVELENGTH_NM)), pixel_size_um=0.08,
                          angles=3, phases=phases, beams=2)
    k0 = float(rng.uniform(*SIM_K_FRACTION))
    if rng.random() < SIM_WEAK_PATTERN:
        mod = (0.0, 0.1)
    else:
        m0 = float(rng.uniform(*SIM_MODULATION))
        mod = (max(0.2, 0.85 * m0), min(0.95, 1.15 * m0))
    return SimulationConfig(
        size=size, optics=optics, photons=SIM_PHOTONS, structures="generic",
        density=float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))), target="truth",
        k_fraction=(k0 * 0.995, min(1.2, k0 * 1.005)), modulation=mod, angle_offset_deg=None,
        angle_jitter_deg=float(rng.uniform(0.2, 2.0)), phase_jitter_rad=float(rng.uniform(0.0, 0.15)),
        intensity_fluctuation=float(rng.uniform(0.0, 0.06)), bleaching=(0.0, 0.3), haze=(0.0, 1.0),
        otf_damping=(0.15, 0.7), aberration_waves=0.1, gain=(0.5, 4.0), read_noise_e=(0.5, 3.0),
        offset_adu=(50.0, 200.0), truth_blur_px=truth_blur_px)


def sim_training_stack(index: int, size: int = 128, seed: int = SIM_SEED, phases: int = 5,
                       targets=TARGETS, truth_blur_px: float = 1.0, easy: bool = False) -> SimulatedStack:
    """Training stack ``index`` of the SIM recipe (see :func:`sim_training_config`)."""
    rng = np.random.default_rng([seed, index, phases, 3])
    cfg = sim_training_config(rng, size, phases, truth_blur_px, easy=easy)
    return simulate_stack(cfg, seed=(seed, index, phases), targets=list(targets))


# ---------------------------------------------------------------------------------------------
# writing the training folders
# ---------------------------------------------------------------------------------------------
RECIPES = ("sim", "sim-easy", "bio")


def _write(job):
    folder, split, index, size, seed, targets, blur, recipe, phases = job
    from srredsim.tiff import write_sr_image, write_tiff

    if recipe in ("sim", "sim-easy"):
        stack = sim_training_stack(index, size, seed, phases, targets=targets, truth_blur_px=blur,
                                   easy=recipe == "sim-easy")
    else:
        stack = training_stack(index, size, seed, targets=targets, truth_blur_px=blur)
    folder = Path(folder)
    name = f"{split}_{index:05d}"
    px = stack.params["pixel_size_um"]
    write_tiff(folder / f"{split}x" / f"{name}.tif", stack.raw, pixel_size_um=px, axes="ZYX")
    for t in targets:
        write_sr_image(folder / t / f"{split}y" / f"{name}.tif", stack.targets[t], raw_pixel_size_um=px)
    (folder / "params" / f"{name}.json").write_text(json.dumps(stack.params) + "\n")
    return stack.params["photons"]["mean"], stack.params["photons"]["peak"]


def write_training_data(out: str | os.PathLike, count: int, val_count: int = 16, size: int = 128,
                        workers: int = 1, seed: int | None = None, progress: bool = True,
                        targets=TARGETS, truth_blur_px: float = 1.0, recipe: str = "sim",
                        phases: int = 5, overwrite: bool = False) -> Path:
    """Write training data with the chosen targets: ``recipe="sim"`` (generic content and
    randomised acquisitions, :func:`sim_training_config`; ``phases`` 5 or 3) or ``"bio"`` (the
    first models' filaments/vesicles/beads recipe, 3x5 only)."""
    if recipe not in RECIPES:
        raise SrredsimError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if recipe == "bio" and phases != 5:
        raise SrredsimError("the 'bio' recipe simulates 3x5 stacks only")
    if seed is None:
        seed = {"sim": SIM_SEED, "sim-easy": SIM_SEED + 1}.get(recipe, TRAIN_SEED)
    from tqdm import tqdm

    if count < 1 or val_count < 0 or workers < 1:
        raise SrredsimError("count and workers must be at least 1, val_count at least 0")
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for sub in ["trainx", "testx", "params"]:
            (tmp / sub).mkdir()
        for t in targets:
            (tmp / t / "trainy").mkdir(parents=True)
            (tmp / t / "testy").mkdir(parents=True)
            os.symlink("../trainx", tmp / t / "trainx")
            os.symlink("../testx", tmp / t / "testx")
        targets = tuple(targets)
        jobs = [(str(tmp), "train", i, size, seed, targets, truth_blur_px, recipe, phases) for i in range(count)]
        jobs += [(str(tmp), "test", count + i, size, seed, targets, truth_blur_px, recipe, phases)
                 for i in range(val_count)]
        bar = tqdm(total=len(jobs), desc="training data", unit="stack", disable=not progress)
        photons = []
        if workers == 1:
            for j in jobs:
                photons.append(_write(j))
                bar.update()
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(workers) as pool:
                for res in pool.imap_unordered(_write, jobs, chunksize=4):
                    photons.append(res)
                    bar.update()
        bar.close()
        pm = np.array(photons)
        (tmp / "recipe.json").write_text(json.dumps({
            "recipe": recipe, "phases": phases,
            "count": count, "val_count": val_count, "size": size, "seed": seed,
            "targets": list(targets), "truth_blur_px": truth_blur_px,
            "photons_mean_range": [float(pm[:, 0].min()), float(pm[:, 0].max())],
            "photons_peak_range": [float(pm[:, 1].min()), float(pm[:, 1].max())],
            "heldout_angle_band_deg": HELDOUT_ANGLE_BAND_DEG}, indent=1) + "\n")
    return out


def main(argv=None) -> int:
    """``python -m srredsim.recipes``: the srredsim command line's vocabulary (-o/--output, --overwrite,
    --quiet, --test-count); errors are one line on stderr with exit code 2."""
    import sys

    from srredsim.commands import _options as opt

    p = argparse.ArgumentParser(prog="python -m srredsim.recipes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("training-data", help="write the default model's training data (all targets)")
    opt.add_output(t, "output folder (refused if it exists, unless --overwrite)", metavar="DIR")
    opt.add_legacy_positional(t, "legacy_output", "-o/--output", "OUT")
    opt.add_overwrite(t, "an existing output folder (replaced only once the new one is complete)")
    opt.add_quiet(t)
    t.add_argument("--count", type=int, default=3000, help="training stacks (default 3000)")
    t.add_argument("--test-count", type=int, default=32, help="validation stacks in testx/ (default 32)")
    opt.add_legacy(t, "--val-count", "test_count", "--test-count", type=int)
    t.add_argument("--size", type=int, default=128, help="raw frame edge in pixels (default 128)")
    t.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all CPUs)")
    t.add_argument("--seed", type=int, default=None, help="default: the recipe's own seed")
    t.add_argument("--recipe", choices=RECIPES, default="sim",
                   help="sim: generic content and randomised acquisitions (the shipped models); sim-easy: "
                        "the same content with clear patterns and plenty of light (the first curriculum "
                        "stage); bio: filaments/vesicles/beads at fixed optics (the first models)")
    t.add_argument("--phases", type=int, choices=[3, 5], default=5, help="phases per angle (3 angles)")
    t.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets to write")
    t.add_argument("--truth-blur", type=float, default=1.0,
                   help="Gaussian sigma (2x-grid pixels) of the truth target; 0 = the exact ground truth")
    args = p.parse_args(argv)
    for note in opt.deprecation_notes(args):
        print(f"python -m srredsim.recipes: note: {note}", file=sys.stderr)
    try:
        out = opt.output_or_legacy(args)
        write_training_data(out, args.count, args.test_count, args.size, args.workers, args.seed,
                            progress=not args.quiet, targets=[t for t in args.targets.split(",") if t],
                            truth_blur_px=args.truth_blur, recipe=args.recipe, phases=args.phases,
                            overwrite=args.overwrite)
    except SrredsimError as exc:
        print(f"python -m srredsim.recipes: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
