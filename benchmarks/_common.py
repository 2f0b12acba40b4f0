"""Helpers shared by benchmarks/inference.py and benchmarks/training_speed.py.

Machine description (CPU features included), fresh worker subprocesses with their own peak
memory, the whole-command runner, the sgemm floor, timers and table rendering.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "KERAS_BACKEND": "tensorflow"}
#: CPU flags that decide which arithmetic is fast (srredsim.hardware)
FEATURE_FLAGS = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx512f",
                 "avx2", "fma")


def cpu_model() -> str:
    from srredsim.hardware import cpu_model as _cpu_model

    return _cpu_model()


def cpu_features() -> dict[str, str]:
    """The CPU path srredsim derives, the flags behind it, and what OpenVINO's CPU plugin reports."""
    from srredsim.hardware import cpu_flags, cpu_has_fast_bf16, cpu_path

    flags = cpu_flags()
    out = {"CPU path (srredsim.hardware.cpu_path)": cpu_path(),
           "fast bf16 (AMX or AVX512-BF16)": "yes" if cpu_has_fast_bf16() else "no",
           "flags": ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FEATURE_FLAGS)}
    try:
        from srredsim.runtime.openvino_engine import cpu_capabilities

        out["OpenVINO CPU capabilities"] = ", ".join(sorted(cpu_capabilities())) or "-"
    except Exception as exc:  # OpenVINO missing: say so
        out["OpenVINO CPU capabilities"] = f"unavailable ({exc})"
    return out


def machine_info() -> dict[str, str]:
    import psutil

    from srredsim.runtime.choice import package_version

    tf = package_version("tensorflow")
    if tf == "-":
        tf = package_version("tensorflow-cpu")
    ort = package_version("onnxruntime")
    if ort == "-":
        ort = package_version("onnxruntime-gpu")
    return {
        "CPU": f"{cpu_model()}, {psutil.cpu_count(logical=False)} physical / {os.cpu_count()} logical cores"
               f" ({len(os.sched_getaffinity(0))} usable)",
        **cpu_features(),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "versions": f"TensorFlow {tf}, Keras {package_version('keras')}, ONNX Runtime {ort}, OpenVINO "
                    f"{package_version('openvino')}, tf2onnx {package_version('tf2onnx')}, onnx {package_version('onnx')}, "
                    f"numpy {package_version('numpy')}",
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
# the sgemm floor and whole commands
# ---------------------------------------------------------------------------------------------
def sgemm_gflops(n: int = 4096, repeats: int = 3) -> float:
    """numpy float32 matrix product ``n x n @ n x n``: GFLOP/s (2 n^3 FLOPs), the best of ``repeats``
    calls after a warm-up. This is the machine's fp32 floor: a network of F GFLOP cannot be expected
    to run in fp32 faster than F / sgemm seconds."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


# A tiny runner between the benchmark and a measured command: the command is a child of this
# small process, not of the benchmark, so its ru_maxrss is its own (Linux carries a parent's
# peak RSS into a child forked from it).
_RUNNER = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
           "rc = subprocess.call(sys.argv[2:]); wall = time.perf_counter() - t; "
           "json.dump({'rc': rc, 'wall': wall, 'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN)"
           ".ru_maxrss / 1024}, open(sys.argv[1], 'w'))")


def run_command(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` (a whole command, e.g. ``srredsim predict ...``) in a fresh process: its exit
    code, wall seconds (process start to exit) and peak resident memory (MiB); output to ``log``."""
    result = log.with_suffix(".json")
    with open(log, "wb") as fh:
        subprocess.run([sys.executable, "-c", _RUNNER, str(result), *cmd], stdout=fh, stderr=subprocess.STDOUT,
                       env={**os.environ, **WORKER_ENV, **(env or {})}, check=False)
    res = json.loads(result.read_text())
    if res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {res['rc']}); its output ({log}) ends with:\n"
                         + log.read_text(errors="replace")[-3000:])
    res["output"] = log.read_text(errors="replace")
    return res
