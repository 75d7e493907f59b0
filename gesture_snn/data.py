"""DVS128 Gesture's file format: where a root's files are, what they hold, and how to read them.

Any root in tonic's on-disk layout (the built-in synthetic set written by ``gesture-snn synthetic``,
or the real set written by ``gesture-snn fetch``) is listed through
:class:`tonic.datasets.DVSGesture`, in a deterministic sorted order, and each recording is read
once and checked against a documented bad-input policy. Nothing here frames events: that is
:mod:`gesture_snn.framing` (the :class:`~gesture_snn.framing.ToFrames` transform, the frame
cache, batching). ``docs/data.md`` is the reference for the layout and the bad-input policy.

- :data:`CLASSES`, :data:`SENSOR_SIZE`: the 11 labels and the 128 x 128 x 2 sensor.
- :func:`check_root`, :func:`split_dir`, :func:`archive_path`: the layout and its checks.
- :class:`Recordings`: one split of a root, as cleaned :class:`Sample` objects (events, label,
  user, file), listed through tonic.
- :func:`read_events`: one file -> tonic's structured events and the mask of valid events.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import numpy.lib.recfunctions

from gesture_snn.spec.errors import UserError

__all__ = [
    "CLASSES",
    "SENSOR_SIZE",
    "DataWarning",
    "Recordings",
    "Sample",
    "archive_path",
    "check_root",
    "read_events",
    "split_dir",
]

#: The 11 DVS128 Gesture classes; the index is the label (the ``.npy`` file name). Same names
#: and order as ``tonic.datasets.DVSGesture.classes``.
CLASSES: tuple[str, ...] = (
    "Hand clapping",
    "Right hand wave",
    "Left hand wave",
    "Right arm cw",
    "Right arm ccw",
    "Left arm cw",
    "Left arm ccw",
    "Arm roll",
    "Air drums",
    "Air guitar",
    "Other gestures",
)

#: Sensor width, height and polarity channels (x, y in 0..127; p 0 = OFF, 1 = ON).
SENSOR_SIZE = (128, 128, 2)

#: tonic 1.7.0 downloads a split unless its archive file exists and the split folder holds at
#: least this many ``.npy`` files.
TONIC_MIN_FILES = 100

#: The manifest that ``gesture-snn synthetic`` writes next to the splits (its name predates the
#: rename of the command; see :data:`gesture_snn.synthetic.MANIFEST_NAME`).
GENERATOR_MANIFEST = "synth_manifest.json"

_SPLIT_FOLDER = {True: "ibmGestureTrain", False: "ibmGestureTest"}
_USER_FOLDER = re.compile(r"user(\d+)_([^/]+)")  # one folder level: no "natural/sub"
_LABEL_FILE = re.compile(r"(\d+)\.npy")

HOW_TO_GET_DATA = (
    "To get data: `gesture-snn synthetic --out DIR` writes the built-in synthetic gesture set, "
    "`gesture-snn fetch --out DIR` downloads the real DVS128 Gesture (about 3 GB); "
    "then pass DIR as the data root."
)


class DataWarning(UserWarning):
    """A data problem that the documented policy repairs (bad events dropped, unsorted times
    sorted, a corrupt frame cache rebuilt)."""


# --------------------------------------------------------------------------------------------
# Recordings


@dataclass(frozen=True)
class Sample:
    """One recording after the bad-input policy.

    ``events`` is a tonic structured array (fields x, y: int16; p: bool; t: int64 microseconds),
    every event inside the sensor, sorted by time (stable). ``file`` is relative to the root.
    """

    events: np.ndarray
    label: int
    user: int
    file: str


# --------------------------------------------------------------------------------------------
# Layout


def split_dir(root: str | os.PathLike, *, train: bool) -> Path:
    """``<root>/DVSGesture/ibmGestureTrain`` (or ``ibmGestureTest``)."""
    return Path(root) / "DVSGesture" / _SPLIT_FOLDER[train]


def archive_path(root: str | os.PathLike, *, train: bool) -> Path:
    """``<root>/DVSGesture/ibmGestureTrain.tar.gz`` (or ``ibmGestureTest.tar.gz``).

    tonic 1.7.0 only checks that this file exists; an empty placeholder is enough.
    """
    folder = split_dir(root, train=train)
    return folder.with_name(folder.name + ".tar.gz")


def _layout_help(root: Path, train: bool) -> str:
    folder = _SPLIT_FOLDER[train]
    return (
        f"The data must be in tonic's DVSGesture layout: "
        f"{root}/DVSGesture/{folder}/userNN_<lighting>/<label>.npy (label 0..10, each an (N, 4) "
        f"array of x, y, p, t with t in ms), at least {TONIC_MIN_FILES} .npy files per split, "
        f"and the archive file {archive_path(root, train=train)} (an empty placeholder is "
        f"enough), otherwise tonic would try to download. {HOW_TO_GET_DATA}"
    )


def check_root(root: str | os.PathLike, *, train: bool) -> None:
    """Raise :class:`UserError` unless tonic can read this split of ``root`` without a download.

    Mirrors tonic 1.7.0's own test (archive file present, at least 100 ``.npy`` files under the
    split folder), and checks the folder and file names that tonic parses.
    """
    root = Path(root).expanduser()  # as tonic does
    split = "train" if train else "test"
    folder = split_dir(root, train=train)
    if not root.is_dir():
        raise UserError(f"data root {root} does not exist. {_layout_help(root, train)}")
    if not folder.is_dir():
        raise UserError(
            f"data root {root} has no {split} split: {folder} is missing. {_layout_help(root, train)}"
        )
    n_files = len(list(folder.glob("**/*.npy")))
    if n_files < TONIC_MIN_FILES:
        raise UserError(
            f"{folder} holds {n_files} .npy files; tonic needs at least {TONIC_MIN_FILES} per "
            f"split and would otherwise try to download. {_layout_help(root, train)}"
        )
    if not archive_path(root, train=train).is_file():
        raise UserError(
            f"{archive_path(root, train=train)} is missing; tonic would try to download without "
            f"it. If the split folder is complete, create it as an empty file "
            f"(`touch {archive_path(root, train=train)}`). {_layout_help(root, train)}"
        )
    for path, _dirs, files in os.walk(folder):
        rel = Path(path).relative_to(folder)
        if rel.parts and not _USER_FOLDER.fullmatch(rel.as_posix()):
            raise UserError(
                f"unexpected folder {path}: every folder under {folder} must be named "
                f"userNN_<lighting> (e.g. user01_lab)"
            )
        for name in files:
            if not name.endswith("npy"):
                continue
            match = _LABEL_FILE.fullmatch(name)
            if not rel.parts or not match or int(match.group(1)) >= len(CLASSES):
                raise UserError(
                    f"unexpected file {Path(path) / name}: files must be "
                    f"{folder}/userNN_<lighting>/<label>.npy with label 0..{len(CLASSES) - 1}"
                )


# --------------------------------------------------------------------------------------------
# Reading recordings through tonic


class Recordings(Sequence[Sample]):
    """One split of a tonic-layout DVSGesture root, read through ``tonic.datasets.DVSGesture``.

    The order is sorted by (user, lighting, label) and so does not depend on the file system.
    tonic lists the files; item ``i`` reads its file once (:func:`read_events`, the events exactly
    as tonic's ``DVSGesture[i]`` gives them) and is a :class:`Sample` after the bad-input policy
    of ``docs/data.md``: malformed
    files raise :class:`UserError` naming the file, events outside the sensor are dropped and
    times are sorted, each with a :class:`DataWarning`.

    Parameters
    ----------
    root:
        Data root (the directory that contains ``DVSGesture/``).
    train:
        True for ``ibmGestureTrain``, False for ``ibmGestureTest``.
    """

    def __init__(self, root: str | os.PathLike, *, train: bool):
        import tonic.datasets

        self.root = Path(root).expanduser()  # as tonic does
        self.train = train
        check_root(self.root, train=train)  # guarantees that tonic will not download
        self._dataset = tonic.datasets.DVSGesture(os.fspath(self.root), train=train)
        lighting = self._dataset.lighting
        self._order = sorted(
            range(len(self._dataset)),
            key=lambda i: (
                self._dataset.users[i], lighting[i], self._dataset.targets[i], self._dataset.data[i]
            ),
        )
        self.files = [
            Path(self._dataset.data[i]).relative_to(self.root).as_posix() for i in self._order
        ]
        self.labels = np.array([self._dataset.targets[i] for i in self._order], dtype=np.int64)
        self.users = np.array([self._dataset.users[i] for i in self._order], dtype=np.int64)

    @property
    def split(self) -> str:
        return "train" if self.train else "test"

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        file = self.files[index]
        path = self.root / file
        events, keep = read_events(path)  # the file's one read
        if not keep.all():
            warnings.warn(
                f"{path}: dropped {np.count_nonzero(~keep)} of {len(keep)} events outside the "
                f"sensor (x or y not in 0..127, or p not 0/1)",
                DataWarning,
                stacklevel=2,
            )
            events = events[keep]
        if np.any(events["t"][1:] < events["t"][:-1]):
            warnings.warn(
                f"{path}: event times are not in increasing order; sorted them (stable)",
                DataWarning,
                stacklevel=2,
            )
            events = events[np.argsort(events["t"], kind="stable")]
        return Sample(events=events, label=int(self.labels[index]), user=int(self.users[index]), file=file)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def source_stats(self) -> list[tuple[str, int, int]]:
        """``(file, size in bytes, mtime in ns)`` per sample: the data part of the cache key."""
        stats = []
        for file in self.files:
            st = (self.root / file).stat()
            stats.append((file, st.st_size, st.st_mtime_ns))
        return stats

    def generator_manifest(self) -> str | None:
        """The text of a generated set's manifest (generator version, seed, size), None for
        other roots: part of the cache key, so that a new generator version changes the key even
        if every file kept its size and time stamp."""
        try:
            return (self.root / "DVSGesture" / GENERATOR_MANIFEST).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None


def read_events(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one recording's ``.npy`` (once) and return ``(events, keep)``.

    ``events`` is what ``tonic.datasets.DVSGesture`` returns for the file (the same conversion:
    t * 1000 in the file's dtype, then cast to tonic's structured dtype, fields x, y: int16,
    p: bool, t: int64 microseconds), in file order; ``keep`` masks the events inside the sensor
    (x, y in 0..127, p 0 or 1). Raises :class:`UserError`, naming the file, for a file that is not
    an ``(N, 4)`` numeric array, or whose times are negative, not finite, or too large for the
    ms -> us conversion.
    """
    import tonic.datasets

    path = Path(path)
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy file ({exc})") from exc
    if not isinstance(raw, np.ndarray) or raw.ndim != 2 or raw.shape[1] != 4:
        shape = getattr(raw, "shape", None)
        raise UserError(
            f"{path}: expected an (N, 4) array of x, y, p, t (t in ms), found shape {shape}"
        )
    if raw.dtype.kind not in "iuf":
        raise UserError(
            f"{path}: expected a numeric (integer or float) array, found dtype {raw.dtype}"
        )
    x, y, p, t = (raw[:, c] for c in range(4))
    if len(t):
        if raw.dtype.kind == "f" and not np.isfinite(t).all():
            raise UserError(f"{path}: event times must be finite; found NaN or infinity")
        t_min, t_max = t.min(), t.max()
        if t_min < 0:
            row = int(np.argmax(t < 0))
            raise UserError(
                f"{path}: negative event time {t[row]} ms at row {row}; times count from the "
                f"start of the recording and cannot be negative (see docs/data.md). Fix or "
                f"remove this file."
            )
        if raw.dtype.kind in "iu":
            limit = np.iinfo(raw.dtype).max
        else:  # the product must stay finite and then fit tonic's int64
            limit = min(float(np.finfo(raw.dtype).max), 2.0**62)
        if t_max > limit // 1000:
            raise UserError(
                f"{path}: event time {t_max} ms does not fit dtype {raw.dtype} once tonic "
                f"converts it to microseconds (t * 1000); store the times as int64 or float64"
            )
    keep = (x >= 0) & (x < SENSOR_SIZE[0]) & (y >= 0) & (y < SENSOR_SIZE[1]) & ((p == 0) | (p == 1))
    try:
        # tonic's conversion (DVSGesture.__getitem__); rows with NaN coordinates make its integer
        # cast warn, and are dropped by ``keep``
        with np.errstate(invalid="ignore"):
            raw[:, 3] *= 1000
            events = numpy.lib.recfunctions.unstructured_to_structured(raw, tonic.datasets.DVSGesture.dtype)
    except Exception as exc:
        raise UserError(f"{path}: cannot convert it to events as tonic does ({exc})") from exc
    return events, keep
