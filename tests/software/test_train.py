"""Training runs: resume after a kill, checkpoints, metrics, the CLI, evaluation, op counts and peak memory."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import torch

from gesture_snn.cli import main as cli
from gesture_snn.config import RunConfig
from gesture_snn.framing import FrameConfig
from gesture_snn.spec.errors import UserError
from gesture_snn.energy import NetworkShape
from gesture_snn.evaluate import Evaluation, Prediction, evaluate
from gesture_snn.rundir import read_report
from gesture_snn.checkpoints import load_model
from gesture_snn.rundir import checkpoint_path
from gesture_snn.train import random_shift, train

from framesets import random_frameset

torch.set_num_threads(1)

def tiny_config(**train) -> RunConfig:
    return RunConfig().replace(
        frames={"size": 4, "window_ms": 200.0}, model={"hidden": [8]},
        train={"epochs": 4, "batch_size": 8, "lr": 1e-2, "val_users": [4], **train},
    )


@pytest.fixture(scope="module")
def splits():
    return random_frameset(24, seed=1), random_frameset(12, seed=2, users=(24, 25))


def run_training(run_dir, splits, config=None, **kwargs):
    train_set, test_set = splits
    return train(config or tiny_config(shift=1), run_dir, device="cpu", progress=False,
                 train_set=train_set, test_set=test_set, **kwargs)


class Killed(Exception):
    pass


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, splits):
    run_training(tmp_path / "straight", splits)

    def kill_after_epoch_2(record):
        if record["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        run_training(tmp_path / "killed", splits, on_epoch_end=kill_after_epoch_2)
    # the kill also caught epoch 3 half-way through writing its metrics line
    with open(tmp_path / "killed" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_lo')
    report = run_training(tmp_path / "killed", splits, resume=True)

    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]
    straight, _ = load_model(tmp_path / "straight", "last")
    resumed, _ = load_model(tmp_path / "killed", "last")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)
    assert report["epochs_completed"] == 4
    assert read_report(tmp_path / "killed")["train"]["epochs_completed"] == 4


def test_run_directory_contents(tmp_path, splits):
    report = run_training(tmp_path / "run", splits)
    run = tmp_path / "run"
    assert RunConfig.load(run / "config.json") == tiny_config(shift=1)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "lr_tau", "firing_rates", "seconds"):
        assert all(key in r for r in records), key
    assert not any(key.startswith("test") for r in records for key in r)  # no per-epoch look at the test users
    assert records[0]["lr"] == 1e-2 and records[1]["lr"] < 1e-2  # cosine schedule
    best = torch.load(checkpoint_path(run, "best"), weights_only=True)
    last = torch.load(checkpoint_path(run, "last"), weights_only=True)
    assert last["epoch"] == 4 and best["epoch"] == report["best_epoch"]
    assert best["best"]["val_accuracy"] == max(r["val_accuracy"] for r in records) == report["val_accuracy"]
    assert {"model", "optimizer", "scheduler", "config", "metrics"} <= set(last)
    section = read_report(run)["train"]
    assert section["test_accuracy"] == report["test_accuracy"] and section["best_epoch"] == report["best_epoch"]
    assert section["split"] == {"train_users": [1, 2, 3], "val_users": [4], "test_users": [24, 25],
                                "n_train": 18, "n_val": 6, "n_test": 12}
    assert section["selection"]["chosen_epoch"] == report["best_epoch"]
    assert section["val_accuracy_per_epoch"] == [r["val_accuracy"] for r in records]
    assert not list(run.rglob("*.tmp"))


def test_the_test_split_is_evaluated_once_on_the_selected_and_the_last_checkpoint(tmp_path, splits):
    report = run_training(tmp_path / "run", splits)
    model, _ = load_model(tmp_path / "run", "best")
    x = torch.from_numpy(splits[1].frames).flatten(2).float()
    with torch.no_grad():
        predictions = model.scores(model(x)).argmax(1).numpy()
    assert report["test"]["predictions"] == predictions.tolist()
    assert report["test"]["accuracy"] == report["test_accuracy"] == float(np.mean(predictions == splits[1].labels))
    assert report["test"]["epoch"] == report["best_epoch"] and report["test_last"]["epoch"] == 4
    low, high = report["test"]["ci95"]
    assert 0.0 <= low <= report["test"]["accuracy"] <= high <= 1.0
    assert set(report["test"]["per_user"]) == {"24", "25"}


def test_validation_selects_and_early_stopping_stops(tmp_path, splits, monkeypatch):
    # correct validation samples (of 6) per epoch peak at epoch 2: with patience 2, training stops after epoch 4
    correct_per_epoch = iter([1, 3, 2, 2, 6, 6, 6, 6])
    from gesture_snn import evaluate as evaluate_module

    original = evaluate_module.evaluate
    calls = {"n": 0}

    def fake_evaluate(predict, loader, **kwargs):  # train imports evaluate at call time, so this reaches it
        result = original(predict, loader, **kwargs)
        if len(result.labels) == 6:  # the validation split (user 4)
            correct = next(correct_per_epoch)
            predictions = result.labels.copy()
            predictions[correct:] = (predictions[correct:] + 1) % 11
            calls["n"] += 1
            return evaluate_module.Evaluation(**{**result.__dict__, "predictions": predictions})
        return result

    monkeypatch.setattr(evaluate_module, "evaluate", fake_evaluate)
    report = run_training(tmp_path / "run", splits, tiny_config(epochs=8, patience=2))
    # 4 epochs, then the selected checkpoint once more for the report's "val" entry
    assert calls["n"] == 5 and report["epochs_completed"] == 4 and report["stopped_early"] == 4
    assert report["best_epoch"] == 2 and report["test"]["epoch"] == 2
    # resuming a run that stopped early trains nothing more
    again = run_training(tmp_path / "run", splits, tiny_config(epochs=8, patience=2), resume=True)
    assert calls["n"] == 6 and again["epochs_completed"] == 4 and again["test"] == report["test"]


@pytest.mark.parametrize("val_users, match", [
    ([24], "test users"), ([9], "not in the training split"), ([1, 2, 3, 4], "every training user"),
])
def test_bad_validation_users_are_refused_before_anything_is_written(tmp_path, splits, val_users, match):
    with pytest.raises(UserError, match=match):
        run_training(tmp_path / "run", splits, tiny_config(val_users=val_users))
    assert not (tmp_path / "run").exists()


def test_an_empty_validation_user_list_is_a_config_error():
    from gesture_snn.config import ConfigError

    with pytest.raises(ConfigError, match="val_users"):
        tiny_config(val_users=[])


def test_rate_penalty_lowers_the_firing_rate(tmp_path, splits):
    plain = run_training(tmp_path / "plain", splits, tiny_config(epochs=3))
    penalised = run_training(tmp_path / "penalised", splits, tiny_config(epochs=3, rate_penalty=20.0))
    assert penalised["test"]["firing_rates"][0] < plain["test"]["firing_rates"][0]


def test_refuses_to_overwrite_or_to_resume_with_other_settings(tmp_path, splits):
    config = tiny_config(epochs=1)
    run_training(tmp_path / "run", splits, config)
    with pytest.raises(UserError, match="--resume"):
        run_training(tmp_path / "run", splits, config)
    with pytest.raises(UserError, match="differs"):
        run_training(tmp_path / "run", splits, config.replace(train={"lr": 0.5}), resume=True)
    with pytest.raises(UserError, match="does not exist"):
        run_training(tmp_path / "fresh", splits, config, resume=True)
    # more epochs is allowed
    assert run_training(tmp_path / "run", splits, config.replace(train={"epochs": 2}), resume=True)["epochs_completed"] == 2


def test_random_shift_moves_frames_and_fills_with_zeros():
    size, shift = 5, 2
    x = torch.zeros(400, 3, 2, size, size)
    x[:, :, 1, 2, 2] = 1.0  # the centre pixel of polarity 1
    moved = random_shift(x.flatten(2), shift=shift, size=size, generator=torch.Generator().manual_seed(0))
    moved = moved.reshape(400, 3, 2, size, size)
    assert torch.all(moved.sum((2, 3, 4)) == 1) and not moved[:, :, 0].any()
    positions = {tuple(torch.nonzero(m[0, 1])[0].tolist()) for m in moved}
    assert positions == {(r, c) for r in range(5) for c in range(5)}  # every offset in [-2, 2]^2 occurs


def test_operation_counts_by_hand():
    # 10 inputs -> 4 feed-forward -> 3 recurrent -> 2 outputs, T = 5, 2 samples
    shape = NetworkShape(n_inputs=10, layers=(4, 3), recurrent=(False, True), n_outputs=2)
    assert shape.input_fanout == 4 and shape.layer_fanouts == (3, 3 + 2)
    assert shape.synapses == 10 * 4 + 4 * 3 + 3 * 3 + 3 * 2
    x = torch.zeros(2, 5, 10)
    x[0, 0, :3] = 1  # 3 input events
    x[1, 4, 9] = 2  # a count of 2
    spikes = (torch.zeros(2, 5, 4), torch.zeros(2, 5, 3))
    spikes[0][0, 1, 0] = spikes[0][1, 2, 3] = 1  # 2 feed-forward spikes
    spikes[1][1, 3, :] = 1  # 3 recurrent spikes

    def predict(xb, yb):
        return Prediction(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), spikes)  # tie -> class 0

    result = evaluate(predict, [(x, torch.tensor([0, 1]))], shape=shape, n_classes=2)
    assert result.predictions.tolist() == [0, 0] and result.accuracy == 0.5
    assert result.confusion.tolist() == [[1, 0], [1, 0]]
    assert result.per_class_accuracy == [1.0, 0.0]
    assert result.sops_per_sample == (5 * 4 + 2 * 3 + 3 * 5) / 2
    assert result.dense_macs_per_sample == 5 * shape.synapses
    assert result.energy_ratio == pytest.approx(5 * shape.synapses * 4.6 / ((5 * 4 + 2 * 3 + 3 * 5) / 2 * 0.9))
    assert result.firing_rates == pytest.approx([2 / (2 * 5 * 4), 3 / (2 * 5 * 3)])
    assert isinstance(result, Evaluation) and result.loss is None


def test_cli_train_then_evaluate(tmp_path, tiny_dvs_root):
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_dvs_root), "--run", str(run), "--preset", "hardware", "--epochs", "2",
            "--hidden", "16", "--window-ms", "200", "--batch-size", "32", "--device", "cpu", "--no-progress",
            "--val-users", "2"]
    assert cli(args) == 0
    config = RunConfig.load(run / "config.json")
    assert config.frames.size == 16 and config.model.hidden == (16,) and config.model.n_inputs == 512
    assert cli(["train", "--run", str(run), "--resume", "--lr", "1", "--no-progress"]) == 2  # settings are fixed
    assert cli(["train", "--run", str(run), "--resume", "--epochs", "3", "--no-progress"]) == 0
    assert cli(["evaluate", "--run", str(run), "--device", "cpu", "--no-progress"]) == 0
    section = read_report(run)["train"]
    for key in ("test_accuracy", "sops_per_sample", "dense_macs_per_sample", "energy_ratio", "per_class_accuracy",
                "confusion_matrix", "firing_rates", "rotation_pairs", "best_epoch", "epochs_completed"):
        assert key in section, key
    assert section["epochs_completed"] == 3 and section["n_samples"] == 110
    assert section["split"]["val_users"] == [2] and section["split"]["train_users"] == [1]
    assert section["dense_macs_per_sample"] == config.frames.n_steps * (512 * 16 + 16 * 16 + 16 * 11)
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == [
        "confusion_matrix.png", "learning_curves.png", "spike_raster.png", "time_constants.png"]
    assert cli(["evaluate", "--run", str(tmp_path / "nothing"), "--no-progress"]) == 2


# --- peak memory per epoch ---------------------------------------------------------------------

MEMORY_FRAMES = FrameConfig(size=16, bin_ms=10.0, window_ms=1000.0)  # 512 inputs, 100 steps
MEMORY_GROWTH_LIMIT = 2**20  # bytes from epoch 2 to 6; a graph retained per batch adds about 4 MiB


def peak_memory_per_epoch(run_dir) -> list[int]:
    """Train 512 -> 128 -> 11 for 6 epochs of 32 batches; the recorded peak memory of each epoch."""
    config = RunConfig().replace(frames={"size": 16, "bin_ms": 10.0, "window_ms": 1000.0}, model={"hidden": [128]},
                                 train={"epochs": 6, "batch_size": 8, "lr": 1e-2, "val_users": [4]})
    gc.collect()  # earlier tests' garbage, freed in the middle of the run, would hide growth
    train(config, run_dir, device="cpu", progress=False, train_set=random_frameset(256, seed=1, config=MEMORY_FRAMES),
          test_set=random_frameset(16, seed=2, config=MEMORY_FRAMES, users=(24, 25)))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    if {r["peak_memory_measure"] for r in records} != {"max_heap_in_use_after_batches"}:
        pytest.skip("no glibc mallinfo2 here: the resident set size is too coarse for a leak bound")
    return [r["peak_memory_bytes"] for r in records]


def growth_after_the_first_epochs(peaks: list[int]) -> int:
    return max(peaks[2:]) - peaks[1]


def test_peak_memory_does_not_grow_from_epoch_to_epoch(tmp_path):
    peaks = peak_memory_per_epoch(tmp_path / "run")
    assert growth_after_the_first_epochs(peaks) < MEMORY_GROWTH_LIMIT, [p / 2**20 for p in peaks]


def test_the_memory_measure_sees_retained_graphs(tmp_path, monkeypatch):
    # the control: keeping every batch's loss tensor (a classic leak) must fail the test above
    from gesture_snn.model import SRNN

    kept, loss = [], SRNN.loss
    monkeypatch.setattr(SRNN, "loss", lambda self, out, y: kept.append(loss(self, out, y)) or kept[-1])
    peaks = peak_memory_per_epoch(tmp_path / "run")
    assert len(kept) >= 6 * 32  # every training batch (and the evaluations)
    assert growth_after_the_first_epochs(peaks) >= MEMORY_GROWTH_LIMIT, [p / 2**20 for p in peaks]
