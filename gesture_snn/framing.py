"""Events -> frames: a tonic-style transform, the per-split frame cache and batching.

The pieces, each usable on its own:

- :class:`ToFrames`: a tonic transform (a small frozen dataclass, called on a structured event
  array with fields x, y, p, t) that bins events into ``uint8 [T, P, H', W']`` frames, binary
  (at least ``threshold`` events in a pixel and bin) or counts. Pass it as ``transform=`` to any
  tonic dataset, e.g. ``tonic.datasets.DVSGesture(root, transform=FrameConfig().transform())``.
- :class:`FrameConfig`: the project's framing settings (frame size, bin width, window, binary
  or count mode) for DVS128 Gesture's 128 x 128 sensor; :meth:`FrameConfig.transform` gives its
  :class:`ToFrames`.
- :func:`events_to_frames` / :func:`recording_steps`: one recording's events -> frames, the
  window's or the whole recording's steps.
- :func:`load_frames`: a whole split of a DVS128 Gesture root (:class:`gesture_snn.data.Recordings`)
  as a :class:`FrameSet`, cached in one HDF5 file per split and setting; each source file is read
  once per cache build.
- :func:`make_loader`: a :class:`torch.utils.data.DataLoader` of ``float32 [B, T, n_inputs]``.

``docs/data.md`` is the reference for the framing rule, its equality with ``tonic.transforms.ToFrame``
and the cache key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from gesture_snn.data import SENSOR_SIZE, DataWarning, Recordings
from gesture_snn.spec.errors import UserError

__all__ = [
    "CACHE_DIR_ENV",
    "FrameConfig",
    "FrameConfigError",
    "FrameSet",
    "ToFrames",
    "cache_dir_override",
    "events_to_frames",
    "load_frames",
    "make_loader",
    "recording_steps",
]

#: Bump when the framing rule or the cache file format changes: old caches are then ignored.
CACHE_VERSION = 1


class FrameConfigError(UserError, ValueError):
    """An invalid :class:`FrameConfig` or :class:`ToFrames` field (a ValueError that the CLI
    reports as a user error)."""


# --------------------------------------------------------------------------------------------
# The transform


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class ToFrames:
    """Bin events into frames: a transform in tonic's conventions.

    Called on a structured event array with fields ``x``, ``y``, ``p``, ``t`` (as tonic's
    datasets yield them; ``t`` in integer time units, microseconds for tonic's datasets), it
    returns ``uint8 [n_steps, P, H // spatial_factor, W // spatial_factor]`` (axis 1 the
    polarity, then y, then x, like ``tonic.transforms.ToFrame``). The events need not be sorted.

    The rule: with ``t0 = start_time`` (by default the earliest event's time), the event
    ``(x, y, p, t)`` goes to step ``(t - t0) // time_window`` (dropped unless ``0 <= step <
    n_steps``), channel ``p``, row ``y // spatial_factor``, column ``x // spatial_factor``.

    Parameters
    ----------
    sensor_size:
        ``(W, H, P)`` of the events, as tonic's datasets give it (``DVSGesture.sensor_size``).
    time_window:
        Width of one bin (one network time step), in the events' time unit (tonic's name).
    n_steps:
        Number of bins T: the frames always have T steps (all zero without events).
    spatial_factor:
        Sensor pixels per frame pixel in x and in y; must divide W and H.
    threshold:
        ``None``: count frames, the number of events in each pixel and bin, saturating at 255.
        ``k`` (1..255): binary frames, 1 where at least ``k`` events fell into the pixel and bin.
    start_time:
        The window start policy: ``None`` starts the window at the earliest event of each
        recording; a number starts it there (e.g. ``0``, the start of the recording), dropping
        earlier events.

    Count mode equals ``tonic.transforms.ToFrame`` (tonic 1.7) on time-sorted, non-empty events
    with no pixel and bin above 255 events, with the same binning: ``ToFrame(sensor_size=(W // f,
    H // f, P), time_window=time_window, start_time=t0, end_time=t0 + n_steps * time_window)``
    (``overlap=0``, ``include_incomplete=False``) applied after
    ``tonic.transforms.Downsample(spatial_factor=1 / f)`` (``f = spatial_factor``; a power of
    two, so the float scaling is exact; leave Downsample out for ``f = 1``). ``ToFrame`` gives
    ``int16``; for no events it gives one empty frame, ToFrames ``n_steps`` of them.
    """

    sensor_size: tuple[int, int, int] = SENSOR_SIZE
    time_window: int = 20_000
    n_steps: int = 80
    spatial_factor: int = 4
    threshold: int | None = 1
    start_time: int | None = None

    def __post_init__(self):
        if len(self.sensor_size) != 3 or not all(_is_int(v) and v >= 1 for v in self.sensor_size):
            raise FrameConfigError(f"ToFrames.sensor_size must be (W, H, P) of positive integers, not {self.sensor_size!r}")
        if not _is_int(self.time_window) or self.time_window < 1:
            raise FrameConfigError(f"ToFrames.time_window must be a positive integer, not {self.time_window!r}")
        if not _is_int(self.n_steps) or self.n_steps < 1:
            raise FrameConfigError(f"ToFrames.n_steps must be a positive integer, not {self.n_steps!r}")
        width, height, _ = self.sensor_size
        if not _is_int(self.spatial_factor) or self.spatial_factor < 1 or width % self.spatial_factor or (
            height % self.spatial_factor
        ):
            raise FrameConfigError(
                f"ToFrames.spatial_factor must be a positive integer dividing the sensor's {width} x {height}, "
                f"not {self.spatial_factor!r}"
            )
        if self.threshold is not None and (not _is_int(self.threshold) or not 1 <= self.threshold <= 255):
            raise FrameConfigError(f"ToFrames.threshold must be None (counts) or an integer in 1..255, "
                                   f"not {self.threshold!r}")
        if self.start_time is not None and not _is_int(self.start_time):
            raise FrameConfigError(f"ToFrames.start_time must be None or an integer time, not {self.start_time!r}")

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """``(n_steps, P, H // spatial_factor, W // spatial_factor)``."""
        width, height, polarities = self.sensor_size
        return (self.n_steps, polarities, height // self.spatial_factor, width // self.spatial_factor)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        shape = self.frame_shape
        if len(events) == 0:
            return np.zeros(shape, dtype=np.uint8)
        width, height, polarities = self.sensor_size
        x = events["x"].astype(np.int64)
        y = events["y"].astype(np.int64)
        p = events["p"].astype(np.int64)
        t = events["t"].astype(np.int64)
        if x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height:
            raise ValueError(f"ToFrames: x must be in 0..{width - 1} and y in 0..{height - 1}")
        if p.min() < 0 or p.max() >= polarities:
            raise ValueError(f"ToFrames: p must be in 0..{polarities - 1}")
        start = int(t.min()) if self.start_time is None else int(self.start_time)
        step = (t - start) // self.time_window
        keep = (step >= 0) & (step < self.n_steps)
        _, _, rows, columns = shape
        f = self.spatial_factor
        index = ((step * polarities + p) * rows + y // f) * columns + x // f
        counts = np.bincount(index[keep], minlength=int(np.prod(shape)))
        if self.threshold is None:
            frames = np.minimum(counts, 255)
        else:
            frames = counts >= self.threshold
        return frames.astype(np.uint8).reshape(shape)


# --------------------------------------------------------------------------------------------
# The project's framing settings


@dataclass(frozen=True)
class FrameConfig:
    """How events become frames, for DVS128 Gesture's 128 x 128 sensor (:meth:`transform` gives
    the :class:`ToFrames` transform that does it; the window starts at each recording's first event).

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

    def transform(self, n_steps: int | None = None) -> ToFrames:
        """This framing as a :class:`ToFrames` transform; ``n_steps`` replaces the window's
        number of steps (e.g. :func:`recording_steps` for a whole recording)."""
        return ToFrames(
            sensor_size=SENSOR_SIZE,
            time_window=self.bin_us,
            n_steps=self.n_steps if n_steps is None else n_steps,
            spatial_factor=SENSOR_SIZE[0] // self.size,
            threshold=self.threshold if self.mode == "binary" else None,
        )


def events_to_frames(events: np.ndarray, config: FrameConfig, *, n_steps: int | None = None) -> np.ndarray:
    """Bin one sample's events into ``uint8 [T, 2, size, size]`` frames (``T = n_steps``, by
    default ``config.n_steps``; :func:`recording_steps` gives the whole recording's):
    ``config.transform(n_steps)(events)``, the rule of :class:`ToFrames`.

    ``events`` is a structured array with fields x, y (0..127), p (0/1 or bool), t (integer
    microseconds), as tonic returns it. With ``t0`` the earliest event time, the event at
    ``(x, y, p, t)`` goes to step ``(t - t0) // bin_us`` (dropped if that is ``>= T``), channel
    ``p``, row ``y // (128 // size)``, column ``x // (128 // size)``. In ``"binary"`` mode a
    pixel is 1 if at least ``config.threshold`` events fall into it (1: any event); in
    ``"count"`` mode it is the number of events, saturating at 255. No events give all-zero frames.
    """
    return config.transform(n_steps)(events)


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


# --------------------------------------------------------------------------------------------
# Frame sets


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
        "generator": recordings.generator_manifest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


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
    :func:`gesture_snn.spec.files.atomic_write_bytes` (temporary file, fsync, rename).

    HDF5 never writes to the disk itself, so a full disk is an ordinary ENOSPC: one
    :class:`~gesture_snn.spec.files.WriteError` naming the cache file, the bytes it needs and the
    space free (the free space is checked before writing), never a half-written cache, never
    HDF5's crash on a failed write. Temporary files of killed runs are removed first.
    """
    import io

    import h5py

    from gesture_snn.spec.files import atomic_write_bytes, remove_stale_temps

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
