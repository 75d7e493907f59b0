"""Quantization-aware training: the weight hooks, the trainer's QAT epochs, --init-from, the CLI,
and evaluating the integer network (`evaluate --integer`)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from gesture_snn.cli import main as cli
from gesture_snn.config import ConfigError, ModelConfig, RunConfig
from gesture_snn.spec.errors import UserError
from gesture_snn.model import SRNN
from gesture_snn.quantize import quantize_network
from gesture_snn.rundir import read_report
from gesture_snn.checkpoints import load_model
from gesture_snn.train import train

from test_train import random_frameset, tiny_config

torch.set_num_threads(1)


def hardware_model(bits, *, seed=0, neuron="alif", decode="per_step", implementation="fused") -> SRNN:
    torch.manual_seed(seed)
    config = ModelConfig(n_inputs=40, hidden=(16,), n_outputs=5, neuron=neuron, decode=decode, qat_weight_bits=bits)
    return SRNN(config, implementation=implementation)


def float_copy(model: SRNN) -> SRNN:
    """The same network with QAT off and the hooks' (fake-quantized) weights as its parameters."""
    plain = copy.deepcopy(model)
    plain.qat_weight_bits = None
    with torch.no_grad():
        plain.layers[0].weight.copy_(model.layers[0].input_weight())
        plain.layers[0].recurrent.copy_(model.layers[0].recurrent_weight())
        plain.readout.weight.copy_(model.readout.weight_matrix())
    return plain


def spikes(batch=3, steps=12, n=40, seed=0):
    return (torch.rand(batch, steps, n, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("neuron", ["alif", "lif"])
def test_quantizing_the_qat_network_gives_the_integers_of_its_weights(bits, neuron):
    model = hardware_model(bits, seed=bits, neuron=neuron)
    with torch.no_grad():
        model.layers[0].tau_m.uniform_(2.0, 30.0)  # varied decays, so the fold matters
    qat_params = model.hardware_parameters()
    net = quantize_network(qat_params, weight_bits=bits)
    model.qat_weight_bits = None
    assert quantize_network(model.hardware_parameters(), weight_bits=bits) == net  # same integers as the float weights
    # the QAT weights lie on the integer grid: folded, they are exactly the integers times the scale
    e_in, e_rec = net.membrane_exp - net.shift_in, net.membrane_exp - net.shift_rec
    for name, decay, integers, e in (("w_in", "alpha", net.w_in, e_in), ("w_rec", "alpha", net.w_rec, e_rec),
                                     ("w_out", "alpha_out", net.w_out, net.readout_exp)):
        folded = (1.0 - qat_params[decay])[:, None] * qat_params[name]
        np.testing.assert_allclose(folded * 2.0**e, integers, rtol=0, atol=1e-4, err_msg=name)
        assert 1 << (bits - 2) <= np.abs(integers).max() <= (1 << (bits - 1)) - 1  # the scale is set by the largest


@pytest.mark.parametrize("implementation", ["fused", "stepwise"])
def test_forward_and_gradient_go_through_the_fake_quantized_weights(implementation):
    model = hardware_model(4, implementation=implementation)
    plain = float_copy(model)
    x, y = spikes(), torch.tensor([0, 3, 4])
    out, plain_out = model(x, record=True), plain(x, record=True)
    for record, plain_record in zip(out.records, plain_out.records):
        for a, b in zip(record, plain_record):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(out.readout, plain_out.readout, rtol=0, atol=0)
    # 4-bit weights change what the network computes
    model.qat_weight_bits = None
    assert not torch.equal(model(x).readout, out.readout)
    model.qat_weight_bits = 4
    # straight-through: the gradient of a raw weight is that of the fake-quantized weight it becomes
    model.loss(model(x), y).backward()
    plain.loss(plain(x), y).backward()
    for name in ("layers.0.weight", "layers.0.recurrent", "readout.weight"):
        grad, plain_grad = model.get_parameter(name).grad, plain.get_parameter(name).grad
        assert grad.abs().sum() > 0
        torch.testing.assert_close(grad, plain_grad, rtol=1e-4, atol=1e-6, msg=name)
    assert model.layers[0].tau_m.grad.abs().sum() > 0  # the fold also passes gradients to the decays


def test_qat_bits_are_validated():
    with pytest.raises(ConfigError, match="qat_weight_bits"):
        ModelConfig(qat_weight_bits=9)
    with pytest.raises(ConfigError, match="qat_epochs"):
        RunConfig().replace(train={"qat_epochs": 3})  # QAT epochs without QAT
    with pytest.raises(ValueError, match="qat_weight_bits"):
        hardware_model(None).qat_weight_bits = 1


# --- training ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splits():
    return random_frameset(24, seed=1), random_frameset(12, seed=2, users=(24, 25))


def run_training(run_dir, splits, config):
    return train(config, run_dir, device="cpu", progress=False, train_set=splits[0], test_set=splits[1])


def test_qat_in_the_final_epochs_and_best_checkpoint_among_them(tmp_path, splits):
    config = tiny_config(epochs=4).replace(model={"qat_weight_bits": 4}, train={"qat_epochs": 2})
    report = run_training(tmp_path / "run", splits, config)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["qat_weight_bits"] for r in records] == [None, None, 4, 4]
    assert report["best_epoch"] in (3, 4)
    assert report["val_accuracy"] == max(r["val_accuracy"] for r in records[2:])
    model, loaded = load_model(tmp_path / "run")
    assert loaded == config and model.qat_weight_bits == 4
    assert all(layer.qat_weight_bits == 4 for layer in (*model.layers, model.readout))


def test_init_from_starts_with_the_source_weights(tmp_path, splits):
    run_training(tmp_path / "float", splits, tiny_config(epochs=1))
    source, _ = load_model(tmp_path / "float")
    # a learning rate of 1e-30 keeps the weights where they started
    config = tiny_config(epochs=1, lr=1e-30, lr_tau=0.0, weight_decay=0.0, init_from=str(tmp_path / "float"))
    run_training(tmp_path / "tuned", splits, config)
    tuned, _ = load_model(tmp_path / "tuned", "last")
    for (name, a), b in zip(source.state_dict().items(), tuned.state_dict().values()):
        torch.testing.assert_close(b, a, msg=name)
    other = config.replace(model={"hidden": [5]}, train={"init_from": str(tmp_path / "float" / "checkpoints" / "best.pt")})
    with pytest.raises(UserError, match="does not fit"):
        run_training(tmp_path / "other", splits, other)


# --- the commands --------------------------------------------------------------------------------


def train_args(root, run, *extra):
    return ["train", "--data", str(root), "--run", str(run), "--hidden", "8", "--epochs", "2", "--window-ms", "200",
            "--device", "cpu", "--no-progress", "--val-users", "2", *extra]


def test_cli_qat_quantize_and_evaluate_integer(tiny_dvs_root, tmp_path, capsys):
    run = tmp_path / "qat"
    assert cli(train_args(tiny_dvs_root, run, "--preset", "hardware", "--qat", "4", "--qat-epochs", "1")) == 0
    config = RunConfig.load(run / "config.json")
    assert config.model.qat_weight_bits == 4 and config.train.qat_epochs == 1
    assert cli(["quantize", "--run", str(run), "--no-progress", "--compare-bits"]) == 0
    quantized = read_report(run)["quantize"]
    assert quantized["widths"]["weight_bits"] == 4 and quantized["qat_weight_bits"] == 4  # the run's bits
    train_section = read_report(run)["train"]

    assert cli(["evaluate", "--run", str(run), "--integer", "--no-progress"]) == 0
    report = read_report(run)
    integer = report["quantize"]["integer"]
    assert report["train"] == train_section  # the float numbers stay
    assert {k: v for k, v in report["quantize"].items() if k != "integer"} == quantized
    assert integer["test_accuracy"] == quantized["int_test_accuracy"]
    assert integer["saturation_events_test"] == quantized["saturation_events_test"]
    for key in ("per_class_accuracy", "confusion_matrix", "firing_rates", "sops_per_sample", "dense_macs_per_sample",
                "energy_ratio"):
        assert key in integer, key
    assert integer["n_samples"] == 110 and integer["test_loss"] is None
    assert integer["plots"] == ["plots/integer_confusion_matrix.png", "plots/integer_spike_raster.png"]
    assert "integer network" in capsys.readouterr().out

    # the float evaluation afterwards keeps the integer entry
    assert cli(["evaluate", "--run", str(run), "--no-progress", "--no-plots"]) == 0
    assert read_report(run)["quantize"]["integer"] == integer


def test_cli_init_from_and_refusals(tiny_dvs_root, tmp_path, capsys):
    source = tmp_path / "float"
    assert cli(train_args(tiny_dvs_root, source, "--preset", "hardware", "--no-qat")) == 0
    assert RunConfig.load(source / "config.json").model.qat_weight_bits is None
    tuned = tmp_path / "tuned"
    assert cli(["train", "--init-from", str(source), "--run", str(tuned), "--qat", "--epochs", "1", "--lr", "1e-3",
                "--device", "cpu", "--no-progress"]) == 0
    config = RunConfig.load(tuned / "config.json")
    assert config.model.qat_weight_bits == 8 and config.model.hidden == (8,) and config.frames.window_ms == 200
    assert config.train.init_from == str(source / "checkpoints" / "best.pt")
    capsys.readouterr()
    assert cli(["train", "--init-from", str(source), "--preset", "hardware", "--run", str(tmp_path / "x")]) == 2
    assert cli(train_args(tiny_dvs_root, tmp_path / "y", "--qat-epochs", "1")) == 2  # no --qat
    assert "qat_epochs" in capsys.readouterr().err
    assert cli(["train", "--run", str(tuned), "--resume", "--qat", "4"]) == 2
    assert cli(["evaluate", "--run", str(source), "--integer", "--no-progress"]) == 2  # not quantized yet
    assert "gesture-snn quantize" in capsys.readouterr().err
