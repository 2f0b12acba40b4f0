"""``srredsim reconstruct RAW.tif -o SR.tif``: classical (fairSIM-equivalent) SIM reconstruction."""

from __future__ import annotations

import argparse

from srredsim.commands import _options as opt

HELP = "classical SIM reconstruction (fairSIM-equivalent) of a raw stack"
DESCRIPTION = (
    "Estimate the illumination (pattern vector, phase, modulation per angle) and reconstruct a "
    "2x super-resolved image with a generalised Wiener filter, as fairSIM does (Gustafsson 2000; "
    "Mueller et al. 2016). Frames must be ordered angle-major, phases fastest. Writes a float32 TIFF "
    "of 2H x 2W with half the raw pixel size; prints the estimated parameters.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("raw", help="raw SIM stack TIFF (angles*phases, H, W)")
    opt.add_output(p, "super-resolved result TIFF", required=True, metavar="SR.tif")
    opt.add_overwrite(p, "existing output files")
    opt.add_quiet(p)
    opt.add_json(p, "the estimated parameters")
    opt.add_optics(p, pixel_size_default=f"default: from the TIFF, else {opt.optics_default('pixel_size_um')}")
    p.add_argument("--params-out", default=None, help="write the estimated parameters as JSON")
    p.add_argument("--params-in", default=None,
                   help="use these parameters (JSON from --params-out or a simulation) instead of estimating")
    p.add_argument("--widefield", default=None, help="also write the widefield image on the 2x grid")
    from srredsim.frameorder import ORDER_HELP, ORDERS

    p.add_argument("--order", choices=ORDERS, default="angle-major", help=ORDER_HELP)
    p.add_argument("--strict", action="store_true", help="turn the data checks' warnings into errors")
    r = p.add_argument_group("reconstruction (fairSIM defaults)")
    r.add_argument("--wiener", type=float, default=0.05, help="Wiener parameter w")
    r.add_argument("--apo-cutoff", type=float, default=2.0, help="apodisation cutoff, times the OTF cutoff")
    r.add_argument("--apo-bend", type=float, default=0.9, help="apodisation bend (exponent)")
    r.add_argument("--otf-damping", type=float, default=0.3, help="OTF model damping a (a^(k/kc))")
    r.add_argument("--background", type=float, default=None,
                   help="background to subtract (default: estimated, 0.5th percentile of the mean frame)")
    r.add_argument("--fade", type=int, default=15, help="border fade in raw pixels")
    r.add_argument("--attenuation", action=argparse.BooleanOptionalAction, default=True,
                   help="zero-order attenuation of every band (suppresses out-of-focus light)")
    r.add_argument("--att-strength", type=float, default=0.99, help="zero-order attenuation strength")
    r.add_argument("--att-fwhm", type=float, default=1.2, help="zero-order attenuation FWHM, cycles/µm")
    r.add_argument("--k-range", default="0.5:1.2", help="pattern search range in units of the cutoff")
    r.add_argument("--min-contrast", type=float, default=6.0,
                   help="correlation peak contrast below which the pattern counts as not found")
    r.add_argument("--fallback", default="error", choices=["error", "widefield"],
                   help="when the pattern is not found: stop with an error, or write the widefield image")


def _check_outputs(args) -> None:
    from pathlib import Path

    from srredsim.errors import SrredsimError

    outs = [args.output, args.widefield, args.params_out]
    for out in filter(None, outs):
        if Path(out).exists() and not args.overwrite:
            raise SrredsimError(f"{out} exists; pass --overwrite to replace it")
        if Path(out).resolve() == Path(args.raw).resolve():
            raise SrredsimError(f"{out}: refusing to overwrite the input")


def run(args) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    from srredsim.classical import ReconOptions, SimParams, reconstruct
    from srredsim.errors import SrredsimError, atomic_path
    from srredsim.simulate import parse_range
    from srredsim.tiff import read_raw_stack, write_sr_image

    _check_outputs(args)
    optics = opt.optics_from_args(args)  # checked before the stack is read
    data, meta = read_raw_stack(args.raw, frames=optics.frames)
    optics = opt.optics_from_args(args, file_pixel_size_um=meta.pixel_size_um)
    px = optics.pixel_size_um
    k_min, k_max = parse_range(args.k_range)
    opts = ReconOptions(wiener=args.wiener, apo_cutoff=args.apo_cutoff, apo_bend=args.apo_bend,
                        otf_damping=args.otf_damping, background=args.background, fade_px=args.fade,
                        attenuation=args.attenuation, att_strength=args.att_strength,
                        att_fwhm=args.att_fwhm, k_min=k_min, k_max=k_max,
                        min_contrast=args.min_contrast, fallback=args.fallback).validate()
    params = None
    if args.params_in:
        p = Path(args.params_in)
        if not p.exists():
            raise SrredsimError(f"{p}: no such parameter file")
        try:
            raw_params = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise SrredsimError(f"{p}: cannot read parameters ({exc})") from None
        params = SimParams.from_dict(raw_params, source=str(p))
    from srredsim.datacheck import check_stack
    from srredsim.frameorder import to_angle_major

    check = check_stack(data, optics, order=args.order, name=Path(args.raw).name)
    for line in check.lines():
        print(line, file=sys.stderr)
    check.enforce(args.strict)
    data = to_angle_major(data, optics.angles, optics.phases, args.order)
    t0 = time.perf_counter()
    rec = reconstruct(data, optics, params=params, opts=opts)
    dt = time.perf_counter() - t0
    summary = rec.params.to_dict()
    if not summary["angles"]:
        print(f"srredsim reconstruct: {'; '.join(rec.params.notes)}", file=sys.stderr)
    for i, a in enumerate([] if args.json else summary["angles"]):
        print(f"angle {i + 1}: k = ({a['k_fft_px'][0]:.3f}, {a['k_fft_px'][1]:.3f}) px "
              f"= {a['magnitude_fft_px']:.3f} px at {a['angle_deg']:.2f}°, period {a['period_um'] * 1000:.1f} nm; "
              f"phase {', '.join(f'{v:+.3f}' for v in a['phases_rad'])} rad; "
              f"modulation {', '.join(f'{v:.3f}' for v in a['modulations'])}"
              + (f"; peak contrast {a['peak_contrast']:.1f}" if a.get("peak_contrast") else ""))
    # write everything only after the reconstruction succeeded
    write_sr_image(args.output, rec.sr, raw_pixel_size_um=px)
    if args.widefield:
        write_sr_image(args.widefield, rec.widefield, raw_pixel_size_um=px)
    summary["optics"] = optics.model_dump()
    summary["options"] = {k: v for k, v in vars(opts).items()}
    if args.params_out:
        with atomic_path(args.params_out) as tmp:
            tmp.write_text(json.dumps(summary, indent=1) + "\n")
    if args.json:
        print(opt.json_text(summary))
    if not args.quiet:
        print(f"srredsim reconstruct: {args.raw} -> {args.output} "
              f"({rec.sr.shape[0]}x{rec.sr.shape[1]}, {dt:.2f} s)", file=sys.stderr)
    return 0
