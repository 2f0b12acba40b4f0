"""One error type for everything a user can get wrong, and atomic file writing (JSON included).

The command line turns :class:`SrredsimError` into a one-line message and a non-zero exit code;
any other exception is a bug and keeps its traceback. Writers use :func:`atomic_path` so that a
crash or a bad input never leaves a half-written result behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


class SrredsimError(Exception):
    """A problem with the user's input, files or environment, explained in one line."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) or raise a clear error if that is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SrredsimError(f"cannot create output folder {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise SrredsimError(f"output folder {path} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    The temporary file lives in the target's folder so the final rename is atomic on POSIX.
    If the body raises, the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        ensure_writable_dir(parent)
    if not os.access(parent, os.W_OK):
        raise SrredsimError(f"output folder {parent} is not writable")
    suffix = suffix if suffix is not None else "".join(target.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{suffix}", dir=parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600; give the result the usual permissions
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; move it into place when the body succeeds.

    With ``overwrite`` an existing ``target`` is replaced only after the new one is complete.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise SrredsimError(f"{target} exists; pass --overwrite to replace it")
    parent = ensure_writable_dir(target.parent if str(target.parent) else Path("."))
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            old.rmdir()
            os.replace(target, old)
            os.replace(tmp, target)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def json_text(obj) -> str:
    """Strict JSON: NaN and infinities (which JSON lacks) become null; paths and other objects strings."""
    import json
    import math

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), indent=2, allow_nan=False, default=str)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write :func:`json_text` of ``obj`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(obj) + "\n")
    return Path(path)
