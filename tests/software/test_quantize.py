"""The quantizer: folding, scales, refusals, float/integer agreement, fake quantization."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gesture_snn.spec.errors import UserError
from gesture_snn.golden import run_golden
from gesture_snn.qat import fake_quantize, fake_quantize_folded
from gesture_snn.quantize import QuantizationError, quantize_network
from gesture_snn.spec.fixed_point import round_half_up, weight_exponent


def float_params(rng, n_in=40, n_rec=16, n_out=4, *, decode="mean", adaptive=True):
    """Parameters shaped like SRNN.hardware_parameters(): tau_m ~ 20, tau_adp ~ 150, b0 0.1, beta 1.84."""
    return {
        "w_in": rng.normal(0, 1.0, (n_rec, n_in)),
        "w_rec": rng.normal(0, 0.3, (n_rec, n_rec)),
        "w_out": rng.normal(0, 0.5, (n_out, n_rec)),
        "alpha": np.exp(-1 / rng.normal(20, 5, n_rec).clip(5)),
        "rho": np.exp(-1 / rng.normal(150, 10, n_rec)),
        "alpha_out": np.exp(-1 / rng.normal(20, 5, n_out).clip(5)),
        "b0": 0.1,
        "beta": 1.84,
        "decode": decode,
        "adaptive": adaptive,
    }


def float_srnn(params, x):
    """The float model of docs/training.md ("The network") in numpy float64: readout [B, T, n_out] and spikes [B, T, n_rec]."""
    alpha, rho, alpha_out = params["alpha"], params["rho"], params["alpha_out"]
    beta = params["beta"] if params["adaptive"] else 0.0
    batch, steps, _ = x.shape
    n_rec, n_out = len(alpha), len(alpha_out)
    v, b, z, o = np.zeros((batch, n_rec)), np.zeros((batch, n_rec)), np.zeros((batch, n_rec)), np.zeros((batch, n_out))
    readout, spikes = np.zeros((batch, steps, n_out)), np.zeros((batch, steps, n_rec))
    for t in range(steps):
        current = x[:, t] @ params["w_in"].T + z @ params["w_rec"].T
        b = rho * b + (1 - rho) * z
        th = params["b0"] + beta * b
        v = alpha * v + (1 - alpha) * current - th * z
        z = (v > th).astype(float)
        o = alpha_out * o + (1 - alpha_out) * (z @ params["w_out"].T)
        readout[:, t], spikes[:, t] = o, z
    return readout, spikes


# --- scales and folding ----------------------------------------------------------------------------


def test_weight_exponent_is_the_largest_that_fits():
    assert weight_exponent(1.0, 8) == 6  # 1 * 64 <= 127 < 128
    assert weight_exponent(127.0, 8) == 0
    assert weight_exponent(127.49, 8) == 0  # rounds to 127
    assert weight_exponent(127.5, 8) == -1  # would round to 128
    assert weight_exponent(0.05, 4) == 7  # 0.05 * 128 = 6.4 <= 7 < 12.8
    assert weight_exponent(0.0, 8) is None
    for max_abs in np.random.default_rng(0).uniform(1e-4, 1e3, 200):
        e = weight_exponent(max_abs, 6)
        assert round_half_up(max_abs * 2.0**e) <= 31 < round_half_up(max_abs * 2.0 ** (e + 1))


@pytest.mark.parametrize("weight_bits", [4, 8])
def test_quantized_weights_are_folded_and_scaled(weight_bits):
    params = float_params(np.random.default_rng(1))
    net = quantize_network(params, weight_bits=weight_bits)
    e_v = net.membrane_exp
    for name, gain, shift, exp in (
        ("w_in", 1 - params["alpha"], net.shift_in, None),
        ("w_rec", 1 - params["alpha"], net.shift_rec, None),
        ("w_out", 1 - params["alpha_out"], 0, net.readout_exp),
    ):
        e = e_v - shift if exp is None else exp
        folded = gain[:, None] * params[name]
        quantized = getattr(net, name)
        assert np.abs(quantized * 2.0**-e - folded).max() <= 0.5 * 2.0**-e + 1e-12, name
        assert np.abs(quantized).max() == net.weight_max or np.abs(quantized).max() > net.weight_max // 2, name
    # the highest threshold (b0 + beta) * 2^e_v with headroom 4 fits 16-bit membranes, one more bit would not
    assert 4 * 1.94 * 2**e_v <= 2**15 - 1 < 4 * 1.94 * 2 ** (e_v + 1)
    assert net.threshold_base.tolist() == [round(0.1 * 2**e_v)] * 16
    np.testing.assert_array_equal(net.alpha, np.floor(params["alpha"] * 4096 + 0.5))
    np.testing.assert_array_equal(net.adapt_inc, np.floor(1.84 * (1 - params["rho"]) * 2**e_v + 0.5))


def test_shift_limit_lowers_the_membrane_exponent():
    # input weights so large that their exponent is more than 15 below the membrane's
    params = float_params(np.random.default_rng(2))
    unlimited = quantize_network(params).membrane_exp
    params["w_in"] = params["w_in"] * 1e6
    net = quantize_network(params)
    assert net.shift_in == 15
    assert net.membrane_exp < unlimited
    assert np.abs(net.w_in).max() > net.weight_max // 2


def test_weights_below_the_membrane_resolution_use_shift_zero():
    params = float_params(np.random.default_rng(3))
    params["w_rec"] = params["w_rec"] * 1e-5
    net = quantize_network(params)
    assert net.shift_rec == 0
    assert np.abs(net.w_rec).max() < net.weight_max // 2


def test_non_adaptive_network_has_no_adaptation():
    net = quantize_network(float_params(np.random.default_rng(4), adaptive=False))
    assert not net.adapt_inc.any()


def test_all_zero_matrix():
    params = float_params(np.random.default_rng(5))
    params["w_rec"] = np.zeros_like(params["w_rec"])
    net = quantize_network(params)
    assert net.shift_rec == 0 and not net.w_rec.any()


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        (lambda p: p.pop("w_rec"), {}, r"float parameters lack w_rec"),
        (lambda p: p.update(w_rec=np.zeros((16, 15))), {}, r"w_rec has shape \(16, 15\); expected \(16, 16\)"),
        (lambda p: p.update(alpha_out=np.zeros(3)), {}, r"alpha_out has shape \(3,\); expected \(4,\)"),
        (lambda p: p["w_in"].__setitem__((2, 3), np.nan), {}, r"w_in\[2, 3\] = nan is not finite"),
        (lambda p: p["alpha"].__setitem__(5, 1.0), {}, r"alpha\[5\] = 1.0 is not a decay in \[0, 1\)"),
        (lambda p: p["rho"].__setitem__(7, math.exp(-1 / 10000)), {},
         r"rho\[7\] = 0.999900 \(tau = 10000.0 steps\) rounds to 4096 = 2\^12, outside the unsigned 12-bit decay range"),
        (lambda p: p.update(b0=-0.1), {}, r"b0 = -0.1 is negative"),
        (lambda p: p.update(decode="max"), {}, r"decode = 'max'"),
        (lambda p: None, dict(adaptation_bits=2), r"adapt_inc\[\d+\] = \d+ \(from beta \* \(1 - rho\)\) does not fit the unsigned 2-bit range \[0, 3\] \(adaptation_bits"),
        (lambda p: None, dict(membrane_headroom=0.5), r"membrane_headroom = 0.5; expected >= 1"),
    ],
)
def test_refuses_what_does_not_fit(change, kwargs, message):
    params = float_params(np.random.default_rng(6))
    change(params)
    with pytest.raises(QuantizationError, match=message):
        quantize_network(params, **kwargs)
    assert issubclass(QuantizationError, UserError)


def test_rho_fits_with_more_decay_bits():
    params = float_params(np.random.default_rng(6))
    params["rho"][7] = math.exp(-1 / 10000)
    assert quantize_network(params, decay_bits=16).rho[7] == round(math.exp(-1 / 10000) * 2**16)


# --- the integer network computes what the float network computes ----------------------------------


@pytest.mark.parametrize("decode", ["mean", "last"])
def test_integer_network_tracks_the_float_network(decode):
    rng = np.random.default_rng(7)
    params = float_params(rng, n_in=60, n_rec=24, n_out=5, decode=decode)
    x = (rng.random((64, 40, 60)) < 0.1).astype(np.uint8)
    readout, spikes = float_srnn(params, x.astype(float))
    net = quantize_network(params)
    trace = run_golden(net, x)
    assert sum(trace.saturation.values()) == 0
    # spike trains agree almost everywhere (rounding flips an occasional near-threshold spike)
    assert np.mean(trace.z == spikes) > 0.95
    # step 1 differs from the float membrane only by weight rounding: half an LSB per input event
    v1_float = (1 - params["alpha"]) * (x[:, 0] @ params["w_in"].T)
    error = np.abs(trace.v[:, 0] * 2.0**-net.membrane_exp - v1_float)
    lsb_in = 2.0 ** -(net.membrane_exp - net.shift_in)
    assert (error <= x[:, 0].sum(axis=1, keepdims=True) * lsb_in / 2 + 1e-12).all()
    score = readout.mean(axis=1) if decode == "mean" else readout[:, -1]
    # an untrained random network has small class margins; the last step alone is the most fragile
    assert np.mean(score.argmax(axis=1) == trace.prediction) >= (0.95 if decode == "mean" else 0.8)


# --- fake quantization for QAT ---------------------------------------------------------------------


def test_fake_quantize_lies_on_the_grid_with_straight_through_gradient():
    torch = pytest.importorskip("torch")
    w = torch.tensor([[0.3, -1.0, 0.014], [0.5, 0.0, -0.26]], dtype=torch.float64, requires_grad=True)
    q = fake_quantize(w, 4)  # max 1.0 -> e = 2 (1 * 4 <= 7 < 8): grid of 1/4
    assert q.tolist() == [[0.25, -1.0, 0.0], [0.5, 0.0, -0.25]]
    (q * torch.arange(6.0, dtype=torch.float64).reshape(2, 3)).sum().backward()
    assert w.grad.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_fake_quantize_folded_matches_the_quantizer():
    torch = pytest.importorskip("torch")
    params = float_params(np.random.default_rng(8))
    net = quantize_network(params)
    e_in, e_out = net.membrane_exp - net.shift_in, net.readout_exp
    alpha = torch.tensor(params["alpha"])
    alpha_out = torch.tensor(params["alpha_out"])
    w_in = fake_quantize_folded(torch.tensor(params["w_in"]), alpha, 8)
    w_out = fake_quantize_folded(torch.tensor(params["w_out"]), alpha_out, 8)
    np.testing.assert_allclose(((1 - alpha)[:, None] * w_in).numpy(), net.w_in * 2.0**-e_in, rtol=0, atol=1e-12)
    np.testing.assert_allclose(((1 - alpha_out)[:, None] * w_out).numpy(), net.w_out * 2.0**-e_out, rtol=0, atol=1e-12)


# --- the command ---------------------------------------------------------------------------------


def train_tiny(root, run, *extra):
    from gesture_snn.cli import main

    assert main(["train", "--data", str(root), "--run", str(run), "--preset", "hardware", "--hidden", "8",
                 "--epochs", "1", "--device", "cpu", "--no-progress", "--val-users", "2", *extra]) == 0


def test_quantize_command_writes_network_and_report(tiny_dvs_root, tmp_path):
    from gesture_snn.cli import main
    from gesture_snn.spec.intnet import IntegerNetwork
    from gesture_snn.rundir import read_report
    from gesture_snn.checkpoints import load_model

    run = tmp_path / "run"
    train_tiny(tiny_dvs_root, run)
    assert main(["quantize", "--run", str(run), "--no-progress", "--compare-bits", "4", "1"]) == 0
    net = IntegerNetwork.load(run / "integer")
    model, _ = load_model(run)
    assert net == quantize_network(model.hardware_parameters())
    report = read_report(run)["quantize"]
    for key in ("float_test_accuracy", "int_test_accuracy", "prediction_agreement"):
        assert 0.0 <= report[key] <= 1.0
    assert set(report["saturation_events"]) == {"a", "v", "o", "s", "total"}
    assert report["n_train"] == report["n_test"] == 110
    assert 0.0 <= report["other_weight_bits"]["4"]["int_test_accuracy"] <= 1.0
    assert "weight_bits = 1" in report["other_weight_bits"]["1"]["error"]


def test_quantize_command_refuses_what_the_hardware_cannot_run(tiny_dvs_root, tmp_path, capsys):
    from gesture_snn.cli import main

    run = tmp_path / "two_layers"
    train_tiny(tiny_dvs_root, run, "--hidden", "4", "4")
    assert main(["quantize", "--run", str(run), "--no-progress"]) == 2
    assert "exactly one recurrent ALIF layer" in capsys.readouterr().err
    assert main(["quantize", "--run", str(tmp_path / "missing")]) == 2
    assert main(["quantize", "--run", str(run), "--weight-bits", "9"]) == 2
    assert "2 to 8 bits" in capsys.readouterr().err


def test_quantizing_qat_weights_is_idempotent():
    # a QAT model's hooks return fake-quantized float32 weights; quantizing those gives the same integers
    torch = pytest.importorskip("torch")
    params = float_params(np.random.default_rng(9))
    net = quantize_network(params, weight_bits=5)
    alpha = torch.tensor(params["alpha"], dtype=torch.float32)
    alpha_out = torch.tensor(params["alpha_out"], dtype=torch.float32)
    qat = dict(params, alpha=alpha.double().numpy(), alpha_out=alpha_out.double().numpy())
    for name, decay in (("w_in", alpha), ("w_rec", alpha), ("w_out", alpha_out)):
        qat[name] = fake_quantize_folded(torch.tensor(params[name], dtype=torch.float32), decay, 5).double().numpy()
    again = quantize_network(qat, weight_bits=5)
    for name in ("w_in", "w_rec", "w_out"):
        np.testing.assert_array_equal(getattr(again, name), getattr(net, name), err_msg=name)
    assert (again.shift_in, again.shift_rec, again.readout_exp) == (net.shift_in, net.shift_rec, net.readout_exp)
