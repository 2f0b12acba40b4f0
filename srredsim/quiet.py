"""Keep TensorFlow, absl, oneDNN and ONNX Runtime log lines out of the user's terminal.

TensorFlow 2.21 prints, while its shared libraries load, lines that no environment variable turns
off: ``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR`` and
``I0000 ... port.cc:153] oneDNN custom operations are on ...`` (twice, once per library). Its C++
logging honours ``TF_CPP_MIN_LOG_LEVEL`` only after that, and ONNX Runtime logs warnings (e.g.
about unused initialisers) at its own default level. :func:`quiet_engines` therefore

* sets ``TF_CPP_MIN_LOG_LEVEL=3`` (errors are raised as Python exceptions anyway) and
  ``GRPC_VERBOSITY=ERROR`` unless the user set them,
* installs an import hook that sends file descriptor 2 to /dev/null **only while the
  ``tensorflow`` package itself is being imported** (a failing import still raises its Python
  exception, which does not go through that descriptor),
* lowers the ``absl`` and ``tensorflow`` Python loggers to errors, and sets ONNX Runtime's
  default logger to errors when it is imported.

TensorFlow is imported lazily (by Keras, bioimageio.core or tf2onnx), so commands that never
need it pay nothing. ``srredsim --verbose`` / ``srredsim COMMAND --verbose`` skips all of this.
Library users who want the same call :func:`quiet_engines` before importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
from typing import Iterator

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}


@contextlib.contextmanager
def stderr_fd_silenced() -> Iterator[None]:
    """Send the process's file descriptor 2 (C/C++ writes included) to /dev/null for the block."""
    try:
        sys.stderr.flush()
    except Exception:  # pragma: no cover - a closed or replaced stderr
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (e.g. a daemon): nothing to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _onnxruntime_errors_only(module) -> None:
    try:
        module.set_default_logger_severity(3)
    except Exception:  # pragma: no cover - an onnxruntime without the call
        pass


# package -> what to do once it is imported (its import itself always runs with descriptor 2 silenced)
_AFTER_IMPORT = {"tensorflow": None, "onnxruntime": _onnxruntime_errors_only}


class _SilentLoader(importlib.abc.Loader):
    """Wraps a package's loader: runs its module code with descriptor 2 silenced, then a hook."""

    def __init__(self, inner, after=None):
        self._inner = inner
        self._after = after

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        with stderr_fd_silenced():
            self._inner.exec_module(module)
        if self._after is not None:
            self._after(module)

    def __getattr__(self, name):  # resources, get_filename, is_package, ... of the real loader
        return getattr(self._inner, name)


class _SilentImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _AFTER_IMPORT:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _SilentLoader(spec.loader, _AFTER_IMPORT[fullname])
        return spec


def quiet_engines() -> None:
    """Silence the engines' log lines for the rest of the process (idempotent)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in ("absl", "tensorflow", "h5py", "tf2onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not any(isinstance(f, _SilentImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SilentImportFinder())
    if "onnxruntime" in sys.modules:  # imported before: set its level now
        _onnxruntime_errors_only(sys.modules["onnxruntime"])


def verbose_engines() -> None:
    """Let the engines log as they like (``--verbose``): undo :func:`quiet_engines`'s hooks."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _SilentImportFinder)]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
