"""Benchmark: forward and training speed of the full 64-filter SR-REDSIM on this machine (issue 2).

    python benchmarks/training_speed.py            # full run (~10 min on 2 idle cores), writes
                                                   # benchmarks/results/training_speed.md
    python benchmarks/training_speed.py --quick    # a smoke test (~3 min), prints only

What it measures, each job in a fresh subprocess (so its peak memory is its own):

* **forward**: Keras ``model.predict`` of the full network (64 filters, depth 10, 1,560,257
  parameters) on one 15 x 512 x 512 stack -> 1024 x 1024 -- median of ``--repeats`` calls after one
  warm-up call (the issue's reference: ~4.5 s); once with the paper's layers (as trained) and once
  as the inference twin (``srredsim.models.inference_twin``: stride-1 ``Conv2DTranspose`` written
  as ``Conv2D``, the same function, which ``srredsim predict`` runs);
* **training**: seconds per ``model.train_on_batch`` step at batch 1 and 16 (the batch of
  ``bioimage_model/training_config.yaml``) and patch sizes 64, 96 and 128 (raw pixels; targets
  2P x 2P), with the model compiled as ``srredsim.train`` compiles it (Adam, MSE loss, the PSNR
  and SSIM metrics). Random data; the first step (graph tracing) is timed separately, then the
  median of up to ``--steps`` steps, fewer when a configuration's timed steps pass
  ``--max-seconds`` (at least one is always timed).

Peak memory is the peak resident set size of each job's process (``VmHWM`` of ``/proc/PID/status``
read before it quits; it includes Python and TensorFlow, ~0.6 GiB). GFLOP/s of a training
step is an estimate: 3x the forward convolution FLOPs (forward + two backward products) per
sample. CPU seconds and the CPU that other processes used during the job are reported because
the machine is shared.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference import (ROOT, WORKER_ENV, Timer, load_line, median, render, report_header,  # noqa: E402
                       run_worker, worker_channel)

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "training_speed.md"
JOB_LABELS = {"forward": "forward, paper's layers (Keras predict)",
              "forward-twin": "forward, inference twin (Keras predict)",
              "train": "train step (train_on_batch)"}
TRAINING_CONFIG = ROOT / "bioimage_model" / "training_config.yaml"


def _build(compiled: bool, twin: bool = False):
    import keras

    from srredsim.config import ModelConfig
    from srredsim.models import build_model

    cfg = ModelConfig(architecture="sr_redsim", in_channels=15, filters=64, depth=10)
    model = build_model(cfg)
    if twin:
        from srredsim.models import inference_twin

        return inference_twin(model, cfg)
    if compiled:
        from srredsim.train import psnr, ssim

        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=[psnr, ssim])
    return model


def worker(job: str, batch: int, patch: int, steps: int, max_seconds: float) -> int:
    send = worker_channel()
    try:
        keras_seed = np.random.default_rng(0)
        with Timer() as t_build:
            model = _build(compiled=(job == "train"), twin=(job == "forward-twin"))
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
             build=t_build.as_dict(), first=first.as_dict(), steps=times)
        sys.stdin.readline()  # stay alive until the parent has read our peak memory
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: forward at 256^2, patches 64 and 96, batches 1 and 4, 2 steps; prints only")
    p.add_argument("--size", type=int, default=None, help="forward stack edge (default 512)")
    p.add_argument("--repeats", type=int, default=None, help="timed forward calls after the warm-up (default 3)")
    p.add_argument("--patches", default=None, help="comma list of patch sizes (default 64,96,128)")
    p.add_argument("--batches", default=None,
                   help=f"comma list of batch sizes (default 1 and the batch of {TRAINING_CONFIG.relative_to(ROOT)})")
    p.add_argument("--steps", type=int, default=None, help="timed training steps after the first (default 3)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop timing a configuration's steps once they took this long (default 150)")
    p.add_argument("--out", default=None, help=f"Markdown report (default {DEFAULT_OUT.relative_to(ROOT)}; "
                                                "none with --quick unless given)")
    p.add_argument("--no-twin", action="store_true",
                   help="skip the forward pass of the inference twin (the network srredsim predicts with)")
    p.add_argument("--worker", nargs=2, metavar=("JOB", "BATCHxPATCH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    steps = args.steps or (2 if q else 3)
    max_seconds = args.max_seconds if args.max_seconds is not None else (30.0 if q else 150.0)
    if args.worker:
        b, patch = (int(v) for v in args.worker[1].split("x"))
        return worker(args.worker[0], b, patch, args.repeats if args.worker[0].startswith("forward") else steps,
                      max_seconds)

    os.environ.update(WORKER_ENV)
    size = args.size or (256 if q else 512)
    repeats = args.repeats if args.repeats is not None else (1 if q else 3)
    patches = [int(v) for v in (args.patches or ("64,96" if q else "64,96,128")).split(",")]
    batches = [int(v) for v in (args.batches or ("1,4" if q else f"1,{_config_batch()}")).split(",")]
    out = Path(args.out) if args.out else (None if q else DEFAULT_OUT)
    started = datetime.datetime.now()
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="srredsim-bench-training-"))
    rows = []
    extra = ["--steps", str(steps), "--max-seconds", str(max_seconds), "--repeats", str(repeats)]

    def run(job, batch, patch):
        print(f"{job} batch {batch}, {patch}^2 ...", flush=True)
        msg, peak = run_worker(["--worker", job, f"{batch}x{patch}", *extra], work / f"{job}-{batch}x{patch}.log",
                               script=__file__)
        s = [t["wall"] for t in msg["steps"]] or [msg["first"]["wall"]]
        med = median(s)
        ref = msg["forward_flops"] * (1 if job.startswith("forward") else 3)
        row = {"job": job, "batch": batch, "patch": patch, "n": len(msg["steps"]), "first": msg["first"]["wall"],
               "median": med, "min": min(s), "per_sample": med / batch, "samples_s": batch / med,
               "gflops": ref / med / 1e9, "peak": peak, "cpu": median([t["cpu"] for t in msg["steps"]] or [0]),
               "others": median([t["others"] for t in msg["steps"]] or [msg["first"]["others"]]),
               "load": median([t["load1"] for t in msg["steps"]] or [msg["first"]["load1"]]),
               "params": msg["params"], "fwd_gflop": msg["forward_flops"] / 1e9}
        rows.append(row)
        print(f"  first {row['first']:.2f} s, median {med:.2f} s of {row['n']}, peak RSS {peak:.0f} MiB, "
              f"others {row['others']:.2f} cores", flush=True)

    try:
        run("forward", 1, size)
        if not args.no_twin:
            run("forward-twin", 1, size)
        for batch in batches:
            for patch in patches:
                run("train", batch, patch)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()
    headers = ["job", "batch", "input", "timed", "first s", "median s", "min s", "s per sample", "samples/s",
               "GFLOP/s", "peak RSS MiB", "CPU s", "other procs (cores)", "load 1 min"]
    table = []
    for r in rows:
        fwd = r["job"].startswith("forward")
        table.append([
            JOB_LABELS[r["job"]], r["batch"],
            f"15x{r['patch']}^2" + (f" -> {2 * r['patch']}^2" if fwd else ""), r["n"], r["first"],
            r["median"], r["min"], r["per_sample"], r["samples_s"],
            (f"{r['gflops']:.1f}" if fwd else f"~{r['gflops']:.1f}"), r["peak"], r["cpu"],
            r["others"], r["load"]])
    fwd = rows[0]
    summary = (f"Forward pass of the full network ({fwd['params']:,} parameters, {fwd['fwd_gflop']:.1f} GFLOP) on "
               f"15x{fwd['patch']}^2: {fwd['median']:.2f} s median with Keras predict on the paper's layers "
               f"(issue 2's reference ~4.5 s), peak RSS {fwd['peak']:.0f} MiB.")
    twin = next((r for r in rows if r["job"] == "forward-twin"), None)
    if twin:
        summary += (f" The inference twin (stride-1 Conv2DTranspose as Conv2D, what srredsim predicts with): "
                    f"{twin['median']:.2f} s ({fwd['median'] / twin['median']:.2f}x), peak RSS {twin['peak']:.0f} MiB.")
    text = "\n\n".join([render(headers, table, False), summary, load_line(load_start, load_end)])
    print()
    print(text)
    if out:
        md = [
            *report_header("SR-REDSIM forward and training speed", "training_speed.py",
                           argv if argv is not None else sys.argv[1:], started, load_start, load_end),
            render(headers, table, True),
            "",
            summary,
            "",
            "Definitions:",
            "",
            "- Every row is a fresh subprocess: the network built by `srredsim.models.build_model` (64 filters, "
            "depth 10), for training compiled as `srredsim.train` does (Adam 1e-3, MSE, PSNR and SSIM metrics); "
            "random inputs `(batch, P, P, 15)` and targets `(batch, 2P, 2P, 1)`.",
            f"- first s: the first call (includes graph tracing); median / min s: of the timed calls after it "
            f"(forward: {repeats} calls; training: up to {steps} steps, fewer once they passed {max_seconds:g} s).",
            "- GFLOP/s: forward = convolution FLOPs (`srredsim.models.conv_flops`) / median seconds; training "
            "(~) = 3 x forward FLOPs x batch / median seconds, an estimate of the work of forward + backward.",
            "- peak RSS: VmHWM (/proc/PID/status) of the job's process, read before it quits (includes Python + "
            "TensorFlow; not ru_maxrss, which Linux carries over from the parent process across fork + exec).",
            "- CPU s: CPU seconds of the job's process per call (all threads); other procs (cores): CPU used by other "
            f"processes during the calls, in cores out of {os.cpu_count()}; load 1 min: os.getloadavg() after each "
            "call (includes this benchmark's own threads). The machine is shared: compare rows of one run only.",
            "",
        ]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(md))
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
