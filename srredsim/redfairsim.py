"""RED-fairSIM, the paper's second method: the classical reconstruction first, then a RED-Net.

Shah et al. (Photonics Research 9, B168, 2021) compare SR-REDSIM with RED-fairSIM: fairSIM
reconstructs the noisy raw stack, and a RED-Net (``model.architecture: red_net``,
:func:`srredsim.models.build_red_net`) removes the noise and reconstruction artifacts of that 2x
image. The resolution comes from the classical step, which demodulates the pattern explicitly, so
this family passes the pattern-removed control by construction; the network only sees one image,
so one model serves every frame layout (3x3, 3x5); for a microscope outside the sampling it was
trained on, :func:`predict_raw` resamples the reconstruction to it (docs/microscopes.md §6).

This module is the classical half as the network sees it:

* :func:`network_input` -- the classical reconstruction of a raw stack, exactly as ``predict``
  computes it before the network (:mod:`srredsim.classical` with fairSIM's default settings; the
  settings that match in fairSIM itself are in docs/fiji.md).
* :func:`predict_raw` -- both steps on a raw stack with an opened model.
* :func:`write_training_pairs` -- turns simulated training folders (``python -m srredsim.recipes
  training-data``: raw stacks, their true pattern parameters and targets) into RED-Net pairs
  ``OUT/trainx`` (classical reconstructions, ``(1, 2H, 2W)``) and ``OUT/trainy`` (the targets).

``python -m srredsim.redfairsim pairs -o OUT SRC_TARGET_FOLDER [...] [--workers N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError, atomic_dir


class ClassicalStepFailed(SrredsimError):
    """The classical reconstruction could not be made (no pattern found, a stack it cannot take):
    callers say so in their own words, apart from errors of the network step."""


def recon_options(model_cfg=None, **overrides):
    """The classical step's settings for a RED-Net: fairSIM's defaults with the Wiener parameter
    and apodisation the model records (``ModelConfig.classical_*``: what it was trained on), and
    ``overrides`` (e.g. ``fade_px=0``, ``fallback="widefield"``)."""
    from srredsim.classical import ReconOptions

    kw = {}
    if model_cfg is not None:
        kw = {"wiener": model_cfg.classical_wiener, "apo_cutoff": model_cfg.classical_apo_cutoff,
              "apo_bend": model_cfg.classical_apo_bend}
    return ReconOptions(**{**kw, **overrides})


def network_input(raw: np.ndarray, optics: OpticsConfig, params=None, opts=None):
    """The classical reconstruction RED-Net reads: ``(reconstruction, sim_params)``.

    ``raw`` is an angle-major ``(A*P, H, W)`` stack; ``params`` (a :class:`SimParams` or its dict)
    skips the pattern estimation; ``opts`` are :class:`srredsim.classical.ReconOptions` (default:
    fairSIM's defaults, as ``srredsim reconstruct`` uses them). Raises :class:`ClassicalStepFailed`
    when the pattern cannot be found (the network cannot mend a reconstruction that failed).
    """
    from srredsim.classical import ReconOptions, reconstruct

    try:
        rec = reconstruct(raw, optics, params=params, opts=opts or ReconOptions())
    except ClassicalStepFailed:
        raise
    except SrredsimError as exc:
        raise ClassicalStepFailed(str(exc)) from None
    return rec.sr, rec.params


class RedResult(NamedTuple):
    """RED-fairSIM on one raw stack (:func:`predict_raw`)."""

    image: np.ndarray  # the denoised reconstruction, (2H, 2W)
    reconstruction: np.ndarray  # the classical step's result, (2H, 2W) (the network's input unless resampled)
    params: object  # the classical step's SimParams (the pattern it found or was given)
    note: str  # "" or one line: the reconstruction was resampled to the model's sampling


def predict_raw(handle, raw: np.ndarray, optics: OpticsConfig, params=None, opts=None, tile: int | None = None,
                progress=None, **predict_kwargs) -> RedResult:
    """RED-fairSIM on a raw stack, both steps.

    ``handle`` is a :class:`srredsim.runtime.ModelHandle` of a ``red_net`` model (one input
    channel, output on the input's grid); the other arguments as in :func:`network_input`;
    ``predict_kwargs`` (``halo``, ``batch_size``, ``border``) go to ``handle.predict``.

    The classical step adapts to ``optics`` by itself, but the RED-Net learned structures at the
    OTF cutoff per pixel of its training microscopes: a reconstruction of a microscope outside
    that span (e.g. a water objective at 610 nm on 65 nm pixels: 0.26 cycles per raw pixel against
    the trained 0.39-0.46) is Fourier-resampled to the model's sampling before the network and the
    result back to the reconstruction's grid -- as :func:`srredsim.model_optics.predict_with_optics`
    does for SR-REDSIM (measured: benchmarks/results/microscopes_red.md).
    """
    if opts is None:  # the settings the model was trained with
        opts = recon_options(getattr(handle, "model_config", None))
    recon, sim_params = network_input(raw, optics, params=params, opts=opts)
    image, note = denoise(handle, recon, optics, tile=tile, progress=progress, **predict_kwargs)
    return RedResult(image, recon, sim_params, note)


def denoise(handle, recon: np.ndarray, optics: OpticsConfig | None, **predict_kwargs) -> tuple[np.ndarray, str]:
    """The RED-Net on one reconstruction ``(2H, 2W)`` of a stack taken with ``optics`` (raw
    pixel size, NA, wavelength; None: unknown, run as is): ``(image, note)``. Outside the model's
    trained sampling the reconstruction is resampled to it and the result back (see
    :func:`predict_raw`); ``note`` says so, else it is empty."""
    recon = np.asarray(recon, np.float32)
    sampling = getattr(handle, "sampling", None)
    if optics is None or sampling is None:
        return handle.predict(recon[None], **predict_kwargs), ""
    from srredsim.model_optics import cutoff_per_pixel, predict_with_optics

    res = predict_with_optics(handle, recon[None], sampling, optics, **predict_kwargs)  # scale 1: same grid
    if res.factor == 1.0:
        return res.image, ""
    grid = res.model_shape
    note = (f"reconstruction resampled {recon.shape[1]}x{recon.shape[0]} -> {grid[1]}x{grid[0]} pixels to the "
            f"RED-Net's sampling ({sampling.reference_cutoff:.3f} cycles per raw pixel; these optics "
            f"{cutoff_per_pixel(optics):.3f}) and back")
    return res.image, note


class RawStackModel:
    """A RED-fairSIM model that takes raw stacks like an SR-REDSIM handle: ``predict(raw)`` runs
    the classical reconstruction and then the network, so the comparisons, the controls and the
    benchmarks treat both families alike.

    ``optics`` are the stacks' optics (default: NA 1.4, 525 nm, 80 nm, with 3 angles and the
    phases the frame count implies). ``fallback="widefield"`` lets a stack without a pattern
    through as its Wiener-filtered widefield image (what the classical step can give for the
    pattern-removed control) instead of raising; ``last_params`` keeps the pattern of the last
    stack, ``last_note`` says when the fallback was taken.
    """

    def __init__(self, handle, optics: OpticsConfig | None = None, fallback: str = "error"):
        if getattr(handle, "scale", 1) != 1 or handle.frames != 1:
            raise SrredsimError(f"{handle.name or handle.source}: not a RED-fairSIM (red_net) model")
        self.handle, self.optics, self.fallback = handle, optics, fallback
        self.name = handle.name
        self.last_params = None
        self.last_note = ""

    def optics_for(self, raw: np.ndarray) -> OpticsConfig:
        if self.optics is not None:
            return self.optics
        from srredsim.predict import red_fairsim_layout

        return OpticsConfig(**red_fairsim_layout(Path("the stack"), raw.shape[0], {}))

    def predict(self, raw, tile: int | None = None, progress=None, **_):
        opts = recon_options(self.handle.model_config, fallback=self.fallback)
        out, _, params, _ = predict_raw(self.handle, np.asarray(raw), self.optics_for(raw),
                                        opts=opts, tile=tile, progress=progress)
        self.last_params = params
        self.last_note = "; ".join(n for n in params.notes if n.startswith("fallback"))
        return out


def _training_optics(meta: dict) -> OpticsConfig:
    o = meta["optics"]
    return OpticsConfig(**{k: o[k] for k in ("na", "wavelength_nm", "pixel_size_um", "refractive_index",
                                             "angles", "phases", "beams")})


def _known_params(meta: dict) -> dict:
    return {"angles": meta["angles"], "phases": meta["phases"], "beams": meta["beams"],
            "size": meta["size"], "pixel_size_um": meta["pixel_size_um"], "estimated": False}


def _one(job) -> str:
    """Reconstruct one training stack with its true pattern; write input and target."""
    from srredsim.classical import ReconOptions
    from srredsim.tiff import read_raw_stack, read_reference, write_tiff

    raw_path, params_path, target_path, out_x, out_y, settings = job
    meta = json.loads(Path(params_path).read_text())
    raw, _ = read_raw_stack(raw_path)
    optics = _training_optics(meta)
    # the simulated fields are periodic: no border fade (inside a real frame there is none either)
    sr, _ = network_input(raw, optics, params=_known_params(meta), opts=ReconOptions(fade_px=0, **settings))
    target, _ = read_reference(target_path)
    if target.shape != sr.shape:
        raise SrredsimError(f"{target_path}: target {target.shape} does not match the reconstruction {sr.shape}")
    px = optics.pixel_size_um / 2
    write_tiff(out_x, sr[None].astype(np.float32), pixel_size_um=px)
    write_tiff(out_y, target[None].astype(np.float32), pixel_size_um=px)
    return Path(raw_path).name


def _jobs(source: Path, dest: Path, tag: str, settings: dict) -> list[tuple]:
    """One job per pair of a recipe target folder (``SRC/<target>`` with trainx/trainy/testx/testy,
    the pattern parameters in ``SRC/params``)."""
    params_dir = source.parent / "params"
    if not params_dir.is_dir():
        raise SrredsimError(f"{source}: expected a target folder of `python -m srredsim.recipes training-data` "
                            f"(its parent holds params/ with the true pattern of every stack)")
    jobs = []
    for xs, ys in (("trainx", "trainy"), ("testx", "testy")):
        if not (source / xs).is_dir():
            continue
        for raw in sorted((source / xs).glob("*.tif")):
            target = source / ys / raw.name
            params = params_dir / (raw.stem + ".json")
            if not target.is_file() or not params.is_file():
                raise SrredsimError(f"{raw}: no {target} or {params} beside it")
            jobs.append((str(raw), str(params), str(target), str(dest / xs / f"{tag}_{raw.name}"),
                         str(dest / ys / f"{tag}_{raw.name}"), settings))
    if not jobs:
        raise SrredsimError(f"{source}: no trainx/*.tif stacks")
    return jobs


#: the classical settings a RED-Net's pairs record, as ModelConfig fields (``classical_<key>``)
SETTINGS = ("wiener", "apo_cutoff", "apo_bend")


def write_training_pairs(out: str | os.PathLike, sources: list[str | os.PathLike], workers: int = 1,
                         progress: bool = True, overwrite: bool = False, settings: dict | None = None) -> Path:
    """Write RED-Net training pairs from recipe target folders (see the module docstring).

    ``settings``: the classical step's Wiener parameter and apodisation (keys :data:`SETTINGS`;
    default fairSIM's), recorded in the pairs' ``recipe.json``; a RED-Net trained on them must
    carry the same ``model.classical_*`` values (``srredsim train`` checks it).

    Every source contributes all of its stacks (files are prefixed with the source's layout and
    folder name, so 3x3 and 3x5 sets mix in one folder). The folder appears only when complete.
    """
    from concurrent.futures import ProcessPoolExecutor

    out = Path(out)
    sources = [Path(s) for s in sources]
    defaults = recon_options()
    settings = {k: float((settings or {}).get(k, getattr(defaults, k))) for k in SETTINGS}
    recon_options(**settings).validate()
    recipes = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        jobs = []
        for src in sources:
            recipe_path = src.parent / "recipe.json"
            recipe = json.loads(recipe_path.read_text()) if recipe_path.is_file() else {}
            tag = f"{recipe.get('phases', 'x')}ph_{src.parent.name}"
            recipes.append({"source": str(src.resolve()), **recipe})
            jobs += _jobs(src, tmp, tag, settings)
        for sub in ("trainx", "trainy", "testx", "testy"):
            (tmp / sub).mkdir()
        done = 0
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            for _ in pool.map(_one, jobs, chunksize=16):
                done += 1
                if progress and (done % 500 == 0 or done == len(jobs)):
                    print(f"  {done}/{len(jobs)} reconstructed", file=sys.stderr, flush=True)
        names = {r.get("recipe") for r in recipes}
        (tmp / "recipe.json").write_text(json.dumps({
            "recipe": names.pop() if len(names) == 1 else "mixed",
            "red_fairsim": "inputs: classical reconstructions (srredsim.classical, fairSIM's defaults but for "
                           "'reconstruction', no border fade, true pattern parameters); targets: the sources' targets",
            "reconstruction": settings,
            "sources": recipes}, indent=1) + "\n")
    return out


def check_pairs_settings(data_dir: str | os.PathLike, model_cfg) -> None:
    """Refuse to train a RED-Net on pairs reconstructed with other settings than it records (the
    pairs' ``recipe.json``; folders without one are not checked)."""
    path = Path(data_dir) / "recipe.json"
    try:
        recorded = json.loads(path.read_text()).get("reconstruction") if path.is_file() else None
    except (OSError, ValueError):
        recorded = None
    if not recorded:
        return
    wrong = [f"{k} {recorded[k]:g} (model.classical_{k} {getattr(model_cfg, 'classical_' + k):g})"
             for k in SETTINGS if k in recorded and abs(recorded[k] - getattr(model_cfg, "classical_" + k)) > 1e-9]
    if wrong:
        raise SrredsimError(f"{data_dir}: its reconstructions used " + ", ".join(wrong) + "; set the model's "
                            "classical_* to the pairs' settings (--set model.classical_...=...) or remake the pairs")


def main(argv: list[str] | None = None) -> int:
    """``python -m srredsim.redfairsim``: the srredsim command line's vocabulary (-o/--output,
    --overwrite, --quiet); errors are one line on stderr with exit code 2."""
    from srredsim.commands import _options as opt

    ap = argparse.ArgumentParser(prog="python -m srredsim.redfairsim", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs", help="RED-Net training pairs from recipe training folders")
    opt.add_output(p, "output folder (refused if it exists, unless --overwrite)", required=True, metavar="DIR")
    opt.add_overwrite(p, "an existing output folder (replaced only once the new one is complete)")
    opt.add_quiet(p)
    p.add_argument("sources", nargs="+", type=Path,
                   help="target folders of `python -m srredsim.recipes training-data`, e.g. DATA/support")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all CPUs)")
    r = p.add_argument_group("the classical reconstruction (as srredsim reconstruct; the model must record the same)")
    r.add_argument("--wiener", type=float, default=0.05, help="Wiener parameter w (default 0.05)")
    r.add_argument("--apo-cutoff", type=float, default=2.0, help="apodisation cutoff, times the OTF cutoff (default 2.0)")
    r.add_argument("--apo-bend", type=float, default=0.9, help="apodisation bend (default 0.9)")
    args = ap.parse_args(argv)
    try:
        out = write_training_pairs(args.output, args.sources, args.workers, progress=not args.quiet,
                                   overwrite=args.overwrite, settings={k: getattr(args, k) for k in SETTINGS})
    except SrredsimError as exc:
        print(f"python -m srredsim.redfairsim: error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
