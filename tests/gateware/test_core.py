# amaranth: UnusedElaboratable=no
"""The neuron-core gateware against the golden model: every state of every step, cycle counts, refusals, export."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gesture_snn.golden import run_golden
from gesture_snn.spec.intnet import IntegerNetwork, random_network
from hdl.accumulator import EventAccumulator
from hdl.core import STEP_OVERHEAD_CYCLES, CycleModel, InputKind, NeuronCore, OutputKind
from hdl.sim import Mismatch, check_against_golden, compare
from networks import small_network


def expected_cycles(model: CycleModel, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The documented cycle formula for every step of x [B, T, n_in] with golden spikes z [B, T, n_rec]."""
    batch, steps, _ = x.shape
    cycles = np.zeros((batch, steps), np.int64)
    for b in range(batch):
        for t in range(steps):
            cycles[b, t] = model.step_cycles(
                input_events=int(x[b, t].sum()),
                previous_spikes=int(z[b, t - 1].sum()) if t else 0,
                spikes=int(z[b, t].sum()),
                last_step=t == steps - 1,
            )
    return cycles


def assert_bit_exact(net: IntegerNetwork, x: np.ndarray, lanes: int, readout_lanes: int | None = None):
    """Gateware == golden model at every step for every variable, and measured cycles == formula."""
    result = check_against_golden(net, x, run_golden, lanes=lanes, readout_lanes=readout_lanes)
    assert result.mismatch is None, str(result.mismatch)
    assert len(result.traces) == len(x)
    model = CycleModel(n_in=net.n_in, n_rec=net.n_rec, n_out=net.n_out, lanes=lanes,
                       readout_lanes=min(lanes, net.n_out) if readout_lanes is None else readout_lanes)
    measured = np.stack([trace.cycles for trace in result.traces])
    np.testing.assert_array_equal(measured, expected_cycles(model, x, result.golden.z))
    return result


@st.composite
def networks_and_inputs(draw):
    n_in = draw(st.integers(1, 6))
    n_rec = draw(st.integers(1, 8))
    n_out = draw(st.integers(1, 4))
    lanes = draw(st.sampled_from([d for d in range(1, n_rec + 1) if n_rec % d == 0]))
    readout_lanes = draw(st.integers(1, n_out))
    weight_bits = draw(st.integers(2, 8))
    readout_bits = draw(st.integers(2, 12))
    widths = dict(
        weight_bits=weight_bits,
        decay_bits=draw(st.integers(1, 12)),
        membrane_bits=draw(st.integers(2, 12)),
        adaptation_bits=draw(st.integers(1, 6)),
        readout_bits=readout_bits,
        score_bits=draw(st.integers(readout_bits, 16)),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    net = random_network(rng, n_in, n_rec, n_out, decode=draw(st.sampled_from(["last", "mean"])), **widths)
    batch, steps = draw(st.integers(1, 2)), draw(st.integers(1, 6))
    x = rng.random((batch, steps, n_in)) < draw(st.sampled_from([0.2, 0.5, 1.0]))
    return net, x, lanes, readout_lanes


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks_and_inputs())
def test_random_networks_are_bit_exact(case):
    net, x, lanes, readout_lanes = case
    result = assert_bit_exact(net, x, lanes, readout_lanes)
    for name, count in result.golden.saturation.items():
        if count:
            event(f"{name} saturates")
    scores = result.golden.s[:, -1]
    if any((row == row.max()).sum() > 1 for row in scores):
        event("class tie")



@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_every_variable_saturates(lanes):
    # Narrow state widths with strong shifted weights make a, v, o and s all hit their limits.
    net = small_network(shift_in=3, shift_rec=2, membrane_bits=5, adaptation_bits=2, readout_bits=4, score_bits=5,
                        adapt_inc=[3, 1, 0, 3])
    x = np.random.default_rng(lanes).random((2, 6, 3)) < 0.7
    result = assert_bit_exact(net, x, lanes)
    assert all(count > 0 for count in result.golden.saturation.values()), result.golden.saturation


@pytest.mark.parametrize("decode", ["last", "mean"])
def test_class_ties_go_to_the_lowest_index(decode):
    # Outputs 1 and 2 have identical weights and decays and beat output 0: their scores tie at
    # every step, and the class must be 1. Without any input every score is 0: class 0.
    net = small_network(w_out=[[-1, -1, -1, -1], [3, 1, 2, 5], [3, 1, 2, 5]], alpha_out=[1, 2, 2], decode=decode)
    x = np.zeros((2, 4, 3), bool)
    x[0, :, :] = True
    result = assert_bit_exact(net, x, lanes=2, readout_lanes=1)
    assert result.golden.s[0, -1, 1] == result.golden.s[0, -1, 2] > result.golden.s[0, -1, 0]
    assert [trace.prediction for trace in result.traces] == [1, 0]


def test_back_pressure_gaps_and_ignored_items():
    """Random output stalls, input gaps, out-of-range indices and reserved kinds change nothing."""
    from amaranth.sim import Simulator

    net = small_network()
    x = np.random.default_rng(7).random((3, 5, 3)) < 0.6
    golden = run_golden(net, x)
    core = NeuronCore(network=net, lanes=2)
    index_bits = len(core.inputs.payload.index)
    received = []

    async def feeder(ctx):
        rng = np.random.default_rng(1)
        raw = core.inputs.payload.as_value()
        for b in range(len(x)):
            for t in range(x.shape[1]):
                items = [(InputKind.EVENT.value, int(i)) for i in np.flatnonzero(x[b, t])]
                items += [(InputKind.EVENT.value, 3), (3, 0)]  # out of range (n_in = 3), reserved kind
                rng.shuffle(items)
                marker = InputKind.END_OF_SAMPLE if t == x.shape[1] - 1 else InputKind.END_OF_STEP
                items.append((marker.value, 0))
                for kind, index in items:
                    for _ in range(int(rng.integers(0, 3))):  # idle cycles
                        ctx.set(core.inputs.valid, 0)
                        await ctx.tick()
                    ctx.set(raw, kind | (index << 2))
                    ctx.set(core.inputs.valid, 1)
                    await ctx.tick().until(core.inputs.ready)
                ctx.set(core.inputs.valid, 0)

    async def consumer(ctx):
        rng = np.random.default_rng(2)
        classes = 0
        while classes < len(x):
            ctx.set(core.outputs.ready, bool(rng.random() < 0.4))
            _, _, valid, ready, item = await ctx.tick().sample(core.outputs.valid, core.outputs.ready, core.outputs.payload)
            if valid and ready:
                received.append((item.kind, int(item.index)))
                classes += item.kind == OutputKind.CLASS

    assert index_bits == 2  # index 3 is representable but out of range
    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(feeder)
    sim.add_testbench(consumer)
    sim.run()

    expected = []
    for b in range(len(x)):
        for t in range(x.shape[1]):
            expected += [(OutputKind.SPIKE, int(j)) for j in np.flatnonzero(golden.z[b, t])]
            expected.append((OutputKind.END_OF_STEP, 0))
        expected.append((OutputKind.CLASS, int(golden.prediction[b])))
    assert [(kind, index if kind != OutputKind.END_OF_STEP else 0) for kind, index in received] == expected


def test_compare_reports_the_first_difference():
    net = small_network()
    x = np.ones((2, 3, 3), bool)
    result = check_against_golden(net, x, run_golden, lanes=4)
    assert result.mismatch is None
    golden = result.golden
    v = golden.v.copy()
    v[1, 2, 3] += 1
    s = golden.s.copy()
    s[1, 2, 0] += 1  # later in spec order than v: not the first
    tampered = dataclasses.replace(golden, v=v, s=s)
    mismatch = compare(tampered, result.traces)
    assert mismatch == Mismatch(sample=1, step=2, variable="v", index=3, expected=int(v[1, 2, 3]),
                                actual=int(golden.v[1, 2, 3]))
    assert str(mismatch).startswith("sample 1, step 2, neuron 3, v: expected ")
    prediction = golden.prediction.copy()
    prediction[0] += 1
    class_mismatch = compare(dataclasses.replace(golden, prediction=prediction), result.traces)
    assert (class_mismatch.sample, class_mismatch.variable, class_mismatch.index) == (0, "class", None)


def test_cycle_formula_by_hand():
    model = CycleModel(n_in=512, n_rec=128, n_out=11, lanes=8, readout_lanes=3)
    assert (model.blocks, model.readout_blocks) == (16, 4)
    # (E + P) * 16 + S * 4 + 128 + 11 + 20
    assert STEP_OVERHEAD_CYCLES == 20
    assert model.step_cycles(input_events=100, previous_spikes=10, spikes=12) == 110 * 16 + 48 + 159
    assert model.worst_case_step_cycles() == (512 + 128) * 16 + 128 * 4 + 159 + 1


@pytest.mark.parametrize(
    "lanes, message",
    [(3, "lanes = 3 does not divide n_rec = 4"), (8, "lanes = 8 exceeds n_rec = 4"), (0, "lanes = 0"),
     (True, "lanes = True"), (2.0, "lanes = 2.0")],
)
def test_impossible_lanes_are_refused(lanes, message):
    with pytest.raises(ValueError, match=message):
        NeuronCore(network=small_network(), lanes=lanes)


@pytest.mark.parametrize("readout_lanes", [0, 4, 1.5])
def test_impossible_readout_lanes_are_refused(readout_lanes):
    with pytest.raises(ValueError, match=f"readout_lanes = {readout_lanes}; expected an integer in \\[1, n_out = 3\\]"):
        NeuronCore(network=small_network(), lanes=2, readout_lanes=readout_lanes)


def test_other_refusals():
    with pytest.raises(TypeError, match="IntegerNetwork"):
        NeuronCore(network=object())
    with pytest.raises(ValueError, match="n_rec = 0"):
        CycleModel(n_in=3, n_rec=0, n_out=1, lanes=1, readout_lanes=1)
    common = dict(n_targets=4, n_columns=2, lanes=2, weight_bits=4, acc_bits=8)
    with pytest.raises(ValueError, match="3 weight words given; expected n_columns \\* blocks = 2 \\* 2 = 4"):
        EventAccumulator(weights=[0] * 3, **common)
    with pytest.raises(ValueError, match="column_shifts"):
        EventAccumulator(weights=[0] * 4, column_shifts=((1, 0),), **common)
    with pytest.raises(ValueError, match="inside acc_bits = 8"):
        EventAccumulator(weights=[0] * 4, column_shifts=((0, 5),), **common)
    with pytest.raises(ValueError, match="unsigned 8-bit"):
        EventAccumulator(weights=[256] * 4, **common)


def test_verilog_export():
    from amaranth.back import verilog

    core = NeuronCore(network=small_network(), lanes=2)
    text = verilog.convert(core, name="neuron_core")
    assert "module neuron_core" in text
    for port in ("inputs__valid", "inputs__ready", "inputs__payload", "outputs__valid", "outputs__payload"):
        assert port in text


def test_hardware_preset_sized_network():
    # The hardware preset's shape (16 x 16 x 2 -> 128 -> 11) at 8 lanes, random weights, a few steps.
    rng = np.random.default_rng(3)
    net = random_network(rng, 512, 128, 11, shift_in=2, shift_rec=2, decode="mean")
    x = rng.random((2, 3, 512)) < 0.1
    result = assert_bit_exact(net, x, lanes=8, readout_lanes=1)
    assert result.golden.z.sum() > 0
