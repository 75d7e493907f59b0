"""Choice of torch's intra-op threads (no timings here: those are in benchmarks/)."""

from __future__ import annotations

import pytest
import torch

from gesture_snn import threads


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cores", "world_size", "busy", "expected"),
    [
        (2, 1, 0.1, 2),  # idle 2-core machine: both cores
        (2, 1, 1.0, 1),  # one other busy process: one core left
        (2, 2, 0.0, 1),  # 2 torchrun ranks on 2 cores: one each
        (2, 4, 0.0, 1),  # more ranks than cores: still one
        (16, 2, 0.3, 8),
        (16, 1, 5.4, 11),
        (4, 1, 9.0, 1),  # overloaded: at least one
        (1, 1, 0.0, 1),
    ],
)
def test_default_threads(cores, world_size, busy, expected):
    assert threads.default_threads(world_size=world_size, cores=cores, busy=busy) == expected


def test_choose_threads_sets_torch(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    assert threads.choose_threads(world_size=2) == 2 and torch.get_num_threads() == 2
    assert threads.choose_threads(3) == 3 and torch.get_num_threads() == 3  # requested wins
    assert threads.choose_threads() == 4


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_choose_threads_rejects_bad_requests(bad):
    with pytest.raises(ValueError, match="threads"):
        threads.choose_threads(bad)
    with pytest.raises(ValueError, match="world_size"):
        threads.default_threads(world_size=0, cores=2, busy=0.0)


def test_available_cores_is_positive():
    assert threads.available_cores() >= 1 and threads.busy_cores() >= 0.0
