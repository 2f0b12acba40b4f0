"""Benchmark: srredsim inference on this CPU -- engines x precisions, the whole `srredsim predict`
command, and a tiled 2048^2 stack, against an sgemm floor measured in the same run (issue 12).

    python benchmarks/inference.py            # full run (~15 min on 2 idle cores), writes
                                              # benchmarks/results/inference.md
    python benchmarks/inference.py --quick    # smoke test (~5 min): 128^2 stack, tiled 384^2, prints only
    python benchmarks/inference.py --model RUN --out benchmarks/results/inference.md
                                              # a full-size (64 filters, depth 10) run folder, e.g.
                                              # release 0.1's default: mkdir RUN && git archive
                                              # 630bf82^ srredsim/data/models/default | tar -x -C RUN
                                              # --strip-components 4

What it measures, for the model ``--model`` (default: the shipped ``default``, sim-3x5, an
SR-REDSIM of 32 filters and depth 5; issue 12's floor, 817.5 GFLOP per 512^2 -> 1024^2 pass, is
that of the paper's full-size network: 64 filters, depth 10), its FLOPs counted by
:func:`srredsim.models.conv_flops`, on simulated held-out stacks with a known truth
(``srredsim.recipes.heldout_stack(20, size=N)``):

* **the sgemm floor**: numpy float32 ``4096^2 @ 4096^2`` (GFLOP/s, best of 3), in a fresh process
  at the start and at the end of the run; the floor for a pass of F GFLOP is F / sgemm seconds --
  what fp32 arithmetic at the machine's matrix-product speed would need. "x floor" = seconds /
  floor seconds (the fastest sgemm measurement: a disturbance only slows it; the report says
  when the start and end differ by more than 10 %). The sgemm is also measured after every
  round of the whole command, and the target is judged on each round's command against the
  floor of its own round (the median over rounds): the machine's speed drifts within a run;
* **engines x precisions** (``--cells``): each of keras, savedmodel, onnx, openvino in fp32 and, where
  the engine has it, bf16, opened by :func:`srredsim.runtime.open_model` in a fresh process; the
  network call on one normalised 15 x 512^2 stack, median (and minimum) of ``--repeats`` calls
  after one warm-up call, the engines' calls interleaved round by round; GFLOP/s; peak memory
  of the process (``VmHWM``); max |difference| and PSNR of the output against ONNX Runtime fp32 (the
  reference, network units); PSNR against the truth (``srredsim.metrics.compare``: registration,
  border crop, affine fit) and its change against ONNX Runtime fp32;
* **the whole command** ``srredsim predict default RAW.tif -o OUT.tif`` (defaults: ``--engine auto
  --precision auto``), process start to exit: once with an empty per-user cache (it converts the
  model to ONNX and measures the engines, once per model and machine), then ``--repeats`` times
  warm, interleaved with ``--border none`` (the image alone, without the mirrored halo that makes
  the result equal DeepImageJ's) and ``--engine onnx --precision fp32`` (the fp32 ONNX Runtime baseline);
  peak memory of the command's process; PSNR of the written image against the truth;
* **tiled 2048^2**: the whole command on a 15 x 2048^2 stack (25 tiles of 512^2, the default
  tiling above 1024 px), auto and ONNX Runtime fp32, with its peak memory (target <= 3 GB);
* the **targets** of issue 12 checked in the same run: the whole command <= 0.5x the floor with
  AMX, <= 0.8x with AVX512-BF16 only, <= 1.1x otherwise; PSNR against the truth within 0.05 dB of
  ONNX Runtime fp32; tiled 2048^2 in <= 3 GB.

Converted engines and the auto measurement go to a temporary per-user cache
(``SRREDSIM_CACHE_DIR``), never into the model folder or the user's cache.
"""

from __future__ import annotations

import argparse
import importlib.util
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, WORKER_ENV, Timer, Worker, code_version, load_line, median,  # noqa: E402
                     render, report_header, run_command, run_worker, sgemm_gflops, worker_channel)

CELLS = ("keras:fp32", "keras:bf16", "savedmodel:fp32", "onnx:fp32", "openvino:fp32", "openvino:bf16", "openvino:int8")
REFERENCE = "onnx:fp32"
FLOOR_TARGETS = {"amx": 0.5, "avx512_bf16": 0.8}  # x the fp32 floor; 1.1 on every other CPU path
OTHER_TARGET = 1.1
PSNR_TARGET_DB = 0.05
MEMORY_TARGET_GB = 3.0
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "inference.md"


# ---------------------------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------------------------
def worker_main(args) -> int:
    import psutil

    send = worker_channel()
    me = psutil.Process()
    try:
        if args.worker == "sgemm":
            send(event="ready", gflops=sgemm_gflops(args.sgemm_n))
            sys.stdin.readline()
            return 0
        from srredsim.runtime import open_model

        engine, precision = args.worker.split(":")
        with Timer() as t_open:
            model = open_model(args.model, engine=engine, precision=precision)
        x = np.load(args.input) if args.input else None
        send(event="ready", open=t_open.as_dict(), rss_open_mib=me.memory_info().rss / 2**20,
             engine=model.engine, precision=model.precision, describe=model.describe(),
             tf_loaded="tensorflow" in sys.modules, threads=me.num_threads())
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                break
            if cmd["cmd"] == "run":
                with Timer() as t:
                    y = np.asarray(model.predict_fn(x[None]), np.float32)
                if cmd.get("save"):
                    np.save(cmd["save"], y.reshape(y.shape[1], y.shape[2]))
                send(event="done", **t.as_dict())
            else:
                send(event="error", message=f"unknown command {cmd!r}")
        return 0
    except BaseException as exc:  # report, then die
        import traceback

        traceback.print_exc()
        send(event="error", message=f"{type(exc).__name__}: {exc}")
        return 1


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
def _inputs(model: str, size: int, tiled_size: int, photons: float, work: Path) -> dict:
    """Held-out stacks with their truth: npy (network units) for the engines, TIFF for the command."""
    from srredsim.normalization import normalize_raw
    from srredsim.predict import stack_to_hwc
    from srredsim.recipes import heldout_stack
    from srredsim.runfolder import load_run
    from srredsim.tiff import write_tiff

    run = load_run(model)
    norm, px = run.config.normalization, run.config.optics.pixel_size_um
    out = {}
    for tag, n in (("stack", size), ("tiled", tiled_size)):
        if not n:
            continue
        s = heldout_stack(photons, size=n, targets=("truth",))
        np.save(work / f"truth-{tag}.npy", s.truth.astype(np.float32))
        write_tiff(work / f"raw-{tag}.tif", s.raw, pixel_size_um=px)
        out[tag] = {"raw_tif": work / f"raw-{tag}.tif", "truth": work / f"truth-{tag}.npy", "size": n}
        if tag == "stack":
            np.save(work / "x-stack.npy", stack_to_hwc(normalize_raw(s.raw, norm)))
            out[tag]["x"] = work / "x-stack.npy"
    return out


def _psnr_vs_truth(sr: np.ndarray, truth_path: Path) -> float:
    from srredsim.metrics import compare

    return float(compare(sr, np.load(truth_path), border=32)["psnr"])


def _psnr(y: np.ndarray, ref: np.ndarray) -> float:
    from srredsim.runtime.choice import psnr_db

    return psnr_db(y, ref)


def _flops(model: str, sizes: list[int]) -> dict[int, float]:
    from srredsim.models import build_model, conv_flops
    from srredsim.runfolder import load_run

    net = build_model(load_run(model).config.model)
    return {s: conv_flops(net, s, s) for s in sorted(set(sizes))}


def _model_info(name: str, model: str) -> dict:
    """What the report says about the model measured: its name, network and receptive halo."""
    from srredsim.export.meta import halo
    from srredsim.models import build_model
    from srredsim.runfolder import load_run

    cfg = load_run(model).config.model
    params = build_model(cfg).count_params()
    where = f"`{name}`" + ("" if name == model else f" ({model})")
    return {"halo": int(halo(cfg)),
            "text": f"model {where}: {cfg.architecture}, {cfg.filters} filters, depth {cfg.depth}, {params:,} parameters"}


def _halo_used(model: str, cache: Path, engine_line: str) -> int | None:
    """The halo the command extends the image by: measured by its first run (srredsim.runtime.halo)
    and read from that run's cache, for the precision its engine line says it ran (reduced
    precision takes a narrower one)."""
    import re
    from unittest import mock

    from srredsim.runtime import read_model

    ran = re.search(r" on \w+ (fp32|bf16|int8|fp16)\b", engine_line)
    with mock.patch.dict(os.environ, {"SRREDSIM_CACHE_DIR": str(cache)}), read_model(model) as artifact:
        return artifact.measured_halo(ran.group(1) if ran else "fp32")


def _tile_plan(model: str, size: int, tile: int | None, halo_px: int | None = None) -> tuple[int, int]:
    """(number of tiles, window edge) of the command's default tiling for a ``size``^2 stack."""
    from srredsim.predict import default_tile
    from srredsim.export.meta import halo
    from srredsim.predict import count_tiles
    from srredsim.runfolder import load_run

    cfg = load_run(model).config
    t = tile or default_tile(size, size)
    return count_tiles((size, size), t, halo(cfg.model) if halo_px is None else halo_px, 8), (t or size)


def _engine_line(output: str) -> str:
    """The command's line that says which engine, precision and CPU path ran."""
    import re

    tail = r"; \d+ stack\(s\), \d+ tile\(s\)(; edges: .*)?$"
    for line in output.splitlines():
        if " on " in line and re.search(tail, line.strip()):
            return re.sub(tail, "", line.strip())
    return "-"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: --size 128, --tiled-size 384 --tile 192, --repeats 1, sgemm 2048; prints only")
    p.add_argument("--cells", default=",".join(CELLS),
                   help="engine:precision cells to time (default: all; bf16 cells the CPU lacks are skipped)")
    p.add_argument("--repeats", type=int, default=None, help="timed calls / warm commands (default 3)")
    p.add_argument("--size", type=int, default=None, help="raw stack edge (default 512)")
    p.add_argument("--tiled-size", type=int, default=None, help="raw edge of the tiled stack (default 2048; 0 skips)")
    p.add_argument("--tile", type=int, default=None, help="--tile of the tiled command (default: the command's)")
    p.add_argument("--sgemm-n", type=int, default=None, help="matrix edge of the sgemm floor (default 4096)")
    p.add_argument("--model", default="default", help="shipped model name or run folder (default: default)")
    p.add_argument("--photons", type=float, default=20.0, help="light level of the simulated stacks")
    p.add_argument("--sequential", action="store_true",
                   help="one engine after the other instead of interleaved (less memory at once)")
    p.add_argument("--no-command", action="store_true", help="skip the whole-command and tiled rows")
    p.add_argument("--out", default=None, help=f"Markdown report (default {DEFAULT_OUT.relative_to(ROOT)}; "
                                                "none with --quick unless given)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (inputs, outputs, logs, cache)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker_main(args)
    os.environ.update(WORKER_ENV)

    q = args.quick
    repeats = args.repeats if args.repeats is not None else (1 if q else 3)
    size = args.size or (128 if q else 512)
    tiled_size = args.tiled_size if args.tiled_size is not None else (384 if q else 2048)
    tile = args.tile or (192 if q else None)
    args.sgemm_n = args.sgemm_n or (2048 if q else 4096)
    out = Path(args.out) if args.out else (None if q else DEFAULT_OUT)
    cells = _cells(p, args.cells)
    if args.no_command:
        tiled_size = 0

    from srredsim.pretrained import resolve

    model = str(resolve(args.model))
    started, load_start, version_start = datetime.datetime.now(), os.getloadavg(), code_version()
    work = Path(tempfile.mkdtemp(prefix="srredsim-bench-inference-"))
    os.environ["SRREDSIM_CACHE_DIR"] = str(work / "cache")  # the workers' engines and measurements
    print(f"working folder {work}", flush=True)
    try:
        inputs = _inputs(model, size, tiled_size, args.photons, work)
        res = run_benchmark(model, work, cells, repeats, inputs, tile, args)
        tiles = _tile_plan(model, tiled_size, tile, res.get("halo_used")) if tiled_size else (0, 0)
        flops = _flops(model, [size] + ([tiles[1]] if tiled_size else []))
        report = make_report(res, flops, size, tiled_size, tiles, repeats, started, load_start,
                             argv if argv is not None else sys.argv[1:], args.photons,
                             _model_info(args.model, model))
        if code_version() != version_start:
            print(f"\nWARNING: the srredsim code changed during the run ({version_start} -> {code_version()}); "
                  "rerun" + ("" if args.out else f" ({DEFAULT_OUT.name} not written)"), file=sys.stderr)
            out = out if args.out else None
        print()
        print(report["text"])
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(report["markdown"])
            print(f"\nwrote {out}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _cells(p, spec: str) -> list[str]:
    from srredsim.runtime.choice import engine_precisions, fast_bf16

    cells = []
    for c in (c.strip() for c in spec.split(",") if c.strip()):
        engine, _, precision = c.partition(":")
        try:
            ok = precision in engine_precisions(engine)
        except KeyError:
            ok = False
        if not ok:
            p.error(f"--cells: {c!r} is not engine:precision of {', '.join(CELLS)}")
        if precision == "bf16" and not fast_bf16(engine):
            print(f"skipping {c}: no native bf16 for {engine} on this CPU", flush=True)
            continue
        if precision == "int8" and importlib.util.find_spec("nncf") is None:
            print(f"skipping {c}: NNCF is not installed (pip install \"srredsim[int8]\")", flush=True)
            continue
        cells.append(c)
    if REFERENCE not in cells:
        cells.insert(0, REFERENCE)  # the reference of differences and PSNR changes
    return cells


def _floor(work: Path, n: int, tag: str) -> float:
    msg, _ = run_worker(["--worker", "sgemm", "--sgemm-n", str(n)], work / f"sgemm-{tag}.log", script=__file__)
    print(f"sgemm floor ({tag}): {msg['gflops']:.1f} GFLOP/s (numpy float32 {n}^2 matrix product)", flush=True)
    return float(msg["gflops"])


def run_benchmark(model: str, work: Path, cells: list[str], repeats: int, inputs: dict, tile, args) -> dict:
    res: dict = {"cells": {}, "command": {}, "sgemm": {}}
    res["sgemm"]["start"] = _floor(work, args.sgemm_n, "start")

    # 1. one-time conversions, each in a fresh process with the (still empty) cache
    for base in ("onnx", "savedmodel", "int8"):
        if any(c.startswith(base + ":") or (base == "onnx" and c.startswith("openvino:")) for c in cells) \
                or (base == "int8" and "openvino:int8" in cells):
            print(f"converting to {base} ...", flush=True)
            worker = "openvino:int8" if base == "int8" else f"{base}:fp32"
            msg, peak = run_worker(["--worker", worker, "--model", model], work / f"convert-{base}.log",
                                   script=__file__)
            res.setdefault("convert", {})[base] = {"seconds": msg["open"]["wall"], "peak_rss_mib": peak}
            print(f"  {msg['open']['wall']:.1f} s, peak RSS {peak:.0f} MiB", flush=True)

    # 2. engines x precisions: the network call on one stack, a fresh process per cell
    x_path = inputs["stack"]["x"]

    def start(cell):
        w = Worker(["--worker", cell, "--model", model, "--input", str(x_path)], work / f"{cell.replace(':', '-')}.log",
                   script=__file__)
        ready = w.recv()
        res["cells"][cell] = {"ready": ready, "runs": [], "first": None}
        print(f"{cell}: opened in {ready['open']['wall']:.1f} s (RSS {ready['rss_open_mib']:.0f} MiB): "
              f"{ready['describe']}", flush=True)
        return w

    def call(cell, w, save):
        msg = w.ask(cmd="run", save=str(work / f"out-{cell.replace(':', '-')}.npy") if save else None)
        e = res["cells"][cell]
        if e["first"] is None:
            e["first"], tag = msg, "warm-up"
        else:
            e["runs"].append(msg)
            tag = f"run {len(e['runs'])}/{repeats}"
        print(f"  {cell:<16} {tag:<9} {msg['wall']:7.2f} s  cpu {msg['cpu']:7.2f} s  "
              f"others {msg['others']:.2f} cores  load {msg['load1']:.2f}", flush=True)

    def finish(cell, w):
        res["cells"][cell]["peak_rss_mib"] = w.close()

    if args.sequential:
        for cell in cells:
            w = start(cell)
            for i in range(repeats + 1):
                call(cell, w, save=(i == repeats))
            finish(cell, w)
    else:
        workers = {cell: start(cell) for cell in cells}
        for cell in cells:
            call(cell, workers[cell], save=(repeats == 0))
        for r in range(repeats):
            order = cells[r % len(cells):] + cells[:r % len(cells)]
            for cell in order:
                call(cell, workers[cell], save=(r == repeats - 1))
        for cell, w in workers.items():
            finish(cell, w)

    from srredsim.normalization import denormalize_output
    from srredsim.runfolder import load_run

    norm = load_run(model).config.normalization
    ref = np.load(work / f"out-{REFERENCE.replace(':', '-')}.npy")
    for cell in cells:
        y = np.load(work / f"out-{cell.replace(':', '-')}.npy")
        e = res["cells"][cell]
        e["max_diff"] = float(np.max(np.abs(y - ref)))
        e["psnr_vs_ref"] = _psnr(y, ref)
        e["psnr_truth"] = _psnr_vs_truth(denormalize_output(y, norm), inputs["stack"]["truth"])
    res["out_max"] = float(ref.max())

    # 3. the whole command: cold (empty cache), then warm and interleaved with onnx fp32
    if not args.no_command:
        exe = shutil.which("srredsim", path=str(Path(sys.executable).parent)) or shutil.which("srredsim")
        base = [exe] if exe else [sys.executable, "-m", "srredsim"]
        raw = str(inputs["stack"]["raw_tif"])
        cold_cache = work / "cache-command"
        cases = {"auto": [], "auto, --border none": ["--border", "none"],
                 "onnx fp32": ["--engine", "onnx", "--precision", "fp32"]}
        if "openvino:int8" in cells:  # asked for by name (auto never picks it): how fast, how exact
            cases.update({"int8": ["--precision", "int8"], "int8, --border none": ["--precision", "int8", "--border", "none"]})

        def command(case, raw_path, out_name, key, tile_args=()):
            outp = work / out_name
            cmd = [*base, "predict", model, raw_path, "-o", str(outp), "--overwrite", *cases[case], *tile_args]
            r = run_command(cmd, work / f"{out_name}.log", env={"SRREDSIM_CACHE_DIR": str(cold_cache)})
            from srredsim.tiff import read_reference

            sr = read_reference(outp)[0]
            r["psnr_truth"] = _psnr_vs_truth(sr, inputs[key]["truth"])
            r["engine_line"] = _engine_line(r["output"])
            print(f"  {case:<10} {raw_path.rsplit('/', 1)[-1]:<16} {r['wall']:7.2f} s  peak {r['peak_mib']:.0f} MiB  "
                  f"PSNR {r['psnr_truth']:.3f} dB  [{r['engine_line']}]", flush=True)
            return r

        print("whole command, empty cache (converts and measures once):", flush=True)
        res["command"]["cold"] = command("auto", raw, "cold.tif", "stack")
        res["halo_used"] = _halo_used(model, cold_cache, res["command"]["cold"]["engine_line"])
        if "int8" in cases:
            print("whole command, --precision int8 the first time (quantises once):", flush=True)
            res["command"]["cold_int8"] = command("int8", raw, "cold-int8.tif", "stack")
        res["command"]["warm"] = {case: [] for case in cases}
        print("whole command, warm:", flush=True)
        res["sgemm"]["rounds"] = []
        for r in range(repeats):
            for case in (list(cases) if r % 2 == 0 else list(cases)[::-1]):
                res["command"]["warm"][case].append(command(case, raw, f"warm-{case.replace(' ', '-').replace(',', '')}.tif", "stack"))
            # the floor again, right after this round: the machine's speed drifts within a run (by 5-25 %
            # here), and a round's commands are compared with the matrix product of the same minute
            res["sgemm"]["rounds"].append(_floor(work, args.sgemm_n, f"round {r + 1}"))
        if "tiled" in inputs:
            print("whole command, tiled:", flush=True)
            tile_args = ("--tile", str(tile)) if tile else ()
            res["command"]["tiled"] = {case: command(case, str(inputs["tiled"]["raw_tif"]),
                                                     f"tiled-{case.replace(' ', '-')}.tif", "tiled", tile_args)
                                       for case in ("auto", "onnx fp32")}
    res["sgemm"]["end"] = _floor(work, args.sgemm_n, "end")
    return res


def make_report(res, flops, size, tiled_size, tiles, repeats, started, load_start, argv, photons, model_info):
    from srredsim.hardware import cpu_path

    # the faster of the two: a floor is what the arithmetic can do here, and another process or a
    # slower machine state only ever makes the matrix product slower (a disturbed start once read
    # 149 against 193 GFLOP/s at the end, and the mean would have flattered every ratio by 15 %)
    gflops = max(res["sgemm"]["start"], res["sgemm"]["end"], *res["sgemm"].get("rounds", []))
    spread = abs(res["sgemm"]["start"] - res["sgemm"]["end"]) / gflops
    gflop = flops[size] / 1e9
    floor_s = gflop / gflops
    ref = res["cells"][REFERENCE]
    ref_truth = ref["psnr_truth"]

    headers = ["engine", "precision", "runs", "median s", "min s", "CPU s", "GFLOP/s", "x floor", "peak RSS MiB",
               "RSS after load MiB", "max |diff| vs onnx fp32", "PSNR vs onnx fp32 dB", "PSNR vs truth dB",
               "change vs onnx fp32 dB", "other procs (cores)"]
    rows = []
    for cell, e in res["cells"].items():
        runs = e["runs"] or [e["first"]]
        med = median([r["wall"] for r in runs])
        engine, precision = cell.split(":")
        rows.append([engine, precision, len(runs), med, min(r["wall"] for r in runs), median([r["cpu"] for r in runs]),
                     gflop / med, f"{med / floor_s:.2f}x", e["peak_rss_mib"], e["ready"]["rss_open_mib"], e["max_diff"],
                     "ref" if cell == REFERENCE else f"{e['psnr_vs_ref']:.1f}", f"{e['psnr_truth']:.3f}",
                     "-" if cell == REFERENCE else f"{e['psnr_truth'] - ref_truth:+.4f}",
                     median([r["others"] for r in runs])])
    setup_headers = ["engine", "precision", "open s", "first call s", "threads", "TensorFlow imported", "what ran"]
    setup_rows = [[*cell.split(":"), e["ready"]["open"]["wall"], e["first"]["wall"], e["ready"]["threads"],
                   "yes" if e["ready"]["tf_loaded"] else "no", e["ready"]["describe"]] for cell, e in res["cells"].items()]
    conv = res.get("convert", {})
    conv_line = "; ".join(f"{k}: {v['seconds']:.1f} s (peak RSS {v['peak_rss_mib']:.0f} MiB)" for k, v in conv.items())

    target = FLOOR_TARGETS.get(cpu_path(), OTHER_TARGET)
    declared_px = model_info["halo"]
    halo_px = res.get("halo_used") or declared_px
    extended = ((size + 2 * halo_px) / size) ** 2
    cmd_rows, verdicts = [], []
    c = res["command"]
    if c:
        base_runs = c["warm"]["onnx fp32"]
        base_psnr = median([r["psnr_truth"] for r in base_runs])

        def row(label, runs, floor, base=None):
            med = median([r["wall"] for r in runs])
            ps = median([r["psnr_truth"] for r in runs])
            return [label, len(runs), med, min(r["wall"] for r in runs), f"{med / floor:.2f}x",
                    max(r["peak_mib"] for r in runs), f"{ps:.3f}",
                    "-" if base is None else f"{ps - base:+.4f}", runs[-1]["engine_line"]]

        cmd_rows.append(row(f"15x{size}^2, auto, empty cache (converts + measures)", [c["cold"]], floor_s, base_psnr))
        cmd_rows.append(row(f"15x{size}^2, auto (default)", c["warm"]["auto"], floor_s, base_psnr))
        cmd_rows.append(row(f"15x{size}^2, auto, --border none", c["warm"]["auto, --border none"], floor_s, base_psnr))
        cmd_rows.append(row(f"15x{size}^2, --engine onnx --precision fp32", base_runs, floor_s))
        if "cold_int8" in c:
            cmd_rows.append(row(f"15x{size}^2, --precision int8, first time (quantises once)", [c["cold_int8"]], floor_s,
                                base_psnr))
        for case in ("int8", "int8, --border none"):
            if case in c["warm"]:
                flag = case.replace("int8", "--precision int8", 1)
                cmd_rows.append(row(f"15x{size}^2, {flag} (asked for; auto never picks it)", c["warm"][case], floor_s,
                                    base_psnr))
        auto_med = median([r["wall"] for r in c["warm"]["auto"]])
        auto_psnr = median([r["psnr_truth"] for r in c["warm"]["auto"]])
        rounds = res["sgemm"].get("rounds") or []

        def per_round(case):
            """Each round's command against the floor measured right after that round: (median, lo, hi)."""
            ratios = [run["wall"] * g / gflop for run, g in zip(c["warm"][case], rounds)]
            return (median(ratios), min(ratios), max(ratios)) if ratios else None

        def verdict(case, seconds):
            matched = per_round(case)
            ratio = matched[0] if matched else seconds / floor_s
            text = (f"{seconds:.2f} s = {seconds / floor_s:.2f}x the fastest fp32 floor of the run ({floor_s:.2f} s)"
                    + (f"; against the floor of its own round {matched[0]:.2f}x (median of {len(rounds)}; "
                       f"{matched[1]:.2f}-{matched[2]:.2f}x)" if matched else ""))
            return text, ratio

        text, ratio = verdict("auto", auto_med)
        verdicts.append(f"whole command (auto, warm cache): {text}; target for CPU path {cpu_path()}: <= {target:g}x "
                        f"-> {'MET' if ratio <= target else 'NOT met'} (judged on the round-matched ratio where "
                        f"measured); the default mirrors the image by "
                        f"the halo ({halo_px} px per side, measured; the architecture's bound {declared_px} px), so its "
                        f"network computes {extended:.2f}x the pixels of the floor's pass")
        none_med = median([r["wall"] for r in c["warm"]["auto, --border none"]])
        text, ratio = verdict("auto, --border none", none_med)
        verdicts.append(f"whole command with --border none (the image alone, the floor's pass): {text}; target "
                        f"<= {target:g}x -> {'MET' if ratio <= target else 'NOT met'}")
        if "int8" in c["warm"]:
            i8 = {case: median([r["wall"] for r in c["warm"][case]]) for case in ("int8", "int8, --border none")}
            i8_psnr = median([r["psnr_truth"] for r in c["warm"]["int8"]])
            verdicts.append(f"not the default, for comparison: --precision int8 {i8['int8']:.2f} s = "
                            f"{i8['int8'] / floor_s:.2f}x the floor, with --border none {i8['int8, --border none']:.2f} s "
                            f"= {i8['int8, --border none'] / floor_s:.2f}x; PSNR vs truth {i8_psnr - base_psnr:+.4f} dB "
                            "vs onnx fp32 (auto refuses int8: below 65 dB vs fp32 on the model's test tensor)")
        verdicts.append(f"PSNR vs truth: auto {auto_psnr:.3f} dB, onnx fp32 {base_psnr:.3f} dB, change "
                        f"{auto_psnr - base_psnr:+.4f} dB; target |change| <= {PSNR_TARGET_DB} dB -> "
                        f"{'MET' if abs(auto_psnr - base_psnr) <= PSNR_TARGET_DB else 'NOT met'}")
        if "tiled" in c:
            n_tiles, window = tiles
            tiled_floor = flops[window] * n_tiles / 1e9 / gflops
            tb = c["tiled"]["onnx fp32"]["psnr_truth"]
            for case, r in c["tiled"].items():
                cmd_rows.append(row(f"15x{tiled_size}^2 tiled ({n_tiles} tiles of {window}^2), {case}", [r], tiled_floor,
                                    None if case == "onnx fp32" else tb))
            peak = c["tiled"]["auto"]["peak_mib"] * 2**20 / 1e9
            verdicts.append(f"tiled {tiled_size}^2 (auto): peak {peak:.2f} GB; target <= {MEMORY_TARGET_GB:g} GB -> "
                            f"{'MET' if peak <= MEMORY_TARGET_GB else 'NOT met'}"
                            + ("" if tiled_size == 2048 else f" (a {tiled_size}^2 stack, not the 2048^2 of the target)"))
    cmd_headers = ["whole command: srredsim predict MODEL RAW.tif -o OUT.tif", "runs", "median s", "min s", "x floor",
                   "peak RSS MiB", "PSNR vs truth dB", "change vs onnx fp32 dB", "what ran (the command's line)"]
    floor_line = (f"sgemm floor: numpy float32 matrix product {res['sgemm']['start']:.1f} GFLOP/s at the start, "
                  f"{res['sgemm']['end']:.1f} at the end"
                  + (f", {', '.join(f'{g:.1f}' for g in res['sgemm']['rounds'])} after the rounds of the whole "
                     "command" if res["sgemm"].get("rounds") else "")
                  + f" (the fastest, {gflops:.1f}, is the floor); fp32 floor of "
                  f"one {size}^2 pass ({gflop:.1f} GFLOP): {floor_s:.2f} s"
                  + (f". The two differ by {100 * spread:.0f} %: the machine's speed changed during the run, so "
                     "its ratios are less certain than usual" if spread > 0.1 else ""))
    load_end = os.getloadavg()
    notes = [
        f"Input: simulated held-out stacks with a known truth (srredsim.recipes.heldout_stack({photons:g}, size=N), "
        "mixed structures). PSNR vs truth: srredsim.metrics.compare (registration, 32-px border, affine fit), "
        "as `srredsim evaluate` scores.",
        "Engine rows: the network call only (normalised input in memory), srredsim.runtime.open_model(model, engine, "
        "precision) in a fresh process per cell; median (min) of the timed calls after one warm-up call, calls "
        "interleaved round by round. x floor: median seconds / the fp32 floor. Peak RSS: VmHWM of the process "
        "(interpreter, imports, weights included).",
        "Whole-command rows: process start to exit of `srredsim predict` (interpreter start-up, imports, reading the "
        "TIFF, opening the model, normalising, predicting, writing the TIFF); peak RSS is the command's own "
        "(ru_maxrss of a child of a small runner process). The empty-cache row includes the one-time ONNX "
        "conversion and the auto measurement; the warm rows read them from the cache.",
        "Tiled rows: the command's default tiling (whole image up to 1024 px, 512^2 tiles above), halo = the one the "
        "command uses (measured once per model: srredsim.runtime.halo); their floor counts the FLOPs of all tiles, halos included.",
        "bf16 is offered only where the CPU computes it natively (srredsim.hardware; OpenVINO's BF16 capability). "
        "onnx and savedmodel run fp32 only (no bf16 convolutions in ONNX Runtime's CPU provider). int8: OpenVINO on "
        "the network quantised by srredsim.runtime.quantize (made once: the 'int8' conversion; needs NNCF); its "
        "floating-point layers run bf16 where the CPU has it.",
        "other procs (cores): CPU used by other processes during the calls; the machine may be shared, so compare "
        "rows of one run only.",
    ]
    text = "\n\n".join(x for x in [
        floor_line,
        render(headers, rows, False, left=2),
        render(setup_headers, setup_rows, False, left=2),
        f"one-time conversions (fresh process): {conv_line}" if conv_line else "",
        render(cmd_headers, cmd_rows, False) if cmd_rows else "",
        "\n".join(verdicts),
        load_line(load_start, load_end),
    ] if x)
    md = [
        *report_header("SR-REDSIM inference on CPUs: engines, precisions, the whole command", "inference.py", argv,
                       started, load_start, load_end,
                       model_info["text"]),
        floor_line + ".",
        "",
        "Targets (issue 12):",
        "",
        *[f"- {v}" for v in verdicts],
        "",
        "The network call, one 15x%d^2 stack:" % size,
        "",
        render(headers, rows, True, left=2),
        "",
        "Opening each engine:",
        "",
        render(setup_headers, setup_rows, True, left=2),
        "",
        *([f"One-time conversions of the run folder (fresh process, empty cache; the first one also "
           f"measures the model's halo, srredsim.runtime.halo): {conv_line}.", ""] if conv_line else []),
        *(["The whole command:", "", render(cmd_headers, cmd_rows, True), ""] if cmd_rows else []),
        "Definitions:",
        "",
        *[f"- {n}" for n in notes],
        "",
    ]
    return {"text": text, "markdown": "\n".join(md)}


if __name__ == "__main__":
    sys.exit(main())
