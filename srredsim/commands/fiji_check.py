"""``srredsim fiji-check``: run a package in Fiji (DeepImageJ) and fairSIM on a raw stack; compare.

With a Fiji installation (``--fiji`` or ``FIJI_DIR``) holding DeepImageJ 3 and fairSIM, Fiji is
started headless through pyimagej; DeepImageJ runs the package on the raw TIFF and fairSIM
(export/fiji/fairsim_reconstruct.py) reconstructs it; both results are read back as numpy and
compared with srredsim's own prediction of the same package and with srredsim's classical
(fairSIM-equivalent) reconstruction, by max difference, PSNR and SSIM (srredsim.metrics: after
a least-squares intensity fit and a border crop; the classical pair also registered).

Without Fiji the command lists exactly what is missing and stops; ``--without-fiji`` runs the
parts that need no Fiji instead: the package on DeepImageJ's engines in a JVM (ImageJ 1.x opens
the TIFF; see srredsim.export.jvm), srredsim's prediction and the classical reconstruction.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

HELP = "run a package with DeepImageJ and the stack with fairSIM in Fiji (pyimagej); compare with srredsim"
DESCRIPTION = (
    "Start Fiji headless through pyimagej, run the bioimage.io PACKAGE with DeepImageJ and reconstruct RAW "
    "with fairSIM, then compare both with srredsim's prediction and classical reconstruction (max |diff|, "
    "PSNR, SSIM). Without a Fiji installation it says exactly what is missing; --without-fiji runs the "
    "Fiji-free part (DeepImageJ's engines in a JVM, srredsim prediction, classical reconstruction).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", type=Path, help="bioimage.io package (zip or folder) made by `srredsim export`")
    p.add_argument("raw", type=Path, help="raw SIM stack (TIFF, frames angle-major, phases fastest)")
    p.add_argument("--fiji", type=Path, default=None,
                   help="Fiji.app folder with DeepImageJ 3 and fairSIM (default: $FIJI_DIR)")
    p.add_argument("--without-fiji", action="store_true",
                   help="no Fiji: compare DeepImageJ's engines in a JVM, srredsim and the classical reconstruction")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="folder for the result TIFFs and report.json (default: a temporary folder)")
    p.add_argument("--engine", choices=["onnx", "savedmodel", "keras"], default="onnx",
                   help="engine of srredsim's own prediction of the package")
    p.add_argument("--jvm-weights", choices=["onnx", "tensorflow_saved_model_bundle"], default="onnx",
                   help="weights the JVM (engine-equivalent DeepImageJ) run uses with --without-fiji")
    p.add_argument("--dij-version", choices=["auto", "3.1", "3.0"], default="auto",
                   help="DeepImageJ macro keys: 3.1+ model_path/input_path/..., 3.0 modelPath/inputPath/...")
    p.add_argument("--no-fairsim", action="store_true", help="skip fairSIM (and its comparison)")
    p.add_argument("--no-classical", action="store_true", help="skip srredsim's classical reconstruction")
    p.add_argument("--na", type=float, default=None, help="objective NA for fairSIM/classical (default 1.4)")
    p.add_argument("--wavelength-nm", type=float, default=None, help="emission wavelength (default 525)")
    p.add_argument("--pixel-size-um", type=float, default=None,
                   help="raw pixel size (default: from the TIFF, else the package's)")
    p.add_argument("--wiener", type=float, default=0.05, help="Wiener parameter for fairSIM")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest allowed |DeepImageJ - srredsim| relative to srredsim's output range")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the report as JSON")


def _fiji_dir(args) -> Path | None:
    if args.fiji is not None:
        return args.fiji
    env = os.environ.get("FIJI_DIR")
    return Path(env) if env else None


def run(args) -> int:
    import tempfile

    import numpy as np

    from srredsim.errors import SrredsimError, ensure_writable_dir
    from srredsim.fiji import fiji_status

    if not args.package.exists():
        raise SrredsimError(f"{args.package}: no such package")
    if not args.raw.is_file():
        raise SrredsimError(f"{args.raw}: no such file")
    status = None
    if not args.without_fiji:
        status = fiji_status(_fiji_dir(args))
        for line in status.lines():
            print(line)
        missing = [m for m in status.missing
                   if not (args.no_fairsim and m.startswith(("fairSIM", "Jython")))]
        if missing:
            raise SrredsimError("the Fiji check cannot run; missing: " + "; ".join(missing)
                                + ". (--without-fiji runs the part that needs no Fiji.)")

    from srredsim.config import OpticsConfig
    from srredsim.inference import open_model
    from srredsim.predict import predict_stack
    from srredsim.tiff import read_raw_stack, read_reference, write_sr_image

    model = open_model(args.package, engine=args.engine, precision="fp32")  # compared with DeepImageJ's fp32
    raw, meta = read_raw_stack(args.raw, frames=model.frames)
    px = args.pixel_size_um or meta.pixel_size_um or model.pixel_size_um or 0.08
    optics = OpticsConfig(**{k: v for k, v in (("na", args.na), ("wavelength_nm", args.wavelength_nm),
                                               ("pixel_size_um", px)) if v is not None})
    if optics.frames != raw.shape[0]:
        raise SrredsimError(f"{args.raw}: {raw.shape[0]} frames, but the optics say {optics.angles} x {optics.phases}")

    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="srredsim-fiji-check-")
        out = Path(tmp.name)
    else:
        out = ensure_writable_dir(args.out)
    try:
        images: dict[str, np.ndarray] = {}
        sources: dict[str, str] = {}
        print(f"srredsim    predicting {args.raw.name} with the package on {model.engine}")
        images["srredsim"] = predict_stack(model.predict_fn, raw, model.normalization, tile=None,
                                           multiple=model.size_multiple)
        write_sr_image(out / "srredsim_sr.tif", images["srredsim"], raw_pixel_size_um=px)
        sources["srredsim"] = f"srredsim predict ({model.engine})"
        if not args.no_classical:
            from srredsim.classical import reconstruct

            print("classical   srredsim's fairSIM-equivalent reconstruction")
            images["classical"] = np.asarray(reconstruct(raw, optics).sr, np.float32)
            write_sr_image(out / "classical_sr.tif", images["classical"], raw_pixel_size_um=px)
            sources["classical"] = "srredsim.classical.reconstruct"

        if args.without_fiji:
            from srredsim.export import jvm

            print(f"jvm         the package on DeepImageJ's engines ({jvm.ENGINES[args.jvm_weights]}) in a JVM")
            res = jvm.predict_tiff(args.package, args.raw, out / "jvm_sr.tif", weights=args.jvm_weights)
            images["deepimagej"] = read_reference(out / "jvm_sr.tif")[0]
            sources["deepimagej"] = f"engine-equivalent: {res.data.get('engine_version')} via export/jvm (not DeepImageJ)"
        else:
            _run_fiji(args, status, out, raw, optics, images, sources)

        # DeepImageJ pads (and tiles) by the RDF's size rule and halo; srredsim predicts the image as is,
        # so the two may differ within one halo of the border: the gate looks at the interior
        border = 2 * int(model.halo or 0)
        report = _compare(images, sources, args.tolerance, border)
    finally:
        if tmp is not None:
            tmp.cleanup()
    report["folder"] = None if tmp is not None else str(out)
    report["fiji"] = None if status is None else {"dir": str(status.fiji_dir), "deepimagej": status.deepimagej_version,
                                                  "fairsim": [p.name for p in status.fairsim]}
    _print(report)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if tmp is None:
        (out / "report.json").write_text(text + "\n")
    return 0 if report["ok"] else 1


def _run_fiji(args, status, out: Path, raw, optics, images, sources) -> None:
    from srredsim.errors import SrredsimError
    from srredsim.export.safezip import safe_extract
    from srredsim.fiji import run_deepimagej, run_fairsim, start_fiji
    from srredsim.tiff import read_reference, write_tiff

    model_dir = out / "model"
    if args.package.is_dir():
        model_dir = args.package.resolve()
    else:
        safe_extract(args.package, model_dir)
    # DeepImageJ names its output after the image title: give it a plain copy with a known name
    raw_copy = write_tiff(out / "raw.tif", raw, pixel_size_um=optics.pixel_size_um)
    print(f"fiji        starting {status.fiji_dir} headless (pyimagej)")
    ij = start_fiji(status.fiji_dir)
    version = None if args.dij_version == "auto" else args.dij_version
    if version is None and status.deepimagej_version and status.deepimagej_version.startswith("3.0"):
        version = "3.0"
    print("deepimagej  run(\"DeepImageJ Run\", ...) on the unpacked package")
    dij_tif = run_deepimagej(ij, model_dir, raw_copy, out / "deepimagej", version=version)
    images["deepimagej"] = read_reference(dij_tif)[0]
    sources["deepimagej"] = f"DeepImageJ {status.deepimagej_version or ''} in Fiji ({dij_tif.name})".strip()
    if not args.no_fairsim:
        print("fairsim     export/fiji/fairsim_reconstruct.py (Jython)")
        try:
            fs = run_fairsim(ij, raw_copy, out / "fairsim_sr.tif", optics, wiener=args.wiener)
            images["fairsim"] = read_reference(fs)[0]
            sources["fairsim"] = "fairSIM in Fiji"
        except SrredsimError as exc:
            sources["fairsim"] = f"failed: {exc}"


def _metrics(a, b, register: bool) -> dict:
    """PSNR/SSIM of ``a`` against reference ``b`` with srredsim.metrics (fit + crop [+ registration])."""
    import numpy as np

    border = int(max(4, min(32, min(b.shape) // 8)))
    try:
        from srredsim.metrics import compare

        row = compare(a, b, border=border, register_images=register)
        return {"psnr": row["psnr"], "ssim": row["ssim"], "nrmse": row.get("nrmse")}
    except ImportError:  # metrics module absent in this build: skimage fallback, same protocol minus registration
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        ac = a[border:-border, border:-border].astype(np.float64)
        bc = b[border:-border, border:-border].astype(np.float64)
        A = np.stack([ac.ravel(), np.ones(ac.size)], 1)
        coef, *_ = np.linalg.lstsq(A, bc.ravel(), rcond=None)
        fit = (A @ coef).reshape(ac.shape)
        rng = float(bc.max() - bc.min()) or 1.0
        return {"psnr": float(peak_signal_noise_ratio(bc, fit, data_range=rng)),
                "ssim": float(structural_similarity(bc, fit, data_range=rng)), "nrmse": None}


def _compare(images: dict, sources: dict, tolerance: float, border: int = 0) -> dict:
    import numpy as np

    rows = []
    ok = True

    def pair(name, a, b, register, gate):
        nonlocal ok
        if a not in images or b not in images:
            return
        x, y = images[a], images[b]
        if x.shape != y.shape:
            rows.append({"comparison": name, "a": a, "b": b, "error": f"shapes differ: {x.shape} vs {y.shape}",
                         "passed": False if gate else None})
            ok &= not gate
            return
        full = np.abs(x.astype(np.float64) - y)
        inner = full[border:-border, border:-border] if border and min(full.shape) > 4 * border else full
        diff = float(np.max(inner))
        rng = float(np.ptp(y)) or 1.0
        row = {"comparison": name, "a": a, "b": b, "max_abs_diff": diff, "max_rel_diff": diff / rng,
               "border_excluded": border if inner is not full else 0,
               "max_abs_diff_with_border": float(np.max(full))}
        try:
            row.update(_metrics(x, y, register))
        except Exception as exc:  # constant images and the like: report, do not crash
            row["metrics_error"] = str(exc)
        if gate:
            row["passed"] = diff / rng <= tolerance
            ok &= row["passed"]
        rows.append(row)

    pair("DeepImageJ vs srredsim prediction (same package)", "deepimagej", "srredsim", False, True)
    pair("fairSIM vs srredsim classical", "fairsim", "classical", True, False)
    pair("DeepImageJ vs fairSIM", "deepimagej", "fairsim", True, False)
    pair("srredsim prediction vs srredsim classical", "srredsim", "classical", True, False)
    missing_dij = "deepimagej" not in images
    return {"ok": ok and not missing_dij, "tolerance": tolerance, "sources": sources,
            "shapes": {k: list(v.shape) for k, v in images.items()}, "comparisons": rows}


def _print(report: dict) -> None:
    print()
    for k, v in report["sources"].items():
        print(f"{k:<11} {v}")
    print()
    print(f"{'comparison':<50} {'max|diff|':>10} {'rel':>9} {'PSNR dB':>8} {'SSIM':>6}  verdict"
          "   (max|diff| inside a border of one halo; PSNR/SSIM after an intensity fit)")
    for r in report["comparisons"]:
        if "error" in r:
            print(f"{r['comparison']:<50} {r['error']}")
            continue
        verdict = {True: "ok", False: "FAIL", None: "info"}[r.get("passed")]
        psnr = f"{r['psnr']:8.2f}" if isinstance(r.get("psnr"), float) else f"{'-':>8}"
        ssim = f"{r['ssim']:6.3f}" if isinstance(r.get("ssim"), float) else f"{'-':>6}"
        print(f"{r['comparison']:<50} {r['max_abs_diff']:10.3g} {r['max_rel_diff']:9.2e} {psnr} {ssim}  {verdict}")
    print()
    print("fiji-check: " + ("agreement within tolerance" if report["ok"] else "NOT within tolerance")
          + (f"; files in {report['folder']}" if report.get("folder") else ""))
