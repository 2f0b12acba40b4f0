"""Reading and writing zip archives safely.

Packages come from other people. Before anything is extracted every member name is checked:
absolute paths, ``..`` components, drive letters, backslash tricks and symbolic links would let
an archive write outside its target folder ("zip-slip") and are refused, as are archives whose
declared size is absurd (zip bombs). A truncated or corrupt archive gives a one-line
:class:`~srredsim.errors.SrredsimError`, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from srredsim.errors import SrredsimError

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 16 * 1024**3  # 16 GiB uncompressed
MAX_RATIO = 2000  # uncompressed / compressed, per member larger than 1 MiB


def open_zip(path: str | os.PathLike) -> zipfile.ZipFile:
    """Open ``path`` as a zip archive or raise a clear error (missing, not a zip, truncated)."""
    path = Path(path)
    if not path.exists():
        raise SrredsimError(f"{path}: no such file")
    if path.is_dir():
        raise SrredsimError(f"{path}: is a folder, expected a zip archive")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SrredsimError(f"{path}: not a readable zip archive (truncated or corrupt: {exc})") from None
    except (OSError, EOFError, ValueError) as exc:
        raise SrredsimError(f"{path}: cannot read zip archive ({exc})") from None
    return zf


def unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a member must not be extracted, or None if its name and type are harmless."""
    name = info.filename
    if not name or "\x00" in name:
        return "empty or NUL in name"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        return "'..' in path (outside the target folder)"
    ftype = stat.S_IFMT((info.external_attr >> 16) & 0xFFFF)  # 0 when the writer set no file type
    if ftype == stat.S_IFLNK:
        return "symbolic link"
    if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
        return "not a regular file"
    return None


def check_zip(zf: zipfile.ZipFile, source: str | os.PathLike = "archive") -> list[zipfile.ZipInfo]:
    """Check every member of ``zf``; return the members or raise naming the first bad one."""
    try:
        infos = zf.infolist()
    except Exception as exc:  # pragma: no cover - infolist is read at open time
        raise SrredsimError(f"{source}: corrupt zip directory ({exc})") from None
    if len(infos) > MAX_MEMBERS:
        raise SrredsimError(f"{source}: refusing an archive with {len(infos)} members (limit {MAX_MEMBERS})")
    total = 0
    seen: set[str] = set()
    for info in infos:
        reason = unsafe_member_reason(info)
        if reason:
            raise SrredsimError(f"{source}: refusing unsafe archive member {info.filename!r}: {reason}")
        key = info.filename.rstrip("/")
        if key in seen:
            raise SrredsimError(f"{source}: duplicate archive member {info.filename!r}")
        seen.add(key)
        total += info.file_size
        if info.file_size > 2**20 and info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise SrredsimError(f"{source}: member {info.filename!r} has a suspicious compression ratio (zip bomb?)")
    if total > MAX_TOTAL_BYTES:
        raise SrredsimError(f"{source}: archive would unpack to {total / 1e9:.1f} GB (limit "
                            f"{MAX_TOTAL_BYTES / 1e9:.0f} GB)")
    return infos


def safe_extract(archive: str | os.PathLike | zipfile.ZipFile, dest: str | os.PathLike) -> Path:
    """Extract a zip archive into ``dest`` after checking every member; CRCs are verified."""
    own = not isinstance(archive, zipfile.ZipFile)
    zf = open_zip(archive) if own else archive
    source = archive if own else (zf.filename or "archive")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        infos = check_zip(zf, source)
        for info in infos:
            target = (root / info.filename).resolve()
            if target != root and root not in target.parents:
                raise SrredsimError(f"{source}: refusing archive member {info.filename!r}: outside the target folder")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
                raise SrredsimError(f"{source}: cannot extract {info.filename!r} (truncated or corrupt: {exc})") from None
    finally:
        if own:
            zf.close()
    return dest


def read_member(archive: str | os.PathLike, name: str) -> bytes:
    """Read one member of a checked archive (e.g. ``rdf.yaml``) with clear errors."""
    with open_zip(archive) as zf:
        check_zip(zf, archive)
        try:
            return zf.read(name)
        except KeyError:
            raise SrredsimError(f"{archive}: has no {name!r}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise SrredsimError(f"{archive}: cannot read {name!r} (truncated or corrupt: {exc})") from None


def zip_dir(src: str | os.PathLike, zip_path: str | os.PathLike, exclude: tuple[str, ...] = ()) -> Path:
    """Zip the contents of ``src`` with paths relative to it (``src`` itself is not a member).

    Members are sorted and get a fixed timestamp so that the same folder gives the same archive.
    Top-level names in ``exclude`` are left out.
    """
    src, zip_path = Path(src), Path(zip_path)
    files = sorted(p for p in src.rglob("*") if p.relative_to(src).parts[0] not in exclude)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for p in files:
            rel = p.relative_to(src).as_posix()
            if p.is_symlink():
                raise SrredsimError(f"{p}: refusing to zip a symbolic link")
            if p.is_dir():
                info = zipfile.ZipInfo(rel + "/", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                zf.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(p, "rb") as fsrc, zf.open(info, "w") as fdst:
                    shutil.copyfileobj(fsrc, fdst, 1 << 20)
    return zip_path
