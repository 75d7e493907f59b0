"""Crash-safe file writes: a temporary file in the same directory, fsync, then ``os.replace``.

A crash leaves either the old file or the new one, never half of one. Temporary files are named
``.<name>.<pid>.<random>.tmp``: :func:`remove_stale_temps` deletes those whose writer process no
longer exists (the leftovers of a ``kill -9``), and never one that a live process is writing. A
full disk (ENOSPC, EDQUOT) or a read-only place (EROFS, EACCES) is a :class:`WriteError` (a
UserError) naming the path, the bytes needed where they are known and the space free; the
temporary file is removed and the old file stays.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from gesture_snn.spec.errors import UserError

__all__ = ["WriteError", "atomic_write", "atomic_write_bytes", "atomic_write_json", "check_free_space", "free_bytes",
           "remove_stale_temps", "temp_prefix", "write_error", "write_errors"]

_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


class WriteError(UserError, OSError):
    """A file could not be written: the disk is full or the place is read-only (message says which)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} bytes"


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def write_error(path: str | os.PathLike, exc: OSError, *, needed: int | None = None, hint: str = "") -> OSError:
    """The :class:`WriteError` for ``exc`` (an OSError while writing ``path``), or ``exc`` itself
    if it is neither a full disk nor a read-only place."""
    if isinstance(exc, WriteError):
        return exc
    hint = f"; {hint}" if hint else ""
    if exc.errno in _FULL:
        free = free_bytes(path)
        need = f"it needs {_megabytes(needed)}" if needed is not None else "it needs more space"
        have = f", {_megabytes(free)} are free" if free is not None else ""
        return WriteError(exc.errno, f"no space left on the device to write {path}: {need}{have}; free some space "
                          f"or write elsewhere{hint} (nothing was left half-written)")
    if exc.errno in _READ_ONLY:
        return WriteError(exc.errno, f"cannot write {path}: the place is read-only or not writable ({exc.strerror})"
                          f"{hint}")
    return exc


@contextlib.contextmanager
def write_errors(path: str | os.PathLike, *, needed: int | None = None):
    """A block that writes under ``path``: an OSError of a full disk or a read-only place becomes
    the :class:`WriteError` of :func:`write_error` (naming the file, else ``path``); any other
    OSError passes unchanged."""
    try:
        yield
    except OSError as exc:
        error = write_error(getattr(exc, "filename", None) or path, exc, needed=needed)
        if error is exc:
            raise
        raise error from None


def check_free_space(path: str | os.PathLike, needed: int, *, hint: str = "") -> None:
    """WriteError (ENOSPC) before anything is written if ``path``'s file system has under ``needed`` bytes free."""
    free = free_bytes(path)
    if free is not None and free < needed:
        raise write_error(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), needed=needed, hint=hint)


def temp_prefix(path: str | os.PathLike) -> str:
    """The prefix of this process's temporary files for ``path``: ``.<name>.<pid>.``."""
    return f".{Path(path).name}.{os.getpid()}."


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]*\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, names=None) -> list[Path]:
    """Delete the temporary files of :func:`atomic_write` (``.<name>.<pid>.*.tmp``) in ``folder``
    whose writer process is gone; ``names``: only those for these file names. Returns what was
    removed. Files or folders of live processes are left alone."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMP.match(entry.name)
        if match is None or (names is not None and match["name"] not in names):
            continue
        if _alive(int(match["pid"])):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except FileNotFoundError:
            pass
    return removed


def _commit(tmp: str, path: Path) -> None:
    """Rename the finished temporary file onto ``path`` (a seam for the fault-injection tests)."""
    os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, binary: bool = False,
                 size: int | None = None, hint: str = "") -> Path:
    """Call ``write(file_object)`` on a temporary file, fsync it, then rename it onto ``path``.

    ``size``: the bytes that will be written, if known: checked against the free space first.
    A full disk or a read-only place is a :class:`WriteError` naming ``path`` (``hint`` is added
    to its message); the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if size is not None:
            check_free_space(path.parent, size, hint=hint)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            written = None
            try:
                written = os.path.getsize(tmp)
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            if isinstance(exc, OSError) and size is None and written:
                size = written  # at least what had been written when the disk filled
        if isinstance(exc, OSError):
            raise write_error(path, exc, needed=size, hint=hint) from exc
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, hint: str = "") -> Path:
    """:func:`atomic_write` of ``data``, its size checked against the free space first."""
    return atomic_write(path, lambda f: f.write(data), binary=True, size=len(data), hint=hint)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default)
    return atomic_write(path, lambda f: f.write(text), size=len(text.encode()))


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
