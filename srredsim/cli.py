"""The ``srredsim`` command line: a thin layer that parses arguments and dispatches.

Each subcommand lives in ``srredsim/commands/<name>.py`` and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; the options they share (``-o/--output``,
``--overwrite``, ``--quiet``, ``--json``, ``--engine``, the optics flags) come from
``srredsim/commands/_options.py``. Command modules import TensorFlow/Keras only inside ``run``,
so ``srredsim --help`` and argument errors are fast. Engines' log lines are silenced unless
``--verbose`` (:mod:`srredsim.quiet`). Any :class:`~srredsim.errors.SrredsimError` becomes a
one-line message on stderr and exit code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from srredsim import __version__
from srredsim.errors import SrredsimError

# (command name, module under srredsim.commands). Order is the order shown in --help.
COMMANDS: list[tuple[str, str]] = [
    ("demo", "demo"),
    ("simulate", "simulate"),
    ("reconstruct", "reconstruct"),
    ("train", "train"),
    ("adapt", "adapt"),
    ("predict", "predict"),
    ("evaluate", "evaluate"),
    ("info", "info"),
    ("export", "export"),
    ("validate", "validate"),
    ("fiji-check", "fiji_check"),
]


def _load(module: str):
    return importlib.import_module(f"srredsim.commands.{module}")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a default only where it says something (not for None/False flags) and not twice."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" in text or "default" in text or not action.option_strings
                or any(action.default is x for x in (None, False, argparse.SUPPRESS))):
            return text
        return text + " (default: %(default)s)"


def _add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="let TensorFlow, absl, oneDNN and ONNX Runtime print their own log lines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srredsim",
        description="SR-REDSIM for structured-illumination microscopy: simulate, reconstruct, "
        "train, predict, evaluate and export to bioimage.io / Fiji.",
    )
    parser.add_argument("--version", action="version", version=f"srredsim {__version__}")
    _add_verbose(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS:
        try:
            mod = _load(module)
        except ModuleNotFoundError as exc:  # a command whose module is absent in this build
            if exc.name != f"srredsim.commands.{module}":
                raise
            continue
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=_HelpFormatter)
        mod.add_arguments(p)
        _add_verbose(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    from srredsim.commands._options import deprecation_notes
    from srredsim.quiet import quiet_engines, verbose_engines

    verbose_engines() if getattr(args, "verbose", False) else quiet_engines()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    for note in deprecation_notes(args):
        print(f"srredsim {args.command}: note: {note}", file=sys.stderr)
    try:
        rc = args._run(args)
    except SrredsimError as exc:
        print(f"srredsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"srredsim {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout piped into `head` and closed: stop quietly (Python docs' recipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return int(rc or 0)


_QUICK_EXIT = False  # set by entry(): keep_until_exit holds what it is given
_KEPT: list = []  # what keep_until_exit holds


def entry() -> None:
    """The ``srredsim`` console script: :func:`main`; then, where the command handed something to
    :func:`keep_until_exit` (``predict``: its open model), the process ends without tearing the
    interpreter down (:func:`exit_now`), else it exits as usual. ``main`` itself returns, for
    callers in Python."""
    global _QUICK_EXIT
    _QUICK_EXIT = True
    rc = main()
    if _KEPT:
        exit_now(rc)
    raise SystemExit(rc)


def keep_until_exit(obj) -> None:
    """Let ``obj`` (an open model) live until the process ends, and end it at once after the
    command (:func:`entry`, :func:`exit_now`): freeing it first would only delay the exit (an
    OpenVINO network unmaps its ~0.6 GB of buffers for the full SR-REDSIM on a 512² stack:
    0.08 s). Called from Python (:func:`main`), this does nothing and ``obj`` is freed as usual."""
    if _QUICK_EXIT:
        _KEPT.append(obj)


def exit_now(rc: int) -> None:
    """End a finished command at once. After the last output is written, a normal exit spent
    0.15-0.3 s (``srredsim predict`` with OpenVINO) on nothing the user sees: freeing every object,
    and OpenVINO's native teardown (unmapping a compiled network's buffers, joining its threads).
    Everything an exit must still do runs first -- the ``atexit`` handlers (logging, temporary
    folders, coverage), then a flush of Python's stdout and stderr and of the C library's streams
    (native libraries' log lines) -- and then ``os._exit``. Where another non-daemon Python thread
    is still running, or the streams cannot be flushed, the normal exit runs (it waits for the
    thread, or reports the stream's error)."""
    import atexit
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    try:
        if any(t.is_alive() for t in others):
            raise OSError("a thread is still running")
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: no sys.stdout (None)
        raise SystemExit(rc) from None
    _flush_c_streams()
    os._exit(rc)


def _flush_c_streams() -> None:
    """``fflush(NULL)``: what native code printed through C's stdio and still buffers (stdout
    piped into a file) is written before ``os._exit``, as ``exit`` would."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to load by None (Windows: TypeError)
        pass


if __name__ == "__main__":
    raise SystemExit(main())
