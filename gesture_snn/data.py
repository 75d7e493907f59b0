"""DVS128 Gesture: events -> frames -> PyTorch batches.

Any root in tonic's on-disk layout (the built-in synthetic set written by ``gesture-snn synth``,
or the real set written by ``gesture-snn fetch``) is read through
:class:`tonic.datasets.DVSGesture`, in a deterministic sorted order, checked against a
documented bad-input policy, binned into frames and cached in one HDF5 file per split and
preprocessing setting. ``docs/data.md`` is the reference for the layout, the exact framing rule,
the bad-input policy and the cache key.

The pieces, each usable on its own:

- :class:`FrameConfig`: spatial size, bin width, window and binary/count mode.
- :class:`Recordings`: one split of a root, as cleaned :class:`Sample` objects (events, label,
  user, file), read through tonic.
- :func:`events_to_frames`: one sample's events -> ``uint8 [T, 2, size, size]``.
- :func:`load_frames`: a whole split as a :class:`FrameSet`, cached.
- :func:`make_loader`: a :class:`torch.utils.data.DataLoader` of ``float32 [B, T, n_inputs]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from gesture_snn.errors import UserError

__all__ = [
    "CLASSES",
    "SENSOR_SIZE",
    "DataWarning",
    "FrameConfig",
    "FrameConfigError",
    "FrameSet",
    "Recordings",
    "Sample",
    "archive_path",
    "check_root",
    "events_to_frames",
    "load_frames",
    "make_loader",
    "recording_steps",
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

#: Bump when the framing rule or the cache file format changes: old caches are then ignored.
CACHE_VERSION = 1

_SPLIT_FOLDER = {True: "ibmGestureTrain", False: "ibmGestureTest"}
_USER_FOLDER = re.compile(r"user(\d+)_([^/]+)")  # one folder level: no "natural/sub"
_LABEL_FILE = re.compile(r"(\d+)\.npy")

HOW_TO_GET_DATA = (
    "To get data: `gesture-snn synth --out DIR` writes the built-in synthetic gesture set, "
    "`gesture-snn fetch --out DIR` downloads the real DVS128 Gesture (about 3 GB); "
    "then pass DIR as the data root."
)


class FrameConfigError(UserError, ValueError):
    """An invalid :class:`FrameConfig` field (a ValueError that the CLI reports as a user error)."""


class DataWarning(UserWarning):
    """A data problem that the documented policy repairs (bad events dropped, unsorted times
    sorted, a corrupt frame cache rebuilt)."""


# --------------------------------------------------------------------------------------------
# Configuration and results


@dataclass(frozen=True)
class FrameConfig:
    """How events become frames.

    Parameters
    ----------
    size:
        Frames are ``size x size`` pixels; the 128 x 128 sensor is binned by ``128 // size`` in
        both directions. Must divide 128.
    bin_ms:
        Width of one time bin (one network time step) in milliseconds; a whole number of
        microseconds.
    window_ms:
        Length of the window, in milliseconds, measured from the first event of each sample.
        ``n_steps = round(window_ms / bin_ms)``; events after the window are not used.
    mode:
        ``"binary"``: a frame pixel is 1 if at least ``threshold`` events fell into it, else 0.
        ``"count"``: the number of events, saturating at 255.
    """

    size: int = 32
    bin_ms: float = 20.0
    window_ms: float = 1600.0
    mode: str = "binary"
    threshold: int = 1

    def __post_init__(self):
        if not isinstance(self.size, (int, np.integer)) or isinstance(self.size, bool):
            raise FrameConfigError(f"FrameConfig.size must be an integer, not {self.size!r}")
        if not 1 <= self.size <= SENSOR_SIZE[0] or SENSOR_SIZE[0] % self.size:
            raise FrameConfigError(
                f"FrameConfig.size must divide the sensor width {SENSOR_SIZE[0]} "
                f"(1, 2, 4, 8, 16, 32, 64 or 128), not {self.size}"
            )
        if not self.bin_ms > 0:
            raise FrameConfigError(f"FrameConfig.bin_ms must be positive, not {self.bin_ms!r}")
        if abs(self.bin_ms * 1000 - round(self.bin_ms * 1000)) > 1e-6:
            raise FrameConfigError(
                f"FrameConfig.bin_ms must be a whole number of microseconds (the time resolution "
                f"of the events), not {self.bin_ms!r} ms"
            )
        if not self.window_ms > 0 or self.n_steps < 1:
            raise FrameConfigError(
                f"FrameConfig.window_ms must hold at least one bin of {self.bin_ms} ms, "
                f"not {self.window_ms!r}"
            )
        if self.mode not in ("binary", "count"):
            raise FrameConfigError(f"FrameConfig.mode must be 'binary' or 'count', not {self.mode!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, np.integer)) or not 1 <= self.threshold <= 255:
            raise FrameConfigError(f"FrameConfig.threshold must be an integer in 1..255 (events per pixel and bin), "
                                   f"not {self.threshold!r}")
        if self.threshold != 1 and self.mode != "binary":
            raise FrameConfigError("FrameConfig.threshold applies to binary frames; count frames keep every event")

    @property
    def bin_us(self) -> int:
        """Bin width in microseconds (the unit of tonic's event times)."""
        return round(self.bin_ms * 1000)

    @property
    def n_steps(self) -> int:
        """Number of time steps T = round(window_ms / bin_ms)."""
        return round(self.window_ms / self.bin_ms)

    @property
    def n_inputs(self) -> int:
        """Inputs per time step, ``2 * size * size``; input ``(p * size + y) * size + x``."""
        return 2 * self.size * self.size

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """Shape of one sample's frames: ``(n_steps, 2, size, size)``."""
        return (self.n_steps, 2, self.size, self.size)


@dataclass
class FrameSet:
    """One split as frames, in the sorted order of :class:`Recordings`.

    ``frames`` is ``uint8 [N, T, 2, size, size]`` (axis 2 is the polarity, 0 = OFF, 1 = ON;
    then y, then x), ``labels`` and ``users`` are ``int64 [N]``, ``files`` are the source
    ``.npy`` paths relative to the root.
    """

    frames: np.ndarray
    labels: np.ndarray
    files: list[str]
    users: np.ndarray
    config: FrameConfig

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "FrameSet":
        """The samples at ``indices`` (integer positions or a boolean mask), in that order."""
        indices = np.arange(len(self))[np.asarray(indices)]
        return FrameSet(
            frames=self.frames[indices],
            labels=self.labels[indices],
            files=[self.files[i] for i in indices],
            users=self.users[indices],
            config=self.config,
        )


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
    Item ``i`` is a :class:`Sample` after the bad-input policy of ``docs/data.md``: malformed
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
        tonic_index = self._order[index]
        file = self.files[index]
        path = self.root / file
        keep = _check_raw_events(path)
        try:
            # rows with NaN coordinates make tonic's integer cast warn; they are dropped below
            with np.errstate(invalid="ignore"):
                events, label = self._dataset[tonic_index]
        except Exception as exc:  # tonic's own error for a file our header check let through
            raise UserError(f"{path}: tonic cannot read it ({exc})") from exc
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
        return Sample(events=events, label=int(label), user=int(self.users[index]), file=file)

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


def _check_raw_events(path: Path) -> np.ndarray:
    """Check one ``.npy`` before tonic converts it; return the mask of events inside the sensor.

    Raises :class:`UserError` for a file that is not an ``(N, 4)`` numeric array, or whose
    times are negative, not finite, or too large for tonic's ms -> us conversion.
    """
    try:
        raw = np.load(path, mmap_mode="r", allow_pickle=False)
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
    return (x >= 0) & (x < SENSOR_SIZE[0]) & (y >= 0) & (y < SENSOR_SIZE[1]) & ((p == 0) | (p == 1))


# --------------------------------------------------------------------------------------------
# Framing


def recording_steps(events: np.ndarray, config: FrameConfig) -> int:
    """Bins of ``config.bin_ms`` that a whole recording spans: ``(t_last - t_first) // bin_us + 1``.

    Raises :class:`UserError` for a recording with no events or one shorter than one bin (its
    events span less than ``bin_ms``): it cannot be streamed step by step.
    """
    if len(events) == 0:
        raise UserError("a recording without events cannot be streamed")
    span = int(events["t"].max()) - int(events["t"].min())
    if span < config.bin_us:
        raise UserError(
            f"a recording spanning {span / 1000:g} ms is shorter than one bin (bin_ms = {config.bin_ms:g}); "
            f"it cannot be streamed step by step"
        )
    return span // config.bin_us + 1


def events_to_frames(events: np.ndarray, config: FrameConfig, *, n_steps: int | None = None) -> np.ndarray:
    """Bin one sample's events into ``uint8 [T, 2, size, size]`` frames (``T = n_steps``, by
    default ``config.n_steps``; :func:`recording_steps` gives the whole recording's).

    ``events`` is a structured array with fields x, y (0..127), p (0/1 or bool), t (integer
    microseconds), as tonic returns it. With ``t0`` the earliest event time, the event at
    ``(x, y, p, t)`` goes to step ``(t - t0) // bin_us`` (dropped if that is ``>= T``), channel
    ``p``, row ``y // (128 // size)``, column ``x // (128 // size)``. In ``"binary"`` mode a
    pixel is 1 if at least ``config.threshold`` events fall into it (1: any event); in ``"count"`` mode it is the number of events,
    saturating at 255. No events give all-zero frames.
    """
    n_steps = config.n_steps if n_steps is None else n_steps
    size = config.size
    shape = (n_steps, 2, size, size)
    n_pixels = 2 * size * size
    if len(events) == 0:
        return np.zeros(shape, dtype=np.uint8)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = events["p"].astype(np.int64)
    t = events["t"].astype(np.int64)
    if x.min() < 0 or x.max() >= SENSOR_SIZE[0] or y.min() < 0 or y.max() >= SENSOR_SIZE[1]:
        raise ValueError("events_to_frames: x and y must be in 0..127")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("events_to_frames: p must be 0 or 1")
    step = (t - t.min()) // config.bin_us
    in_window = step < n_steps
    factor = SENSOR_SIZE[0] // size
    index = step * n_pixels + (p * size + y // factor) * size + x // factor
    counts = np.bincount(index[in_window], minlength=n_steps * n_pixels)
    if config.mode == "binary":
        frames = (counts >= config.threshold).astype(np.uint8)
    else:
        frames = np.minimum(counts, 255).astype(np.uint8)
    return frames.reshape(shape)


# --------------------------------------------------------------------------------------------
# Loading with an HDF5 cache


def load_frames(
    root: str | os.PathLike,
    *,
    train: bool,
    config: FrameConfig = FrameConfig(),
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> FrameSet:
    """Load one split of a tonic-layout DVSGesture root as frames, through the frame cache.

    Parameters
    ----------
    root:
        Data root (contains ``DVSGesture/``), e.g. ``datasets/synthetic``.
    train:
        True for the training split, False for the test split.
    config:
        Framing settings.
    cache_dir:
        Where the cache files go; default ``<root>/frame_cache``.
    progress:
        Show a progress bar while the cache is built.

    The cache is ``<cache_dir>/<split>-<key>.h5`` where the key hashes the framing settings and
    every source file's path, size and modification time (``docs/data.md``). A matching,
    complete and intact cache is read; anything else is rebuilt from the events.
    """
    recordings = Recordings(root, train=train)
    key = _cache_key(recordings, config)
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_DIR_ENV) or None
    cache_dir = recordings.root / "frame_cache" if cache_dir is None else Path(cache_dir).expanduser()
    cache = cache_dir / f"{recordings.split}-{key[:16]}.h5"
    if cache.exists():
        try:
            return _read_cache(cache, key=key, recordings=recordings, config=config)
        except _CacheInvalid as exc:
            warnings.warn(f"frame cache {cache} is unusable ({exc}); rebuilding it", DataWarning)
    frameset = _build_frames(recordings, config, progress=progress)
    try:
        _write_cache(cache, frameset, key=key)
    except UserError:
        raise
    except OSError as exc:
        raise UserError(
            f"cannot write the frame cache {cache} ({exc}); pass a writable cache directory "
            f"(--cache-dir DIR, cache_dir)"
        ) from exc
    return frameset


#: Environment variable with the frame cache directory (what the stages' ``--cache-dir`` sets).
CACHE_DIR_ENV = "GESTURE_SNN_CACHE_DIR"


@contextlib.contextmanager
def cache_dir_override(cache_dir: str | os.PathLike | None):
    """Within the block, :func:`load_frames` without ``cache_dir`` uses ``cache_dir`` (a stage's
    ``--cache-dir``: for read-only data roots); None changes nothing."""
    if cache_dir is None:
        yield
        return
    before = os.environ.get(CACHE_DIR_ENV)
    os.environ[CACHE_DIR_ENV] = os.fspath(cache_dir)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CACHE_DIR_ENV, None)
        else:
            os.environ[CACHE_DIR_ENV] = before


class _CacheInvalid(Exception):
    pass


def _cache_key(recordings: Recordings, config: FrameConfig) -> str:
    import tonic

    payload = {
        "cache_version": CACHE_VERSION,
        "tonic": tonic.__version__,
        "split": recordings.split,
        # the effective settings, so that e.g. bin_ms=20 and bin_ms=20.0 share a cache
        "frames": {
            "size": config.size,
            "bin_us": config.bin_us,
            "n_steps": config.n_steps,
            "mode": config.mode,
            "threshold": config.threshold,
        },
        "sources": recordings.source_stats(),
        # a generated set's manifest (generator version, seed, size): a new generator version
        # changes the key even if every file kept its size and time stamp
        "generator": _generator_manifest(recordings.root),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _generator_manifest(root: Path) -> str | None:
    manifest = root / "DVSGesture" / "synth_manifest.json"
    try:
        return manifest.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _frames_checksum(frames: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(frames).data, digest_size=16).hexdigest()


def _build_frames(recordings: Recordings, config: FrameConfig, *, progress: bool) -> FrameSet:
    from tqdm.auto import tqdm

    frames = np.zeros((len(recordings), *config.frame_shape), dtype=np.uint8)
    bar = tqdm(
        recordings,
        total=len(recordings),
        desc=f"framing {recordings.split} split",
        unit="sample",
        disable=not progress,
    )
    for i, sample in enumerate(bar):
        frames[i] = events_to_frames(sample.events, config)
    return FrameSet(
        frames=frames,
        labels=recordings.labels.copy(),
        files=list(recordings.files),
        users=recordings.users.copy(),
        config=config,
    )


def _write_cache(path: Path, frameset: FrameSet, *, key: str) -> None:
    """Write the cache atomically: the HDF5 file is made in memory, then written with
    :func:`gesture_snn.rundir.atomic_write_bytes` (temporary file, fsync, rename).

    HDF5 never writes to the disk itself, so a full disk is an ordinary ENOSPC: one
    :class:`~gesture_snn.rundir.WriteError` naming the cache file, the bytes it needs and the
    space free (the free space is checked before writing), never a half-written cache, never
    HDF5's crash on a failed write. Temporary files of killed runs are removed first.
    """
    import io

    import h5py

    from gesture_snn.rundir import atomic_write_bytes, remove_stale_temps

    remove_stale_temps(path.parent)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset(
            "frames",
            data=frameset.frames,
            chunks=(1, *frameset.frames.shape[1:]),
            compression="lzf",
        )
        h5.create_dataset("labels", data=frameset.labels)
        h5.create_dataset("users", data=frameset.users)
        h5.create_dataset("files", data=frameset.files, dtype=h5py.string_dtype())
        h5.attrs["key"] = key
        h5.attrs["config"] = json.dumps(dataclasses.asdict(frameset.config))
        h5.attrs["checksum"] = _frames_checksum(frameset.frames)
        h5.attrs["complete"] = True  # written last
    atomic_write_bytes(path, buffer.getvalue(),
                       hint=f"pass --cache-dir DIR (cache_dir, or set {CACHE_DIR_ENV}) for a read-only or full data root")


def _read_cache(path: Path, *, key: str, recordings: Recordings, config: FrameConfig) -> FrameSet:
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            if not h5.attrs.get("complete", False):
                raise _CacheInvalid("incomplete")
            if h5.attrs.get("key") != key:
                raise _CacheInvalid("written for other settings or data")
            shape = (len(recordings), *config.frame_shape)
            if h5["frames"].shape != shape or h5["frames"].dtype != np.uint8:
                raise _CacheInvalid(f"frames are {h5['frames'].shape}, expected {shape}")
            frames = h5["frames"][()]
            labels = h5["labels"][()].astype(np.int64)
            users = h5["users"][()].astype(np.int64)
            files = [f.decode() if isinstance(f, bytes) else f for f in h5["files"][()]]
            checksum = h5.attrs.get("checksum")
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise _CacheInvalid(f"unreadable: {exc}") from exc
    if _frames_checksum(frames) != checksum:
        raise _CacheInvalid("frame checksum mismatch")
    if files != recordings.files or not np.array_equal(labels, recordings.labels) or not (
        np.array_equal(users, recordings.users)
    ):
        raise _CacheInvalid("sample list differs from the data root")
    return FrameSet(frames=frames, labels=labels, files=files, users=users, config=config)


# --------------------------------------------------------------------------------------------
# Batching


class _FrameDataset:
    """Map-style dataset: sample ``i`` as (``uint8 [T, n_inputs]`` tensor, label)."""

    def __init__(self, frameset: FrameSet):
        self.frameset = frameset

    def __len__(self) -> int:
        return len(self.frameset)

    def __getitem__(self, index: int):
        import torch

        frames = self.frameset.frames[index]
        return torch.from_numpy(frames.reshape(frames.shape[0], -1)), int(self.frameset.labels[index])


def _collate(batch):
    import torch

    x = torch.stack([frames for frames, _ in batch]).to(torch.float32)
    y = torch.tensor([label for _, label in batch], dtype=torch.int64)
    return x, y


def make_loader(
    frameset: FrameSet,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    sampler=None,
):
    """A DataLoader of ``(x, y)``: ``x`` float32 ``[B, T, n_inputs]``, ``y`` int64 ``[B]``.

    Input index ``(p * size + y) * size + x`` within a step (the frames flattened per step).

    Parameters
    ----------
    batch_size:
        Samples per batch.
    shuffle:
        Shuffle every epoch. The order is a function of ``seed`` and the epoch number only
        (each pass over the loader draws the next epoch's permutation).
    seed:
        Seed of the shuffling generator.
    drop_last:
        Drop the last, incomplete batch.
    sampler:
        A sampler that decides the order instead (e.g.
        :class:`torch.utils.data.distributed.DistributedSampler`); requires ``shuffle=False``,
        since the sampler shuffles.
    """
    import torch
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    if sampler is not None and shuffle:
        raise ValueError("make_loader: pass shuffle=False with a sampler; the sampler decides the order")
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        _FrameDataset(frameset),
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        drop_last=drop_last,
        generator=generator,
        collate_fn=_collate,
    )
