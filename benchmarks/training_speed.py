"""Benchmark: training speed in fp32 and bf16, and equal quality after equal steps (issues 2, 12).

    python benchmarks/training_speed.py            # full run (~20 min on 2 idle cores), writes
                                                   # benchmarks/results/training_speed.md
    python benchmarks/training_speed.py --quick    # a smoke test (~6 min), prints only

What it measures, each job in a fresh subprocess (so its peak memory is its own):

* **forward**: Keras ``model.predict`` of the full network (64 filters, depth 10, 1,560,257
  parameters) on one 15 x 512 x 512 stack -> 1024 x 1024 -- median of ``--repeats`` calls after one
  warm-up call; once with the paper's layers (as trained) and once as the inference twin
  (``srredsim.models.inference_twin``);
* **training steps** in each precision of ``--precisions`` (default fp32, and bf16 where the hardware
  computes it natively: ``srredsim.hardware.cpu_has_fast_bf16`` or a GPU of compute capability >= 8):
  seconds per ``model.train_on_batch`` step at batch 1 and 16 (the batch of
  ``bioimage_model/training_config.yaml``) and patch sizes 64, 96 and 128 (raw pixels; targets
  2P x 2P), the full network built under the precision's Keras dtype policy
  (``srredsim.models.dtype_policy``: ``mixed_bfloat16`` keeps float32 variables and a float32 output
  layer) and compiled as ``srredsim.train`` compiles it (Adam, MSE, the PSNR and SSIM metrics).
  Random data; the first step (graph tracing) is timed separately, then the median of up to
  ``--steps`` steps, fewer when a configuration's timed steps pass ``--max-seconds``;
* **equal steps, equal quality**: a small SR-REDSIM (16 filters, depth 4) trained by
  ``srredsim.train.train`` -- the real pipeline: patches, augmentation, seeded, op determinism,
  ``TerminateOnNaN`` -- for the same number of steps from the same seed in each precision, on the
  same simulated data (``srredsim.recipes.write_training_data``, the SIM recipe); then every model
  is scored in fp32 on held-out stacks against their truth (``srredsim.metrics.compare``), and the
  loss history is checked for stability (all finite; the largest loss after the first epoch
  relative to the first epoch's).

Peak memory is the peak resident set size of each job's process (``VmHWM`` of ``/proc/PID/status``
read before it quits; it includes Python and TensorFlow, ~0.6 GiB). GFLOP/s of a training step is
an estimate: 3x the forward convolution FLOPs (forward + two backward products) per sample. CPU
seconds and the CPU that other processes used are reported because the machine may be shared.
Target (issue 12): a training step >= 2.5x faster than fp32 on CPUs with AMX, equal quality after
equal steps.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, WORKER_ENV, Timer, load_line, median, render,  # noqa: E402
                     report_header, run_worker, worker_channel)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "training_speed.md"
JOB_LABELS = {"forward": "forward, paper's layers (Keras predict)",
              "forward-twin": "forward, inference twin (Keras predict)",
              "train": "train step (train_on_batch)"}
TRAINING_CONFIG = ROOT / "bioimage_model" / "training_config.yaml"
AMX_SPEEDUP_TARGET = 2.5
# the small configuration of the equal-steps comparison
QUALITY_MODEL = {"model.filters": 16, "model.depth": 4, "data.patch_size": 48, "train.batch_size": 8,
                 "train.learning_rate": 1e-3, "train.seed": 1, "train.tensorboard": False,
                 "normalization.mode": "percentile"}


def _build(compiled: bool, twin: bool = False, precision: str = "fp32"):
    import keras

    from srredsim.config import ModelConfig
    from srredsim.models import build_model, dtype_policy

    cfg = ModelConfig(architecture="sr_redsim", in_channels=15, filters=64, depth=10)
    with dtype_policy(precision):
        model = build_model(cfg)
    if twin:
        from srredsim.models import inference_twin

        return inference_twin(model, cfg)
    if compiled:
        from srredsim.train import psnr, ssim

        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=[psnr, ssim])
    return model


def worker(job: str, batch: int, patch: int, steps: int, max_seconds: float, precision: str) -> int:
    send = worker_channel()
    try:
        keras_seed = np.random.default_rng(0)
        with Timer() as t_build:
            model = _build(compiled=(job == "train"), twin=(job == "forward-twin"), precision=precision)
        from srredsim.models import conv_flops

        flops = conv_flops(model, patch, patch) * batch
        params = int(model.count_params())
        x = keras_seed.random((batch, patch, patch, 15), dtype=np.float32)
        times = []
        if job.startswith("forward"):
            with Timer() as first:
                model.predict(x, batch_size=batch, verbose=0)
            for _ in range(steps):
                with Timer() as t:
                    model.predict(x, batch_size=batch, verbose=0)
                times.append(t.as_dict())
        else:
            y = keras_seed.random((batch, 2 * patch, 2 * patch, 1), dtype=np.float32)
            with Timer() as first:
                model.train_on_batch(x, y)
            spent = 0.0
            for _ in range(steps):
                with Timer() as t:
                    model.train_on_batch(x, y)
                times.append(t.as_dict())
                spent += t.wall
                if spent > max_seconds:
                    break
        send(event="ready", job=job, batch=batch, patch=patch, params=params, forward_flops=flops,
             policy=model.dtype_policy.name, build=t_build.as_dict(), first=first.as_dict(), steps=times)
        sys.stdin.readline()  # stay alive until the parent has read our peak memory
        return 0
    except BaseException as exc:
        import traceback

        traceback.print_exc()
        send(event="error", message=f"{type(exc).__name__}: {exc}")
        return 1


def quality_worker(precision: str, data: str, out: str, epochs: int, steps_per_epoch: int, heldout: int) -> int:
    """Train the small configuration in ``precision`` with srredsim's own pipeline, then score it in fp32."""
    send = worker_channel()
    try:
        from srredsim.config import RunConfig
        from srredsim.metrics import compare
        from srredsim.recipes import heldout_stack
        from srredsim.runtime import open_model
        from srredsim.train import read_history, train

        cfg = RunConfig().with_overrides({**QUALITY_MODEL, "train.epochs": epochs,
                                          "train.steps_per_epoch": steps_per_epoch, "train.precision": precision})
        with Timer() as t:
            run = train(data, out, cfg, verbose=0)
        hist = read_history(run.path / "history.csv")
        scores = []
        with open_model(run.path, engine="keras", precision="fp32", weights="last") as m:
            for i in range(heldout):
                s = heldout_stack(20.0, size=128, index=i, targets=("truth",))
                scores.append(compare(m.predict(s.raw), s.truth, border=16)["psnr"])
        send(event="ready", seconds=t.wall, history=hist, heldout_psnr=scores)
        sys.stdin.readline()
        return 0
    except BaseException as exc:
        import traceback

        traceback.print_exc()
        send(event="error", message=f"{type(exc).__name__}: {exc}")
        return 1


def _config_batch() -> int:
    try:
        import yaml

        return int(yaml.safe_load(TRAINING_CONFIG.read_text())["train"]["batch_size"])
    except Exception:
        return 16


def _default_precisions() -> str:
    from srredsim.hardware import training_policy

    return "fp32" + (",bf16" if training_policy("auto") == "mixed_bfloat16" else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: forward at 256^2, patch 64, batches 1 and 4, 2 steps, 40 quality steps; prints only")
    p.add_argument("--size", type=int, default=None, help="forward stack edge (default 512)")
    p.add_argument("--repeats", type=int, default=None, help="timed forward calls after the warm-up (default 3)")
    p.add_argument("--patches", default=None, help="comma list of patch sizes (default 64,96,128)")
    p.add_argument("--batches", default=None,
                   help=f"comma list of batch sizes (default 1 and the batch of {TRAINING_CONFIG.relative_to(ROOT)})")
    p.add_argument("--precisions", default=None,
                   help="comma list of fp32, bf16, fp16 (default: fp32, and bf16 where the hardware has it)")
    p.add_argument("--steps", type=int, default=None, help="timed training steps after the first (default 3)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop timing a configuration's steps once they took this long (default 150)")
    p.add_argument("--quality-steps", type=int, default=None,
                   help="training steps of the equal-steps comparison (default 600; 0 skips it)")
    p.add_argument("--out", default=None, help=f"Markdown report (default {DEFAULT_OUT.relative_to(ROOT)}; "
                                                "none with --quick unless given)")
    p.add_argument("--no-forward", action="store_true", help="skip the forward rows")
    p.add_argument("--worker", nargs=2, metavar=("JOB", "BATCHxPATCH"), help=argparse.SUPPRESS)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--run-out", help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps-per-epoch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--heldout", type=int, default=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    steps = args.steps or (2 if q else 3)
    max_seconds = args.max_seconds if args.max_seconds is not None else (30.0 if q else 150.0)
    if args.worker:
        if args.worker[0] == "quality":
            return quality_worker(args.precision, args.data, args.run_out, args.epochs, args.steps_per_epoch,
                                  args.heldout)
        b, patch = (int(v) for v in args.worker[1].split("x"))
        return worker(args.worker[0], b, patch, args.repeats if args.worker[0].startswith("forward") else steps,
                      max_seconds, args.precision)

    os.environ.update(WORKER_ENV)
    size = args.size or (256 if q else 512)
    repeats = args.repeats if args.repeats is not None else (1 if q else 3)
    patches = [int(v) for v in (args.patches or ("64" if q else "64,96,128")).split(",")]
    batches = [int(v) for v in (args.batches or ("1,4" if q else f"1,{_config_batch()}")).split(",")]
    precisions = [v.strip() for v in (args.precisions or _default_precisions()).split(",") if v.strip()]
    for v in precisions:
        if v not in ("fp32", "bf16", "fp16"):
            p.error(f"--precisions: unknown precision {v!r}")
    quality_steps = args.quality_steps if args.quality_steps is not None else (40 if q else 600)
    out = Path(args.out) if args.out else (None if q else DEFAULT_OUT)
    started = datetime.datetime.now()
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="srredsim-bench-training-"))
    os.environ["SRREDSIM_CACHE_DIR"] = str(work / "cache")
    rows, quality = [], {}
    extra = ["--steps", str(steps), "--max-seconds", str(max_seconds), "--repeats", str(repeats)]

    def run(job, batch, patch, precision="fp32"):
        print(f"{job} {precision} batch {batch}, {patch}^2 ...", flush=True)
        msg, peak = run_worker(["--worker", job, f"{batch}x{patch}", "--precision", precision, *extra],
                               work / f"{job}-{precision}-{batch}x{patch}.log", script=__file__)
        s = [t["wall"] for t in msg["steps"]] or [msg["first"]["wall"]]
        med = median(s)
        ref = msg["forward_flops"] * (1 if job.startswith("forward") else 3)
        row = {"job": job, "precision": precision, "policy": msg["policy"], "batch": batch, "patch": patch,
               "n": len(msg["steps"]), "first": msg["first"]["wall"],
               "median": med, "min": min(s), "per_sample": med / batch, "samples_s": batch / med,
               "gflops": ref / med / 1e9, "peak": peak, "cpu": median([t["cpu"] for t in msg["steps"]] or [0]),
               "others": median([t["others"] for t in msg["steps"]] or [msg["first"]["others"]]),
               "load": median([t["load1"] for t in msg["steps"]] or [msg["first"]["load1"]]),
               "params": msg["params"], "fwd_gflop": msg["forward_flops"] / 1e9}
        rows.append(row)
        print(f"  first {row['first']:.2f} s, median {med:.2f} s of {row['n']}, peak RSS {peak:.0f} MiB, "
              f"others {row['others']:.2f} cores", flush=True)

    try:
        if not args.no_forward:
            run("forward", 1, size)
            run("forward-twin", 1, size)
        for batch in batches:
            for patch in patches:
                for precision in precisions:  # precisions side by side: same load
                    run("train", batch, patch, precision)
        if quality_steps:
            quality = run_quality(work, precisions, quality_steps, q)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()
    text, md_body = report(rows, quality, precisions, repeats, steps, max_seconds)
    print()
    print(text)
    print(load_line(load_start, load_end))
    if out:
        md = [*report_header("SR-REDSIM training speed (fp32, bf16) and equal steps, equal quality",
                             "training_speed.py", argv if argv is not None else sys.argv[1:], started, load_start,
                             load_end),
              *md_body]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(md))
        print(f"\nwrote {out}")
    return 0


def run_quality(work: Path, precisions: list[str], total_steps: int, quick: bool) -> dict:
    from srredsim.recipes import write_training_data

    count = 16 if quick else 64
    print(f"equal steps: writing {count} simulated training stacks (SIM recipe, 15x96^2) ...", flush=True)
    data = write_training_data(work / "data", count, val_count=4 if quick else 8, size=96, progress=False,
                               targets=("truth",), truth_blur_px=0.0) / "truth"
    epochs = 2 if quick else 6
    per_epoch = max(1, total_steps // epochs)
    out = {"epochs": epochs, "steps_per_epoch": per_epoch, "count": count}
    for precision in precisions:
        print(f"equal steps: training {precision} ({epochs} x {per_epoch} steps) ...", flush=True)
        msg, peak = run_worker(["--worker", "quality", "-", "--precision", precision, "--data", str(data),
                                "--run-out", str(work / f"run-{precision}"), "--epochs", str(epochs),
                                "--steps-per-epoch", str(per_epoch), "--heldout", "2" if quick else "4"],
                               work / f"quality-{precision}.log", script=__file__)
        hist = msg["history"]
        losses = [r["loss"] for r in hist]
        out[precision] = {"seconds": msg["seconds"], "peak": peak, "history": hist,
                          "finite": all(math.isfinite(v) for r in hist for k, v in r.items()
                                        if k in ("loss", "val_loss")),
                          "spike": max(losses[1:], default=losses[0]) / losses[0] if losses else float("nan"),
                          "heldout": msg["heldout_psnr"]}
        print(f"  {msg['seconds']:.1f} s; final loss {losses[-1]:.4g}, held-out PSNR "
              f"{np.mean(msg['heldout_psnr']):.3f} dB", flush=True)
    return out


def report(rows, quality, precisions, repeats, steps, max_seconds):
    from srredsim.hardware import cpu_path

    headers = ["job", "precision (Keras policy)", "batch", "input", "timed", "first s", "median s", "min s",
               "s per sample", "samples/s", "GFLOP/s", "speed vs fp32", "peak RSS MiB", "CPU s", "other procs (cores)"]
    table = []
    fp32 = {(r["batch"], r["patch"]): r["median"] for r in rows if r["job"] == "train" and r["precision"] == "fp32"}
    for r in rows:
        fwd = r["job"].startswith("forward")
        base = fp32.get((r["batch"], r["patch"])) if not fwd else None
        table.append([
            JOB_LABELS[r["job"]], f"{r['precision']} ({r['policy']})", r["batch"],
            f"15x{r['patch']}^2" + (f" -> {2 * r['patch']}^2" if fwd else ""), r["n"], r["first"],
            r["median"], r["min"], r["per_sample"], r["samples_s"],
            (f"{r['gflops']:.1f}" if fwd else f"~{r['gflops']:.1f}"),
            f"{base / r['median']:.2f}x" if base else "-", r["peak"], r["cpu"], r["others"]])
    lines = []
    fwd = next((r for r in rows if r["job"] == "forward"), None)
    twin = next((r for r in rows if r["job"] == "forward-twin"), None)
    if fwd:
        lines.append(f"Forward pass of the full network ({fwd['params']:,} parameters, {fwd['fwd_gflop']:.1f} GFLOP) "
                     f"on 15x{fwd['patch']}^2: {fwd['median']:.2f} s median with Keras predict on the paper's layers"
                     + (f"; the inference twin {twin['median']:.2f} s ({fwd['median'] / twin['median']:.2f}x)" if twin
                        else "") + ".")
    ratios = [fp32[(r["batch"], r["patch"])] / r["median"] for r in rows
              if r["job"] == "train" and r["precision"] == "bf16" and (r["batch"], r["patch"]) in fp32]
    if ratios:
        verdict = (f"target on AMX: >= {AMX_SPEEDUP_TARGET}x -> {'MET' if min(ratios) >= AMX_SPEEDUP_TARGET else 'NOT met'}"
                   if cpu_path() == "amx" else f"the >= {AMX_SPEEDUP_TARGET}x target applies to AMX CPUs; this "
                   f"CPU's path is {cpu_path()}")
        lines.append(f"bf16 training steps: {min(ratios):.2f}x to {max(ratios):.2f}x the speed of fp32 (median over "
                     f"configurations {median(ratios):.2f}x); {verdict}.")
    q_table, q_headers = [], []
    if quality:
        q_headers = ["precision", "steps", "training s", "s per step", "first-epoch loss", "final loss",
                     "final val_loss", "final val_psnr dB", "losses finite", "max loss after epoch 1 / epoch 1",
                     "held-out PSNR vs truth dB (fp32 scoring)", "change vs fp32 dB", "peak RSS MiB"]
        steps_total = quality["epochs"] * quality["steps_per_epoch"]
        base = np.mean(quality["fp32"]["heldout"]) if "fp32" in quality else None
        for precision in precisions:
            e = quality.get(precision)
            if not e:
                continue
            h = e["history"]
            ps = float(np.mean(e["heldout"]))
            q_table.append([precision, steps_total, e["seconds"], e["seconds"] / steps_total, f"{h[0]['loss']:.4g}",
                            f"{h[-1]['loss']:.4g}", f"{h[-1]['val_loss']:.4g}", f"{h[-1]['val_psnr']:.2f}",
                            "yes" if e["finite"] else "NO", e["spike"],
                            f"{ps:.3f} (" + ", ".join(f"{v:.2f}" for v in e["heldout"]) + ")",
                            "-" if precision == "fp32" or base is None else f"{ps - base:+.3f}", e["peak"]])
        if base is not None and "bf16" in quality:
            d = float(np.mean(quality["bf16"]["heldout"]) - base)
            lines.append(f"Equal steps ({steps_total}), equal quality: held-out PSNR bf16 - fp32 = {d:+.3f} dB; "
                         f"bf16 losses {'all finite' if quality['bf16']['finite'] else 'NOT finite'}.")
    text = "\n\n".join(x for x in [render(headers, table, False, left=2),
                                   render(q_headers, q_table, False) if q_table else "", *lines] if x)
    md = [render(headers, table, True, left=2), "", *[f"{line}" for line in lines], ""]
    if q_table:
        md += ["Equal steps, equal quality (small SR-REDSIM: "
               + ", ".join(f"{k} {v}" for k, v in QUALITY_MODEL.items()) + f"; {quality['count']} simulated "
               "training stacks of 15x96^2, SIM recipe, truth target; scored on held-out stacks "
               "heldout_stack(20, size=128, index=i) in fp32):", "", render(q_headers, q_table, True), ""]
    md += [
        "Definitions:",
        "",
        "- Train rows: a fresh subprocess each; the full network (64 filters, depth 10) built under the precision's "
        "Keras dtype policy and compiled as `srredsim.train` does (Adam 1e-3, MSE, PSNR and SSIM metrics); random "
        "inputs `(batch, P, P, 15)` and targets `(batch, 2P, 2P, 1)`. speed vs fp32: the fp32 row's median / this "
        "row's median (same batch and patch).",
        f"- first s: the first call (includes graph tracing); median / min s: of the timed calls after it "
        f"(forward: {repeats} calls; training: up to {steps} steps, fewer once they passed {max_seconds:g} s).",
        "- GFLOP/s: forward = convolution FLOPs (`srredsim.models.conv_flops`) / median seconds; training "
        "(~) = 3 x forward FLOPs x batch / median seconds, an estimate of the work of forward + backward.",
        "- Equal steps: `srredsim.train.train` in a fresh process per precision, same seed, data and steps; "
        "loss stability = every loss and val_loss finite, and the largest training loss after the first epoch "
        "relative to the first epoch's (< 1: no blow-up). Held-out PSNR: the last weights predicted in fp32 "
        "(`open_model(run, engine='keras', precision='fp32')`), `srredsim.metrics.compare` against the truth.",
        "- peak RSS: VmHWM (/proc/PID/status) of the job's process, read before it quits.",
        "",
    ]
    return text, md


if __name__ == "__main__":
    sys.exit(main())
