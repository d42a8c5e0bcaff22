"""Disk I/O of run folders: atomic writes, reads that refuse symbolic links, and a preflight.

Every file of a run folder is written by :func:`atomic_write_text` (a temporary file in the
same folder, then ``os.replace``: a killed process or a full disk leaves the previous
complete file) and read by :func:`read_text`. Both refuse a symbolic link anywhere between
the run folder and the file (``run.json``, ``records/``, a record file...), so a crafted run
folder can neither make the app read a file outside it nor write into one (RunFileError).
An ``OSError`` of the disk (full, read-only, no permission) becomes one
:class:`~gpo_core.errors.StorageError` line naming the file and the fix, never a traceback.

:func:`preflight` checks, before any model call is spent, that a folder can be created and
written and has room for what the run will write (``shutil.disk_usage``).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from gpo_core.errors import RunFileError, StorageError

#: Free space a run folder or the response cache needs at least, whatever the estimate (bytes).
MIN_FREE_BYTES = 8 * 1024 * 1024

#: What to do about a full disk, and about a folder that cannot be written.
FIX_SPACE = "Free some space on that disk, then continue the run (Results page, or run --resume)."
FIX_WRITABLE = ("Make that folder writable, or point GPO_HOME (on the command line: --out / --cache-dir) "
                "at a writable folder.")
FIX_OTHER = "Check that disk, then continue the run (Results page, or run --resume)."

_REASONS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted", errno.EIO: "input/output error",
            errno.ENOENT: "no such file or folder", errno.ENOTDIR: "a path component is not a folder"}


def reason_of(e: OSError) -> str:
    """The system's reason for ``e`` in plain words ("no space left on device")."""
    return _REASONS.get(e.errno or 0) or (e.strerror or str(e) or type(e).__name__).lower()


def fix_for(e: OSError) -> str:
    """What the user can do about ``e`` (one sentence)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return FIX_SPACE
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return FIX_WRITABLE
    return FIX_OTHER


def storage_error(path: Path | str, e: OSError, doing: str = "cannot be written") -> StorageError:
    """The one-line StorageError of ``e`` on ``path``: ``"<path> <doing>: <reason>. <fix>"``."""
    err = StorageError(str(path), f"{doing}: {reason_of(e)}" if doing else reason_of(e), fix_for(e))
    err.__cause__ = e
    return err


def link_error(path: Path) -> RunFileError:
    return RunFileError(f"{path}: is a symbolic link; GPO Studio refuses links inside run folders "
                        "(replace it with the real file or folder)")


def refuse_links(path: Path, base: Path | None) -> None:
    """RunFileError when ``path`` or any folder between ``base`` (exclusive) and it is a
    symbolic link. ``base`` None: only ``path`` and its parent are checked. Missing parts
    are fine (they will be created as real folders)."""
    path = Path(path)
    if base is None:
        chain = [path.parent, path]
    else:
        base = Path(base)
        try:
            rel = path.relative_to(base)
        except ValueError:
            raise RunFileError(f"{path}: outside its run folder {base}") from None
        chain, cur = [], base
        for part in rel.parts:
            cur = cur / part
            chain.append(cur)
    for p in chain:
        if p.is_symlink():
            raise link_error(p)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer than asked)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write_text(path: Path, text: str, *, base: Path | None = None, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary file in the same folder,
    then ``os.replace`` (a killed process or a failed write leaves the previous complete
    file and no temporary one). ``base``: the run folder (links between it and ``path``
    are refused, RunFileError). ``durable``: fsync the file before it replaces the old one.
    Raises StorageError (one line: file, reason, fix) when the disk refuses."""
    path = Path(path)
    refuse_links(path, base)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(path.parent, e, "cannot be created") from None
    refuse_links(path, base)  # the folder just made (or found) is a real one
    data = text.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise storage_error(path, e) from None
    try:
        try:
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise storage_error(path, e) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def read_text(path: Path, *, base: Path | None = None) -> str:
    """The UTF-8 text of ``path``, refusing a symbolic link at it or between ``base`` and it
    (RunFileError). FileNotFoundError when missing; UnicodeDecodeError when not UTF-8;
    StorageError for another disk fault."""
    path = Path(path)
    refuse_links(path, base)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise link_error(path) from None
        raise storage_error(path, e, "cannot be read") from None
    with os.fdopen(fd, "rb") as f:
        return f.read().decode("utf-8")


def preflight(folder: Path, need_bytes: int = 0, *, what: str = "the run", fix: str | None = None) -> None:
    """Before any model call: can ``folder`` be created and written, and does its disk have
    room for about ``need_bytes`` (at least :data:`MIN_FREE_BYTES`)? Writes and removes a
    small probe file. Raises StorageError naming the folder and the fix (``fix`` replaces
    the default advice for a folder that cannot be written)."""
    folder = Path(folder)

    def refused(e: OSError, doing: str) -> StorageError:
        err = storage_error(folder, e, f"{doing} for {what}")
        if fix is not None and e.errno not in (errno.ENOSPC, errno.EDQUOT):
            err = StorageError(err.path, err.reason, fix)
        return err

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise refused(e, "cannot be created") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".gpo-probe.", suffix=".tmp")
    except OSError as e:
        raise refused(e, "cannot be written") from None
    try:
        try:
            _write_all(fd, b"gpo")
        finally:
            os.close(fd)
    except OSError as e:
        raise refused(e, "cannot be written") from None
    finally:
        _unlink_quietly(probe)
    need = max(int(need_bytes), MIN_FREE_BYTES)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # no figure for this file system: the writes themselves will say
    if free < need:
        raise StorageError(str(folder), f"only {_mb(free)} free on its disk; {what} needs about {_mb(need)}",
                           FIX_SPACE)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"
