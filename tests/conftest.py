"""Shared fixtures: tiny DVSGesture roots in tonic's on-disk layout, written from hand-made events.

``tiny_dvs_root`` is a complete root (both splits, 110 files each, a placeholder archive per
split) that ``tonic.datasets.DVSGesture`` and ``gesture_snn.framing.load_frames`` read without a
download. ``write_dvs_root`` writes one with events of your choice.

Default events (``tiny_sample_events``): 24 events per sample, a small blob whose column depends
on the label (x = 5 + 11 * label, so the classes are linearly separable), rows around y = 64
shifted by the user, alternating polarity, times 0, 10, 20, ... ms plus a per-lighting offset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

#: Lighting folders of the tiny roots (the real set's five names).
TINY_LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")
#: Users of the tiny roots: 2 x 5 lightings x 11 labels = 110 files per split (tonic needs 100).
TINY_TRAIN_USERS = (1, 2)
TINY_TEST_USERS = (24, 25)
N_CLASSES = 11

EventsFor = Callable[[int, int, str], np.ndarray]  # (user, label, lighting) -> (N, 4) x, y, p, t[ms]


def tiny_sample_events(user: int, label: int, lighting: str) -> np.ndarray:
    """24 events (x, y, p, t in ms) as int64: a label-dependent blob (see the module docstring)."""
    n = 24
    i = np.arange(n)
    x = 5 + 11 * label + (i % 3)
    y = 60 + (user % 5) + (i % 4)
    p = i % 2
    t = 10 * i + TINY_LIGHTINGS.index(lighting)
    return np.stack([x, y, p, t], axis=1).astype(np.int64)


def write_dvs_root(
    root: str | Path,
    *,
    events_for: EventsFor = tiny_sample_events,
    train_users: tuple[int, ...] = TINY_TRAIN_USERS,
    test_users: tuple[int, ...] = TINY_TEST_USERS,
    lightings: tuple[str, ...] = TINY_LIGHTINGS,
    archives: bool = True,
) -> Path:
    """Write ``root/DVSGesture/ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<label>.npy``.

    Every (user, lighting, label) gets ``events_for(user, label, lighting)``, saved as is.
    ``archives`` writes the empty placeholder ``ibmGestureTrain.tar.gz`` / ``ibmGestureTest.tar.gz``
    that make tonic skip its download. Returns ``root``.
    """
    root = Path(root)
    for folder, users in (("ibmGestureTrain", train_users), ("ibmGestureTest", test_users)):
        for user in users:
            for lighting in lightings:
                directory = root / "DVSGesture" / folder / f"user{user:02d}_{lighting}"
                directory.mkdir(parents=True, exist_ok=True)
                for label in range(N_CLASSES):
                    np.save(directory / f"{label}.npy", events_for(user, label, lighting))
        if archives:
            (root / "DVSGesture" / f"{folder}.tar.gz").touch()
    return root


@pytest.fixture
def tiny_dvs_root(tmp_path) -> Path:
    """A fresh tiny tonic-layout root (train users 1-2, test users 24-25, 110 files per split)."""
    return write_dvs_root(tmp_path / "tiny")


@pytest.fixture
def dvs_root_writer(tmp_path) -> Callable[..., Path]:
    """``dvs_root_writer(name="root", **kwargs)`` -> ``write_dvs_root(tmp_path / name, **kwargs)``."""

    def write(name: str = "root", **kwargs) -> Path:
        return write_dvs_root(tmp_path / name, **kwargs)

    return write


@pytest.fixture(autouse=True, scope="session")
def _no_tonic_download():
    """Fail any test in which tonic would start a download (nothing may download at run time)."""
    import tonic.datasets

    def refuse(self):
        raise AssertionError(f"tonic tried to download {self.url}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tonic.datasets.DVSGesture, "download", refuse)
        yield


@pytest.fixture
def integer_run_dir(tmp_path, tiny_dvs_root) -> Path:
    """A quantized run directory without training: config.json (``INTEGER_RUN_FRAMES`` of the tiny
    root) and integer/ (a random 32 -> 8 -> 11 integer network, seed 5), for the stages that start
    from the integer network (simulate, stream, build)."""
    from gesture_snn.config import RunConfig
    from gesture_snn.spec.intnet import random_network

    from framesets import INTEGER_RUN_FRAMES

    run = tmp_path / "run"
    run.mkdir()
    config = {"frames": INTEGER_RUN_FRAMES, "model": {"hidden": [8]}, "data": str(tiny_dvs_root)}
    RunConfig.from_dict(config).save(run / "config.json")
    random_network(np.random.default_rng(5), 32, 8, 11, shift_in=3, shift_rec=2, decode="mean").save(run / "integer")
    return run
