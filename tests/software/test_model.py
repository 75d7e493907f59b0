"""The float SRNN against a line-by-line transcription of the equations in docs/training.md ("The network"), the fused
BPTT against autograd through the step functions, the per-step API against the whole sequence, the neuron registry, and
the surrogate against its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gesture_snn import neurons
from gesture_snn.config import NEURONS, ConfigError, ModelConfig, RunConfig
from gesture_snn.model import SRNN, decode_scores, readout_loss
from gesture_snn.neurons import alif, kernel, lif
from gesture_snn.neurons.readout import leaky_integrate, leaky_readout_step
from gesture_snn.neurons.surrogate import multi_gaussian_derivative, multi_gaussian_surrogate
from gesture_snn.synapse import spike_linear

torch.set_num_threads(1)


def make_model(*, n_inputs=12, hidden=(9,), feedforward=0, neuron="alif", decode="mean", seed=0, implementation="fused"):
    """A tiny float64 SRNN whose weights make it spike at a moderate rate."""
    torch.manual_seed(seed)
    config = ModelConfig(
        n_inputs=n_inputs, hidden=hidden, feedforward=feedforward, n_outputs=4, neuron=neuron, decode=decode,
        tau_m_init=(8.0, 3.0), tau_adp_init=(30.0, 10.0), tau_out_init=(6.0, 2.0),
    )
    model = SRNN(config, implementation=implementation).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(4.0)
    return model


def binary_input(batch=3, steps=25, n=12, density=0.3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, n, generator=g) < density).double()


def transcription(model: SRNN, x: torch.Tensor):
    """docs/training.md, one line per equation, one step at a time, numpy float64.

        b_t  = rho * b_{t-1} + (1 - rho) * z_{t-1}
        th_t = b0 + beta * b_t
        v_t  = alpha * v_{t-1} + (1 - alpha) * I_t - th_t * z_{t-1},   I_t = W_in x_t + W_rec z_{t-1}
        z_t  = H(v_t - th_t)
        o_t  = alpha_o * o_{t-1} + (1 - alpha_o) * W_o z_t

    Returns per layer (z, v, th) [B, T, n] and the readout [B, T, n_out].
    """
    x = x.numpy()
    batch, steps, _ = x.shape
    layers = []
    for layer in model.layers:
        w_in = layer.weight.detach().numpy()
        w_rec = layer.recurrent.detach().numpy() if hasattr(layer, "recurrent") else np.zeros((layer.size, layer.size))
        alpha = np.exp(-1.0 / layer.tau_m.detach().numpy())
        rho = np.exp(-1.0 / layer.tau_adp.detach().numpy()) if layer.adaptive else np.zeros(layer.size)
        b0, beta = layer.b0, (1.84 if layer.adaptive else 0.0)
        layers.append((w_in, w_rec, alpha, rho, b0, beta))
    w_out = model.readout.weight.detach().numpy()
    alpha_o = np.exp(-1.0 / model.readout.tau.detach().numpy())

    records = [{k: np.zeros((batch, steps, w[0].shape[0])) for k in "zvt"} for w in layers]
    readout = np.zeros((batch, steps, w_out.shape[0]))
    for sample in range(batch):
        state = [dict(v=np.zeros(w[0].shape[0]), b=np.zeros(w[0].shape[0]), z=np.zeros(w[0].shape[0])) for w in layers]
        o = np.zeros(w_out.shape[0])
        for t in range(steps):
            inp = x[sample, t]
            for i, (w_in, w_rec, alpha, rho, b0, beta) in enumerate(layers):
                s = state[i]
                I = w_in @ inp + w_rec @ s["z"]
                s["b"] = rho * s["b"] + (1 - rho) * s["z"]
                th = b0 + beta * s["b"]
                s["v"] = alpha * s["v"] + (1 - alpha) * I - th * s["z"]
                s["z"] = (s["v"] - th > 0).astype(float)
                records[i]["z"][sample, t], records[i]["v"][sample, t], records[i]["t"][sample, t] = s["z"], s["v"], th
                inp = s["z"]
            o = alpha_o * o + (1 - alpha_o) * (w_out @ inp)
            readout[sample, t] = o
    return [(r["z"], r["v"], r["t"]) for r in records], readout


SHAPES = [
    dict(hidden=(9,)),
    dict(hidden=(9,), neuron="lif"),
    dict(hidden=(7, 5), feedforward=6),
    dict(hidden=(7,), feedforward=6, neuron="lif"),
]


@pytest.mark.parametrize("implementation", ["fused", "stepwise"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_model_equals_transcription_of_the_equations(shape, implementation):
    model = make_model(implementation=implementation, **shape)
    x = binary_input()
    with torch.no_grad():
        out = model(x, record=True)
    expected_layers, expected_readout = transcription(model, x)
    for record, (z, v, th) in zip(out.records, expected_layers):
        np.testing.assert_array_equal(record.z.numpy(), z)  # every spike
        np.testing.assert_allclose(record.v.numpy(), v, rtol=0, atol=1e-12)
        np.testing.assert_allclose(record.th.numpy(), th, rtol=0, atol=1e-12)
        assert 0.02 < z.mean() < 0.6, "the test network must spike, but not everywhere"
    for spikes, (z, _, _) in zip(out.spikes, expected_layers):
        np.testing.assert_array_equal(spikes.numpy(), z)
    np.testing.assert_allclose(out.readout.numpy(), expected_readout, rtol=0, atol=1e-12)


@pytest.mark.parametrize("decode", ["last", "mean", "per_step"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_fused_bptt_gradients_equal_autograd_through_the_steps(shape, decode):
    x = binary_input(seed=3)
    y = torch.tensor([0, 3, 1])
    grads = {}
    for implementation in ("fused", "stepwise"):
        model = make_model(implementation=implementation, decode=decode, **shape)
        model.loss(model(x), y).backward()
        grads[implementation] = {name: p.grad.clone() for name, p in model.named_parameters()}
    assert grads["fused"].keys() == grads["stepwise"].keys()
    for name, g in grads["stepwise"].items():
        assert g.abs().max() > 0, f"{name} gets no gradient"
        torch.testing.assert_close(grads["fused"][name], g, rtol=1e-9, atol=1e-12, msg=name)


@pytest.mark.parametrize("b_init", [0.0, 0.1, 0.7])
def test_alif_sequence_gradients_for_every_input_and_output(b_init):
    """Direct check of the autograd Function: arbitrary upstream gradients on the spikes, from
    the initial adaptation state ``b = b_init`` (0, the authors' b0 = 0.1, a large one)."""
    g = torch.Generator().manual_seed(5)
    steps, batch, n = 20, 2, 6
    u = (torch.randn(steps, batch, n, generator=g, dtype=torch.float64) * 0.4 + 0.1).requires_grad_()
    w = (torch.randn(n, n, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    alpha = torch.rand(n, generator=g, dtype=torch.float64).mul(0.5).add(0.4).requires_grad_()
    rho = torch.rand(n, generator=g, dtype=torch.float64).mul(0.2).add(0.75).requires_grad_()
    upstream = torch.randn(steps, batch, n, generator=g, dtype=torch.float64)

    params = alif.Parameters(alpha, rho, 0.1, 1.84, b_init)
    z, v, th = alif.sequence(u, params, w_rec=w)
    fused = torch.autograd.grad((z * upstream).sum(), (u, w, alpha, rho))

    zero = torch.zeros(batch, n, dtype=torch.float64)
    b = torch.full((batch, n), b_init, dtype=torch.float64)
    state = alif.State(zero, b, zero)
    zs, vs, ths = [], [], []
    for t in range(steps):
        z_t, state = alif.step(u[t] + state.z @ w.t(), state, params)
        zs.append(z_t), vs.append(state.v), ths.append(alif.threshold(state, params))
    reference = torch.autograd.grad((torch.stack(zs) * upstream).sum(), (u, w, alpha, rho))

    assert 0 < z.mean() < 0.7
    torch.testing.assert_close(z, torch.stack(zs), rtol=0, atol=0)
    torch.testing.assert_close(v, torch.stack(vs))
    torch.testing.assert_close(th, torch.stack(ths))
    for a, b, name in zip(fused, reference, ("u", "w_rec", "alpha", "rho")):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)
    if b_init:  # the initial state matters: it raises the first thresholds
        torch.testing.assert_close(th[0], 0.1 + 1.84 * rho.detach() * b_init * torch.ones(batch, 1, dtype=torch.float64))


@pytest.mark.parametrize("recurrent", [True, False])
def test_lif_sequence_gradients_for_every_input_and_output(recurrent):
    """The LIF kernel against autograd through :func:`lif.step`, arbitrary upstream gradients."""
    g = torch.Generator().manual_seed(6)
    steps, batch, n = 20, 2, 6
    u = (torch.randn(steps, batch, n, generator=g, dtype=torch.float64) * 0.4 + 0.1).requires_grad_()
    w = (torch.randn(n, n, generator=g, dtype=torch.float64) * 0.5).requires_grad_() if recurrent else None
    alpha = torch.rand(n, generator=g, dtype=torch.float64).mul(0.5).add(0.4).requires_grad_()
    upstream = torch.randn(steps, batch, n, generator=g, dtype=torch.float64)
    inputs = (u, w, alpha) if recurrent else (u, alpha)

    params = lif.Parameters(alpha, 0.1)
    z, v, th = lif.sequence(u, params, w_rec=w)
    fused = torch.autograd.grad((z * upstream).sum(), inputs)
    state, zs, vs = lif.initial_state(params, u[0]), [], []
    for t in range(steps):
        z_t, state = lif.step(u[t] + state.z @ w.t() if recurrent else u[t], state, params)
        zs.append(z_t), vs.append(state.v)
    reference = torch.autograd.grad((torch.stack(zs) * upstream).sum(), inputs)

    assert 0 < z.mean() < 0.7
    torch.testing.assert_close(z, torch.stack(zs), rtol=0, atol=0)
    torch.testing.assert_close(v, torch.stack(vs))
    assert (th == 0.1).all()
    for a, b in zip(fused, reference):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_lif_is_alif_without_adaptation_whatever_b_init():
    """LIF = ALIF with beta = 0, for any initial adaptation state (LIF has none)."""
    g = torch.Generator().manual_seed(6)
    u = (torch.randn(15, 2, 5, generator=g, dtype=torch.float64) * 0.4 + 0.1).requires_grad_()
    alpha = torch.full((5,), 0.8, dtype=torch.float64, requires_grad=True)
    rho = torch.full((5,), 0.9, dtype=torch.float64)
    expected = lif.sequence(u, lif.Parameters(alpha, 0.1))
    for b_init in (0.0, 0.3):
        for a, b in zip(alif.sequence(u, alif.Parameters(alpha, rho, 0.1, 0.0, b_init)), expected):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_registry_names_modules_and_rejects_unknown_types():
    assert NEURONS == tuple(neurons.NAMES) == ("alif", "lif")
    assert neurons.get("alif") is alif and neurons.get("lif") is lif
    with pytest.raises(ValueError, match="unknown neuron type 'izhikevich'; choose one of alif, lif"):
        neurons.get("izhikevich")
    for name in NEURONS:  # every module has the uniform interface
        module = neurons.get(name)
        assert module.NAME == name
        for part in neurons.INTERFACE:
            assert hasattr(module, part), f"{name} lacks {part}"
        assert isinstance(module.Cell(module.parameters(alpha=None, rho=None, b0=0.1, beta=0.0)), torch.nn.Module)


@pytest.mark.parametrize("neuron", NEURONS)
def test_cell_steps_like_the_step_function(neuron):
    module = neurons.get(neuron)
    g = torch.Generator().manual_seed(8)
    alpha = torch.full((4,), 0.7, dtype=torch.float64)
    params = module.parameters(alpha=alpha, rho=torch.full((4,), 0.9, dtype=torch.float64), b0=0.1, beta=1.84)
    cell = module.Cell(params)
    currents = torch.rand(10, 3, 4, generator=g, dtype=torch.float64)
    state = expected_state = None
    for t, current in enumerate(currents):
        z, state = cell(current, state)
        if expected_state is None:
            expected_state = module.initial_state(params, current)
        expected_z, expected_state = module.step(current, expected_state, params)
        torch.testing.assert_close(z, expected_z, rtol=0, atol=0)
        for a, b in zip(state, expected_state):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert type(state) is module.State


@pytest.mark.parametrize("implementation", ["fused", "stepwise"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_stepping_equals_the_whole_sequence(shape, implementation):
    """SRNN.step T times (a live stream, bin by bin) = forward() on the whole sequence: every
    spike of every layer at every step, and the readout."""
    model = make_model(implementation=implementation, **shape)
    x = binary_input()
    with torch.no_grad():
        out = model(x, record=True)
        state = model.initial_state(x.shape[0])
        for t in range(x.shape[1]):
            o, state = model.step(x[:, t], state)
            for layer_state, spikes in zip(state.layers, out.spikes):
                np.testing.assert_array_equal(layer_state.z.numpy(), spikes[:, t].numpy())  # every spike
            for layer_state, record in zip(state.layers, out.records):
                np.testing.assert_allclose(layer_state.v.numpy(), record.v[:, t].numpy(), rtol=0, atol=1e-12)
            np.testing.assert_allclose(o.numpy(), out.readout[:, t].numpy(), rtol=0, atol=1e-12)
        o_first, _ = model.step(x[:, 0])  # state=None starts from the initial state
        np.testing.assert_array_equal(o_first.numpy(), model.step(x[:, 0], model.initial_state(3))[0].numpy())
    with pytest.raises(ValueError, match=r"\[batch, 12\]"):
        model.step(x[:, 0, :11])


def reference_surrogate(x: np.ndarray) -> np.ndarray:
    """0.5 * [1.15 G(x; 0, 0.5) - 0.15 G(x; 0.5, 3) - 0.15 G(x; -0.5, 3)], G the normal density."""

    def G(x, mu, sigma):
        return np.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)

    return 0.5 * (1.15 * G(x, 0, 0.5) - 0.15 * G(x, 0.5, 3) - 0.15 * G(x, -0.5, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_surrogate_gradient_is_the_multi_gaussian(dtype):
    points = np.concatenate([np.linspace(-12, 12, 241), [0.0, 1e-7, -1e-7, 50.0, -80.0, 1e4]])
    x = torch.tensor(points, dtype=dtype, requires_grad=True)
    z = multi_gaussian_surrogate(x)
    np.testing.assert_array_equal(z.detach().numpy(), (points > 0).astype(float))  # H(0) = 0
    (grad,) = torch.autograd.grad(z, x, torch.ones_like(z))
    tol = 1e-6 if dtype == torch.float32 else 1e-14
    np.testing.assert_allclose(grad.numpy(), reference_surrogate(points), rtol=0, atol=tol)
    assert torch.isfinite(multi_gaussian_derivative(torch.tensor([float("inf"), -float("inf")], dtype=dtype))).all()
    # shape facts: peak at 0, negative side lobes
    assert reference_surrogate(np.array([0.0]))[0] == pytest.approx(0.5 * (1.15 / (0.5 * math.sqrt(2 * math.pi)) - 0.3 * math.exp(-1 / 72) / (3 * math.sqrt(2 * math.pi))))
    assert grad.numpy()[np.abs(points - 2.0).argmin()] < 0


def test_leaky_integrate_gradcheck_and_steps():
    g = torch.Generator().manual_seed(2)
    current = torch.randn(9, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor([0.3, 0.8, 0.95], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(leaky_integrate, (current, alpha))
    o = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(9):
        o = leaky_readout_step(current[t], o, alpha)
        torch.testing.assert_close(leaky_integrate(current, alpha)[t], o)


@pytest.mark.parametrize("density", [0.02, 0.3])
def test_spike_linear_sparse_and_dense_agree_and_gradcheck(density):
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(6, 3, 40, generator=g) < density).double() * torch.randint(1, 4, (6, 3, 40), generator=g)
    x.requires_grad_()
    w = torch.randn(5, 40, generator=g, dtype=torch.float64, requires_grad=True)
    dense = spike_linear(x, w, sparse=False)
    sparse = spike_linear(x, w, sparse=True)
    torch.testing.assert_close(sparse, dense)
    upstream = torch.randn_like(dense)
    torch.testing.assert_close(
        torch.autograd.grad((sparse * upstream).sum(), (x, w)), torch.autograd.grad((dense * upstream).sum(), (x, w))
    )
    assert torch.autograd.gradcheck(lambda w_: spike_linear(x.detach(), w_, sparse=True), (w,))


def test_time_constants_are_kept_in_range():
    model = make_model()
    layer = model.layers[0]
    with torch.no_grad():
        layer.tau_m[0] = -5.0  # an optimiser step out of range
        layer.tau_adp[1] = 1e9
    alpha, rho = layer.decays()
    assert torch.all((alpha > 0) & (alpha < 1)) and torch.all((rho > 0) & (rho < 1))
    assert alpha[0].item() == pytest.approx(math.exp(-1.0))  # clamped to tau_min = 1 step
    model.constrain_()
    assert layer.tau_m[0] == 1.0 and layer.tau_adp[1] == layer.tau_adp_bounds[1]


def test_lif_has_no_adaptation_parameters():
    model = make_model(neuron="lif")
    names = {n for n, _ in model.named_parameters()}
    assert not any("tau_adp" in n for n in names)
    assert {n for n, _ in make_model().named_parameters()} - names == {"layers.0.tau_adp"}
    assert not any(n.endswith("bias") for n in names)  # no biases anywhere


def test_parameter_groups_partition_the_parameters():
    model = make_model(hidden=(7, 5), feedforward=6)
    taus, weights = model.time_constant_parameters(), model.weight_parameters()
    assert len(taus) == 3 * 2 + 1 and len(taus) + len(weights) == len(list(model.parameters()))


def test_hardware_parameters():
    model = make_model(decode="per_step")
    params = model.hardware_parameters()
    layer = model.layers[0]
    assert params["w_in"].shape == (9, 12) and params["w_rec"].shape == (9, 9) and params["w_out"].shape == (4, 9)
    assert all(params[k].dtype == np.float64 for k in ("w_in", "w_rec", "w_out", "alpha", "rho", "alpha_out"))
    np.testing.assert_allclose(params["alpha"], np.exp(-1 / layer.tau_m.detach().numpy()))
    np.testing.assert_allclose(params["rho"], np.exp(-1 / layer.tau_adp.detach().numpy()))
    np.testing.assert_allclose(params["alpha_out"], np.exp(-1 / model.readout.tau.detach().numpy()))
    assert (params["b0"], params["beta"], params["decode"], params["adaptive"]) == (0.1, 1.84, "mean", True)
    lif = make_model(neuron="lif", decode="last").hardware_parameters()
    assert (lif["beta"], lif["decode"], lif["adaptive"]) == (0.0, "last", False) and not lif["rho"].any()
    for shape in (dict(feedforward=6), dict(hidden=(5, 5))):
        with pytest.raises(ValueError, match="exactly one recurrent"):
            make_model(**shape).hardware_parameters()


def test_decoding_and_loss():
    readout = torch.randn(2, 5, 3, dtype=torch.float64)
    y = torch.tensor([2, 0])
    torch.testing.assert_close(decode_scores(readout, "last"), readout[:, -1])
    torch.testing.assert_close(decode_scores(readout, "mean"), readout.mean(1))
    per_step = torch.stack([torch.nn.functional.cross_entropy(readout[:, t], y) for t in range(5)]).mean()
    torch.testing.assert_close(readout_loss(readout, y, "per_step"), per_step)
    with pytest.raises(ValueError):
        decode_scores(readout, "max")


def test_model_rejects_wrong_input_and_settings():
    model = make_model()
    with pytest.raises(ValueError, match=r"\[batch, T, 12\]"):
        model(torch.zeros(2, 5, 11, dtype=torch.float64))
    with pytest.raises(ValueError, match="implementation"):
        model.implementation = "cuda-graph"


def test_config_round_trip_and_validation(tmp_path):
    config = RunConfig().replace(model={"hidden": [16, 8], "neuron": "lif"}, frames={"size": 16}, train={"epochs": 3})
    assert config.model.n_inputs == 512 and config.model.hidden == (16, 8)
    config.save(tmp_path / "c.json")
    assert RunConfig.load(tmp_path / "c.json") == config
    with pytest.raises(ConfigError, match="neuron"):
        config.replace(model={"neuron": "izhikevich"})
    with pytest.raises(ConfigError, match="unknown model fields"):
        config.replace(model={"hiden": [3]})
    with pytest.raises(ConfigError, match="size"):
        config.replace(frames={"size": 20})
    with pytest.raises(ConfigError, match="n_inputs"):
        config.replace(model={"n_inputs": 7})


def test_fused_time_loops_on_one_thread_same_results(monkeypatch):
    """The time loops drop to one intra-op thread and give the threads back; same values as
    with the loops on all threads."""
    g = torch.Generator().manual_seed(7)
    u = (torch.randn(12, 3, 8, generator=g, dtype=torch.float64) * 0.4 + 0.1).requires_grad_()
    w = (torch.randn(8, 8, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    alpha = torch.full((8,), 0.8, dtype=torch.float64, requires_grad=True)
    rho = torch.full((8,), 0.9, dtype=torch.float64, requires_grad=True)
    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    results = []
    try:
        real(2)
        for limit in (kernel.SERIAL_STEP_LIMIT, 0):
            monkeypatch.setattr(kernel, "SERIAL_STEP_LIMIT", limit)
            z, v, th = alif.sequence(u, alif.Parameters(alpha, rho), w_rec=w)
            results.append((z, v, *torch.autograd.grad(z.sum() + 0.1 * (z * v.detach()).sum(), (u, w, alpha, rho))))
            assert torch.get_num_threads() == 2
    finally:
        real(1)
    assert seen == [1, 2, 1, 2]  # forward and backward of the first run only
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
