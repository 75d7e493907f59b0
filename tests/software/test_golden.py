"""The golden integer model against hand-worked examples and against its scalar twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gesture_snn.golden import STATE_VARIABLES, predict, run_golden
from gesture_snn.spec.intnet import IntegerNetwork, random_network
from reference_scalar import run_scalar


def one_neuron(**changes) -> IntegerNetwork:
    """n_in = n_rec = n_out = 1, D = 2 (decays in quarters), default widths otherwise."""
    params = dict(
        w_in=[[5]], w_rec=[[0]], w_out=[[1]], alpha=[2], rho=[2], adapt_inc=[4], threshold_base=[3],
        alpha_out=[2], decode="mean", decay_bits=2,
    )
    params.update(changes)
    return IntegerNetwork(**params)


def column(trace, name):
    """Values of sample 0, unit 0, over time."""
    return getattr(trace, name)[0, :, 0].tolist()


def assert_matches_scalar(net, x):
    """Every variable at every step of every sample, the class and the saturation counts."""
    trace = run_golden(net, x)
    total = dict.fromkeys(trace.saturation, 0)
    for b, sample in enumerate(x):
        reference = run_scalar(net, sample)
        for name in STATE_VARIABLES:
            np.testing.assert_array_equal(getattr(trace, name)[b], np.array(reference[name]), err_msg=f"{name}, sample {b}")
        assert trace.prediction[b] == reference["prediction"]
        for key, count in reference["saturation"].items():
            total[key] += count
    assert dict(trace.saturation) == total
    return trace


# --- hand-worked examples ------------------------------------------------------------------------


def test_one_neuron_by_hand():
    # D = 2, alpha = rho = alpha_out = 2/4, so decay(x) = (2x + 2) >> 2 = floor(x/2 + 1/2).
    # w_in = 5, w_rec = 0, w_out = 1, b0 = 3, c = 4, decode "mean"; input 1, 1, 0, 1.
    # t=1: a = decay(0) + 0 = 0;  th = 3;  v = decay(0) + 5 = 5 > 3 -> z = 1;  o = 0 + 1 = 1;  s = 1
    # t=2: a = decay(0) + 4 = 4;  th = 7;  v = decay(5) + 5 - 7 = 3 + 5 - 7 = 1, not > 7 -> z = 0;
    #      o = decay(1) = (2 + 2) >> 2 = 1;  s = 2
    # t=3: a = decay(4) = 10 >> 2 = 2;  th = 5;  v = decay(1) + 0 = 1 -> z = 0;  o = 1;  s = 3
    # t=4: a = decay(2) = 6 >> 2 = 1;  th = 4;  v = decay(1) + 5 = 6 > 4 -> z = 1;  o = 1 + 1 = 2;  s = 5
    net = one_neuron()
    trace = run_golden(net, np.array([[[1], [1], [0], [1]]], np.uint8))
    assert column(trace, "a") == [0, 4, 2, 1]
    assert column(trace, "th") == [3, 7, 5, 4]
    assert column(trace, "v") == [5, 1, 1, 6]
    assert column(trace, "z") == [1, 0, 0, 1]
    assert column(trace, "o") == [1, 1, 1, 2]
    assert column(trace, "s") == [1, 2, 3, 5]
    assert trace.prediction.tolist() == [0]
    assert trace.saturation == {"a": 0, "v": 0, "o": 0, "s": 0}


def test_decay_rounds_half_up_and_keeps_minus_one():
    # w_in = -5, one input event then silence. alpha = 2/4: decay(x) = (2x + 2) >> 2:
    #   -5 -> (-10 + 2) >> 2 = -2 (-2.5 rounds up to -2) -> (-4 + 2) >> 2 = -1 -> (-2 + 2) >> 2 = 0.
    # alpha = 3/4: decay(x) = (3x + 2) >> 2: -5 -> -13 >> 2 = -4 -> -10 >> 2 = -3 -> -7 >> 2 = -2
    #   -> -4 >> 2 = -1 -> -1 >> 2 = -1 (stays at -1, as the spec notes).
    x = np.array([[[1], [0], [0], [0], [0], [0]]], np.uint8)
    assert column(run_golden(one_neuron(w_in=[[-5]]), x), "v") == [-5, -2, -1, 0, 0, 0]
    assert column(run_golden(one_neuron(w_in=[[-5]], alpha=[3]), x), "v") == [-5, -4, -3, -2, -1, -1]


def test_membrane_saturates_and_strict_threshold():
    # membrane_bits = 4: v in [-8, 7]. w_in = 7 << shift_in 1 = 14 per event -> v = sat(14) = 7,
    # one saturation event per step. threshold_base = 7 (its maximum) and v = 7 is not > 7: no spike.
    net = one_neuron(w_in=[[7]], shift_in=1, membrane_bits=4, weight_bits=4, threshold_base=[7], adapt_inc=[0])
    trace = run_golden(net, np.ones((1, 3, 1), np.uint8))
    assert column(trace, "v") == [7, 7, 7]
    assert column(trace, "z") == [0, 0, 0]
    assert trace.saturation["v"] == 3


def test_readout_and_score_saturate():
    # readout_bits = score_bits = 3: o, s in [-4, 3]. Neuron spikes every step (threshold 0, strong
    # input), w_out = 3 and alpha_out = 3/4 (D = 2): o = 3, then decay(3) + 3 = (9+2)>>2 + 3 = 5 -> 3.
    # s ("mean"): 3, then 3 + 3 = 6 -> 3.
    net = one_neuron(w_in=[[100]], threshold_base=[0], adapt_inc=[0], w_out=[[3]], alpha_out=[3],
                     readout_bits=3, score_bits=3)
    trace = run_golden(net, np.ones((1, 3, 1), np.uint8))
    assert column(trace, "z") == [1, 1, 1]
    assert column(trace, "o") == [3, 3, 3]
    assert column(trace, "s") == [3, 3, 3]
    assert trace.saturation["o"] == 2 and trace.saturation["s"] == 2


def test_adaptation_saturates():
    # adaptation_bits = 2: a in [0, 3]; c = 3, rho = 3/4 (D = 2). Neuron spikes every step.
    # a: 0, then decay(0) + 3 = 3, then decay(3) + 3 = (9+2)>>2 + 3 = 5 -> 3 (saturation).
    net = one_neuron(w_in=[[127]], shift_in=8, threshold_base=[0], adapt_inc=[3], rho=[3], adaptation_bits=2)
    trace = run_golden(net, np.ones((1, 3, 1), np.uint8))
    assert column(trace, "a") == [0, 3, 3]
    assert trace.saturation["a"] == 1
    assert_matches_scalar(net, np.ones((1, 3, 1), np.uint8))


def test_new_spikes_are_used_only_from_the_next_step():
    # Two neurons; neuron 0 gets input, neuron 1 only the recurrent weight from neuron 0 (w = 10).
    # Step 1: neuron 0 spikes; neuron 1 must not see it before step 2.
    net = IntegerNetwork(
        w_in=[[10], [0]], w_rec=[[0, 0], [10, 0]], w_out=[[1, 0], [0, 1]], alpha=[0, 0], rho=[0, 0],
        adapt_inc=[0, 0], threshold_base=[5, 5], alpha_out=[0, 0], decode="last", decay_bits=4,
    )
    trace = run_golden(net, np.array([[[1], [0]]], np.uint8))
    assert trace.z[0].tolist() == [[1, 0], [0, 1]]
    assert trace.v[0].tolist() == [[10, 0], [-5, 10]]  # step 2: v0 = 0 - th (reset), v1 = 10 from the spike


@pytest.mark.parametrize("decode", ["last", "mean"])
def test_ties_go_to_the_lowest_class(decode):
    rng = np.random.default_rng(1)
    x = (rng.random((4, 5, 3)) < 0.7).astype(np.uint8)
    base = random_network(rng, 3, 4, 3, decode=decode)
    # all-zero readout: every score ties at 0 -> class 0
    silent = base.replace(w_out=np.zeros((3, 4), np.int64))
    assert run_golden(silent, x).prediction.tolist() == [0, 0, 0, 0]
    # classes 1 and 2 identical and above class 0 whenever anything spikes -> class 1, never 2
    w_out = np.zeros((3, 4), np.int64)
    w_out[1:] = 5
    trace = assert_matches_scalar(base.replace(w_out=w_out, threshold_base=np.zeros(4, np.int64)), x)
    assert set(trace.prediction.tolist()) == {1}


# --- input checking ------------------------------------------------------------------------------


def test_rejects_non_binary_and_misshapen_input():
    net = one_neuron()
    with pytest.raises(ValueError, match=r"x\[0, 1, 0\] = 2 is not binary"):
        run_golden(net, np.array([[[1], [2]]]))
    with pytest.raises(ValueError, match=r"x\[0, 0, 0\] = 0.5 is not binary"):
        run_golden(net, np.array([[[0.5]]]))
    with pytest.raises(ValueError, match=r"shape \[B, T, n_in = 1\]"):
        run_golden(net, np.zeros((1, 3, 2), np.uint8))
    with pytest.raises(ValueError, match=r"shape"):
        run_golden(net, np.zeros((3, 1), np.uint8))
    with pytest.raises(ValueError, match="T = 0"):
        run_golden(net, np.zeros((1, 0, 1), np.uint8))
    # float 0/1 (what the data loader yields) and bool are accepted and equal
    x = np.array([[[1], [0], [1]]])
    assert run_golden(net, x.astype(np.float32)).v.tolist() == run_golden(net, x.astype(bool)).v.tolist()


# --- golden model == scalar twin ----------------------------------------------------------------


@st.composite
def networks(draw):
    """Small networks with every width small enough that saturation and ties happen often."""
    n_in, n_rec, n_out = (draw(st.integers(1, 6)) for _ in range(3))
    weight_bits = draw(st.integers(2, 8))
    decay_bits = draw(st.integers(1, 12))
    membrane_bits = draw(st.integers(4, 16))
    adaptation_bits = draw(st.integers(1, 16))
    readout_bits = draw(st.integers(2, 16))
    score_bits = draw(st.integers(readout_bits, readout_bits + 6))
    wmax, dmax = 2 ** (weight_bits - 1) - 1, 2 ** decay_bits - 1
    vmax, amax = 2 ** (membrane_bits - 1) - 1, 2 ** adaptation_bits - 1

    def values(lo, hi, corners, shape):
        element = st.one_of(st.sampled_from(corners), st.integers(lo, hi))
        n = int(np.prod(shape))
        return np.array(draw(st.lists(element, min_size=n, max_size=n)), np.int64).reshape(shape)

    weights = lambda shape: values(-wmax, wmax, [-wmax, 0, wmax], shape)  # noqa: E731
    decays = lambda n: values(0, dmax, [0, 1, 2 ** (decay_bits - 1), dmax], (n,))  # noqa: E731
    shift = st.one_of(st.integers(0, 3), st.integers(0, 15))
    return IntegerNetwork(
        w_in=weights((n_rec, n_in)),
        w_rec=weights((n_rec, n_rec)),
        w_out=weights((n_out, n_rec)),
        shift_in=draw(shift),
        shift_rec=draw(shift),
        alpha=decays(n_rec),
        rho=decays(n_rec),
        adapt_inc=values(0, amax, [0, 1, amax], (n_rec,)),
        threshold_base=values(0, vmax, [0, 1, min(vmax, 2 * wmax), vmax], (n_rec,)),
        alpha_out=decays(n_out),
        decode=draw(st.sampled_from(["last", "mean"])),
        weight_bits=weight_bits,
        decay_bits=decay_bits,
        membrane_bits=membrane_bits,
        adaptation_bits=adaptation_bits,
        readout_bits=readout_bits,
        score_bits=score_bits,
    )


@st.composite
def networks_and_inputs(draw):
    net = draw(networks())
    batch, steps = draw(st.integers(1, 3)), draw(st.integers(1, 10))
    density = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    x = (np.random.default_rng(seed).random((batch, steps, net.n_in)) < density).astype(np.uint8)
    return net, x


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks_and_inputs())
def test_golden_equals_scalar_on_generated_networks(case):
    net, x = case
    trace = assert_matches_scalar(net, x)
    for key, count in trace.saturation.items():
        if count:
            event(f"saturated {key}")
    scores = trace.scores
    if (scores == scores.max(axis=1, keepdims=True)).sum(axis=1).max() > 1:
        event("class tie")


def test_golden_equals_scalar_and_reaches_every_corner():
    """Seeded sweep over random networks with narrow widths: every saturation kind and ties occur."""
    rng = np.random.default_rng(2024)
    seen = dict.fromkeys(["a", "v", "o", "s", "tie", "spike"], 0)
    for _ in range(40):
        bits = dict(
            weight_bits=int(rng.integers(2, 9)),
            decay_bits=int(rng.integers(1, 13)),
            membrane_bits=int(rng.integers(4, 10)),
            adaptation_bits=int(rng.integers(1, 6)),
            readout_bits=int(rng.integers(2, 8)),
        )
        net = random_network(rng, int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.integers(1, 7)),
                             score_bits=bits["readout_bits"] + int(rng.integers(0, 3)), extreme=0.4, **bits)
        x = (rng.random((2, 8, net.n_in)) < rng.choice([0.2, 0.6, 1.0])).astype(np.uint8)
        trace = assert_matches_scalar(net, x)
        for key, count in trace.saturation.items():
            seen[key] += count > 0
        scores = trace.scores
        seen["tie"] += int(((scores == scores.max(axis=1, keepdims=True)).sum(axis=1) > 1).any())
        seen["spike"] += int(trace.z.any())
    assert all(seen.values()), seen


def test_wide_weights_take_the_exact_float64_and_int64_paths():
    # 16-bit weights on 600 inputs: sums up to 600 * 32767 > 2^24, so float32 would not be exact.
    rng = np.random.default_rng(3)
    net = random_network(rng, 600, 3, 2, weight_bits=16, membrane_bits=32, readout_bits=40, score_bits=48)
    x = (rng.random((1, 3, 600)) < 0.5).astype(np.uint8)
    assert_matches_scalar(net, x)


def test_predict_equals_run_golden_in_batches():
    rng = np.random.default_rng(4)
    net = random_network(rng, 20, 8, 4, membrane_bits=8)
    x = (rng.random((10, 6, 20)) < 0.3).astype(np.uint8)
    trace = run_golden(net, x)
    prediction, saturation = predict(net, x, batch_size=3)
    np.testing.assert_array_equal(prediction, trace.prediction)
    assert saturation == dict(trace.saturation)
