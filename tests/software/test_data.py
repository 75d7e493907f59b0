"""gesture_snn.data and gesture_snn.framing: the ToFrames transform (and its equality with tonic's
ToFrame), sorted loading through tonic, the frame cache, bad input, batching."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gesture_snn import data, framing
from gesture_snn.data import CLASSES, DataWarning, Recordings
from gesture_snn.framing import (
    FrameConfig,
    FrameConfigError,
    ToFrames,
    events_to_frames,
    load_frames,
    make_loader,
)
from gesture_snn.spec.errors import UserError

from conftest import TINY_LIGHTINGS, tiny_sample_events

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])


def events(*rows) -> np.ndarray:
    """Structured events from (x, y, p, t_us) tuples, as tonic returns them."""
    return np.array(list(rows), dtype=EVENT_DTYPE)


def ms_to_tonic(raw: np.ndarray) -> np.ndarray:
    """What tonic makes of an (N, 4) x, y, p, t[ms] array."""
    out = np.zeros(len(raw), EVENT_DTYPE)
    out["x"], out["y"], out["p"], out["t"] = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3] * 1000
    return out


def split_file(root, name="user01_lab/3.npy", split="ibmGestureTrain"):
    return root / "DVSGesture" / split / name


# ---------------------------------------------------------------------------------------------
# Constants and configuration


def test_classes_match_tonic():
    import tonic.datasets

    assert CLASSES == tuple(tonic.datasets.DVSGesture.classes)
    assert data.SENSOR_SIZE == tonic.datasets.DVSGesture.sensor_size


def test_frame_config_derived_sizes():
    config = FrameConfig()
    assert (config.size, config.n_steps, config.n_inputs, config.bin_us) == (32, 80, 2048, 20_000)
    assert FrameConfig(size=16, bin_ms=0.5, window_ms=10).frame_shape == (20, 2, 16, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 30}, "divide"),
        ({"size": 0}, "divide"),
        ({"size": 256}, "divide"),
        ({"size": 32.0}, "integer"),
        ({"bin_ms": 0}, "positive"),
        ({"bin_ms": float("nan")}, "positive"),
        ({"bin_ms": 0.0005}, "microseconds"),
        ({"window_ms": 5, "bin_ms": 20}, "at least one bin"),
        ({"mode": "rate"}, "binary"),
    ],
)
def test_frame_config_rejects(kwargs, message):
    with pytest.raises(FrameConfigError, match=message) as info:
        FrameConfig(**kwargs)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------------------------
# Framing, exactly


FRAMING = FrameConfig(size=32, bin_ms=1, window_ms=3)  # 4 x 4 sensor pixels per frame pixel, 1 ms bins

HAND_EVENTS = events(
    (0, 0, 0, 5000),  # t0 = 5000: the earliest event, not 0
    (3, 3, 0, 5999),  # same step 0 (last us of the bin) and same frame pixel as above
    (4, 3, 1, 6000),  # exactly on the step 0 / 1 edge -> step 1; x = 4 -> column 1
    (127, 124, 1, 7999),  # step 2, last row and column
    (5, 0, 0, 8000),  # step 3 = T: outside the window, dropped
    (127, 127, 0, 6500),  # step 1, OFF channel, last pixel
)


def test_frames_by_hand_binary():
    frames = events_to_frames(HAND_EVENTS, FRAMING)
    expected = np.zeros((3, 2, 32, 32), np.uint8)
    expected[0, 0, 0, 0] = 1
    expected[1, 1, 0, 1] = 1
    expected[2, 1, 31, 31] = 1
    expected[1, 0, 31, 31] = 1
    assert frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, expected)


def test_frames_by_hand_count_and_saturation():
    frames = events_to_frames(HAND_EVENTS, FrameConfig(size=32, bin_ms=1, window_ms=3, mode="count"))
    assert frames[0, 0, 0, 0] == 2
    assert frames.sum() == 5
    burst = events(*[(64, 64, 1, 10 * i) for i in range(300)])  # 300 events in 3 ms, one pixel
    counted = events_to_frames(burst, FrameConfig(size=32, bin_ms=10, window_ms=10, mode="count"))
    assert counted[0, 1, 16, 16] == 255 and counted.sum() == 255
    binary = events_to_frames(burst, FrameConfig(size=32, bin_ms=10, window_ms=10))
    assert binary[0, 1, 16, 16] == 1 and binary.sum() == 1


def test_spatial_binning_edges():
    config = FrameConfig(size=16, bin_ms=1, window_ms=1)  # 8 x 8 sensor pixels per frame pixel
    frames = events_to_frames(events((7, 8, 0, 0), (8, 7, 1, 0), (127, 0, 1, 0)), config)
    assert frames[0, 0, 1, 0] == 1  # x 7 -> column 0, y 8 -> row 1
    assert frames[0, 1, 0, 1] == 1  # x 8 -> column 1, y 7 -> row 0
    assert frames[0, 1, 0, 15] == 1
    assert frames.sum() == 3
    full = events_to_frames(events((127, 5, 1, 0)), FrameConfig(size=128, bin_ms=1, window_ms=1))
    assert full[0, 1, 5, 127] == 1


def test_empty_events_give_zero_frames():
    frames = events_to_frames(events(), FRAMING)
    assert frames.shape == (3, 2, 32, 32) and not frames.any()


def test_frames_reject_events_outside_the_sensor():
    with pytest.raises(ValueError, match="0..127"):
        events_to_frames(events((128, 0, 0, 0)), FRAMING)


def reference_frames(ev: np.ndarray, config: FrameConfig) -> np.ndarray:
    """The framing rule of docs/data.md, one event at a time."""
    acc = np.zeros(config.frame_shape, np.int64)
    factor = 128 // config.size
    if len(ev):
        t0 = min(int(e["t"]) for e in ev)
        for e in ev:
            step = (int(e["t"]) - t0) // config.bin_us
            if step < config.n_steps:
                acc[step, int(e["p"]), int(e["y"]) // factor, int(e["x"]) // factor] += 1
    if config.mode == "binary":
        return (acc > 0).astype(np.uint8)
    return np.minimum(acc, 255).astype(np.uint8)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 127), st.integers(0, 127), st.booleans(), st.integers(0, 5000)
        ),
        max_size=60,
    ),
    size=st.sampled_from([1, 4, 16, 32, 128]),
    bin_us=st.sampled_from([1, 7, 250, 1000]),
    n_steps=st.integers(1, 6),
    mode=st.sampled_from(["binary", "count"]),
)
def test_frames_match_reference(rows, size, bin_us, n_steps, mode):
    config = FrameConfig(size=size, bin_ms=bin_us / 1000, window_ms=n_steps * bin_us / 1000, mode=mode)
    ev = events(*rows)
    np.testing.assert_array_equal(events_to_frames(ev, config), reference_frames(ev, config))
    # the event order does not matter
    np.testing.assert_array_equal(events_to_frames(ev[::-1], config), reference_frames(ev, config))


# ---------------------------------------------------------------------------------------------
# The ToFrames transform, in tonic's conventions


def tonic_to_frame(ev: np.ndarray, transform: ToFrames) -> np.ndarray:
    """tonic 1.7's ToFrame with ToFrames' binning (the convention of the ToFrames docstring)."""
    import tonic.transforms

    width, height, polarities = transform.sensor_size
    f = transform.spatial_factor
    if f > 1:
        ev = tonic.transforms.Downsample(spatial_factor=1 / f)(ev)
    t0 = int(ev["t"][0]) if transform.start_time is None else transform.start_time
    to_frame = tonic.transforms.ToFrame(
        sensor_size=(width // f, height // f, polarities),
        time_window=transform.time_window,
        start_time=t0,
        end_time=t0 + transform.n_steps * transform.time_window,
    )
    return to_frame(ev)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 127), st.integers(0, 127), st.booleans(), st.integers(0, 5000)),
        min_size=1,
        max_size=80,
    ),
    spatial_factor=st.sampled_from([1, 2, 4, 8, 128]),
    time_window=st.sampled_from([1, 7, 250, 1000]),
    n_steps=st.integers(1, 6),
    start_time=st.sampled_from([None, 0, 100]),
)
def test_count_mode_equals_tonic_to_frame(rows, spatial_factor, time_window, n_steps, start_time):
    ev = np.sort(events(*rows), order="t", kind="stable")  # tonic's slicing needs sorted times
    transform = ToFrames(time_window=time_window, n_steps=n_steps, spatial_factor=spatial_factor,
                         threshold=None, start_time=start_time)
    ours = transform(ev)
    theirs = tonic_to_frame(ev, transform)
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, theirs)
    # binary mode is count mode thresholded
    binary = ToFrames(time_window=time_window, n_steps=n_steps, spatial_factor=spatial_factor, threshold=2,
                      start_time=start_time)(ev)
    np.testing.assert_array_equal(binary, (theirs >= 2).astype(np.uint8))


def test_frame_config_transform_is_events_to_frames():
    config = FrameConfig(size=16, bin_ms=10, window_ms=60, mode="count")
    assert config.transform() == ToFrames(time_window=10_000, n_steps=6, spatial_factor=8, threshold=None)
    assert FrameConfig(threshold=3).transform().threshold == 3
    assert config.transform(n_steps=9).frame_shape == (9, 2, 16, 16)


def test_to_frames_as_a_tonic_dataset_transform(tiny_dvs_root):
    import tonic.datasets

    config = FrameConfig(size=16, bin_ms=20, window_ms=200, mode="count")
    frameset = load_frames(tiny_dvs_root, train=True, config=config, progress=False)
    dataset = tonic.datasets.DVSGesture(str(tiny_dvs_root), train=True, transform=config.transform())
    for i in (0, 21, 109):
        frames, label = dataset[i]
        index = frameset.files.index(str(Path(dataset.data[i]).relative_to(tiny_dvs_root)))
        np.testing.assert_array_equal(frames, frameset.frames[index])
        assert label == frameset.labels[index]
        # count mode is tonic's own ToFrame on the same recording
        raw_events, _ = tonic.datasets.DVSGesture(str(tiny_dvs_root), train=True)[i]
        np.testing.assert_array_equal(frames, tonic_to_frame(raw_events, config.transform()))


def test_to_frames_on_another_sensor():
    # e.g. N-MNIST's 34 x 34 sensor: frames are H // f x W // f, for any (W, H, P)
    transform = ToFrames(sensor_size=(34, 20, 2), time_window=5, n_steps=2, spatial_factor=2)
    frames = transform(events((33, 19, 1, 3), (0, 0, 0, 9), (10, 4, 1, 13)))  # t 13: step 2, dropped
    assert frames.shape == (2, 2, 10, 17)
    assert frames[0, 1, 9, 16] == 1 and frames[1, 0, 0, 0] == 1 and frames.sum() == 2
    with pytest.raises(ValueError, match="0..33"):
        transform(events((34, 0, 0, 0)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sensor_size": (128, 128)}, "sensor_size"),
        ({"time_window": 0}, "time_window"),
        ({"time_window": 2.5}, "time_window"),
        ({"n_steps": 0}, "n_steps"),
        ({"spatial_factor": 3}, "spatial_factor"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"start_time": 1.5}, "start_time"),
    ],
)
def test_to_frames_rejects(kwargs, message):
    with pytest.raises(FrameConfigError, match=message):
        ToFrames(**kwargs)


def test_to_frames_start_time_drops_earlier_events():
    ev = events((0, 0, 0, 50), (0, 0, 0, 150), (0, 0, 1, 250))
    frames = ToFrames(time_window=100, n_steps=3, spatial_factor=1, start_time=100)(ev)
    assert frames[:, :, 0, 0].tolist() == [[1, 0], [0, 1], [0, 0]]


# ---------------------------------------------------------------------------------------------
# Loading through tonic, sorted


def test_load_frames_sorted_and_exact(tiny_dvs_root):
    config = FrameConfig(size=16, bin_ms=20, window_ms=200, mode="count")
    frameset = load_frames(tiny_dvs_root, train=True, config=config, progress=False)
    expected_files = [
        f"DVSGesture/ibmGestureTrain/user{user:02d}_{lighting}/{label}.npy"
        for user in (1, 2)
        for lighting in sorted(TINY_LIGHTINGS)
        for label in range(11)
    ]
    assert frameset.files == expected_files
    assert frameset.frames.shape == (110, 10, 2, 16, 16) and frameset.frames.dtype == np.uint8
    assert frameset.labels.dtype == np.int64 and frameset.users.dtype == np.int64
    np.testing.assert_array_equal(frameset.labels, np.tile(np.arange(11), 10))
    np.testing.assert_array_equal(frameset.users, np.repeat([1, 2], 55))
    assert len(frameset) == 110 and frameset.config == config
    for i in (0, 37, 109):
        user, lighting = frameset.files[i].split("/")[2].split("_", 1)
        raw = tiny_sample_events(int(user[4:]), int(frameset.labels[i]), lighting)
        np.testing.assert_array_equal(frameset.frames[i], reference_frames(ms_to_tonic(raw), config))


def test_test_split_users(tiny_dvs_root):
    frameset = load_frames(tiny_dvs_root, train=False, config=FrameConfig(size=8), progress=False)
    assert set(frameset.users) == {24, 25} and len(frameset) == 110
    assert all(f.startswith("DVSGesture/ibmGestureTest/") for f in frameset.files)


def test_recordings_match_tonic(tiny_dvs_root):
    import tonic.datasets

    recordings = Recordings(tiny_dvs_root, train=True)
    dataset = tonic.datasets.DVSGesture(str(tiny_dvs_root), train=True)
    by_file = {path: i for i, path in enumerate(dataset.data)}
    for sample in list(recordings)[:5]:
        tonic_events, tonic_label = dataset[by_file[str(tiny_dvs_root / sample.file)]]
        np.testing.assert_array_equal(sample.events, tonic_events)
        assert sample.label == tonic_label


def test_root_with_tilde(tiny_dvs_root, monkeypatch):
    monkeypatch.setenv("HOME", str(tiny_dvs_root.parent))
    frameset = load_frames(f"~/{tiny_dvs_root.name}", train=True, config=SMALL, progress=False)
    assert len(frameset) == 110 and frameset.files[0].startswith("DVSGesture/")
    assert len(list((tiny_dvs_root / "frame_cache").glob("train-*.h5"))) == 1


def test_subset(tiny_dvs_root):
    frameset = load_frames(tiny_dvs_root, train=True, config=FrameConfig(size=8), progress=False)
    part = frameset.subset(frameset.users == 2)
    assert len(part) == 55 and set(part.users) == {2}
    np.testing.assert_array_equal(part.frames, frameset.frames[55:])
    assert part.files == frameset.files[55:]


# ---------------------------------------------------------------------------------------------
# The frame cache


class FramingCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        original = framing.events_to_frames

        def counting(events, config):
            self.calls += 1
            return original(events, config)

        monkeypatch.setattr(framing, "events_to_frames", counting)


SMALL = FrameConfig(size=8, bin_ms=50, window_ms=300)


def test_cache_hit(tiny_dvs_root, monkeypatch):
    counter = FramingCounter(monkeypatch)
    cold = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert counter.calls == 110
    caches = list((tiny_dvs_root / "frame_cache").glob("train-*.h5"))
    assert len(caches) == 1
    warm = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert counter.calls == 110  # read from the cache, nothing framed
    np.testing.assert_array_equal(warm.frames, cold.frames)
    np.testing.assert_array_equal(warm.labels, cold.labels)
    np.testing.assert_array_equal(warm.users, cold.users)
    assert warm.files == cold.files


def test_cache_build_reads_each_file_once(tiny_dvs_root, monkeypatch):
    reads = []
    original = np.load

    def counting_load(file, *args, **kwargs):
        reads.append(str(file))
        return original(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", counting_load)
    frameset = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert sorted(reads) == sorted(str(tiny_dvs_root / file) for file in frameset.files)  # each once
    reads.clear()
    load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert reads == []  # a cache hit reads no source file


def test_cache_dir(tiny_dvs_root, tmp_path):
    load_frames(tiny_dvs_root, train=False, config=SMALL, cache_dir=tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("test-*.h5"))) == 1
    assert not (tiny_dvs_root / "frame_cache").exists()


def test_cache_invalidated_by_settings(tiny_dvs_root, monkeypatch):
    counter = FramingCounter(monkeypatch)
    load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    count_mode = FrameConfig(size=8, bin_ms=50, window_ms=300, mode="count")
    other = load_frames(tiny_dvs_root, train=True, config=count_mode, progress=False)
    assert counter.calls == 220 and other.config.mode == "count"
    assert len(list((tiny_dvs_root / "frame_cache").glob("train-*.h5"))) == 2
    # equal effective settings share a cache: window 310 ms still gives 6 steps of 50 ms
    load_frames(tiny_dvs_root, train=True, config=FrameConfig(size=8, bin_ms=50.0, window_ms=310), progress=False)
    assert counter.calls == 220


def test_cache_invalidated_by_data(tiny_dvs_root, monkeypatch):
    counter = FramingCounter(monkeypatch)
    before = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    index = before.files.index("DVSGesture/ibmGestureTrain/user01_lab/3.npy")
    np.save(split_file(tiny_dvs_root), np.array([[127, 127, 1, 0]], np.int64))
    after = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert counter.calls == 220
    assert after.frames[index].sum() == 1 and after.frames[index][0, 1, 7, 7] == 1
    np.testing.assert_array_equal(np.delete(after.frames, index, 0), np.delete(before.frames, index, 0))


def corrupt_with_garbage(path):
    path.write_bytes(b"not an HDF5 file" * 100)


def corrupt_by_truncation(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def corrupt_mark_incomplete(path):
    with h5py.File(path, "r+") as h5:
        del h5.attrs["complete"]


def corrupt_frame_values(path):
    with h5py.File(path, "r+") as h5:
        h5["frames"][3, 0, 0, 0, 0] ^= 1


def corrupt_shape(path):
    with h5py.File(path, "r+") as h5:
        del h5["frames"]
        h5["frames"] = np.zeros((110, 6, 2, 8, 4), np.uint8)


@pytest.mark.parametrize(
    "corrupt",
    [corrupt_with_garbage, corrupt_by_truncation, corrupt_mark_incomplete, corrupt_frame_values, corrupt_shape],
)
def test_corrupt_cache_is_rebuilt(tiny_dvs_root, monkeypatch, corrupt):
    good = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    (cache,) = (tiny_dvs_root / "frame_cache").glob("train-*.h5")
    corrupt(cache)
    counter = FramingCounter(monkeypatch)
    with pytest.warns(DataWarning, match="rebuilding"):
        rebuilt = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert counter.calls == 110
    np.testing.assert_array_equal(rebuilt.frames, good.frames)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert counter.calls == 110  # the rebuilt cache is good
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]  # no temporary files left


def test_unwritable_cache_dir(tiny_dvs_root, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cache_dir"):
        load_frames(tiny_dvs_root, train=True, config=SMALL, cache_dir=blocker / "cache", progress=False)


# ---------------------------------------------------------------------------------------------
# Bad input: the root


def assert_how_to_get_data(message: str):
    assert "DVSGesture/ibmGestureTrain/userNN_<lighting>/<label>.npy" in message
    assert "gesture-snn synthetic --out DIR" in message
    assert "gesture-snn fetch --out DIR" in message


def test_missing_root(tmp_path):
    with pytest.raises(UserError, match="does not exist") as info:
        load_frames(tmp_path / "nowhere", train=True, progress=False)
    assert_how_to_get_data(str(info.value))


def test_missing_split(tiny_dvs_root):
    import shutil

    shutil.rmtree(tiny_dvs_root / "DVSGesture" / "ibmGestureTest")
    load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)  # the other split is fine
    with pytest.raises(UserError, match="no test split"):
        load_frames(tiny_dvs_root, train=False, progress=False)


def test_missing_archive_placeholder(tiny_dvs_root):
    (tiny_dvs_root / "DVSGesture" / "ibmGestureTrain.tar.gz").unlink()
    with pytest.raises(UserError, match=r"ibmGestureTrain\.tar\.gz is missing") as info:
        load_frames(tiny_dvs_root, train=True, progress=False)
    assert "download" in str(info.value)
    assert_how_to_get_data(str(info.value))


def test_too_few_files(dvs_root_writer):
    root = dvs_root_writer(lightings=("lab", "led", "natural", "fluorescent"))  # 88 files per split
    with pytest.raises(UserError, match="holds 88 .npy files") as info:
        load_frames(root, train=True, progress=False)
    assert_how_to_get_data(str(info.value))


@pytest.mark.parametrize(
    "relative, message",
    [("junk/0.npy", "unexpected folder"), ("user01_lab/11.npy", "label 0..10"), ("user01_lab/x.npy", "unexpected file")],
)
def test_unexpected_names(tiny_dvs_root, relative, message):
    path = split_file(tiny_dvs_root, relative)
    path.parent.mkdir(exist_ok=True)
    np.save(path, np.zeros((1, 4), np.int64))
    with pytest.raises(UserError, match=message):
        load_frames(tiny_dvs_root, train=True, progress=False)


# ---------------------------------------------------------------------------------------------
# Bad input: one file


def write_garbage(path):
    path.write_bytes(b"\x00garbage, not a .npy file")


def write_truncated(path):
    np.save(path, np.zeros((1000, 4), np.int64))
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


@pytest.mark.parametrize(
    "write, message",
    [
        (write_garbage, "not a readable .npy"),
        (write_truncated, "not a readable .npy"),
        (lambda path: np.save(path, np.zeros((5, 3), np.int64)), r"expected an \(N, 4\) array"),
        (lambda path: np.save(path, np.zeros(8, np.int64)), r"expected an \(N, 4\) array"),
        (lambda path: np.save(path, np.zeros((2, 4, 1), np.int64)), r"expected an \(N, 4\) array"),
        (lambda path: np.save(path, np.array([["1", "2", "0", "3"]])), "numeric"),
        (lambda path: np.save(path, np.zeros((2, 4), bool)), "numeric"),
        (lambda path: np.save(path, np.array([[1, 2, 0, {}]], object), allow_pickle=True), "not a readable .npy"),
        (lambda path: np.save(path, np.array([[1, 2, 0, -1]], np.int64)), "negative event time"),
        (lambda path: np.save(path, np.array([[1, 2, 0, np.nan]])), "finite"),
        (lambda path: np.save(path, np.array([[1, 2, 0, 100]], np.int16)), "does not fit dtype int16"),
        (lambda path: np.save(path, np.array([[1, 2, 0, 100]], np.float16)), "does not fit dtype float16"),
    ],
)
def test_bad_file_is_named(tiny_dvs_root, write, message):
    path = split_file(tiny_dvs_root)
    write(path)
    with pytest.raises(UserError, match=message) as info:
        load_frames(tiny_dvs_root, train=True, progress=False)
    assert str(path) in str(info.value)
    assert not (tiny_dvs_root / "frame_cache").exists()  # nothing cached from a failed build


def sample_of(root, relative="DVSGesture/ibmGestureTrain/user01_lab/3.npy"):
    recordings = Recordings(root, train=True)
    return recordings[recordings.files.index(relative)]


def test_events_outside_sensor_are_dropped(tiny_dvs_root):
    good = np.array([[10, 20, 1, 0], [11, 21, 0, 5]], np.int64)
    bad = np.array(
        [[128, 0, 0, 1], [0, -1, 1, 2], [5, 5, 2, 3], [70_000, 5, 0, 4], [5, 200, 1, 4], [-3, 5, 1, 4]], np.int64
    )
    path = split_file(tiny_dvs_root)
    np.save(path, np.concatenate([good[:1], bad, good[1:]]))
    with pytest.warns(DataWarning) as record:
        sample = sample_of(tiny_dvs_root)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and str(path) in messages[0] and "dropped 6 of 8 events" in messages[0]
    np.testing.assert_array_equal(sample.events, ms_to_tonic(good))
    # one warning for the file while building the whole split
    with pytest.warns(DataWarning) as record:
        frameset = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    assert len(record) == 1
    index = frameset.files.index("DVSGesture/ibmGestureTrain/user01_lab/3.npy")
    np.testing.assert_array_equal(frameset.frames[index], events_to_frames(ms_to_tonic(good), SMALL))


def test_non_finite_coordinates_are_dropped(tiny_dvs_root):
    np.save(split_file(tiny_dvs_root), np.array([[np.nan, 1, 0, 0], [1, 2, np.inf, 1], [3.0, 4.0, 1.0, 2.5]]))
    with pytest.warns(DataWarning, match="dropped 2 of 3"):
        sample = sample_of(tiny_dvs_root)
    assert sample.events.tolist() == [(3, 4, True, 2500)]


def test_unsorted_times_are_sorted(tiny_dvs_root):
    raw = np.array([[1, 1, 0, 30], [2, 2, 1, 10], [3, 3, 0, 30], [4, 4, 1, 20], [5, 5, 0, 10]], np.int64)
    path = split_file(tiny_dvs_root)
    np.save(path, raw)
    with pytest.warns(DataWarning, match="not in increasing order") as record:
        sample = sample_of(tiny_dvs_root)
    assert str(path) in str(record[0].message)
    assert sample.events["x"].tolist() == [2, 5, 4, 1, 3]  # stable: equal times keep file order
    assert sample.events["t"].tolist() == [10_000, 10_000, 20_000, 30_000, 30_000]


def test_empty_sample_gives_zero_frames(tiny_dvs_root):
    np.save(split_file(tiny_dvs_root), np.zeros((0, 4), np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frameset = load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)
    index = frameset.files.index("DVSGesture/ibmGestureTrain/user01_lab/3.npy")
    assert not frameset.frames[index].any()
    assert frameset.frames.sum() > 0


def test_float_times_in_ms(tiny_dvs_root):
    np.save(split_file(tiny_dvs_root), np.array([[1.0, 2.0, 1.0, 0.5], [3.0, 4.0, 0.0, 2.0]]))
    assert sample_of(tiny_dvs_root).events.tolist() == [(1, 2, True, 500), (3, 4, False, 2000)]


# ---------------------------------------------------------------------------------------------
# Batching


@pytest.fixture
def frameset(tiny_dvs_root):
    return load_frames(tiny_dvs_root, train=True, config=SMALL, progress=False)


def test_loader_shapes_and_flattening(frameset):
    loader = make_loader(frameset, batch_size=16, shuffle=False)
    batches = list(loader)
    assert len(batches) == 7
    x, y = batches[0]
    assert x.shape == (16, 6, 128) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert batches[-1][0].shape[0] == 110 - 6 * 16
    # input index (p * size + y) * size + x
    np.testing.assert_array_equal(x.numpy().reshape(16, 6, 2, 8, 8), frameset.frames[:16])
    np.testing.assert_array_equal(y.numpy(), frameset.labels[:16])
    assert len(make_loader(frameset, batch_size=16, shuffle=False, drop_last=True)) == 6


def labels_in_order(loader):
    return torch.cat([y for _, y in loader]).tolist()


def test_loader_shuffle_is_deterministic(frameset):
    first = labels_in_order(make_loader(frameset, batch_size=10, shuffle=True, seed=3))
    again = make_loader(frameset, batch_size=10, shuffle=True, seed=3)
    assert labels_in_order(again) == first
    assert labels_in_order(again) != first  # the next epoch draws a new permutation
    other = labels_in_order(make_loader(frameset, batch_size=10, shuffle=True, seed=4))
    assert other != first and sorted(other) == sorted(first)


def test_loader_with_distributed_sampler(frameset):
    from torch.utils.data.distributed import DistributedSampler

    seen = []
    for rank in range(2):
        sampler = DistributedSampler(range(len(frameset)), num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = make_loader(frameset, batch_size=8, shuffle=False, sampler=sampler)
        seen.append(labels_in_order(loader))
    assert len(seen[0]) == len(seen[1]) == 55
    assert sorted(seen[0] + seen[1]) == sorted(frameset.labels.tolist())
    with pytest.raises(ValueError, match="shuffle=False"):
        make_loader(frameset, batch_size=8, shuffle=True, sampler=sampler)



def test_binary_threshold_needs_that_many_events_in_a_pixel_and_bin():

    events = np.zeros(5, dtype=[("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
    events["x"] = [0, 1, 40, 40, 40]  # pixel (0, 0) gets 2 events, pixel (0, 5) gets 3 (size 16: 8 sensor pixels each)
    events["t"] = [0, 10, 20, 30, 10_500]  # the last one in step 1
    one = events_to_frames(events, FrameConfig(size=16, bin_ms=10.0, window_ms=20.0))
    two = events_to_frames(events, FrameConfig(size=16, bin_ms=10.0, window_ms=20.0, threshold=2))
    three = events_to_frames(events, FrameConfig(size=16, bin_ms=10.0, window_ms=20.0, threshold=3))
    assert one[0, 0, 0, 0] == two[0, 0, 0, 0] == 1 and three[0, 0, 0, 0] == 0
    assert two[0, 0, 0, 5] == 1 and one[1, 0, 0, 5] == 1 and two[1, 0, 0, 5] == 0  # 2 in step 0, 1 in step 1
    with pytest.raises(FrameConfigError, match="threshold"):
        FrameConfig(threshold=0)
    with pytest.raises(FrameConfigError, match="binary"):
        FrameConfig(mode="count", threshold=2)


def test_a_folder_nested_inside_a_user_folder_is_refused(tiny_dvs_root):
    from gesture_snn.data import check_root

    nested = tiny_dvs_root / "DVSGesture" / "ibmGestureTrain" / "user01_natural" / "sub"
    nested.mkdir()
    np.save(nested / "0.npy", np.zeros((1, 4), np.int64))
    with pytest.raises(UserError, match="unexpected folder"):
        check_root(tiny_dvs_root, train=True)
