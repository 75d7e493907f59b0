"""Download the real DVS128 Gesture set into a tonic-layout root.

tonic 1.7.0 knows the two archives (figshare files, with their md5 sums) but its
``figshare.com/ndownloader`` links now serve a browser challenge page. The same files, with the
same md5 sums, come from ``https://api.figshare.com/v2/file/download/<file id>``, which is what
this module uses (standard library only: ``urllib``, ``hashlib``, ``tarfile``).

For each split: download into ``<archive>.part`` (an interrupted download resumes with an HTTP
``Range`` request), check the md5, rename to ``<root>/DVSGesture/ibmGestureTrain.tar.gz``,
extract into a temporary folder beside the target and rename it to
``<root>/DVSGesture/ibmGestureTrain``. The archive is kept: tonic skips its own download only
while it exists, and it lets a later run prove that the split is complete. A split whose folder
exists next to its verified archive is skipped.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from gesture_snn import __version__
from gesture_snn.data import archive_path, split_dir
from gesture_snn.spec.errors import UserError

__all__ = ["FIGSHARE_DOWNLOAD", "DVSGESTURE_ARCHIVES", "Archive", "fetch_archive", "fetch_dvsgesture"]

#: Each archive is downloaded from ``url_base + file_id``.
FIGSHARE_DOWNLOAD = "https://api.figshare.com/v2/file/download/"

_CHUNK_BYTES = 1 << 20

# tarfile's "data" filter (Python >= 3.10.12) re-checks every member on top of our own checks.
_DATA_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


@dataclass(frozen=True)
class Archive:
    """One split's archive.

    Parameters
    ----------
    train:
        True for ``ibmGestureTrain``, False for ``ibmGestureTest``.
    file_id:
        figshare file id, appended to the URL base.
    md5:
        Expected md5 of the archive (hex).
    """

    train: bool
    file_id: str
    md5: str

    def __post_init__(self):
        if len(self.md5) != 32 or any(c not in "0123456789abcdef" for c in self.md5):
            raise ValueError(f"Archive.md5 must be 32 lower-case hex digits, not {self.md5!r}")

    @property
    def split(self) -> str:
        return "train" if self.train else "test"


#: The archives of ``tonic.datasets.DVSGesture`` 1.7.0 (its ``train_url``/``test_url`` file ids
#: and ``train_md5``/``test_md5``).
DVSGESTURE_ARCHIVES = (
    Archive(train=True, file_id="38022171", md5="3a8f0d4120a166bac7591f77409cb105"),
    Archive(train=False, file_id="38020584", md5="56070e45dadaa85fff82e0fbfbc06de5"),
)


def fetch_dvsgesture(
    out: str | os.PathLike,
    *,
    url_base: str = FIGSHARE_DOWNLOAD,
    splits: Sequence[str] = ("train", "test"),
    archives: Sequence[Archive] | None = None,
    progress: bool = True,
    timeout_s: float = 60.0,
) -> dict[str, str]:
    """Download, check and extract DVS128 Gesture into the tonic-layout root ``out``.

    Parameters
    ----------
    out:
        Data root; the splits go to ``out/DVSGesture/ibmGestureTrain`` and ``ibmGestureTest``.
    url_base:
        URL prefix; each archive comes from ``url_base + file_id``.
    splits:
        Which splits to fetch ("train", "test").
    archives:
        The archives to choose from; default :data:`DVSGESTURE_ARCHIVES`.
    progress:
        Show progress bars (stderr).
    timeout_s:
        Seconds without an answer from the server before a request fails.

    Returns ``{split: what was done}``. Raises :class:`UserError` on any failure, after which
    only a ``.part`` file (resumed by the next run) may remain.
    """
    archives = DVSGESTURE_ARCHIVES if archives is None else archives
    check_url_base(url_base)
    if not (isinstance(timeout_s, (int, float)) and timeout_s > 0 and timeout_s < float("inf")):
        raise UserError(f"--timeout must be a positive number of seconds, got {timeout_s!r}")
    unknown = set(splits) - {"train", "test"}
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; choose from train, test")
    return {
        archive.split: fetch_archive(
            out, archive, url_base=url_base, progress=progress, timeout_s=timeout_s
        )
        for archive in archives
        if archive.split in splits
    }


def check_url_base(url_base: str) -> None:
    """UserError unless ``url_base`` is an http://, https:// or file:// URL prefix."""
    import urllib.parse

    parts = urllib.parse.urlsplit(str(url_base))
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise UserError(f"--url-base {url_base!r} is not a URL; give a prefix such as https://host/files/ "
                        "(http://, https:// or file://)")


def fetch_archive(
    out: str | os.PathLike,
    archive: Archive,
    *,
    url_base: str = FIGSHARE_DOWNLOAD,
    progress: bool = True,
    timeout_s: float = 60.0,
) -> str:
    """Fetch one split (see :func:`fetch_dvsgesture`); returns what was done, in words."""
    folder = split_dir(out, train=archive.train)
    target = archive_path(out, train=archive.train)
    part = target.with_name(target.name + ".part")
    verified = target.is_file() and _md5(target, progress=progress) == archive.md5
    if folder.exists():
        if verified:
            return "already complete"
        raise UserError(
            f"{folder} exists but was not written by `gesture-snn fetch` (no verified "
            f"{target.name} beside it; e.g. a synthetic set). Choose another --out, or remove "
            f"{folder} and {target} to download the real data there."
        )
    if target.exists() and not verified:
        raise UserError(
            f"{target} exists but its md5 is not the expected {archive.md5} (an interrupted "
            f"download by another tool?). Remove it and run again."
        )
    done = []
    if not verified:
        url = url_base.rstrip("/") + "/" + archive.file_id
        _download(url, part, progress=progress, timeout_s=timeout_s)
        got = _md5(part, progress=progress)
        if got != archive.md5:
            part.unlink()
            raise UserError(
                f"download of {url} has md5 {got}, expected {archive.md5} (the server may have "
                f"sent an error or challenge page instead of the archive); removed it. Check "
                f"--url-base and run again."
            )
        os.replace(part, target)
        done.append("downloaded")
    _extract(target, folder, progress=progress)
    done.append("extracted")
    return " and ".join(done)


def _md5(path: Path, *, progress: bool) -> str:
    from tqdm.auto import tqdm

    digest = hashlib.md5(usedforsecurity=False)  # an integrity check, not security
    with open(path, "rb") as f, tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=f"md5 {path.name}",
        disable=not progress,
    ) as bar:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _download(url: str, part: Path, *, progress: bool, timeout_s: float) -> None:
    """Download ``url`` into ``part``, continuing after the bytes already there."""
    from tqdm.auto import tqdm

    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"gesture-snn/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except ValueError as exc:  # "unknown url type" and the like
        raise UserError(f"--url-base gives {url!r}, which is not a URL ({exc}); give http://, https:// or file://") from None
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # nothing left to send: the .part is whole (the md5 check decides)
        raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        reason = getattr(exc, "reason", exc)
        kept = f" The {offset} bytes in {part} are kept for the next try." if offset else ""
        raise UserError(
            f"cannot reach {url} ({reason}); check the network connection and --url-base, then "
            f"run the same command again.{kept}"
        ) from exc
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range request and sends the whole file
        remaining = response.length
        total = None if remaining is None else offset + remaining
        try:
            with open(part, "ab" if offset else "wb") as f, tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=part.name,
                disable=not progress,
            ) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    f.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            size = part.stat().st_size
            raise UserError(
                f"download of {url} was interrupted after {size} bytes ({exc!r}); {part} is "
                f"kept; run the same command again to resume"
            ) from exc
    size = part.stat().st_size
    if total is not None and size != total:
        raise UserError(
            f"download of {url} ended after {size} of {total} bytes; {part} is kept; run the "
            f"same command again to resume"
        )


def _checked_members(tar: tarfile.TarFile, folder: str, archive: Path) -> list[tarfile.TarInfo]:
    """The members under ``folder/``; refuse the archive if any member could escape."""
    members = []
    for member in tar.getmembers():
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise UserError(f"{archive}: refusing to extract the unsafe path {member.name!r}")
        parts = [p for p in name.parts if p != "."]
        if not parts or parts[0] != folder:
            continue  # e.g. metadata files beside the split folder
        if not (member.isfile() or member.isdir()):
            raise UserError(
                f"{archive}: refusing to extract {member.name!r}, which is not a regular file or "
                f"folder"
            )
        members.append(member)
    return members


def remove_stale_extractions(folder: Path) -> list[Path]:
    """Delete ``.<folder>.extract-*`` staging folders beside ``folder`` left by killed runs: those
    named with a process id that no longer exists, and those of older versions (no process id)
    that have not changed for an hour. Returns what was removed."""
    import re
    import time

    removed = []
    for entry in folder.parent.glob(f".{folder.name}.extract-*"):
        if not entry.is_dir() or entry.is_symlink():
            continue
        match = re.match(rf"\.{re.escape(folder.name)}\.extract-(\d+)-", entry.name)
        if match:
            pid = int(match[1])
            if pid == os.getpid():
                continue
            try:
                os.kill(pid, 0)
                continue  # a live extraction
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        elif time.time() - entry.stat().st_mtime < 3600:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _extract(archive: Path, folder: Path, *, progress: bool) -> None:
    """Extract ``archive``'s ``folder.name/`` into a temporary folder, then rename it to ``folder``."""
    from tqdm.auto import tqdm

    from gesture_snn.spec.files import check_free_space, write_error

    remove_stale_extractions(folder)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.extract-{os.getpid()}-", dir=folder.parent))
    needed = None
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = _checked_members(tar, folder.name, archive)
                needed = sum(member.size for member in members if member.isfile())
                check_free_space(staging, needed, hint="fetch extracts beside the archive")
                for member in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                    tar.extract(member, staging, **_DATA_FILTER)
        except OSError as exc:
            error = write_error(staging, exc, needed=needed, hint=f"the partial extraction was removed; {archive} is kept")
            if error is not exc:
                raise error from None
            raise UserError(f"{archive} cannot be extracted ({exc}); remove it and run again") from exc
        except (tarfile.TarError, EOFError) as exc:
            raise UserError(f"{archive} cannot be extracted ({exc}); remove it and run again") from exc
        extracted = staging / folder.name
        if not extracted.is_dir():
            raise UserError(
                f"{archive} has no {folder.name}/ folder; it is not a DVS128 Gesture archive. "
                f"Remove it and run again."
            )
        os.rename(extracted, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
