"""Run a package in Fiji (DeepImageJ) and a raw stack in fairSIM, and compare with srredsim.

With a Fiji installation holding DeepImageJ 3 and fairSIM, Fiji is started headless through
pyimagej (:mod:`srredsim.fiji`); DeepImageJ runs the package on the raw TIFF and fairSIM
(``srredsim/_fiji/fairsim_reconstruct.py``) reconstructs it; both results are read back and
compared with srredsim's own prediction of the same package and with srredsim's classical
(fairSIM-equivalent) reconstruction: max |difference| (relative to the reference's range, as
every srredsim tolerance; :func:`srredsim.metrics.max_difference`), PSNR and SSIM
(:func:`srredsim.metrics.compare`: after a least-squares intensity fit and a border crop; the
classical pairs also registered).

``without_fiji=True`` runs the parts that need no Fiji instead: the package on DeepImageJ's
engines in a JVM (ImageJ 1.x opens the TIFF; :mod:`srredsim.export.jvm`), srredsim's prediction
and the classical reconstruction. ``srredsim fiji-check`` is the command-line face of
:func:`run_fiji_check`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from srredsim.config import OpticsConfig
from srredsim.errors import SrredsimError, ensure_writable_dir, write_json

REPORT_NAME = "report.json"
# what fairSIM alone needs: with fairsim=False their absence does not stop the check
FAIRSIM_ONLY = ("fairSIM", "Jython")


@dataclass
class FijiCheckSettings:
    package: Path
    raw: Path
    fiji_dir: Path | None = None
    without_fiji: bool = False
    output: Path | None = None  # None: a temporary folder, removed afterwards
    overwrite: bool = False
    engine: str = "auto"  # srredsim's own prediction of the package
    jvm_weights: str = "onnx"
    dij_version: str | None = None  # None: from the installed DeepImageJ
    fairsim: bool = True
    classical: bool = True
    optics: dict[str, Any] | None = None  # OpticsConfig fields the user gave
    wiener: float = 0.05
    tolerance: float = 1e-3


def fiji_dir_from_env(given: Path | None) -> Path | None:
    if given is not None:
        return Path(given)
    env = os.environ.get("FIJI_DIR")
    return Path(env) if env else None


def blocking_missing(status, fairsim: bool = True) -> list[str]:
    """What the installation lacks that stops this check (fairSIM and Jython only if ``fairsim``)."""
    return [m for m in status.missing if fairsim or not m.startswith(FAIRSIM_ONLY)]


def run_fiji_check(s: FijiCheckSettings, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Run the check and return its report (``ok``, ``sources``, ``comparisons``, ...).

    With ``s.output`` the result TIFFs and ``report.json`` (written atomically) land there; an
    existing report is replaced only with ``s.overwrite``. Problems with the input or the
    installation raise :class:`SrredsimError` (one line) before anything is written.
    """
    from srredsim.fiji import fiji_status

    package, raw_path = Path(s.package), Path(s.raw)
    if not package.exists():
        raise SrredsimError(f"{package}: no such package")
    if not raw_path.is_file():
        raise SrredsimError(f"{raw_path}: no such file")
    if s.output is not None and (Path(s.output) / REPORT_NAME).exists() and not s.overwrite:
        raise SrredsimError(f"{Path(s.output) / REPORT_NAME} exists; pass --overwrite to replace it")
    status = None
    if not s.without_fiji:
        status = fiji_status(s.fiji_dir)
        for line in status.lines():
            log(line)
        missing = blocking_missing(status, s.fairsim)
        if missing:
            raise SrredsimError("the Fiji check cannot run; missing: " + "; ".join(missing)
                                + ". (--without-fiji runs the part that needs no Fiji.)")

    from srredsim.runtime import open_model
    from srredsim.optics import resolve_optics
    from srredsim.tiff import read_raw_stack, read_reference, write_sr_image

    model = open_model(package, engine=s.engine, precision="fp32")  # compared with DeepImageJ's fp32
    raw, meta = read_raw_stack(raw_path, frames=model.frames)
    # optics: the flags, else the TIFF's pixel size, else the package's, else OpticsConfig's defaults
    optics = resolve_optics(dict(s.optics or {}), file_pixel_size_um=meta.pixel_size_um or model.pixel_size_um)
    if optics.frames != raw.shape[0]:
        raise SrredsimError(f"{raw_path}: {raw.shape[0]} frames, but the optics say {optics.angles} x {optics.phases}")
    px = optics.pixel_size_um

    tmp = None
    if s.output is None:
        tmp = tempfile.TemporaryDirectory(prefix="srredsim-fiji-check-")
        out = Path(tmp.name)
    else:
        out = ensure_writable_dir(s.output)
    try:
        images: dict[str, np.ndarray] = {}
        sources: dict[str, str] = {}
        log(f"srredsim    predicting {raw_path.name} with the package on {model.engine}")
        images["srredsim"] = model.predict(raw)
        write_sr_image(out / "srredsim_sr.tif", images["srredsim"], raw_pixel_size_um=px)
        sources["srredsim"] = f"srredsim predict ({model.engine})"
        if s.classical:
            from srredsim.classical import reconstruct

            log("classical   srredsim's fairSIM-equivalent reconstruction")
            images["classical"] = np.asarray(reconstruct(raw, optics).sr, np.float32)
            write_sr_image(out / "classical_sr.tif", images["classical"], raw_pixel_size_um=px)
            sources["classical"] = "srredsim.classical.reconstruct"

        if s.without_fiji:
            from srredsim.export import jvm

            log(f"jvm         the package on DeepImageJ's engines ({jvm.ENGINES[s.jvm_weights]}) in a JVM")
            res = jvm.predict_tiff(package, raw_path, out / "jvm_sr.tif", weights=s.jvm_weights)
            images["deepimagej"] = read_reference(out / "jvm_sr.tif")[0]
            sources["deepimagej"] = (f"engine-equivalent: {res.data.get('engine_version')} via the JVM harness "
                                     "(not DeepImageJ)")
        else:
            _run_in_fiji(s, status, out, raw, optics, images, sources, log)

        # DeepImageJ pads (and tiles) by the RDF's size rule and halo; srredsim predicts the image as is,
        # so the two may differ within one halo of the border: the gate looks at the interior
        # (DeepImageJ mirrors by the halo the package declares, not the one srredsim measured)
        report = compare_results(images, sources, s.tolerance,
                                 border=2 * int(model.declared_halo or model.halo or 0))
        report["folder"] = None if tmp is not None else str(out)
        report["fiji"] = None if status is None else {
            "dir": str(status.fiji_dir), "deepimagej": status.deepimagej_version,
            "fairsim": [p.name for p in status.fairsim]}
        if tmp is None:
            write_json(out / REPORT_NAME, report)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return report


def _run_in_fiji(s: FijiCheckSettings, status, out: Path, raw, optics: OpticsConfig, images, sources, log) -> None:
    from srredsim.export.safezip import safe_extract
    from srredsim.fiji import run_deepimagej, run_fairsim, start_fiji
    from srredsim.tiff import read_reference, write_tiff

    model_dir = out / "model"
    if Path(s.package).is_dir():
        model_dir = Path(s.package).resolve()
    else:
        safe_extract(s.package, model_dir)
    # DeepImageJ names its output after the image title: give it a plain copy with a known name
    raw_copy = write_tiff(out / "raw.tif", raw, pixel_size_um=optics.pixel_size_um)
    log(f"fiji        starting {status.fiji_dir} headless (pyimagej)")
    ij = start_fiji(status.fiji_dir)
    version = s.dij_version
    if version is None and status.deepimagej_version and status.deepimagej_version.startswith("3.0"):
        version = "3.0"
    log("deepimagej  run(\"DeepImageJ Run\", ...) on the unpacked package")
    dij_tif = run_deepimagej(ij, model_dir, raw_copy, out / "deepimagej", version=version)
    images["deepimagej"] = read_reference(dij_tif)[0]
    sources["deepimagej"] = f"DeepImageJ {status.deepimagej_version or ''} in Fiji ({dij_tif.name})".strip()
    if s.fairsim:
        log("fairsim     srredsim/_fiji/fairsim_reconstruct.py (Jython)")
        try:
            fs = run_fairsim(ij, raw_copy, out / "fairsim_sr.tif", optics, wiener=s.wiener)
            images["fairsim"] = read_reference(fs)[0]
            sources["fairsim"] = "fairSIM in Fiji"
        except SrredsimError as exc:
            sources["fairsim"] = f"failed: {exc}"


# (comparison name, image a, reference b, register before scoring, gated by the tolerance)
PAIRS = (
    ("DeepImageJ vs srredsim prediction (same package)", "deepimagej", "srredsim", False, True),
    ("fairSIM vs srredsim classical", "fairsim", "classical", True, False),
    ("DeepImageJ vs fairSIM", "deepimagej", "fairsim", True, False),
    ("srredsim prediction vs srredsim classical", "srredsim", "classical", True, False),
)


def compare_results(images: dict[str, np.ndarray], sources: dict[str, str], tolerance: float,
                    border: int = 0) -> dict[str, Any]:
    """The comparison rows of the report; ``ok`` when DeepImageJ ran and agrees with srredsim.

    The gate: max |DeepImageJ - srredsim| inside ``border`` pixels, relative to the range of
    srredsim's output, at most ``tolerance``. The other pairs are reported, not gated.
    """
    from srredsim.metrics import compare, max_difference

    rows = []
    ok = True
    for name, a, b, register, gate in PAIRS:
        if a not in images or b not in images:
            continue
        x, y = images[a], images[b]
        if x.shape != y.shape:
            rows.append({"comparison": name, "a": a, "b": b, "error": f"shapes differ: {x.shape} vs {y.shape}",
                         "passed": False if gate else None})
            ok &= not gate
            continue
        inner = border if border and min(x.shape) > 4 * border else 0
        crop = (slice(inner, -inner), slice(inner, -inner)) if inner else (slice(None), slice(None))
        diff, rel = max_difference(x[crop], y[crop])
        row: dict[str, Any] = {"comparison": name, "a": a, "b": b, "max_abs_diff": diff, "max_rel_diff": rel,
                               "border_excluded": inner, "max_abs_diff_with_border": max_difference(x, y)[0]}
        try:
            m = compare(x, y, border=int(max(4, min(32, min(y.shape) // 8))), register_images=register)
            row.update(psnr=m["psnr"], ssim=m["ssim"], nrmse=m["nrmse"])
        except SrredsimError as exc:  # constant images and the like: report, do not crash
            row["metrics_error"] = str(exc)
        if gate:
            row["passed"] = rel <= tolerance
            ok &= row["passed"]
        rows.append(row)
    return {"ok": ok and "deepimagej" in images, "tolerance": tolerance, "sources": sources,
            "shapes": {k: list(v.shape) for k, v in images.items()}, "comparisons": rows}


def format_report(report: dict[str, Any]) -> str:
    lines = [""]
    lines += [f"{k:<11} {v}" for k, v in report["sources"].items()]
    lines += ["", f"{'comparison':<50} {'max|diff|':>10} {'rel':>9} {'PSNR dB':>8} {'SSIM':>6}  verdict"
                  "   (max|diff| inside a border of one halo; PSNR/SSIM after an intensity fit)"]
    for r in report["comparisons"]:
        if "error" in r:
            lines.append(f"{r['comparison']:<50} {r['error']}")
            continue
        verdict = {True: "ok", False: "FAIL", None: "info"}[r.get("passed")]
        psnr = f"{r['psnr']:8.2f}" if isinstance(r.get("psnr"), float) else f"{'-':>8}"
        ssim = f"{r['ssim']:6.3f}" if isinstance(r.get("ssim"), float) else f"{'-':>6}"
        lines.append(f"{r['comparison']:<50} {r['max_abs_diff']:10.3g} {r['max_rel_diff']:9.2e} {psnr} {ssim}  "
                     f"{verdict}")
    lines += ["", "fiji-check: " + ("agreement within tolerance" if report["ok"] else "NOT within tolerance")
              + (f"; files in {report['folder']}" if report.get("folder") else "")]
    return "\n".join(lines)
