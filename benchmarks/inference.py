"""Benchmark: inference speed and memory of the shipped SR-REDSIM on every engine (issue 6 item 4).

    python benchmarks/inference.py                 # full run, writes benchmarks/results/inference.md
    python benchmarks/inference.py --quick         # a smoke test (small sizes, one repeat), prints only
    python benchmarks/inference.py --ort-threads 1,2,0:noarena   # also other ONNX Runtime settings

What it measures, for the shipped ``default`` model (the full 64-filter SR-REDSIM, 817.5 GFLOP per
512^2 -> 1024^2 pass by :func:`srredsim.models.conv_flops`), on one simulated 15 x 512^2 raw stack
(``srredsim.recipes.heldout_stack(20, size=512)``; ``--random`` for uniform noise instead):

* seconds per stack for each engine of :func:`srredsim.inference.open_model` -- ``keras``
  (``predict_on_batch`` on the inference twin, :func:`srredsim.models.inference_twin`, which
  prediction uses), ``savedmodel`` and ``onnx`` (ONNX Runtime, both converted from that twin) --
  and, for reference, Keras on the network with the paper's stride-1 ``Conv2DTranspose`` layers
  as trained (``keras-paper``), as the median (and minimum)
  of ``--repeats`` calls after one warm-up call on the same input; the engines' calls are
  interleaved round by round (the order rotating) so that a change in the machine's load hits all
  engines alike;
* CPU seconds per stack (all threads of the process) and the CPU that *other* processes used
  during the calls (in cores, from the system-wide CPU counters), because this machine is shared;
* achieved GFLOP/s (the network's convolution FLOPs divided by the median seconds);
* peak memory: the peak resident set size of a fresh subprocess per engine (``VmHWM`` of
  ``/proc/PID/status``, read just before it quits -- not ``ru_maxrss``, which on Linux inherits
  the parent's peak across fork + exec); it includes the Python, TensorFlow or ONNX Runtime
  imports and the weights, so "RSS after load" is shown beside it;
* max |difference| of each engine's output to Keras's on the same input (network units; the
  output lies in [0, ~1]);
* one-time costs: converting the run folder to ONNX / SavedModel (a fresh subprocess opening a
  copy of the model without its ``export_cache/``), and opening the cached conversion;
* tiled prediction of a 2048^2 stack with ``srredsim.predict.predict_stack(..., tile=512)`` and the
  model's own halo, on the current default engine (``RUN_FOLDER_AUTO_ENGINE``), Keras and ONNX, each
  in a fresh subprocess (after one warm-up call on one tile), with its seconds and peak memory.

The shipped model is copied to a temporary folder first, so the conversions cached by the
engines never land in ``srredsim/data/models/*/export_cache``. Ratios are against Keras in the
same run. The recommended default engine is the fastest whose max |difference| to Keras is at most
1e-4 (``RUN_FOLDER_AUTO_ENGINE`` in ``srredsim/inference.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOLERANCE = 1e-4
BASE_ENGINES = ("keras", "savedmodel", "onnx")
# not an engine of open_model: Keras on the network with the paper's layers (stride-1
# Conv2DTranspose, as trained) instead of the inference twin that prediction uses
PAPER = "keras-paper"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "inference.md"
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "KERAS_BACKEND": "tensorflow"}


# ---------------------------------------------------------------------------------------------
# shared helpers (also used by benchmarks/training_speed.py)
# ---------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def machine_info() -> dict[str, str]:
    import psutil

    tf = _version("tensorflow")
    if tf == "-":
        tf = _version("tensorflow-cpu")
    ort = _version("onnxruntime")
    if ort == "-":
        ort = _version("onnxruntime-gpu")
    return {
        "CPU": f"{cpu_model()}, {psutil.cpu_count(logical=False)} physical / {os.cpu_count()} logical cores"
               f" ({len(os.sched_getaffinity(0))} usable)",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "versions": f"TensorFlow {tf}, Keras {_version('keras')}, ONNX Runtime {ort}, tf2onnx "
                    f"{_version('tf2onnx')}, onnx {_version('onnx')}, numpy {_version('numpy')}",
        "srredsim code": code_version(),
        "GPU": "none visible to this script (CPU only)" if not os.environ.get("CUDA_VISIBLE_DEVICES") else
               f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}",
    }


def code_version() -> str:
    """The checkout's commit, and whether srredsim/ differs from it (the code being measured)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "srredsim"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes in srredsim/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def load_line(load_start, load_end) -> str:
    """The plain-text load-average line printed under a benchmark's table."""
    return (f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at start, "
            f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} at end")


def report_header(title: str, script: str, argv: list[str], started: datetime.datetime, load_start, load_end,
                  what: str = "") -> list[str]:
    """Markdown lines that open a results file: title, the exact command and when it ran, the machine."""
    return [
        f"# {title}",
        "",
        f"Measured by `python benchmarks/{script}{(' ' + ' '.join(argv)) if argv else ''}` on "
        f"{started:%Y-%m-%d %H:%M} ({(datetime.datetime.now() - started).total_seconds() / 60:.1f} min)"
        f"{', ' + what if what else ''}.",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in machine_info().items()],
        f"- load average (1/5/15 min): {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f} at start, "
        f"{load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} at end",
        "",
    ]


def system_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine so far (all cores, all processes)."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0)
                 - getattr(t, "guest_nice", 0.0))


class Timer:
    """Wall seconds, this process's CPU seconds and other processes' CPU (cores) over a block."""

    def __enter__(self):
        self.w0, self.c0, self.s0 = time.perf_counter(), time.process_time(), system_busy_seconds()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0
        busy = system_busy_seconds() - self.s0
        self.others = max(0.0, (busy - self.cpu) / self.wall) if self.wall > 0 else 0.0
        self.load1 = os.getloadavg()[0]

    def as_dict(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "others": self.others, "load1": self.load1}


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size of a live process: ``VmHWM`` of ``/proc/PID/status``, in MiB.

    Not ``ru_maxrss`` from ``os.wait4`` / ``RUSAGE_CHILDREN``: Linux carries the parent's peak RSS
    over into a child's ``ru_maxrss`` across (v)fork + exec, so a 100 MiB child of a 2 GiB parent
    reports 2 GiB. ``VmHWM`` belongs to the child's own address space, which exec made afresh.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmHWM for process {pid}")


class Worker:
    """A fresh Python subprocess that answers JSON commands; its peak RSS is read from /proc.

    The worker talks on a private copy of its stdout; everything libraries print goes to its
    stderr, which is kept in a log file and shown if the worker dies.
    """

    def __init__(self, args: list[str], log: Path, script: str | os.PathLike | None = None):
        self.log = log
        self._logf = open(log, "wb")
        env = {**os.environ, **WORKER_ENV}
        script = Path(script or __file__).resolve()
        self.proc = subprocess.Popen([sys.executable, str(script), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._logf,
                                     env=env, text=True, bufsize=1)
        self.peak_rss_mib: float | None = None

    def recv(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._fail("exited without answering")
        msg = json.loads(line)
        if msg.get("event") == "error":
            self._fail(msg.get("message", "error"))
        return msg

    def ask(self, **cmd) -> dict:
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._fail("exited")
        return self.recv()

    def close(self) -> float:
        """Stop the worker; return its peak RSS in MiB (``VmHWM``, read just before it quits)."""
        self.peak_rss_mib = peak_rss_mib(self.proc.pid)
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait()
        self._logf.close()
        return self.peak_rss_mib

    def _fail(self, why: str):
        try:
            self.proc.kill()
            self.proc.wait()
        except Exception:
            pass
        self._logf.close()
        tail = self.log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"benchmark worker {why}; its log ({self.log}) ends with:\n{tail}")


def run_worker(args: list[str], log: Path, script: str | os.PathLike | None = None) -> tuple[dict, float]:
    """Start a worker that does one job at start-up and quits: (its ready message, peak RSS MiB)."""
    w = Worker(args, log, script)
    msg = w.recv()
    return msg, w.close()


def worker_channel():
    """In a worker: a ``send(**msg)`` writing JSON lines to the parent on a private copy of stdout;
    fd 1 itself is pointed at stderr so that library prints cannot corrupt the protocol."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def send(**msg):
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    return send


def fmt(v, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if v != 0 and (abs(v) < 10 ** -(digits + 1) or abs(v) >= 1e6):
        return f"{v:.1e}"
    return f"{v:.{digits}f}"


def render(headers: list[str], rows: list[list], markdown: bool, left: int = 1) -> str:
    """A table as aligned plain text or Markdown; the first ``left`` columns are left-aligned."""
    cells = [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    if markdown:
        esc = lambda c: c.replace("|", "\\|")  # noqa: E731 - a pipe inside a cell ends the cell
        headers, cells = [esc(h) for h in headers], [[esc(c) for c in r] for r in cells]
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in cells]
    return "\n".join(out)


def median(xs):
    return float(np.median(xs)) if len(xs) else None


# ---------------------------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------------------------
def _parse_engine(spec: str) -> tuple[str, int | None, frozenset[str]]:
    """``onnx:2`` -> (``onnx``, 2 intra-op threads, no flags); ``onnx:2:nospin`` also turns ONNX
    Runtime's spin-waiting of idle pool threads off, ``onnx:0:noarena`` its CPU memory arena
    (0 = the default thread count); ``keras`` -> (``keras``, None, no flags)."""
    parts = spec.split(":")
    threads = int(parts[1]) if len(parts) > 1 else None
    return parts[0], threads, frozenset(parts[2:])


ORT_FLAGS = {"nospin": "no spinning", "noarena": "no CPU memory arena"}


def _open(spec: str, model: str):
    """Open the model on an engine; ``onnx:N`` re-creates the session with N intra-op threads."""
    from srredsim.inference import open_model

    base, threads, flags = _parse_engine(spec)
    if base == PAPER:
        from srredsim.predict import keras_predict_fn
        from srredsim.runfolder import load_run

        lm = open_model(model, engine="keras")
        lm.predict_fn = keras_predict_fn(load_run(model).load_model())
        return lm, {"engine": PAPER}
    lm = open_model(model, engine=base)
    info = {"engine": lm.engine}
    if base == "onnx":
        import onnxruntime as ort

        sess = lm.predict_fn.session
        if threads is not None:
            from srredsim.export.onnx_export import onnx_providers

            onnx_file = next(Path(model, "export_cache").glob("model-*.onnx"))
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = threads
            if "nospin" in flags:
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if "noarena" in flags:
                opts.enable_cpu_mem_arena = False
            sess = ort.InferenceSession(str(onnx_file), sess_options=opts, providers=onnx_providers())
            name = sess.get_inputs()[0].name

            def predict(batch, _sess=sess, _name=name):
                return _sess.run(None, {_name: np.asarray(batch, np.float32)})[0]

            lm.predict_fn = predict
        o = sess.get_session_options()
        info.update(ort_intra_op_num_threads=o.intra_op_num_threads, ort_inter_op_num_threads=o.inter_op_num_threads,
                    ort_execution_mode=str(o.execution_mode).rsplit(".", 1)[-1], ort_providers=sess.get_providers())
    return lm, info


def worker_main(args) -> int:
    import psutil

    send = worker_channel()
    me = psutil.Process()
    try:
        threads0 = me.num_threads()
        with Timer() as t_open:
            lm, info = _open(args.worker, args.model)
        x = np.load(args.input) if args.input else None
        send(event="ready", open=t_open.as_dict(), rss_open_mib=me.memory_info().rss / 2**20,
             threads_before_open=threads0, threads_after_open=me.num_threads(),
             tf_loaded="tensorflow" in sys.modules, halo=lm.halo, multiple=lm.size_multiple, **info)
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                break
            if cmd["cmd"] == "run":
                with Timer() as t:
                    y = np.asarray(lm.predict_fn(x[None]), np.float32)
                if cmd.get("save"):
                    np.save(cmd["save"], y.reshape(y.shape[1], y.shape[2]))
                send(event="done", threads=me.num_threads(), out_max=float(y.max()), **t.as_dict())
            elif cmd["cmd"] == "tiled":
                from srredsim.normalization import normalize_raw
                from srredsim.predict import count_tiles, predict_stack, stack_to_hwc

                raw = np.load(cmd["raw"])
                tile, halo = int(cmd["tile"]), lm.halo
                # warm-up on one window of the tile size (tracing / session set-up is not tiling)
                warm = stack_to_hwc(normalize_raw(raw[:, :tile, :tile], lm.normalization))
                with Timer() as tw:
                    lm.predict_fn(warm[None])
                del warm
                n = count_tiles(raw.shape[1:], tile, halo, 8, lm.size_multiple)
                with Timer() as t:
                    sr = predict_stack(lm.predict_fn, raw, lm.normalization, tile=tile, halo=halo,
                                       multiple=lm.size_multiple)
                if cmd.get("save"):
                    np.save(cmd["save"], sr.astype(np.float32))
                send(event="done", tiles=n, halo=halo, warmup=tw.as_dict(), **t.as_dict())
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
def _copy_model(model: str, dest: Path) -> Path:
    from srredsim.pretrained import resolve

    src = resolve(model)
    if not (src / "config.json").is_file():
        raise SystemExit(f"{model}: not a run folder or shipped model name")
    target = dest / "model"
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("export_cache", "*.part.*"))
    return target


def _make_inputs(model_dir: Path, size: int, tiled_size: int | None, photons: float, random: bool,
                 work: Path) -> tuple[Path, Path | None, str]:
    from srredsim.normalization import normalize_raw
    from srredsim.predict import stack_to_hwc
    from srredsim.runfolder import load_run

    norm = load_run(model_dir).config.normalization
    rng = np.random.default_rng(0)

    def stack(n):
        if random:
            return rng.integers(0, 4096, size=(15, n, n), dtype=np.uint16)
        from srredsim.recipes import heldout_stack

        return heldout_stack(photons, size=n, targets=("truth",)).raw

    raw = stack(size)
    x_path = work / f"x{size}.npy"
    np.save(x_path, stack_to_hwc(normalize_raw(raw, norm)))
    raw_path = None
    if tiled_size:
        raw_path = work / f"raw{tiled_size}.npy"
        np.save(raw_path, stack(tiled_size))
    what = ("uniform random uint16 stacks" if random else
            f"simulated held-out stacks (srredsim.recipes.heldout_stack({photons:g}, size=N), mixed structures)")
    return x_path, raw_path, what


def _flops(model_dir: Path, sizes: list[int]) -> dict[int, float]:
    from srredsim.models import build_model, conv_flops
    from srredsim.runfolder import load_run

    model = build_model(load_run(model_dir).config.model)
    return {s: conv_flops(model, s, s) for s in sorted(set(sizes))}


def _engine_label(spec: str) -> str:
    base, n, flags = _parse_engine(spec)
    if base == PAPER:
        return "keras, paper's layers (Conv2DTranspose)"
    if n is None:
        return base
    return f"{base} (intra_op_num_threads={n}" + "".join(f", {ORT_FLAGS[f]}" for f in sorted(flags)) + ")"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: --size 128, --tiled-size 256, --tile 192, --repeats 1; prints only")
    p.add_argument("--engines", default=",".join(BASE_ENGINES + (PAPER,)),
                   help=f"comma list of keras, savedmodel, onnx and {PAPER} (Keras on the network with the "
                        "paper's stride-1 Conv2DTranspose layers, as trained, instead of the inference twin "
                        "that srredsim predicts with); default: all four")
    p.add_argument("--ort-threads", default="",
                   help="also run ONNX Runtime sessions with these intra-op thread counts, e.g. 1,2 (0 = "
                        "ORT's default); append :nospin to turn spin-waiting off, :noarena to turn the "
                        "CPU memory arena off, e.g. 1,2,2:nospin,0:noarena")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per engine after the warm-up (default 3)")
    p.add_argument("--size", type=int, default=None, help="raw stack edge for the per-stack timing (default 512)")
    p.add_argument("--tiled-size", type=int, default=None, help="raw edge of the tiled stack (default 2048; 0 skips)")
    p.add_argument("--tile", type=int, default=None, help="tile edge for the tiled prediction (default 512)")
    p.add_argument("--tiled-engines", default=None,
                   help="engines for the tiled run (default: the current default engine, keras and onnx)")
    p.add_argument("--model", default="default", help="shipped model name or run folder (default: default)")
    p.add_argument("--photons", type=float, default=20.0, help="light level of the simulated stacks")
    p.add_argument("--random", action="store_true", help="uniform random data instead of a simulated stack")
    p.add_argument("--sequential", action="store_true",
                   help="one engine after the other instead of interleaving their calls (less memory at once)")
    p.add_argument("--out", default=None, help=f"Markdown report (default {DEFAULT_OUT.relative_to(ROOT)}; "
                                                "none with --quick unless given)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (model copy, inputs, outputs)")
    # internal: the subprocess side
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker_main(args)
    os.environ.update(WORKER_ENV)  # quiet TensorFlow in this process too (it computes the FLOPs)

    q = args.quick
    repeats = args.repeats if args.repeats is not None else (1 if q else 3)
    size = args.size or (128 if q else 512)
    tiled_size = args.tiled_size if args.tiled_size is not None else (256 if q else 2048)
    tile = args.tile or (192 if q else 512)
    out = Path(args.out) if args.out else (None if q else DEFAULT_OUT)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for e in engines:
        if e not in BASE_ENGINES + (PAPER,):
            p.error(f"unknown engine {e!r}: use {', '.join(BASE_ENGINES + (PAPER,))}")
    for n in (n.strip() for n in args.ort_threads.split(",") if n.strip()):
        count, *flags = n.split(":")
        if not count.isdigit() or any(f not in ORT_FLAGS for f in flags):
            p.error(f"--ort-threads: {n!r} is not a thread count with optional :nospin / :noarena")
        engines.append(":".join(["onnx", str(int(count)), *flags]))
    if "keras" not in engines:
        engines.insert(0, "keras")  # the reference for ratios and differences
    from srredsim.inference import RUN_FOLDER_AUTO_ENGINE

    if args.tiled_engines is None:
        tiled_engines = list(dict.fromkeys([RUN_FOLDER_AUTO_ENGINE, "keras", "onnx"]))
    else:
        tiled_engines = [e.strip() for e in args.tiled_engines.split(",") if e.strip() and e.strip() != "none"]
    if not tiled_size:
        tiled_engines = []

    started = datetime.datetime.now()
    load_start = os.getloadavg()
    version_start = code_version()
    work = Path(tempfile.mkdtemp(prefix="srredsim-bench-inference-"))
    print(f"working folder {work}", flush=True)
    try:
        model_dir = _copy_model(args.model, work)
        t0 = time.perf_counter()
        x_path, raw_path, data_desc = _make_inputs(model_dir, size, tiled_size if tiled_engines else None,
                                                   args.photons, args.random, work)
        print(f"inputs ready ({time.perf_counter() - t0:.1f} s): 15 x {size}^2"
              + (f" and 15 x {tiled_size}^2" if tiled_engines else ""), flush=True)
        results = run_benchmark(model_dir, work, engines, repeats, x_path, raw_path, tile, tiled_engines,
                                args.sequential)
        flops = _flops(model_dir, [size] + ([results["tile_window"]] if results.get("tile_window") else []))
        report = make_report(results, flops, size, tiled_size, tile, repeats, data_desc, started, load_start,
                             RUN_FOLDER_AUTO_ENGINE, argv if argv is not None else sys.argv[1:])
        if code_version() != version_start:
            print(f"\nWARNING: the srredsim code changed during the run ({version_start} -> {code_version()}); "
                  "the workers may have measured different code: rerun"
                  + ("" if args.out else f" ({DEFAULT_OUT.name} not written)") + ".", file=sys.stderr)
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


def run_benchmark(model_dir: Path, work: Path, engines: list[str], repeats: int, x_path: Path,
                  raw_path: Path | None, tile: int, tiled_engines: list[str], sequential: bool) -> dict:
    res: dict = {"engines": {}, "convert": {}, "tiled": {}}
    model = str(model_dir)
    # 1. one-time conversions, each in a fresh process on a folder without export_cache/
    for base in ("savedmodel", "onnx"):
        if any(_parse_engine(e)[0] == base for e in engines + tiled_engines):
            print(f"converting to {base} ...", flush=True)
            msg, peak = run_worker(["--worker", base, "--model", model],
                                   work / f"convert-{base}.log")
            res["convert"][base] = {"seconds": msg["open"]["wall"], "peak_rss_mib": peak}
            print(f"  {msg['open']['wall']:.1f} s, peak RSS {peak:.0f} MiB", flush=True)

    # 2. per-stack timing, one fresh process per engine
    def start(spec):
        w = Worker(["--worker", spec, "--model", model, "--input", str(x_path)], work / f"{spec.replace(':', '-')}.log")
        ready = w.recv()
        res["engines"][spec] = {"ready": ready, "runs": [], "first": None}
        print(f"{_engine_label(spec)}: opened in {ready['open']['wall']:.1f} s "
              f"(RSS {ready['rss_open_mib']:.0f} MiB)", flush=True)
        return w

    def call(spec, w, save):
        msg = w.ask(cmd="run", save=str(work / f"out-{spec.replace(':', '-')}.npy") if save else None)
        e = res["engines"][spec]
        if e["first"] is None:
            e["first"] = msg
            tag = "warm-up"
        else:
            e["runs"].append(msg)
            tag = f"run {len(e['runs'])}/{repeats}"
        print(f"  {spec:<12} {tag:<9} {msg['wall']:7.2f} s  cpu {msg['cpu']:7.2f} s  "
              f"others {msg['others']:.2f} cores  load {msg['load1']:.2f}", flush=True)

    def finish(spec, w):
        res["engines"][spec]["peak_rss_mib"] = w.close()
        res["engines"][spec]["threads"] = res["engines"][spec]["runs"][-1]["threads"] if res["engines"][spec]["runs"] else None

    if sequential:
        for spec in engines:
            w = start(spec)
            for i in range(repeats + 1):
                call(spec, w, save=(i == repeats))
            finish(spec, w)
    else:
        workers = {spec: start(spec) for spec in engines}
        for spec in engines:
            call(spec, workers[spec], save=(repeats == 0))
        for r in range(repeats):
            order = engines[r % len(engines):] + engines[:r % len(engines)]
            for spec in order:
                call(spec, workers[spec], save=(r == repeats - 1))
        for spec, w in workers.items():
            finish(spec, w)
    ref = np.load(work / "out-keras.npy")
    for spec in engines:
        out = np.load(work / f"out-{spec.replace(':', '-')}.npy")
        res["engines"][spec]["max_diff"] = float(np.max(np.abs(out - ref)))
        res["engines"][spec]["out_max"] = float(ref.max())

    # 3. tiled prediction of the large stack, one fresh process per engine
    for spec in tiled_engines:
        label = "auto" if spec == "auto" else spec
        w = Worker(["--worker", spec, "--model", model], work / f"tiled-{label.replace(':', '-')}.log")
        ready = w.recv()
        print(f"tiled on {ready['engine']}: opened in {ready['open']['wall']:.1f} s", flush=True)
        msg = w.ask(cmd="tiled", raw=str(raw_path), tile=tile, save=str(work / f"tiled-{ready['engine']}.npy"))
        peak = w.close()
        res["tiled"][ready["engine"]] = {**msg, "peak_rss_mib": peak, "ready": ready}
        res["tile_window"] = tile
        print(f"  {msg['tiles']} tiles in {msg['wall']:.1f} s (cpu {msg['cpu']:.1f} s, others {msg['others']:.2f} "
              f"cores), peak RSS {peak:.0f} MiB", flush=True)
    if "keras" in res["tiled"]:
        ref = np.load(work / "tiled-keras.npy")
        for eng in res["tiled"]:
            res["tiled"][eng]["max_diff"] = float(np.max(np.abs(np.load(work / f"tiled-{eng}.npy") - ref)))
    return res


def make_report(res, flops, size, tiled_size, tile, repeats, data_desc, started, load_start, auto_engine, argv):
    gflop = flops[size] / 1e9
    keras = res["engines"]["keras"]
    k_med = median([r["wall"] for r in keras["runs"]]) or keras["first"]["wall"]
    k_peak = keras["peak_rss_mib"]
    headers = ["case", "engine", "runs", "median s", "min s", "CPU s", "GFLOP/s", "speed vs Keras",
               "peak RSS MiB", "RSS after load MiB", "RSS vs Keras", "max |diff| vs Keras", "other procs (cores)",
               "load 1 min"]
    rows = []
    medians = {}
    for spec, e in res["engines"].items():
        runs = e["runs"] or [e["first"]]
        med = median([r["wall"] for r in runs])
        medians[spec] = med
        rows.append([f"15x{size}^2 stack", _engine_label(spec), len(runs), med, min(r["wall"] for r in runs),
                     median([r["cpu"] for r in runs]), gflop / med, f"{k_med / med:.2f}x",
                     e["peak_rss_mib"], e["ready"]["rss_open_mib"], f"{e['peak_rss_mib'] / k_peak:.2f}x",
                     e["max_diff"], median([r["others"] for r in runs]), median([r["load1"] for r in runs])])
    tiled = res["tiled"]
    kt = tiled.get("keras")
    for eng, t in tiled.items():
        tile_flops = flops[res["tile_window"]] * t["tiles"] / 1e9
        name = eng + (" (default)" if eng == auto_engine else "")
        rows.append([f"15x{tiled_size}^2 tiled ({t['tiles']} tiles of {tile}^2)", name, 1, t["wall"], t["wall"],
                     t["cpu"], tile_flops / t["wall"], f"{kt['wall'] / t['wall']:.2f}x" if kt else "-",
                     t["peak_rss_mib"], t["ready"]["rss_open_mib"],
                     f"{t['peak_rss_mib'] / kt['peak_rss_mib']:.2f}x" if kt else "-",
                     t.get("max_diff"), t["others"], t["load1"]])

    setup_headers = ["engine", "conversion s (fresh process)", "conversion peak RSS MiB", "open s (cached)",
                     "first call s", "threads", "TensorFlow imported"]
    setup_rows = []
    for spec, e in res["engines"].items():
        base = _parse_engine(spec)[0]
        c = res["convert"].get(base, {})
        setup_rows.append([_engine_label(spec), c.get("seconds"), c.get("peak_rss_mib"), e["ready"]["open"]["wall"],
                           e["first"]["wall"], e.get("threads"), "yes" if e["ready"]["tf_loaded"] else "no"])

    # recommendation: fastest selectable engine within tolerance
    candidates = [(medians[s], s) for s in res["engines"]
                  if s in BASE_ENGINES and res["engines"][s]["max_diff"] <= TOLERANCE]
    best = min(candidates)[1] if candidates else "keras"
    rec = (f"Recommended default engine (fastest with max |diff| to Keras <= {TOLERANCE:g}): **{best}** "
           f"({medians[best]:.2f} s per stack, {k_med / medians[best]:.2f}x Keras); "
           f"RUN_FOLDER_AUTO_ENGINE is currently {auto_engine!r}.")
    ort_notes = []
    for spec, e in res["engines"].items():
        if _parse_engine(spec)[0] == "onnx":
            r = e["ready"]
            ort_notes.append(f"{_engine_label(spec)}: session intra_op_num_threads={r.get('ort_intra_op_num_threads')} "
                             f"(0 = ONNX Runtime's default, one thread per physical core), inter_op="
                             f"{r.get('ort_inter_op_num_threads')}, {r.get('ort_execution_mode')}, "
                             f"OS threads {r['threads_before_open']} before / {r['threads_after_open']} after opening, "
                             f"CPU/wall {median([x['cpu'] for x in e['runs'] or [e['first']]]) / medians[spec]:.2f}")
    load_end = os.getloadavg()
    notes = [
        "Engines: `keras`, `savedmodel` and `onnx` are what srredsim.inference.open_model(run, engine=...) "
        "opens: Keras predict_on_batch on the inference twin (srredsim.models.inference_twin: the stride-1 "
        "Conv2DTranspose layers written as the equivalent Conv2D), and the SavedModel and ONNX conversions of "
        "that twin. `keras, paper's layers` is Keras on the network as trained (stride-1 Conv2DTranspose), "
        "for reference; it is not an engine of open_model.",
        f"Input: {data_desc}; the per-stack timing uses one 15x{size}^2 stack "
        f"({gflop:.1f} GFLOP of convolutions per pass, srredsim.models.conv_flops).",
        f"Seconds: wall-clock per call, median (and minimum) of {repeats} calls after one warm-up call; the "
        "engines' calls are interleaved round by round. CPU s: CPU seconds of the engine's process per call "
        "(all threads). GFLOP/s: convolution FLOPs / median seconds (tiled: FLOPs of all tiles, halos included).",
        "Peak RSS: VmHWM (/proc/PID/status) of a fresh subprocess per engine (and per tiled run), read just "
        "before it quits (not ru_maxrss, which Linux carries over from the parent across fork + exec); it "
        "includes the interpreter, the TensorFlow / ONNX Runtime imports and the weights "
        "('RSS after load' is the resident size right after opening the model).",
        "max |diff|: largest absolute difference to Keras's output on the same input (network units; the "
        f"output's maximum is {keras['out_max']:.3f}); tiled rows: against Keras's tiled output.",
        "other procs (cores): CPU used by other processes during the calls (system-wide busy CPU minus "
        "the engine's own), in cores out of "
        f"{os.cpu_count()}; load 1 min: os.getloadavg() after each call (it counts the benchmark's own "
        "threads too). This machine is shared, so compare rows of the same run only.",
        "Tiled: srredsim.predict.predict_stack(..., tile=%d, halo=model halo, blend 8), each engine in a fresh "
        "process after one warm-up call on one tile." % tile,
    ]
    text = "\n\n".join([
        render(headers, rows, False, left=2),
        render(setup_headers, setup_rows, False),
        rec,
        "\n".join(ort_notes),
        load_line(load_start, load_end),
    ])
    md = [
        *report_header("SR-REDSIM inference: engines, speed and memory", "inference.py", argv, started,
                       load_start, load_end,
                       "shipped model `default` (full 64-filter SR-REDSIM, 1,560,257 parameters)"),
        render(headers, rows, True, left=2),
        "",
        "One-time costs:",
        "",
        render(setup_headers, setup_rows, True),
        "",
        rec,
        "",
        "ONNX Runtime sessions:",
        "",
        *[f"- {n}" for n in ort_notes],
        "",
        "Definitions:",
        "",
        *[f"- {n}" for n in notes],
        "",
    ]
    return {"text": text, "markdown": "\n".join(md), "recommended": best}


if __name__ == "__main__":
    sys.exit(main())
