"""Fault injection: kills at every write of a training run, damaged checkpoints, full disks,
leftovers of killed runs, bounded waits on a serial port, input validation (docs/reliability.md).

The fast cases run in CI; the exhaustive ones (every crash point, real ``kill -9``) are ``slow``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gesture_snn import rundir
from gesture_snn import train as train_module
from gesture_snn.cli import main as cli
from gesture_snn.config import ConfigError, RunConfig
from gesture_snn.data import FrameConfig, FrameSet
from gesture_snn.errors import UserError
from gesture_snn.rundir import WriteError, read_report
from gesture_snn.train import checkpoint_path, load_checkpoint, load_model, train

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent

TINY_FRAMES = FrameConfig(size=4, bin_ms=20.0, window_ms=200.0)


def random_frameset(n: int, seed: int, users=(1, 2, 3, 4)) -> FrameSet:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 11, n)
    frames = (rng.random((n, *TINY_FRAMES.frame_shape)) < 0.1).astype(np.uint8)
    for i, label in enumerate(labels):
        frames[i, :, label % 2, (label // 2) % 2 * 2, label % 4] = 1
    return FrameSet(frames=frames, labels=labels.astype(np.int64), files=[f"f{i}.npy" for i in range(n)],
                    users=np.asarray(users, np.int64)[np.arange(n) % len(users)], config=TINY_FRAMES)


def tiny_config(**train) -> RunConfig:
    return RunConfig().replace(
        frames={"size": 4, "window_ms": 200.0}, model={"hidden": [6]},
        train={"epochs": 3, "batch_size": 8, "lr": 1e-2, "val_users": [4], **train},
    )


@pytest.fixture(scope="module")
def splits():
    return random_frameset(16, seed=1), random_frameset(8, seed=2, users=(24, 25))


def run_training(run_dir, splits, **kwargs):
    return train(tiny_config(), run_dir, device="cpu", progress=False, train_set=splits[0], test_set=splits[1],
                 **kwargs)


class Killed(BaseException):
    """A crash: not an Exception, so nothing in the code under test handles it."""


# --------------------------------------------------------------------------------------------
# 2. crash consistency


def check_invariant(run: Path, reference: dict | None = None) -> None:
    """best.pt, last.pt, metrics.jsonl and report.json agree; nothing temporary is left."""
    last = load_checkpoint(checkpoint_path(run, "last"))
    best = load_checkpoint(checkpoint_path(run, "best"))
    section = read_report(run)["train"]
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, last["epoch"] + 1))
    assert last["epoch"] == section["epochs_completed"] == len(last["metrics"])
    assert best["epoch"] == last["best"]["epoch"] == section["best_epoch"] == section["test"]["epoch"]
    assert section["test_last"]["epoch"] == last["epoch"]
    load_model(run, "best"), load_model(run, "last")  # the report's checks pass
    assert not [p for p in run.rglob("*.tmp")], "temporary files left behind"
    if reference is not None:
        assert section["best_epoch"] == reference["best_epoch"]
        assert section["val_accuracy_per_epoch"] == reference["val_accuracy_per_epoch"]
        assert section["test"]["predictions"] == reference["test"]["predictions"]


def check_between(run: Path) -> None:
    """After a crash, before the resume: evaluate's loads either refuse or give the checkpoint
    the report names, never another one."""
    section = read_report(run).get("train", {})
    for which, key in (("best", "best_epoch"), ("last", "epochs_completed")):
        try:
            model, _ = load_model(run, which)
        except UserError:
            continue
        if key in section:
            assert load_checkpoint(checkpoint_path(run, which))["epoch"] == section[key]


def count_writes(tmp_path, splits) -> tuple[int, dict]:
    calls = {"n": 0}
    original = rundir._commit

    def counting(tmp, path):
        calls["n"] += 1
        original(tmp, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(rundir, "_commit", counting)
    try:
        report = run_training(tmp_path / "reference", splits)
    finally:
        mp.undo()
    return calls["n"], report


def crash_and_resume(run: Path, splits, k: int, after: bool, reference: dict) -> None:
    """Crash at the k-th file commit (before or after the rename), then resume; check the invariant."""
    calls = {"n": 0}
    original = rundir._commit

    def crashing(tmp, path):
        calls["n"] += 1
        if calls["n"] == k and not after:
            raise Killed(path)
        original(tmp, path)
        if calls["n"] == k:
            raise Killed(path)

    mp = pytest.MonkeyPatch()
    mp.setattr(rundir, "_commit", crashing)
    try:
        with pytest.raises(Killed):
            run_training(run, splits)
    finally:
        mp.undo()
    check_between(run)
    resume = checkpoint_path(run, "last").exists()
    run_training(run, splits, resume=resume)
    check_invariant(run, reference)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, splits):
    return count_writes(tmp_path_factory.mktemp("ref"), splits)


def test_crash_at_some_writes_then_resume_agrees(tmp_path, splits, reference):
    n, report = reference
    for k in (3, 4, n - 2):  # last.pt and best.pt of epoch 1, a report of the last epoch
        for after in (False, True):
            crash_and_resume(tmp_path / f"k{k}{'a' if after else 'b'}", splits, k, after, report)


@pytest.mark.slow
def test_crash_at_every_write_then_resume_agrees(tmp_path, splits, reference):
    n, report = reference
    for k in range(1, n + 1):
        for after in (False, True):
            crash_and_resume(tmp_path / f"k{k}{'a' if after else 'b'}", splits, k, after, report)


KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from gesture_snn import rundir
    import test_reliability as t
    k, where = int(sys.argv[1]), sys.argv[2]
    calls = {{"n": 0}}
    original = rundir._commit
    def commit(tmp, path):
        calls["n"] += 1
        if calls["n"] == k and where == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        original(tmp, path)
        if calls["n"] == k and where == "after":
            os.kill(os.getpid(), signal.SIGKILL)
    rundir._commit = commit
    original_fsync = os.fsync
    def fsync(fd):  # "inside": the k-th write is killed half-way, its temporary file written and not renamed
        if where == "inside" and calls["n"] == k - 1:
            os.kill(os.getpid(), signal.SIGKILL)
        original_fsync(fd)
    if where == "inside":
        os.fsync = fsync
    t.run_training(sys.argv[3], (t.random_frameset(16, seed=1), t.random_frameset(8, seed=2, users=(24, 25))),
                   resume=os.path.exists(os.path.join(sys.argv[3], "checkpoints", "last.pt")))
""")


@pytest.mark.slow
def test_kill_9_at_many_points_then_resume_agrees(tmp_path, splits, reference):
    """A real SIGKILL of a training process before, inside and after many of its file writes."""
    n, report = reference
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(root=str(ROOT), tests=str(ROOT / "tests")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in range(2, n + 1, 2):
        for where in ("before", "inside", "after"):
            run = tmp_path / f"k{k}{where}"
            done = subprocess.run([sys.executable, str(script), str(k), where, str(run)], env=env,
                                  capture_output=True, text=True)
            assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
            if where == "inside":
                assert list(run.rglob("*.tmp")), "the kill inside a write leaves its temporary file"
            check_between(run)
            run_training(run, splits, resume=checkpoint_path(run, "last").exists())
            check_invariant(run, report)


def test_kill_between_last_and_best_is_repaired_on_resume(tmp_path, splits, reference):
    """The case of the issue: killed while best.pt is written; evaluate refuses, resume repairs."""
    _, report = reference
    run = tmp_path / "run"
    best_epochs = [e for e, acc in enumerate(report["val_accuracy_per_epoch"], 1)
                   if acc > max(report["val_accuracy_per_epoch"][:e - 1] or [-1])]
    original = rundir._commit
    writes = {"best": 0}

    def crashing(tmp, path):
        if Path(path).name == "best.pt":
            writes["best"] += 1
            if writes["best"] == len(best_epochs):  # the write of the selected epoch
                raise Killed(path)
        original(tmp, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(rundir, "_commit", crashing)
    with pytest.raises(Killed):
        run_training(run, splits)
    mp.undo()
    last = load_checkpoint(checkpoint_path(run, "last"))
    assert last["best"]["epoch"] == last["epoch"] == best_epochs[-1]
    if last["epoch"] > 1:
        assert load_checkpoint(checkpoint_path(run, "best"))["epoch"] == best_epochs[-2]
        with pytest.raises(UserError, match="interrupted"):
            load_model(run, "last")  # last.pt is ahead of the report
        load_model(run, "best")  # the report's best epoch is still best.pt
    run_training(run, splits, resume=True)
    check_invariant(run, report)


# --------------------------------------------------------------------------------------------
# 1. verified checkpoints


@pytest.fixture(scope="module")
def trained(tmp_path_factory, splits):
    run = tmp_path_factory.mktemp("trained") / "run"
    run_training(run, splits)
    return run


def copy_run(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def damage(path: Path, offset_fraction=0.5, size=4096) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * offset_fraction)
    data[start:start + size] = np.random.default_rng(0).integers(0, 256, min(size, len(data) - start), np.uint8).tobytes()
    path.write_bytes(bytes(data))


def test_garbage_in_a_checkpoint_is_named_never_evaluated_never_divergence(tmp_path, trained, splits, capsys):
    run = copy_run(trained, tmp_path / "run")
    last = checkpoint_path(run, "last")
    size = last.stat().st_size
    damage(last, 0.3, size=min(4096, size // 4))
    with pytest.raises(UserError, match=f"{last}.*(damaged|unreadable)"):
        load_checkpoint(last)
    with pytest.raises(UserError) as info:
        run_training(run, splits, resume=True)
    assert "diverged" not in str(info.value) and str(last) in str(info.value)
    assert cli(["evaluate", "--run", str(run), "--checkpoint", "last"]) == 2
    err = capsys.readouterr().err
    assert str(last) in err and ("damaged" in err or "unreadable" in err)


def test_every_byte_range_of_a_checkpoint_is_covered(tmp_path, trained):
    """Garbage anywhere in the file: unreadable or a digest mismatch, never a silent load."""
    source = checkpoint_path(trained, "best")
    size = source.stat().st_size
    for fraction in np.linspace(0.0, 0.98, 25):
        path = tmp_path / f"best{fraction:.2f}.pt"
        path.write_bytes(source.read_bytes())
        damage(path, fraction, size=64)
        if path.read_bytes() == source.read_bytes():
            continue
        try:
            load_checkpoint(path)
        except UserError as exc:
            assert str(path) in str(exc)
        else:  # only bytes torch never reads (zip padding, unused records) may change silently
            loaded, original = torch.load(path, weights_only=True), torch.load(source, weights_only=True)
            for key in ("model", "metrics", "best", "epoch"):
                assert repr(loaded[key]) == repr(original[key])


def test_non_finite_parameters_are_refused(tmp_path, trained):
    checkpoint = load_checkpoint(checkpoint_path(trained, "best"))
    name = next(iter(checkpoint["model"]))
    checkpoint["model"][name] = torch.full_like(checkpoint["model"][name], float("nan"))
    path = tmp_path / "nan.pt"
    train_module._save(path, checkpoint)
    with pytest.raises(UserError, match=f"{name} is not finite"):
        load_checkpoint(path)


def test_format_1_checkpoints_still_load(tmp_path, trained):
    checkpoint = load_checkpoint(checkpoint_path(trained, "best"))
    path = tmp_path / "old.pt"
    torch.save({**checkpoint, "format": 1}, path)
    assert load_checkpoint(path)["epoch"] == checkpoint["epoch"]


def test_evaluate_refuses_a_best_pt_the_report_does_not_name(tmp_path, trained, capsys):
    run = copy_run(trained, tmp_path / "run")
    report = json.loads((run / "report.json").read_text())
    report["train"]["best_epoch"] += 1
    (run / "report.json").write_text(json.dumps(report))
    assert cli(["evaluate", "--run", str(run)]) == 2
    assert "interrupted" in capsys.readouterr().err
