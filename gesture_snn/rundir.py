"""Run directories: crash-safe file writes and the shared ``report.json``.

Every stage writes into one run directory. ``report.json`` holds one section per stage
(``train``, ``quantize``, ``simulate``, ``build``, ...); a stage replaces only its own section.
All writes go to a temporary file in the same directory followed by ``os.replace``, so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

REPORT_NAME = "report.json"


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, binary: bool = False) -> Path:
    """Call ``write(file_object)`` on a temporary file, fsync it, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, lambda f: json.dump(obj, f, indent=2, sort_keys=False, default=_json_default))


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_report(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / REPORT_NAME
    if not path.exists():
        return {}
    with open(path) as f:
        return json.load(f)


def update_report(run_dir: str | os.PathLike, section: str, data: dict) -> Path:
    """Replace one section of ``RUN_DIR/report.json``, keeping the others."""
    report = read_report(run_dir)
    report[section] = data
    return atomic_write_json(Path(run_dir) / REPORT_NAME, report)
