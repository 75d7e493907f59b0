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
from gesture_snn.spec import files
from gesture_snn.cli import main as cli
from gesture_snn.config import ConfigError, RunConfig
from gesture_snn.framing import FrameConfig
from gesture_snn.spec.errors import UserError
from gesture_snn.rundir import checkpoint_path, read_report
from gesture_snn.spec.files import WriteError
from gesture_snn.checkpoints import load_checkpoint, load_model, save_checkpoint
from gesture_snn.train import train

from framesets import random_frameset

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

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
    original = files._commit

    def counting(tmp, path):
        calls["n"] += 1
        original(tmp, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(files, "_commit", counting)
    try:
        report = run_training(tmp_path / "reference", splits)
    finally:
        mp.undo()
    return calls["n"], report


def crash_and_resume(run: Path, splits, k: int, after: bool, reference: dict) -> None:
    """Crash at the k-th file commit (before or after the rename), then resume; check the invariant."""
    calls = {"n": 0}
    original = files._commit

    def crashing(tmp, path):
        calls["n"] += 1
        if calls["n"] == k and not after:
            raise Killed(path)
        original(tmp, path)
        if calls["n"] == k:
            raise Killed(path)

    mp = pytest.MonkeyPatch()
    mp.setattr(files, "_commit", crashing)
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
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r}); sys.path.insert(0, {here!r})
    import torch
    torch.set_num_threads(1)
    from gesture_snn.spec import files
    import test_reliability as t
    k, where = int(sys.argv[1]), sys.argv[2]
    calls = {{"n": 0}}
    original = files._commit
    def commit(tmp, path):
        calls["n"] += 1
        if calls["n"] == k and where == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        original(tmp, path)
        if calls["n"] == k and where == "after":
            os.kill(os.getpid(), signal.SIGKILL)
    files._commit = commit
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
    script.write_text(KILLER.format(root=str(ROOT), tests=str(TESTS), here=str(Path(__file__).resolve().parent)))
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
    original = files._commit
    writes = {"best": 0}

    def crashing(tmp, path):
        if Path(path).name == "best.pt":
            writes["best"] += 1
            if writes["best"] == len(best_epochs):  # the write of the selected epoch
                raise Killed(path)
        original(tmp, path)

    mp = pytest.MonkeyPatch()
    mp.setattr(files, "_commit", crashing)
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
    save_checkpoint(path, checkpoint)
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


# --------------------------------------------------------------------------------------------
# 3. bounded waits on the board's port (pseudo-terminals)


def pty_port():
    serial = pytest.importorskip("serial")
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), baudrate=115200, timeout=0.05)
    return master, slave, port


def test_a_noisy_port_ends_within_the_timeout():
    import threading

    from gesture_snn.host_link import BoardLink
    from gesture_snn.spec.protocol import ProtocolError

    master, slave, port = pty_port()
    stop = threading.Event()

    def noise():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            try:
                os.write(master, rng.integers(0, 256, 64, np.uint8).tobytes())
            except OSError:
                return
            time.sleep(0.005)

    thread = threading.Thread(target=noise, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(ProtocolError, match="never went quiet|no complete reply|expected the identification"):
            BoardLink(port, timeout_s=1.0).reset()
        assert time.monotonic() - started < 1.5
    finally:
        stop.set()
        thread.join()
        port.close()
        os.close(master), os.close(slave)


def test_a_silent_port_ends_within_the_timeout():
    from gesture_snn.host_link import BoardLink
    from gesture_snn.spec.protocol import ProtocolError

    master, slave, port = pty_port()
    try:
        started = time.monotonic()
        with pytest.raises(ProtocolError, match="no reply from the board"):
            BoardLink(port, timeout_s=0.5).reset()
        assert time.monotonic() - started < 1.0
    finally:
        port.close()
        os.close(master), os.close(slave)


def test_a_disconnected_port_is_a_clear_error():
    from gesture_snn.host_link import BoardLink
    from gesture_snn.spec.protocol import ProtocolError

    master, slave, port = pty_port()
    os.close(master)  # the other end is gone: reads fail with EIO
    try:
        started = time.monotonic()
        with pytest.raises(ProtocolError):
            BoardLink(port, timeout_s=0.5).reset()
        assert time.monotonic() - started < 1.0
    finally:
        port.close()
        os.close(slave)


# --------------------------------------------------------------------------------------------
# 4. one run check for every stage, build included


def integer_run(tmp_path: Path, *, frame_size: int) -> Path:
    sys.path.insert(0, str(TESTS))
    from networks import small_network

    run = tmp_path / "run"
    small_network().save(run / "integer")
    RunConfig().replace(frames={"size": frame_size, "mode": "binary"}).save(run / "config.json")
    return run


def test_build_refuses_a_network_whose_n_in_differs_from_the_frames(tmp_path, capsys):
    run = integer_run(tmp_path, frame_size=4)  # 32 inputs, the network has 3
    for command in (["build", "--run", str(run), "--target", "ice40-up5k"], ["simulate", "--run", str(run)]):
        assert cli(command) == 2
        err = capsys.readouterr().err
        assert "n_in = 3" in err and "32 inputs" in err, err
    assert not (run / "build").exists()


def test_build_refuses_lanes_that_do_not_divide_n_rec(tmp_path, capsys, monkeypatch):
    from gesture_snn.rundir import IntegerRun

    run = integer_run(tmp_path, frame_size=4)
    monkeypatch.setattr(IntegerRun, "load", classmethod(lambda cls, d: IntegerRun(
        run_dir=Path(d),
        network=__import__("gesture_snn.spec.intnet").spec.intnet.IntegerNetwork.load(Path(d) / "integer"),
        config=RunConfig.load(Path(d) / "config.json"))))
    assert cli(["build", "--run", str(run), "--target", "ice40-up5k", "--lanes", "3"]) == 2
    assert "--lanes" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# 5. full disks and read-only places


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_at_checkpoint_time_is_one_message_and_nothing_half_written(tmp_path, splits, monkeypatch):
    run = tmp_path / "run"
    real = files._commit

    def full(tmp, path):
        if Path(path).name == "last.pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(tmp, path)

    monkeypatch.setattr(files, "_commit", full)
    with pytest.raises(WriteError, match=r"no space left on the device to write .*last\.pt: it needs [\d.]+ (MB|bytes)"):
        run_training(run, splits)
    assert not checkpoint_path(run, "last").exists() and not list(run.rglob("*.tmp"))


def test_free_space_is_checked_before_a_write(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100, 90, 10))
    with pytest.raises(WriteError, match="it needs 20 bytes, 10 bytes are free"):
        files.atomic_write_bytes(tmp_path / "x.bin", b"0" * 20)
    assert not list(tmp_path.iterdir())


def test_a_full_disk_while_writing_the_frame_cache_is_one_message(tiny_dvs_root, tmp_path, monkeypatch):
    from gesture_snn.framing import load_frames

    config = FrameConfig(size=4, bin_ms=20.0, window_ms=200.0)
    real = files._commit
    monkeypatch.setattr(files, "_commit", enospc)
    with pytest.raises(WriteError, match=r"frame cache|\.h5.*--cache-dir"):
        load_frames(tiny_dvs_root, train=True, config=config, cache_dir=tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").iterdir())
    monkeypatch.setattr(files, "_commit", real)
    frames = load_frames(tiny_dvs_root, train=True, config=config, cache_dir=tmp_path / "cache", progress=False)
    assert len(frames) and len(list((tmp_path / "cache").glob("*.h5"))) == 1


def test_a_real_full_tmpfs_frame_cache_no_segfault(tiny_dvs_root, tmp_path):
    """A 64 KiB tmpfs (root only): the cache does not fit; one message, rc 2 semantics, no crash."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        code = textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(ROOT)!r})
            from gesture_snn.framing import FrameConfig, load_frames
            from gesture_snn.spec.errors import UserError
            try:
                load_frames({str(tiny_dvs_root)!r}, train=True, config=FrameConfig(size=32, bin_ms=1.0, window_ms=200.0),
                            cache_dir={str(mount)!r}, progress=False)
            except UserError as exc:
                print(exc); sys.exit(2)
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
        assert "no space left" in done.stdout and "it needs" in done.stdout
        assert not [p for p in mount.iterdir()]
    finally:
        subprocess.run(["umount", str(mount)])


def test_a_full_disk_at_report_time_is_one_message(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_commit", enospc)
    with pytest.raises(WriteError, match="report.json"):
        rundir.update_report(tmp_path, "x", {"a": 1})
    assert not list(tmp_path.iterdir())


def test_a_read_only_data_root_takes_cache_dir(tiny_dvs_root, tmp_path, monkeypatch):
    from gesture_snn.framing import CACHE_DIR_ENV, cache_dir_override, load_frames

    config = FrameConfig(size=4, bin_ms=20.0, window_ms=200.0)
    with cache_dir_override(tmp_path / "elsewhere"):
        assert os.environ[CACHE_DIR_ENV] == str(tmp_path / "elsewhere")
        load_frames(tiny_dvs_root, train=False, config=config, progress=False)
    assert CACHE_DIR_ENV not in os.environ
    assert list((tmp_path / "elsewhere").glob("test-*.h5"))


def test_a_full_disk_during_extraction_is_one_message(tmp_path, monkeypatch):
    import tarfile

    from gesture_snn import fetch

    folder = tmp_path / "DVSGesture" / "ibmGestureTest"
    folder.parent.mkdir(parents=True)
    archive = tmp_path / "a.tar.gz"
    (tmp_path / "src" / "ibmGestureTest").mkdir(parents=True)
    (tmp_path / "src" / "ibmGestureTest" / "x.npy").write_bytes(b"0" * 1000)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "ibmGestureTest", arcname="ibmGestureTest")
    monkeypatch.setattr(tarfile.TarFile, "extract", enospc)
    with pytest.raises(WriteError, match="it needs 1000 bytes"):
        fetch._extract(archive, folder, progress=False)
    assert not folder.exists() and not list(folder.parent.glob(".*extract-*"))


# --------------------------------------------------------------------------------------------
# 6. leftovers of killed runs


def test_stale_temp_files_are_removed_and_live_ones_kept(tmp_path, splits):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    stale = [run / "checkpoints" / f".last.pt.{pid}.abc.tmp", run / f".report.json.{pid}.x.tmp"]
    live = run / f".metrics.jsonl.{os.getppid()}.y.tmp"  # a live process (our parent)
    for path in (*stale, live):
        path.write_text("half")
    run_training(run, splits)
    assert not any(p.exists() for p in stale) and live.exists()


def test_stale_frame_cache_temps_and_extract_folders_are_removed(tmp_path):
    from gesture_snn.fetch import remove_stale_extractions

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain"
    folder.parent.mkdir(parents=True)
    stale = folder.parent / f".ibmGestureTrain.extract-{dead}-abc"
    live = folder.parent / f".ibmGestureTrain.extract-{os.getppid()}-def"
    old = folder.parent / ".ibmGestureTrain.extract-zzz"  # an older version's name, no pid
    for path in (stale, live, old):
        path.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert sorted(remove_stale_extractions(folder)) == sorted([stale, old])
    assert live.exists()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f".train-abc.h5.{dead}.q.tmp").write_bytes(b"x")
    assert files.remove_stale_temps(cache) == [cache / f".train-abc.h5.{dead}.q.tmp"]


def test_build_tools_die_with_a_killed_build(tmp_path):
    """kill -9 of the process running a tool: the tool (and its children) are killed by the kernel."""
    tool = tmp_path / "slowtool"
    tool.write_text(f"#!{sys.executable}\nimport os, time\nopen({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
                    "time.sleep(60)\n")
    tool.chmod(0o755)
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        import hdl.build as b
        b.find_tool = lambda name: {str(tool)!r}
        b._run_tool("slowtool", [], cwd=Path({str(tmp_path)!r}), log="log.txt", progress=print)
    """)
    parent = subprocess.Popen([sys.executable, "-c", code])
    pid_file = tmp_path / "pid"
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the tool outlived the killed build")


def test_a_damaged_cached_simulator_is_rebuilt(tmp_path):
    from hdl import cxxrtl

    exe = tmp_path / "sim"
    exe.write_bytes(b"\x7fELF" + b"0" * 100)
    (tmp_path / "sim.sha256").write_text(cxxrtl._file_sha256(exe) + "  sim\n")
    assert cxxrtl._verified(exe)
    exe.write_bytes(b"\x7fELF" + b"0" * 50)  # truncated
    assert not cxxrtl._verified(exe)
    (tmp_path / "sim.sha256").unlink()
    assert not cxxrtl._verified(exe)  # no digest (an older cache): rebuilt too


# --------------------------------------------------------------------------------------------
# 7. input validation with names


@pytest.mark.parametrize("config, message", [
    ({"train": {"epochs": 1.5}}, '"train.epochs" must be an integer, got 1.5'),
    ({"train": {"epochs": True}}, '"train.epochs" must be an integer, got True'),
    ({"model": {"hidden": "abc"}}, '"model.hidden" must be a list'),
    ({"model": {"hidden": [8, "x"]}}, '"model.hidden[1]" must be an integer'),
    ({"train": {"lr": "fast"}}, '"train.lr" must be a number'),
    ({"frames": {"mode": 1}}, '"frames.mode" must be a string'),
    ({"train": {"shift": 4}, "frames": {"size": 4}}, "as wide as the 4 x 4 frames"),
])
def test_config_fields_are_type_checked_with_their_names(config, message):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(config)
    assert message in str(info.value)


@pytest.mark.parametrize("flags, message", [
    (["--lr", "inf"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--shift", "100", "--frame-size", "16"], "as wide as the 16 x 16 frames"),
])
def test_flags_are_checked_with_their_names(tmp_path, capsys, flags, message):
    assert cli(["train", "--run", str(tmp_path / "run"), "--data", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_non_utf8_or_wrongly_typed_config_file_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"train": {"epochs": "\xff"}}')
    assert cli(["train", "--run", str(tmp_path / "run"), "--config", str(bad)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    bad.write_text('{"train": {"epochs": 1.5}}')
    assert cli(["train", "--run", str(tmp_path / "run"), "--config", str(bad)]) == 2
    assert '"train.epochs" must be an integer, got 1.5' in capsys.readouterr().err


def test_resume_refuses_flags_it_would_not_honour(tmp_path, capsys):
    for flags in (["--preset", "hardware"], ["--lr", "0.1"], ["--config", "x.json"]):
        assert cli(["train", "--run", str(tmp_path), "--resume", *flags]) == 2
        assert flags[0] in capsys.readouterr().err


def test_malformed_report_or_metrics_are_found_before_the_evaluation(tmp_path, trained, capsys, monkeypatch):
    from gesture_snn import evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "evaluate_run", lambda *a, **k: pytest.fail("evaluated anyway"))
    run = copy_run(trained, tmp_path / "run")
    (run / "report.json").write_text((run / "report.json").read_text()[:100])
    assert cli(["evaluate", "--run", str(run)]) == 2
    assert "report.json is damaged" in capsys.readouterr().err
    run = copy_run(trained, tmp_path / "run2")
    with open(run / "metrics.jsonl", "a") as f:
        f.write("garbage\n")
    assert cli(["evaluate", "--run", str(run)]) == 2
    assert "metrics.jsonl line" in capsys.readouterr().err


def test_fetch_refuses_a_url_base_that_is_not_a_url(tmp_path, capsys):
    assert cli(["fetch", "--out", str(tmp_path), "--url-base", "notaurl"]) == 2
    assert "--url-base 'notaurl' is not a URL" in capsys.readouterr().err


def test_demo_refuses_an_unknown_target_at_once(capsys):
    assert cli(["demo", "--target", "ice41"]) == 2
    assert "unknown target 'ice41'" in capsys.readouterr().err
