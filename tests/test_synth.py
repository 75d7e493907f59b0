"""The synthetic gesture set: tonic reads it as DVSGesture, it is deterministic, and time matters."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from gesture_snn import synth
from gesture_snn.cli import main as cli_main
from gesture_snn.errors import UserError
from gesture_snn.synth import SIZES, SampleSpec, SynthConfig, generate, plan, render_sample

SEED = 3
#: The shortest recordings the generator accepts: for the tests that only exercise the writing.
FASTEST = SynthConfig(duration_ms=100)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """``generate(size="tiny", seed=SEED)`` with two worker processes."""
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, size="tiny", seed=SEED, workers=2, progress=False)
    assert summary.created
    return out


def tiny_config() -> SynthConfig:
    return dataclasses.replace(SIZES["tiny"], seed=SEED)


def test_tonic_loads_both_splits_without_download(tiny_root, monkeypatch):
    import tonic.datasets

    def no_download(self):
        raise AssertionError("tonic attempted a download")

    monkeypatch.setattr(tonic.datasets.DVSGesture, "download", no_download)
    specs = plan(tiny_config())
    for train, split, users in ((True, "train", synth.TRAIN_USERS), (False, "test", synth.TEST_USERS)):
        dataset = tonic.datasets.DVSGesture(str(tiny_root), train=train)
        expected = {s.relpath for s in specs if s.split == split}
        folder = tiny_root / "DVSGesture"
        assert {str(Path(p).relative_to(folder)) for p in dataset.data} == expected
        assert len(dataset) >= 100
        assert set(dataset.users) == set(users)
        assert set(dataset.lighting) <= set(synth.LIGHTINGS)
        for path, target, user in zip(dataset.data, dataset.targets, dataset.users):
            assert int(Path(path).stem) == target
            assert Path(path).parent.name.startswith(f"user{user:02d}_")
        index = int(np.argmax(np.array(dataset.targets) == 4))
        events, target = dataset[index]
        raw = np.load(dataset.data[index])
        assert target == 4 and len(events) == len(raw) > 0
        assert events.dtype == tonic.datasets.DVSGesture.dtype
        np.testing.assert_array_equal(events["t"], raw[:, 3].astype(np.int64) * 1000)  # ms -> us exactly
        np.testing.assert_array_equal(events["x"], raw[:, 0])
        np.testing.assert_array_equal(events["p"], raw[:, 2] == 1)


def test_every_test_user_has_two_lightings_and_all_classes(tiny_root):
    for split, users in (("ibmGestureTrain", synth.TRAIN_USERS), ("ibmGestureTest", synth.TEST_USERS)):
        folders = sorted((tiny_root / "DVSGesture" / split).iterdir())
        assert {int(f.name[4:6]) for f in folders} == set(users)
        for folder in folders:
            assert sorted(int(p.stem) for p in folder.glob("*.npy")) == list(range(11))
        if split == "ibmGestureTest":
            for user in users:
                assert sum(f.name.startswith(f"user{user:02d}_") for f in folders) >= 2


def test_events_in_range_sorted_in_milliseconds(tiny_root):
    duration = SIZES["tiny"].duration_ms
    files = sorted((tiny_root / "DVSGesture").glob("*/*/*.npy"))
    assert len(files) == len(plan(tiny_config()))
    for path in files:
        events = np.load(path)
        assert events.dtype == np.int32 and events.ndim == 2 and events.shape[1] == 4 and len(events) > 0
        x, y, p, t = events.T
        assert x.min() >= 0 and x.max() <= 127 and y.min() >= 0 and y.max() <= 127
        assert set(np.unique(p)) <= {0, 1}
        assert t.min() >= 0 and t.max() < duration
        assert np.all(np.diff(t) >= 0)


def test_files_do_not_depend_on_workers_or_order(tiny_root):
    """Files written by a pool of 2 hold the bytes of an in-process render of the same spec."""
    specs = plan(tiny_config())
    for spec in specs[:3] + specs[-3:]:
        expected = io.BytesIO()
        np.save(expected, render_sample(tiny_config(), spec))
        assert (tiny_root / "DVSGesture" / spec.relpath).read_bytes() == expected.getvalue()


def test_same_seed_same_events_other_seed_other_events():
    spec = SampleSpec("test", 26, "lab", 7)
    first = render_sample(FASTEST, spec)
    np.testing.assert_array_equal(first, render_sample(FASTEST, spec))
    other = render_sample(dataclasses.replace(FASTEST, seed=1), spec)
    assert len(other) != len(first) or not np.array_equal(other, first)


def test_plan_sizes_without_generating():
    quick, full = plan(SIZES["quick"]), plan(SIZES["full"])
    assert sum(s.split == "train" for s in quick) == 23 * 11 * 2
    assert sum(s.split == "test" for s in quick) == 6 * 11 * 2
    for specs, low, high in ((quick, 2, 2), (full, 3, 5)):
        assert all((s.split == "train") == (s.user <= 23) for s in specs)
        for user in range(1, 30):
            lightings = {s.lighting for s in specs if s.user == user}
            assert low <= len(lightings) <= high
            assert sum(s.user == user for s in specs) == 11 * len(lightings)
        assert len({s.relpath for s in specs}) == len(specs)
    assert plan(dataclasses.replace(SIZES["full"], seed=1)) != full  # lighting choice follows the seed


@pytest.mark.parametrize("field, value", [("test_lightings", (1, 2)), ("duration_ms", 50), ("seed", -1), ("step_ms", 0)])
def test_config_validation(field, value):
    with pytest.raises(ValueError):
        dataclasses.replace(SynthConfig(), **{field: value})


# ---------------------------------------------------------------------------------------------
# Time matters: clockwise and counter-clockwise of one arm


def _count_image(events: np.ndarray, size: int = 32) -> np.ndarray:
    scale = 128 // size
    image = np.zeros((2, size, size))
    np.add.at(image, (events[:, 2], events[:, 1] // scale, events[:, 0] // scale), 1)
    return image


def _rotation(events: np.ndarray, bin_ms: int = 40) -> float:
    """Mean signed turning of the event centroid around its mean: > 0 clockwise (y down)."""
    image = _count_image(events, 128).sum(axis=0)
    busy = image[events[:, 1], events[:, 0]] >= np.quantile(image[image > 0], 0.9)  # drop the noise
    ev = events[busy]
    bins = ev[:, 3] // bin_ms
    centroids = np.array([ev[bins == b, :2].mean(axis=0) for b in np.unique(bins)])
    r = centroids - centroids.mean(axis=0)
    step = np.diff(r, axis=0)
    return float(np.mean(r[:-1, 0] * step[:, 1] - r[:-1, 1] * step[:, 0]))


@pytest.mark.parametrize("cw, ccw", [(3, 4), (5, 6)])
def test_cw_and_ccw_cover_the_same_pixels_in_opposite_order(cw, ccw):
    """Time-summed images of cw and ccw are as alike as two recordings of one gesture; the
    event centroid turns clockwise for cw and counter-clockwise for ccw."""
    config = SynthConfig(seed=SEED, duration_ms=2000)
    lightings = ("led", "natural")
    for user in (24, 29):
        events = {(label, li): render_sample(config, SampleSpec("test", user, li, label)) for label in (cw, ccw) for li in lightings}
        image = {key: _count_image(ev).ravel() for key, ev in events.items()}

        def corr(a, b):
            return np.corrcoef(image[a], image[b])[0, 1]

        across_direction = np.mean([corr((cw, li), (ccw, li)) for li in lightings])
        across_lighting = np.mean([corr((label, "led"), (label, "natural")) for label in (cw, ccw)])
        assert across_direction > 0.85
        assert across_direction > across_lighting - 0.05
        for li in lightings:
            on_off = _count_image(events[cw, li]).sum(axis=(1, 2))
            assert 0.8 < on_off[1] / on_off[0] < 1.25
            assert _rotation(events[cw, li]) > 0 > _rotation(events[ccw, li])


def test_time_summed_images_separate_the_other_classes():
    """Sanity check of the correlation test above: a wave and a circle of one arm differ."""
    config = SynthConfig(seed=SEED, duration_ms=2000)
    wave = _count_image(render_sample(config, SampleSpec("test", 24, "led", 1))).ravel()
    circle = _count_image(render_sample(config, SampleSpec("test", 24, "led", 3))).ravel()
    assert np.corrcoef(wave, circle)[0, 1] < 0.6


# ---------------------------------------------------------------------------------------------
# Writing: complete or absent, never overwrite what is not ours


def test_rerun_with_same_arguments_keeps_the_set(tiny_root):
    npy = next((tiny_root / "DVSGesture").glob("*/*/*.npy"))
    before = npy.stat().st_mtime_ns
    summary = generate(tiny_root, size="tiny", seed=SEED, progress=False)
    assert not summary.created and "already" in str(summary)
    assert npy.stat().st_mtime_ns == before


def test_placeholder_archives_are_valid_and_manifest_written(tiny_root):
    root = tiny_root / "DVSGesture"
    for folder in ("ibmGestureTrain", "ibmGestureTest"):
        with tarfile.open(root / f"{folder}.tar.gz") as tar:
            assert tar.getnames() == ["README.synthetic.txt"]
    manifest = json.loads((root / synth.MANIFEST_NAME).read_text())
    assert manifest["size"] == "tiny" and manifest["config"]["seed"] == SEED
    assert manifest["files"] == {"train": 253, "test": 132}
    assert not (tiny_root / "DVSGesture.partial").exists()


def test_cli_reports_existing_set(tiny_root, capsys):
    assert cli_main(["synth", "--out", str(tiny_root), "--size", "tiny", "--seed", str(SEED), "--no-progress"]) == 0
    assert "already" in capsys.readouterr().out


def test_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    real = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led"
    real.mkdir(parents=True)
    np.save(real / "0.npy", np.zeros((3, 4)))
    with pytest.raises(UserError, match="not a synthetic set"):
        generate(tmp_path, config=FASTEST, force=True, progress=False)
    assert cli_main(["synth", "--out", str(tmp_path), "--size", "tiny", "--force", "--no-progress"]) == 2
    assert "Refusing to overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "DVSGesture").rglob("*")) == ["0.npy", "ibmGestureTrain", "user01_led"]


def test_interrupted_run_leaves_no_set_and_next_run_completes(tmp_path, monkeypatch):
    written = []
    write = synth._write_sample

    def write_then_crash(task):
        if len(written) == 10:
            raise KeyboardInterrupt
        written.append(task)
        return write(task)

    monkeypatch.setattr(synth, "_write_sample", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, config=FASTEST, workers=1, progress=False)
    assert not (tmp_path / "DVSGesture").exists()
    assert len(list((tmp_path / "DVSGesture.partial").rglob("*.npy"))) == 10

    monkeypatch.setattr(synth, "_write_sample", write)
    summary = generate(tmp_path, config=FASTEST, workers=1, progress=False)
    assert summary.created and not (tmp_path / "DVSGesture.partial").exists()
    assert len(list((tmp_path / "DVSGesture").rglob("*.npy"))) == len(plan(FASTEST))

    other = dataclasses.replace(FASTEST, seed=1)
    with pytest.raises(UserError, match="other parameters"):
        generate(tmp_path, config=other, progress=False)
    replaced = generate(tmp_path, config=other, force=True, progress=False)
    assert replaced.created
    assert json.loads((tmp_path / "DVSGesture" / synth.MANIFEST_NAME).read_text())["config"]["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DVSGesture"]


def test_refuses_a_partial_folder_it_did_not_leave(tmp_path):
    (tmp_path / "DVSGesture.partial").mkdir()
    with pytest.raises(UserError, match="not left by"):
        generate(tmp_path, config=FASTEST, progress=False)
