"""Data-parallel training: 2 CPU processes under torchrun (gloo) end with the same parameters as
1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from gesture_snn.cli import main as cli
from gesture_snn.rundir import read_report
from gesture_snn.checkpoints import load_model


def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path, dvs_root_writer):
    # users 1-2 train (110 samples), user 3 validates; global batch 22: 5 optimiser steps per
    # epoch, 11 samples per process
    root = dvs_root_writer(train_users=(1, 2, 3))
    args = ["train", "--data", str(root), "--val-users", "3", "--preset", "hardware", "--frame-size", "8",
            "--window-ms", "200", "--hidden", "12", "--epochs", "2", "--batch-size", "22", "--lr", "3e-3",
            "--shift", "0", "--device", "cpu", "--no-progress"]
    assert cli([*args, "--run", str(tmp_path / "one")]) == 0

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "gesture_snn.cli", "--", *args, "--run", str(tmp_path / "two")]  # "--": torchrun has --run-path
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    one, _ = load_model(tmp_path / "one", "last")
    two, _ = load_model(tmp_path / "two", "last")
    for (name, a), b in zip(one.state_dict().items(), two.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
    records = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    reference = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    for r, ref in zip(records, reference):
        # the training metrics are summed over both processes: the same numbers as one process
        assert abs(r["train_loss"] - ref["train_loss"]) < 1e-4 and r["train_accuracy"] == ref["train_accuracy"]
    assert read_report(tmp_path / "two")["train"]["world_size"] == 2
