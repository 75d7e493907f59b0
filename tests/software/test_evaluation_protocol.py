"""The evaluation protocol: intervals over users, controls that remove time, seeds, the rate sweep
and whole-recording streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gesture_snn.cli import main as cli
from gesture_snn.config import RunConfig
from gesture_snn.controls import control_inputs, control_model, run_controls, within_pair_accuracy
from gesture_snn.spec.errors import UserError
from gesture_snn.experiment import run_experiment, run_rate_sweep
from gesture_snn.model import SRNN
from gesture_snn.rundir import read_report
from gesture_snn.stats import accuracy_summary, bootstrap_users
from gesture_snn.streaming import WholeRecordings, decisions_float, decisions_integer, summarize
from gesture_snn.checkpoints import load_model
from gesture_snn.train import train
from test_train import random_frameset, tiny_config

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def splits():
    return random_frameset(24, seed=1), random_frameset(12, seed=2, users=(24, 25))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, splits):
    run = tmp_path_factory.mktemp("protocol") / "run"
    train(tiny_config(epochs=2), run, device="cpu", progress=False, train_set=splits[0], test_set=splits[1])
    return run


# --- intervals over users ----------------------------------------------------------------------


def test_bootstrap_resamples_users_not_samples():
    # user 1 always right (10 samples), user 2 always wrong (10 samples)
    correct = np.array([1] * 10 + [0] * 10)
    users = np.array([1] * 10 + [2] * 10)
    low, high = bootstrap_users(correct, users)
    assert low == 0.0 and high == 1.0  # two users: a replicate draws {1,1}, {1,2} or {2,2}
    assert bootstrap_users(np.ones(20), users) == (1.0, 1.0)
    assert bootstrap_users(correct, users) == (low, high)  # fixed seed: the same interval
    # samples of one user go together: clustered correctness gives a wider interval than if the
    # 200 samples were independent (each its own "user")
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(40), 5)
    correct = np.repeat(rng.random(40) < 0.8, 5)
    low, high = bootstrap_users(correct, users)
    naive_low, naive_high = bootstrap_users(correct, np.arange(200))
    assert low < correct.mean() < high and high - low > 1.5 * (naive_high - naive_low)


def test_accuracy_summary_over_seeds():
    correct = np.array([[1, 1, 0, 0], [1, 1, 1, 0]])
    summary = accuracy_summary(correct, [1, 1, 2, 2])
    assert summary["mean"] == pytest.approx(0.625) and summary["per_seed"] == [0.5, 0.75]
    assert summary["sd"] == pytest.approx(np.std([0.5, 0.75], ddof=1)) and summary["seeds"] == 2
    assert summary["n_users"] == 2 and summary["n_samples"] == 4
    with pytest.raises(ValueError, match="samples"):
        bootstrap_users(np.ones(3), [1, 2])


# --- controls ------------------------------------------------------------------------------------


def test_within_pair_accuracy_compares_the_two_directions_of_one_arm():
    scores = np.zeros((4, 11))
    labels = np.array([3, 4, 5, 0])
    scores[0, 3], scores[0, 4] = 2, 1  # right
    scores[1, 3], scores[1, 4] = 2, 1  # wrong: prefers 3 for a 4
    scores[2, 5] = scores[2, 6] = 1  # tie: half
    assert within_pair_accuracy(scores, labels) == pytest.approx((1 + 0 + 0.5) / 3)
    assert within_pair_accuracy(scores[3:], labels[3:]) is None


def test_input_controls_reverse_and_shuffle_each_sample():
    x = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)
    assert torch.equal(control_inputs(x, "reversed", seed=0), x.flip(1))
    shuffled = control_inputs(x, "shuffled", seed=0)
    assert not torch.equal(shuffled, x)
    for a, b in zip(shuffled, x):  # the same frames, in another order
        assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, b.tolist()))
    assert torch.equal(shuffled, control_inputs(x, "shuffled", seed=0))


def test_model_controls_switch_off_adaptation_and_recurrence():
    config = RunConfig().replace(frames={"size": 4, "window_ms": 200.0}, model={"hidden": [6], "b0": 0.05})
    torch.manual_seed(0)
    model = SRNN(config.model)
    x = (torch.rand(3, 10, 32) < 0.3).float()
    plain = control_model(model, "no_adaptation")
    records = plain(x, record=True).records[0]
    assert torch.all(records.th == 0.05)  # the threshold never moves
    assert model.layers[0].beta == 1.84  # the trained model is untouched
    cut = control_model(model, "no_recurrence")
    assert not cut.layers[0].recurrent.any() and model.layers[0].recurrent.any()
    lif = SRNN(config.model.__class__(**{**config.model.__dict__, "neuron": "lif"}))
    with pytest.raises(UserError, match="LIF"):
        control_model(lif, "no_adaptation")


def test_run_controls_scores_the_network_and_each_control(trained_run, splits):
    section = run_controls(trained_run, controls=("reversed", "shuffled", "no_adaptation", "no_recurrence",
                                                  "frame_mlp", "summed_linear"),
                           train_set=splits[0], test_set=splits[1], progress=False, log=lambda _: None)
    assert read_report(trained_run)["controls"]["network"] == section["network"]
    report = read_report(trained_run)["train"]
    assert section["network"]["accuracy"] == report["test"]["accuracy"]  # the same selected checkpoint
    for name in ("reversed", "shuffled", "no_adaptation", "no_recurrence", "frame_mlp", "summed_linear"):
        entry = section[name]
        assert 0 <= entry["ci95"][0] <= entry["accuracy"] <= entry["ci95"][1] <= 1, name
        assert len(entry["correct"]) == 12
    # the trained controls went through the same protocol, into RUN/controls/NAME
    mlp = read_report(trained_run / "controls" / "frame_mlp")["train"]
    assert mlp["split"]["val_users"] == [4] and mlp["config"]["model"]["architecture"] == "frame_mlp"
    assert mlp["test"]["accuracy"] == section["frame_mlp"]["accuracy"]
    assert (trained_run / "plots" / "controls.png").stat().st_size > 1000


def test_controls_need_a_finished_spiking_run(tmp_path, trained_run, splits):
    with pytest.raises(UserError, match="no trained network"):
        run_controls(tmp_path / "nothing", progress=False)
    lif = tmp_path / "lif"
    train(tiny_config(epochs=1).replace(model={"neuron": "lif"}), lif, device="cpu", progress=False,
          train_set=splits[0], test_set=splits[1])
    with pytest.raises(UserError, match="LIF"):
        run_controls(lif, controls=("no_adaptation",), train_set=splits[0], test_set=splits[1], progress=False)
    assert "controls" not in read_report(lif)  # nothing written on refusal


# --- seeds, the rate sweep -------------------------------------------------------------------------


def test_experiment_trains_seeds_and_aggregates(tmp_path, splits):
    logs = []
    config = tiny_config(epochs=1).replace(model={"qat_weight_bits": 8})
    result = run_experiment(config, tmp_path / "exp", seeds=2, controls=("reversed",),
                            train_set=splits[0], test_set=splits[1], progress=False, log=logs.append)
    network = result["results"]["network"]
    per_seed = [read_report(tmp_path / "exp" / f"seed{k}")["train"]["test"]["accuracy"] for k in range(2)]
    assert network["per_seed"] == per_seed and network["mean"] == pytest.approx(np.mean(per_seed))
    assert read_report(tmp_path / "exp" / "seed1")["train"]["config"]["train"]["seed"] == 1
    assert json.loads((tmp_path / "exp" / "experiment.json").read_text())["seeds"] == 2
    assert "| time-reversed input |" in (tmp_path / "exp" / "experiment.md").read_text()
    # the integer networks (golden model) of both seeds, beside the float ones
    assert result["results"]["integer"]["seeds"] == 2 and 0 <= result["results"]["integer"]["mean"] <= 1
    # a rerun reuses every finished run
    logs.clear()
    run_experiment(config, tmp_path / "exp", seeds=2, controls=("reversed",),
                   train_set=splits[0], test_set=splits[1], progress=False, log=logs.append)
    assert sum("reusing" in line for line in logs) == 2
    with pytest.raises(UserError, match="seeds"):
        run_experiment(tiny_config(), tmp_path / "x", seeds=0, train_set=splits[0], test_set=splits[1])


def test_rate_sweep_chooses_on_validation(tmp_path, splits):
    result = run_rate_sweep(tiny_config(epochs=2), tmp_path / "sweep", weights=[0, 30.0], seeds=1,
                            train_set=splits[0], test_set=splits[1], progress=False, log=lambda _: None)
    plain, penalised = result["points"]
    assert penalised["firing_rate"] < plain["firing_rate"] and penalised["sops"] < plain["sops"]
    eligible = [p for p in result["points"] if p["val"]["mean"] >= plain["val"]["mean"] - 0.01]
    assert result["chosen_weight"] == min(eligible, key=lambda p: p["sops"])["weight"]
    assert (tmp_path / "sweep" / "rate_sweep.png").exists()
    with pytest.raises(UserError, match="include 0"):
        run_rate_sweep(tiny_config(), tmp_path / "y", weights=[1.0], train_set=splits[0], test_set=splits[1])


# --- whole-recording streaming --------------------------------------------------------------------


def _recordings(lengths, labels, n_in, seed=0):
    rng = np.random.default_rng(seed)
    frames = [(rng.random((t, n_in)) < 0.2).astype(np.uint8) for t in lengths]
    return WholeRecordings(frames=frames, labels=np.array(labels), users=np.arange(len(lengths)) + 24,
                           files=[f"f{i}" for i in range(len(lengths))], bin_ms=10.0)


def test_streaming_decisions_are_causal_and_match_the_window_model(trained_run):
    model, config = load_model(trained_run)
    recordings = _recordings([7, 13, 10], [1, 2, 3], config.frames.n_inputs)
    decisions = decisions_float(model, recordings, batch_size=2)  # padded batches
    for frames, decided in zip(recordings.frames, decisions):
        assert len(decided) == len(frames)
        for t in (0, len(frames) // 2, len(frames) - 1):  # the decision at t from the first t + 1 frames alone
            with torch.no_grad():
                prefix = model(torch.from_numpy(frames[None, :t + 1]).float())
            assert decided[t] == int(model.scores(prefix).argmax(1))


def test_integer_streaming_equals_the_golden_model_per_recording():
    from gesture_snn.golden import run_golden
    from networks import small_network  # tests/networks.py: hand-made integer networks

    net = small_network()
    recordings = _recordings([5, 9, 3], [0, 1, 2], net.n_in, seed=3)
    decided, _ = decisions_integer(net, recordings)
    for frames, d in zip(recordings.frames, decided):
        trace = run_golden(net, frames[None])
        assert d.tolist() == np.argmax(trace.s[0], axis=1).tolist()


def test_streaming_summary_by_hand():
    recordings = _recordings([4, 2, 3], [1, 2, 0], 4)
    decisions = [np.array([0, 1, 1, 1]), np.array([2, 0]), np.array([1, 0, 0])]
    summary = summarize(decisions, recordings)
    assert summary["end"]["mean"] == pytest.approx(2 / 3)
    # step 0: right only for recording 1; steps 1-3: recordings 0 and 2 (1 has ended on a wrong decision)
    assert summary["curve"]["accuracy"] == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert summary["curve"]["running"] == pytest.approx([1, 1, 2 / 3, 1 / 3])
    # stable from step 1 (20 ms) and step 1 (20 ms); recording 1 never
    assert summary["time_to_stable_ms"]["median"] == 20.0 and summary["time_to_stable_ms"]["fraction_stable"] == 2 / 3


def test_whole_recording_streaming_from_the_cli(tmp_path, tiny_dvs_root):
    run = tmp_path / "run"
    assert cli(["train", "--data", str(tiny_dvs_root), "--run", str(run), "--preset", "hardware", "--epochs", "1",
                "--hidden", "8", "--window-ms", "100", "--device", "cpu", "--no-progress", "--val-users", "2"]) == 0
    assert cli(["evaluate", "--run", str(run), "--whole-recordings", "--limit", "12", "--no-progress"]) == 0
    section = read_report(run)["streaming"]
    assert section["float"]["n_recordings"] == 12 and (run / "plots" / "latency_accuracy.png").exists()
    # the tiny recordings span 230-234 ms: 24 steps of 10 ms, longer than the 10-step window
    assert section["float"]["duration_ms"]["max"] == 240.0 and section["window_steps"] == 10


def test_a_recording_shorter_than_one_bin_cannot_be_streamed(tmp_path, dvs_root_writer):
    def short(user, label, lighting):
        return np.array([[1, 1, 0, 0], [2, 2, 1, 3]], dtype=np.int64)  # 3 ms of events

    root = dvs_root_writer(events_for=short)
    from gesture_snn.framing import FrameConfig
    from gesture_snn.streaming import load_whole_recordings

    with pytest.raises(UserError, match=r"shorter than one bin.*|0\.npy"):
        load_whole_recordings(root, FrameConfig(size=16, bin_ms=10.0, window_ms=100.0))


# --- the authors' settings --------------------------------------------------------------------------


def test_paper_preset_starts_the_adaptation_at_b0():
    from gesture_snn.config import PRESETS

    config = RunConfig.from_dict(PRESETS["paper"])
    assert config.model.b_init == 0.1 and config.model.decode == "last" and config.train.lr == 1e-3
    torch.manual_seed(0)
    fused = SRNN(config.model)
    stepwise = SRNN(config.model, implementation="stepwise")
    stepwise.load_state_dict(fused.state_dict())
    x = (torch.rand(2, 12, config.model.n_inputs) < 0.1).float()
    a, b = fused(x, record=True), stepwise(x, record=True)
    torch.testing.assert_close(a.readout, b.readout)
    layer = fused.layers[0]
    _, rho = layer.decays()
    # the first threshold: b0 + beta * (rho * b_init + (1 - rho) * z_-1), z_-1 = 0
    torch.testing.assert_close(a.records[0].th[:, 0], (0.1 + 1.84 * rho * 0.1).expand(2, -1))
    with pytest.raises(ValueError, match="b_init"):
        fused.hardware_parameters()


def test_simulate_a_whole_recording_on_the_gateware(tmp_path, tiny_dvs_root):
    run = tmp_path / "run"
    assert cli(["train", "--data", str(tiny_dvs_root), "--run", str(run), "--preset", "hardware", "--epochs", "1",
                "--hidden", "8", "--frame-size", "8", "--window-ms", "100", "--device", "cpu", "--no-progress",
                "--val-users", "2"]) == 0
    assert cli(["quantize", "--run", str(run), "--no-progress"]) == 0
    assert cli(["simulate", "--run", str(run), "--whole-recording", "--samples", "1", "--backend", "amaranth",
                "--no-progress"]) == 0
    section = read_report(run)["simulate_whole_recordings"]
    # one whole tiny recording spans 24 bins of 10 ms, more than the 10-step window
    assert section["samples"] == 1 and section["steps"] == 24 and section["mismatches"] == 0
    assert section["input"] == "whole recordings" and "simulate" not in read_report(run)
