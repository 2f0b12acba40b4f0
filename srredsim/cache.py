"""The one place where srredsim keeps things it can recompute: a per-user cache folder.

Converted engines (ONNX, SavedModel), engine/precision measurements, JVM harness builds: never
inside a model folder or the installed package (which may be read-only or shared), always under

* ``$SRREDSIM_CACHE_DIR`` when set, else
* the platform's user cache folder (``platformdirs``; ``~/.cache/srredsim`` on Linux).

Each user of the cache asks for a named subfolder (:func:`cache_dir`), so the pieces can be
removed independently.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "SRREDSIM_CACHE_DIR"


def cache_root() -> Path:
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("srredsim", appauthor=False))
    except ImportError:  # platformdirs is a dependency; this keeps a broken install usable
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "srredsim"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """``cache_root()/parts...``, created unless ``create=False``."""
    path = cache_root().joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
