"""The synthetic gesture set: tonic reads it as DVSGesture, it is deterministic, and time matters."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from gesture_snn import synthetic
from gesture_snn.cli import main as cli_main
from gesture_snn.spec.errors import UserError
from gesture_snn.synthetic import SIZES, SampleSpec, SynthConfig, generate, plan, render_sample

SEED = 3
#: The shortest recordings the generator accepts: for the tests that only exercise the writing.
FASTEST = SynthConfig(duration_ms=100)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """``generate(size="tiny", seed=SEED)`` with two worker processes."""
    out = tmp_path_factory.mktemp("synthetic")
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
    for train, split, users in ((True, "train", synthetic.TRAIN_USERS), (False, "test", synthetic.TEST_USERS)):
        dataset = tonic.datasets.DVSGesture(str(tiny_root), train=train)
        expected = {s.relpath for s in specs if s.split == split}
        folder = tiny_root / "DVSGesture"
        assert {str(Path(p).relative_to(folder)) for p in dataset.data} == expected
        assert len(dataset) >= 100
        assert set(dataset.users) == set(users)
        assert set(dataset.lighting) <= set(synthetic.LIGHTINGS)
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
    for split, users in (("ibmGestureTrain", synthetic.TRAIN_USERS), ("ibmGestureTest", synthetic.TEST_USERS)):
        folders = sorted((tiny_root / "DVSGesture" / split).iterdir())
        assert {int(f.name[4:6]) for f in folders} == set(users)
        for folder in folders:
            assert sorted(int(p.stem) for p in folder.glob("*.npy")) == list(range(11))
        if split == "ibmGestureTest":
            for user in users:
                assert sum(f.name.startswith(f"user{user:02d}_") for f in folders) >= 2


def test_events_in_range_sorted_in_milliseconds(tiny_root):
    duration = SIZES["tiny"].duration_ms[1]
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
    # full has the real set's split sizes: 1077 train, 264 test recordings
    assert sum(s.split == "train" for s in full) == 1077
    assert sum(s.split == "test" for s in full) == 264
    for specs, low, high in ((quick, 2, 2), (full, 3, 5)):
        assert all((s.split == "train") == (s.user <= 23) for s in specs)
        for user in range(1, 30):
            lightings = {s.lighting for s in specs if s.user == user}
            assert low <= len(lightings) <= high
            assert 11 * len(lightings) - 1 <= sum(s.user == user for s in specs) <= 11 * len(lightings)
        assert len({s.relpath for s in specs}) == len(specs)
    assert plan(dataclasses.replace(SIZES["full"], seed=1)) != full  # lighting choice follows the seed


@pytest.mark.parametrize(
    "field, value",
    [("test_lightings", (1, 2)), ("duration_ms", 50), ("duration_ms", (3000, 2000)), ("seed", -1), ("step_ms", 0),
     ("test_recordings", 50), ("passer_by", 2.0)],
)
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
    """Time-summed images of cw and ccw of one session (user, lighting) are as alike as the two
    directions' images are across sessions; the event centroid turns clockwise for cw and
    counter-clockwise for ccw."""
    config = dataclasses.replace(SIZES["quick"], seed=SEED, passer_by=0.0)
    for user, lighting in ((24, "natural"), (29, "lab")):
        events = {label: render_sample(config, SampleSpec("test", user, lighting, label)) for label in (cw, ccw)}
        a, b = (_count_image(events[label]).ravel() for label in (cw, ccw))
        assert np.corrcoef(a, b)[0, 1] > 0.8
        for label in (cw, ccw):
            on_off = _count_image(events[label]).sum(axis=(1, 2))
            assert 0.7 < on_off[1] / on_off[0] < 1.4
        assert _rotation(events[cw]) > 0 > _rotation(events[ccw])


def test_limbs_brighter_or_darker_than_the_wall_at_random():
    """The polarity of a moving edge does not give its direction: skin and clothes are brighter
    than the wall in some sessions and darker in others."""
    config = SIZES["quick"]
    sessions = [
        synthetic._session(config, SampleSpec("train" if user <= 23 else "test", user, lighting, 0))
        for user in range(1, 30)
        for lighting in synthetic.LIGHTINGS
    ]
    for part in ("cloth", "skin"):
        assert 0.3 < np.mean([getattr(s, part) > 0 for s in sessions]) < 0.7
    assert min(abs(s.cloth - s.skin) for s in sessions) >= 0.35


def test_recordings_vary_in_length_and_start_still():
    config = SIZES["quick"]
    lengths, quiet = [], []
    for label in range(11):
        events = render_sample(config, SampleSpec("train", 3, "natural", label))
        lengths.append(events[-1, 3])
        rate = np.bincount(events[:, 3] // 50)  # events per 50 ms
        quiet.append(rate[:2].mean() < 0.5 * np.median(rate))  # the still start has fewer events
    assert max(lengths) - min(lengths) > 200 and min(lengths) >= config.duration_ms[0] - 1
    assert max(lengths) < config.duration_ms[1]
    assert np.mean(quiet) >= 0.7


def test_time_summed_images_separate_the_other_classes():
    """Sanity check of the correlation test above: a wave and a circle of one arm differ."""
    config = dataclasses.replace(SIZES["quick"], seed=SEED, passer_by=0.0)
    wave = _count_image(render_sample(config, SampleSpec("test", 24, "natural", 1))).ravel()
    circle = _count_image(render_sample(config, SampleSpec("test", 24, "natural", 3))).ravel()
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
    manifest = json.loads((root / synthetic.MANIFEST_NAME).read_text())
    assert manifest["size"] == "tiny" and manifest["config"]["seed"] == SEED
    assert manifest["files"] == {"train": 253, "test": 132}
    assert not (tiny_root / "DVSGesture.partial").exists()


def test_cli_reports_existing_set(tiny_root, capsys):
    assert cli_main(["synthetic", "--out", str(tiny_root), "--size", "tiny", "--seed", str(SEED), "--no-progress"]) == 0
    assert "already" in capsys.readouterr().out


def test_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    real = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led"
    real.mkdir(parents=True)
    np.save(real / "0.npy", np.zeros((3, 4)))
    with pytest.raises(UserError, match="not a synthetic set"):
        generate(tmp_path, config=FASTEST, force=True, progress=False)
    assert cli_main(["synthetic", "--out", str(tmp_path), "--size", "tiny", "--force", "--no-progress"]) == 2
    assert "Refusing to overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "DVSGesture").rglob("*")) == ["0.npy", "ibmGestureTrain", "user01_led"]


def test_interrupted_run_leaves_no_set_and_next_run_completes(tmp_path, monkeypatch):
    written = []
    write = synthetic._write_sample

    def write_then_crash(task):
        if len(written) == 10:
            raise KeyboardInterrupt
        written.append(task)
        return write(task)

    monkeypatch.setattr(synthetic, "_write_sample", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, config=FASTEST, workers=1, progress=False)
    assert not (tmp_path / "DVSGesture").exists()
    assert len(list((tmp_path / "DVSGesture.partial").rglob("*.npy"))) == 10

    monkeypatch.setattr(synthetic, "_write_sample", write)
    summary = generate(tmp_path, config=FASTEST, workers=1, progress=False)
    assert summary.created and not (tmp_path / "DVSGesture.partial").exists()
    assert len(list((tmp_path / "DVSGesture").rglob("*.npy"))) == len(plan(FASTEST))

    other = dataclasses.replace(FASTEST, seed=1)
    with pytest.raises(UserError, match="other parameters"):
        generate(tmp_path, config=other, progress=False)
    replaced = generate(tmp_path, config=other, force=True, progress=False)
    assert replaced.created
    assert json.loads((tmp_path / "DVSGesture" / synthetic.MANIFEST_NAME).read_text())["config"]["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DVSGesture"]


def test_refuses_a_partial_folder_it_did_not_leave(tmp_path):
    (tmp_path / "DVSGesture.partial").mkdir()
    with pytest.raises(UserError, match="not left by"):
        generate(tmp_path, config=FASTEST, progress=False)


def test_synthetic_command_and_deprecated_synth(tiny_root, capsys):
    args = ["--out", str(tiny_root), "--size", "tiny", "--seed", str(SEED), "--no-progress"]
    assert cli_main(["synthetic", *args]) == 0
    new = capsys.readouterr()
    assert "already" in new.out and new.err == ""
    assert cli_main(["synth", *args]) == 0  # the old name still works, with the same output
    old = capsys.readouterr()
    assert old.out == new.out
    assert old.err == "gesture-snn: 'synth' is deprecated, use 'synthetic'; it will be removed in the next release\n"
