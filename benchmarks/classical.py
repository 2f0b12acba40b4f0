"""Benchmark: srredsim's classical SIM reconstruction against the PyPI peers, on the same stacks.

    python benchmarks/classical.py [--count 4] [--size 512] [--photons 100] [--seed 0]

Peers (benchmark-only, never runtime dependencies of srredsim; the ``bench`` extra lists them):

* ``pyfairsim==0.0.3`` (GPL-2, a Python port of fairSIM), run with ``otf_before_shift=True`` (its
  default is wrong for tilted angles), fairSIM's defaults otherwise;
* ``napari-sim-processor==0.1.1`` (BSD-3), its ``ConvSimProcessor`` (3 angles x 5 phases) imported
  without the Qt GUI, with its own defaults.

Install them into a separate environment that also sees srredsim, for example::

    /work/venv/bin/python -m venv /work/venv-bench --system-site-packages
    /work/venv-bench/bin/pip install pyfairsim==0.0.3 napari-sim-processor==0.1.1 psutil
    /work/venv-bench/bin/pip install --no-deps -e .          # srredsim itself
    /work/venv-bench/bin/pip install pydantic tifffile tqdm pyyaml   # if not already visible
    /work/venv-bench/bin/python benchmarks/classical.py

A missing peer is skipped with a message. Every method sees the same uint16 stacks (simulated with
the default realism of ``srredsim simulate``); times are wall-clock seconds per stack (estimation +
reconstruction) on this machine. Errors against the simulation's truth: pattern vector |Δk| in FFT
pixels, pattern phase at the field centre (for the peers the best of their sign/origin
conventions, since they document none), PSNR/SSIM of the result against the ground truth by the
evaluation protocol of docs/physics.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from srredsim.classical import reconstruct  # noqa: E402
from srredsim.metrics import compare  # noqa: E402
from srredsim.optics import cutoff_cycles_per_um  # noqa: E402
from srredsim.simulate import SimulationConfig, simulate_stack  # noqa: E402


# ---------------------------------------------------------------------------------------------
# estimation errors
# ---------------------------------------------------------------------------------------------
def _wrap(x: float) -> float:
    return float(abs(np.angle(np.exp(1j * x))))


def ours_errors(truth_angles, est_angles, n):
    dk, dph = [], []
    for tr, (k, phase) in zip(truth_angles, est_angles):
        kt = np.array(tr["k_fft_px"])
        ke = np.array(k)
        dk.append(float(np.linalg.norm(ke - kt)))
        # phase of the pattern at the field centre (where the data are)
        pt = tr["phases_rad"][0] + 2 * math.pi * kt.sum() * (n / 2) / n
        pe = phase + 2 * math.pi * ke.sum() * (n / 2) / n
        dph.append(_wrap(pe - pt))
    return dk, dph


def peer_errors(truth_angles, est_angles, n):
    """Match each estimate to the truth allowing ±k, swapped axes and origin at 0 or n/2."""
    dk, dph = [], []
    for tr, (k, phase) in zip(truth_angles, est_angles):
        kt = np.array(tr["k_fft_px"])
        best = (math.inf, math.inf)
        for cand in (np.array(k), np.array(k)[::-1]):
            for s in (1.0, -1.0):
                ke = s * cand
                err = float(np.linalg.norm(ke - kt))
                if err > best[0] + 1e-9 and err > 0.5:
                    continue
                pt = tr["phases_rad"][0] + 2 * math.pi * kt.sum() * (n / 2) / n
                for ph in (phase, -phase):
                    for origin in (0.0, n / 2):
                        pe = ph + 2 * math.pi * ke.sum() * (n / 2 - origin) / n
                        cand_err = (err, _wrap(pe - pt))
                        if cand_err[0] < best[0] - 1e-9 or (abs(cand_err[0] - best[0]) < 1e-9 and cand_err[1] < best[1]):
                            best = cand_err
        dk.append(best[0])
        dph.append(best[1])
    return dk, dph


# ---------------------------------------------------------------------------------------------
# the methods
# ---------------------------------------------------------------------------------------------
def run_ours(raw, optics):
    t = time.perf_counter()
    rec = reconstruct(raw, optics)
    dt = time.perf_counter() - t
    est = [(a.k_fft_px, a.phases_rad[0]) for a in rec.params.angles]
    return rec.sr, dt, est, ours_errors


def make_pyfairsim(optics, n):
    try:
        from pyfairsim.sim_algorithm.SIM_Parameters import Parameters
        from pyfairsim.sim_algorithm.SIM_Utils import estimate_parameters, run_reconstruction
        from pyfairsim.utils.tif import fft_images
    except ImportError as exc:
        print(f"skipping pyfairsim: not installed ({exc}); pip install pyfairsim==0.0.3 "
              "in a separate environment (see this script's docstring)", file=sys.stderr)
        return None

    P = optics.phases

    def run(raw, _optics):
        settings = Parameters.from_dict({
            "directions": [{
                "number_bands": 2, "number_phases": P, "px": 0.0, "py": 0.0,
                "phases": [2 * math.pi * p / P for p in range(P)], "modulations": [1.0, 0.65],
                "angle_intensity_factor": 1.0, "phase_intensity_factors": [1.0] * P,
            } for _ in range(optics.angles)],
            "microscope_parameters": {"pixel_size": optics.pixel_size_um * 1000, "na": optics.na,
                                      "wavelength": optics.wavelength_nm},
            "sim_parameters": {"otf_correction": 0.3, "otf_type": "EXPONENTIAL",
                               "otf_before_shift": True, "attenuation_strength": 0.99,
                               "attenuation_fwhm": 1.2, "use_attenuation": False, "fit_band": 1,
                               "fit_exclude": True, "otf_file_location": None},
            "filter_parameters": {"wiener_filter_parameter": 0.05, "apodization_cutoff": 2.0,
                                  "apodization_bend": 0.9},
            "image_parameters": {"image_shape": [n, n], "ordering": "paz", "z_slice": 0,
                                 "background": float(np.percentile(raw.mean(axis=0), 0.5)),
                                 "tile_size": n},
        })
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            ffts = fft_images(list(raw), optics.angles, P, settings.image_parameters.background)
            estimate_parameters(settings, ffts, False)
            sr = run_reconstruction(settings, ffts)[0]
        dt = time.perf_counter() - t
        est = [((d.py, d.px), d.phase_offset) for d in settings.directions]
        return np.asarray(sr, np.float32), dt, est, peer_errors

    return run


def make_napari(optics, n):
    try:
        # the package's __init__ imports the Qt widget; load only its processors subpackage
        import importlib.util
        import types

        spec = importlib.util.find_spec("napari_sim_processor")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("napari_sim_processor not found")
        if "napari_sim_processor" not in sys.modules:
            stub = types.ModuleType("napari_sim_processor")
            stub.__path__ = list(spec.submodule_search_locations)
            sys.modules["napari_sim_processor"] = stub
        from napari_sim_processor.processors.convSimProcessor import ConvSimProcessor
    except ImportError as exc:
        print(f"skipping napari-sim-processor: not installed ({exc}); pip install "
              "napari-sim-processor==0.1.1 in a separate environment", file=sys.stderr)
        return None

    def run(raw, _optics):
        h = ConvSimProcessor(angleSteps=optics.angles, phaseSteps=optics.phases)
        h.debug = False
        h.magnification = 60
        h.pixelsize = optics.pixel_size_um * 60
        h.NA = optics.na
        h.n = optics.refractive_index
        h.wavelength = optics.wavelength_nm / 1000
        img = raw.astype(np.float32)
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            h.calibrate(img)
            sr = h.reconstruct_rfftw(img)
        dt = time.perf_counter() - t
        # napari's carrier units: 2 f / k_c  ->  FFT pixels
        scale = cutoff_cycles_per_um(optics) * n * optics.pixel_size_um / 2
        kx, ky, ph = (np.ravel(v).astype(float) for v in (h.kx, h.ky, h.p))
        est = [((ky[i] * scale, kx[i] * scale), ph[i]) for i in range(optics.angles)]
        return np.asarray(sr, np.float32), dt, est, peer_errors

    return run


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=4, help="stacks")
    ap.add_argument("--size", type=int, default=512, help="raw frame edge")
    ap.add_argument("--photons", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", default="pyfairsim,napari", help="comma-separated: pyfairsim, napari")
    ap.add_argument("--verbose", action="store_true", help="print every estimate beside the truth")
    args = ap.parse_args(argv)

    cfg = SimulationConfig(size=args.size, photons=args.photons)
    n = args.size
    methods = {"srredsim": run_ours}
    peers = {p.strip() for p in args.peers.split(",") if p.strip()}
    if "pyfairsim" in peers and (m := make_pyfairsim(cfg.optics, n)):
        methods["pyfairsim 0.0.3"] = m
    if "napari" in peers and (m := make_napari(cfg.optics, n)):
        methods["napari-sim-processor 0.1.1"] = m
    stats = {name: {"t": [], "dk": [], "dph": [], "psnr": [], "ssim": []} for name in methods}
    stats["widefield (upsampled)"] = {"t": [], "dk": [], "dph": [], "psnr": [], "ssim": []}
    px = cfg.optics.pixel_size_um / 2
    print(f"{args.count} stacks of {cfg.optics.frames}x{n}x{n}, {args.photons:g} photons/pixel/frame, "
          f"seed {args.seed}", file=sys.stderr)
    for i in range(args.count):
        st = simulate_stack(cfg, seed=(args.seed, i), targets=["truth"])
        for name, fn in methods.items():
            try:
                sr, dt, est, errfn = fn(st.raw, cfg.optics)
            except Exception as exc:  # a peer failing on a stack is a result, not a crash
                print(f"  stack {i}: {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            dk, dph = errfn(st.params["angles"], est, n)
            if args.verbose:
                print(f"  {name}: estimated {[(tuple(np.round(k, 3)), round(ph, 3)) for k, ph in est]}; "
                      f"truth {[(tuple(np.round(a['k_fft_px'], 3)), round(a['phases_rad'][0], 3)) for a in st.params['angles']]}",
                      file=sys.stderr)
            row = compare(sr, st.truth, pixel_size_um=px)
            s = stats[name]
            s["t"].append(dt)
            s["dk"] += dk
            s["dph"] += dph
            s["psnr"].append(row["psnr"])
            s["ssim"].append(row["ssim"])
            if name == "srredsim":
                wf = compare(reconstruct(st.raw, cfg.optics, params=st.params).widefield, st.truth, pixel_size_um=px)
                stats["widefield (upsampled)"]["psnr"].append(wf["psnr"])
                stats["widefield (upsampled)"]["ssim"].append(wf["ssim"])
        print(f"  stack {i + 1}/{args.count} done", file=sys.stderr)

    ours = stats["srredsim"]
    t0 = float(np.mean(ours["t"])) if ours["t"] else float("nan")
    p0 = float(np.mean(ours["psnr"])) if ours["psnr"] else float("nan")
    header = ("| method | s / stack | time vs ours | |Δk| mean / max (px) | |Δphase| mean / max (rad) "
              "| PSNR (dB) | ΔPSNR vs ours | SSIM |")
    print(header)
    print("|" + "---|" * 8)
    for name, s in stats.items():
        if not s["psnr"]:
            print(f"| {name} | failed on every stack | | | | | | |")
            continue
        t = f"{np.mean(s['t']):.2f}" if s["t"] else "–"
        ratio = f"{np.mean(s['t']) / t0:.1f}x" if s["t"] else "–"
        dk = f"{np.mean(s['dk']):.4f} / {np.max(s['dk']):.4f}" if s["dk"] else "–"
        dph = f"{np.mean(s['dph']):.3f} / {np.max(s['dph']):.3f}" if s["dph"] else "–"
        print(f"| {name} | {t} | {ratio} | {dk} | {dph} | {np.mean(s['psnr']):.2f} | "
              f"{np.mean(s['psnr']) - p0:+.2f} | {np.mean(s['ssim']):.3f} |")
    failed = {name: args.count - len(s["psnr"]) for name, s in stats.items() if len(s["psnr"]) < args.count}
    if failed:
        print(f"\nfailures (stacks): {failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
