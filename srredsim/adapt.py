"""``srredsim adapt``: a model for your own microscope, from your own raw stacks, without ground truth.

1. **Measure** every raw stack (:func:`srredsim.datacheck.check_stack`): the pattern of every
   angle (``|k|`` relative to the OTF cutoff, direction and sense of rotation, modulation), the
   camera and light (gain, offset, mean photons: photon transfer from the stack's own noise) and
   the share of background light.
2. **Simulate** training pairs that look like them (:func:`srredsim.simulate.simulate_stack` with
   the user's optics and angles × phases, generic content that no prior can guess, the measured
   pattern ``|k|``, directions, modulation and light, each widened a little). The simulator
   steps its angles by ``+180°/A``; a system that steps the other way is simulated mirrored
   (rows and columns swapped), which reverses the sense of rotation.
3. **Fine-tune** a pretrained model (``--from``, default ``default``; a 3x5 model becomes a 3x3
   one by :mod:`srredsim.layouts`) on them within the time budget (:func:`srredsim.train.train`,
   bf16 where the CPU has it), into a run folder that ``predict`` and ``export`` take. Its
   ``config.json`` records the user's optics and the measured training range; ``adapt.json``
   what was measured and simulated.

Resumable like ``train``: ``--resume`` re-measures the same stacks, finds (or rebuilds,
deterministically) the same simulated data in the cache and continues the interrupted run for
another budget.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from srredsim.config import OpticsConfig, RunConfig, TrainingRange
from srredsim.errors import SrredsimError, atomic_dir, atomic_path

ADAPT_JSON = "adapt.json"
PATCH = 64
BATCH = 4
STEPS_PER_EPOCH = 16  # short epochs, so the time budget is kept to within about one epoch
LEARNING_RATE = 2e-4  # fine-tuning: a fifth of the paper's rate
SIM_SIZE = 128
K_SLACK = 0.01  # measured |k|/cutoff span widened by ±1 %
ANGLE_JITTER_DEG = 1.0
SIM_SECONDS_SHARE = 0.25  # at most this share of the budget goes to simulation


@dataclass
class Acquisition:
    """What the user's stacks show, summarised for the simulator."""

    optics: OpticsConfig
    k_fraction: tuple[float, float]
    modulation: tuple[float, float]
    photons: tuple[float, float]
    haze: tuple[float, float]
    angle_offset_deg: float | None  # first angle's direction for the simulator (None: random)
    mirrored: bool  # simulate with rows and columns swapped (angles step by -180°/A)
    stacks: list[dict[str, Any]] = field(default_factory=list)  # per stack: what was measured
    notes: list[str] = field(default_factory=list)
    content: str = "generic"  # structures of the simulated training fields (srredsim.simulate)

    def training_range(self) -> TrainingRange:
        from srredsim.model_optics import cutoff_per_pixel

        c = cutoff_per_pixel(self.optics)
        return TrainingRange(cutoff_cycles_per_px=(c, c), k_fraction=self.k_fraction,
                             modulation=self.modulation, photons=self.photons)

    def simulation_config(self, size: int = SIM_SIZE, truth_blur_px: float = 0.0):
        from srredsim.simulate import SimulationConfig

        return SimulationConfig.build(
            size=size, optics=self.optics, photons=self.photons, structures=self.content,
            target="truth", k_fraction=self.k_fraction, modulation=self.modulation,
            angle_offset_deg=self.angle_offset_deg,
            angle_jitter_deg=ANGLE_JITTER_DEG if self.angle_offset_deg is not None else 0.5,
            haze=self.haze, truth_blur_px=truth_blur_px)

    def to_dict(self) -> dict[str, Any]:
        return {"optics": self.optics.model_dump(), "k_fraction": list(self.k_fraction),
                "modulation": list(self.modulation), "photons": list(self.photons), "haze": list(self.haze),
                "angle_offset_deg": self.angle_offset_deg, "mirrored": self.mirrored,
                "stacks": self.stacks, "notes": self.notes, "content": self.content}


# ---------------------------------------------------------------------------------------------
# 1. measure
# ---------------------------------------------------------------------------------------------
def _rotation(dirs_deg: Sequence[float], angles: int) -> tuple[float | None, bool]:
    """The simulator's first-angle direction for measured band directions (full circle), and
    whether to mirror; ``(None, False)`` when the directions do not step by ±180°/A."""
    step = 180.0 / angles
    dirs = np.asarray(dirs_deg, float)
    for mirrored in (False, True):
        d = (90.0 - dirs) if mirrored else dirs  # swapping rows and columns maps θ to 90° − θ
        expected = d[0] + step * np.arange(angles)
        err = (d - expected + 180.0) % 360.0 - 180.0
        if np.all(np.abs(err) < 4.0):
            return float(d[0] % 360.0), mirrored
    return None, False


def _span(values: Sequence[float], widen: float, lo_clip: float, hi_clip: float) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    return (max(lo_clip, lo * (1 - widen)), min(hi_clip, hi * (1 + widen)))


def measure_acquisition(stacks: Sequence[tuple[str, np.ndarray]], optics: OpticsConfig,
                        order: str = "angle-major") -> Acquisition:
    """Summarise the user's stacks (name, raw array) into what the simulator needs."""
    from srredsim.datacheck import check_stack

    ks, mods, photons, haze, dirs, per_stack, notes = [], [], [], [], [], [], []
    for name, raw in stacks:
        check = check_stack(raw, optics, order=order, name=name)
        notes += check.lines(notes=False)
        meas = check.measurement
        if meas is None or any(f.code in ("frame-order", "phase-steps") for f in check.warnings):
            notes.append(f"{name}: not used (no clear pattern in the given order and layout)")
            continue
        ks += meas.k_fraction
        mods.append(float(np.median(np.minimum(meas.modulation, 1.0))))
        dirs.append(meas.angle_deg)
        entry = {"name": name, "k_fraction": meas.k_fraction, "angle_deg": meas.angle_deg,
                 "modulation": meas.modulation}
        if meas.noise is not None:
            photons.append(meas.noise.photons)
            haze.append(meas.noise.background_fraction)
            entry.update(photons=meas.noise.photons, gain=meas.noise.gain, offset=meas.noise.offset,
                         background_fraction=meas.noise.background_fraction)
        per_stack.append(entry)
    if not per_stack:
        raise SrredsimError("adapt: no stack shows a usable SIM pattern with these optics, layout and order "
                            "(" + "; ".join(notes[-3:]) + ")")
    offset, mirrored = _rotation(dirs[0], optics.angles)
    if offset is None:
        notes.append("pattern directions do not step by 180°/angles: simulating random orientations")
    kf = _span(ks, K_SLACK, 0.1, 1.2)
    mod = _span(mods, 0.2, 0.05, 1.0)
    if photons:
        ph = (max(1e-3, 0.5 * min(photons)), min(1e6, 2.0 * max(photons)))
    else:
        ph = (1.0, 1000.0)
        notes.append("photon level not measurable (the OTF fills the spectrum): simulating 1-1000 photons")
    if haze:
        f = float(np.median(haze))
        h = min(2.0, f / max(1e-3, 1 - f))  # background light relative to the in-focus light, roughly
        hz = (0.5 * h, min(3.0, 1.5 * h + 0.1))
    else:
        hz = (0.1, 0.6)
    return Acquisition(optics=optics, k_fraction=kf, modulation=mod, photons=ph, haze=hz,
                       angle_offset_deg=offset, mirrored=mirrored, stacks=per_stack, notes=notes)


# ---------------------------------------------------------------------------------------------
# 2. simulate
# ---------------------------------------------------------------------------------------------
def _data_key(acq: Acquisition, count: int, val_count: int, seed: int, truth_blur_px: float) -> str:
    text = json.dumps({"sim": acq.simulation_config(truth_blur_px=truth_blur_px).model_dump(mode="json"),
                       "mirrored": acq.mirrored, "count": count, "val": val_count, "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_adapted_data(folder: Path, acq: Acquisition, count: int, val_count: int, seed: int,
                       truth_blur_px: float = 0.0, progress: bool = True, deadline: float | None = None) -> Path:
    """Simulate ``count`` training and ``val_count`` validation pairs like the user's stacks into
    ``folder`` (trainx/trainy/testx/testy), atomically. With ``deadline`` (a ``time.monotonic``
    value) fewer training pairs are written when time runs out (at least 16)."""
    from tqdm import tqdm

    from srredsim.simulate import simulate_stack
    from srredsim.tiff import write_sr_image, write_tiff

    cfg = acq.simulation_config(truth_blur_px=truth_blur_px)
    px = acq.optics.pixel_size_um
    with atomic_dir(folder, overwrite=True) as tmp:
        for sub in ("trainx", "trainy", "testx", "testy"):
            (tmp / sub).mkdir()
        jobs = [("test", count + j) for j in range(val_count)] + [("train", i) for i in range(count)]
        written = 0
        with tqdm(total=len(jobs), desc="simulate", unit="stack", disable=not progress) as bar:
            for split, index in jobs:
                if split == "train" and deadline is not None and written >= 16 and time.monotonic() > deadline:
                    break
                st = simulate_stack(cfg, seed=(seed, index), targets=["truth"])
                raw, target = st.raw, st.targets["truth"]
                if acq.mirrored:
                    raw, target = raw.transpose(0, 2, 1), target.T
                name = f"{split}_{index:05d}.tif"
                write_tiff(tmp / f"{split}x" / name, np.ascontiguousarray(raw), pixel_size_um=px, axes="ZYX")
                write_sr_image(tmp / f"{split}y" / name, np.ascontiguousarray(target), raw_pixel_size_um=px)
                written += split == "train"
                bar.update()
        (tmp / "adapt_data.json").write_text(json.dumps({
            "simulation": cfg.model_dump(mode="json"), "mirrored": acq.mirrored, "seed": seed,
            "train": written, "validation": val_count}, indent=1) + "\n")
    return folder


# ---------------------------------------------------------------------------------------------
# 3. fine-tune
# ---------------------------------------------------------------------------------------------
def adapted_config(base: RunConfig, acq: Acquisition, minutes: float, seed: int) -> RunConfig:
    raw = base.model_dump()
    raw["optics"] = acq.optics.model_dump()
    raw["model"]["in_channels"] = acq.optics.frames
    raw["training_range"] = acq.training_range().model_dump()
    raw["data"].update(patch_size=PATCH, patches_per_image=1, augment=False, val_fraction=0.0,
                       val_patches_per_image=4)
    raw["train"].update(epochs=100000, batch_size=BATCH, steps_per_epoch=STEPS_PER_EPOCH,
                        learning_rate=LEARNING_RATE, max_minutes=max(0.1, minutes), seed=seed,
                        tensorboard=False, reduce_lr_on_plateau=False, precision="auto", strategy="auto")
    from srredsim.model_optics import describe_optics

    raw["metadata"]["name"] = "SR-REDSIM adapted"
    raw["metadata"]["description"] = (
        f"SR-REDSIM fine-tuned by srredsim adapt for one microscope ({describe_optics(acq.optics)}, "
        f"{acq.optics.angles}x{acq.optics.phases}, {acq.optics.beams}-beam), from "
        f"{base.metadata.name}.")
    raw["metadata"]["training_data"] = (
        f"srredsim simulator, {acq.content} content, matched to {len(acq.stacks)} user stack(s): pattern |k| "
        f"{acq.k_fraction[0]:.3f}-{acq.k_fraction[1]:.3f} of the cutoff, modulation {acq.modulation[0]:.2f}-"
        f"{acq.modulation[1]:.2f}, {acq.photons[0]:.3g}-{acq.photons[1]:.3g} photons per pixel per frame")
    return RunConfig.from_dict(raw, source="adapted configuration")


def _read_stacks(paths: Sequence[str | os.PathLike], frames: int | None) -> list[tuple[str, np.ndarray, Any]]:
    from srredsim.tiff import list_tiffs, read_raw_stack

    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = list_tiffs(p)
            if not found:
                raise SrredsimError(f"{p}: no TIFF files")
            files += found
        elif p.exists():
            files.append(p)
        else:
            raise SrredsimError(f"{p}: no such file")
    if not files:
        raise SrredsimError("adapt: no raw stacks given")
    out = []
    for f in files:
        raw, meta = read_raw_stack(f, frames=frames)
        if frames is None:
            frames = raw.shape[0]
        out.append((f.name, raw, meta))
    return out


def optics_for(base: OpticsConfig, given: dict[str, Any], frames: int, tiff_pixel_um: float | None,
               name: str, say=print) -> OpticsConfig:
    """The data's optics: the given values (keys of :class:`OpticsConfig`), the pixel size from the
    TIFF, the rest from the base model (said in one line); phases from the frame count."""
    from srredsim.model_optics import describe_optics
    from srredsim.optics import make_optics

    values = base.model_dump()
    if tiff_pixel_um and "pixel_size_um" not in given:
        values["pixel_size_um"] = tiff_pixel_um
    values.update(given)
    if "phases" not in given:
        if frames % values["angles"]:
            raise SrredsimError(f"{name}: {frames} frames do not split into {values['angles']} angles; "
                                "pass --angles/--phases")
        values["phases"] = frames // values["angles"]
    result = make_optics(**values)
    if result.frames != frames:
        raise SrredsimError(f"{name}: has {frames} frames, expected {result.angles} x {result.phases}")
    assumed = [k for k in ("na", "wavelength_nm") if k not in given]
    if assumed:
        say(f"{' and '.join('NA' if k == 'na' else 'wavelength' for k in assumed)} not given: assuming the "
            f"model's ({describe_optics(result)})")
    return result


def adapt(raw_paths: Sequence[str | os.PathLike], output: str | os.PathLike,
          optics: OpticsConfig | dict[str, Any] | None = None,
          base: str | os.PathLike = "default", minutes: float = 10.0, order: str = "angle-major",
          resume: bool = False, count: int = 256, val_count: int = 8, seed: int = 0,
          truth_blur_px: float = 0.0, progress: bool | None = None, keep_data: bool = False,
          content: str = "generic", say=print):
    """Adapt a pretrained model to the microscope behind ``raw_paths`` (files or folders).

    ``optics``: the data's optics, or a dict of the values that are known (``na``,
    ``wavelength_nm``, ``pixel_size_um``, ``angles``, ``phases``, ...; the rest comes from the TIFF's
    pixel size and the base model, said in one line), or None (all of it assumed).
    ``content``: the structures of the simulated fields; ``generic`` (content no prior can guess,
    as in the ``sim`` recipe of the shipped models) unless the base model was trained on another
    family (the first models: ``mixed`` filaments, vesicles and beads). ``minutes``: the whole budget (simulation included). Returns the
    :class:`srredsim.runfolder.Run`.
    """
    from srredsim.cache import cache_dir
    from srredsim.runfolder import load_run

    t0 = time.monotonic()
    if not minutes > 0:
        raise SrredsimError(f"--minutes must be positive, got {minutes}")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise SrredsimError(f"{out}: exists and is not a folder")
    if not resume and out.is_dir() and any(out.iterdir()):
        raise SrredsimError(f"{out} exists and is not empty; use --resume to continue that run or choose "
                            "another --output")
    if resume and not (out / "config.json").is_file():
        raise SrredsimError(f"--resume: {out} is not a run folder (no config.json)")
    from srredsim.pretrained import DEFAULT, is_shipped_name, resolve

    if is_shipped_name(base) and str(base) == DEFAULT:  # the shipped model of the data's layout
        from srredsim.tiff import list_tiffs, read_stack_header

        first = Path(raw_paths[0])
        first = (list_tiffs(first) or [first])[0] if first.is_dir() else first
        frames = read_stack_header(first).shape[0] if first.is_file() else None
        try:
            base = resolve(DEFAULT, frames=frames)
        except SrredsimError:  # another layout: start from the 3x5 model (its first layer is converted)
            base = resolve(DEFAULT)
    base_run = load_run(base)
    base_cfg = base_run.config
    given = optics if isinstance(optics, dict) else None
    if isinstance(optics, OpticsConfig):
        stacks = _read_stacks(raw_paths, optics.frames)
    else:
        given = {k: v for k, v in (given or {}).items() if v is not None}
        frames = None
        if "angles" in given and "phases" in given:
            frames = given["angles"] * given["phases"]
        stacks = _read_stacks(raw_paths, frames)
        optics = optics_for(base_cfg.optics, given, stacks[0][1].shape[0], stacks[0][2].pixel_size_um,
                            stacks[0][0], say)
    base_layout = (base_cfg.optics.angles, base_cfg.optics.phases, base_cfg.optics.beams)
    if (optics.angles, optics.phases, optics.beams) != base_layout and not (
            optics.angles == base_cfg.optics.angles and optics.beams == base_cfg.optics.beams == 2):
        raise SrredsimError(f"the base model is {base_layout[0]}x{base_layout[1]} ({base_layout[2]}-beam); it "
                            f"cannot become a {optics.angles}x{optics.phases} ({optics.beams}-beam) model")

    from srredsim.simulate import STRUCTURES

    if content not in STRUCTURES:
        raise SrredsimError(f"unknown content {content!r}; choose from {', '.join(STRUCTURES)}")
    acq = measure_acquisition([(name, raw) for name, raw, _ in stacks], optics, order)
    acq.content = content
    for line in acq.notes:
        say(line)
    say(f"measured {len(acq.stacks)} stack(s): pattern |k| {acq.k_fraction[0]:.3f}-{acq.k_fraction[1]:.3f} of "
        f"the cutoff, modulation {acq.modulation[0]:.2f}-{acq.modulation[1]:.2f}, "
        f"{acq.photons[0]:.3g}-{acq.photons[1]:.3g} photons/pixel/frame (simulated span)"
        + (", angles stepping backwards (simulated mirrored)" if acq.mirrored else ""))
    del stacks

    if progress is None:
        progress = sys.stderr.isatty()
    key = _data_key(acq, count, val_count, seed, truth_blur_px)
    data = cache_dir("adapt") / key
    if not (data / "adapt_data.json").is_file():
        deadline = t0 + 60 * minutes * SIM_SECONDS_SHARE
        write_adapted_data(data, acq, count, val_count, seed, truth_blur_px, progress=progress, deadline=deadline)
    sim_minutes = (time.monotonic() - t0) / 60
    cfg = adapted_config(base_cfg, acq, minutes - sim_minutes, seed)

    from srredsim.train import train

    say(f"fine-tuning {base_run.path.name} for {max(0.1, minutes - sim_minutes):.1f} min -> {out}")
    run = train(data, out, cfg, resume=resume, verbose=None,
                init_from=None if resume else base_run.path)
    info = {"base_model": str(base_run.path), "order": order, "minutes": minutes,
            "simulated_data": str(data), "seed": seed, "acquisition": acq.to_dict(),
            "simulation": json.loads((data / "adapt_data.json").read_text())}
    with atomic_path(out / ADAPT_JSON) as tmp:
        tmp.write_text(json.dumps(info, indent=1) + "\n")
    if not keep_data:
        shutil.rmtree(data, ignore_errors=True)  # rebuilt deterministically by --resume
    return load_run(out) if run is None else run
