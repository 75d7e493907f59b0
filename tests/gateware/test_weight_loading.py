# amaranth: UnusedElaboratable=no
"""A NeuronCore with weight_loading=True: weights written through its port, bit-exact with the golden model."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesture_snn.golden import run_golden
from gesture_snn.spec.intnet import IntegerNetwork, random_network
from gesture_snn.spec.memory import weight_memory_words
from hdl.accumulator import RUNTIME_LOADED
from hdl.core import CycleModel, InputKind, NeuronCore, OutputKind
from hdl.sim import check_against_golden, load_weights
from networks import small_network


def assert_loaded_core_is_bit_exact(net: IntegerNetwork, x: np.ndarray, lanes: int, readout_lanes: int):
    result = check_against_golden(net, x, run_golden, lanes=lanes, readout_lanes=readout_lanes, weight_loading=True)
    assert result.mismatch is None, str(result.mismatch)
    assert len(result.traces) == len(x)
    model = CycleModel(n_in=net.n_in, n_rec=net.n_rec, n_out=net.n_out, lanes=lanes, readout_lanes=readout_lanes)
    for b, trace in enumerate(result.traces):  # loading the weights adds nothing to any step
        expected = [model.step_cycles(input_events=int(x[b, t].sum()),
                                      previous_spikes=int(result.golden.z[b, t - 1].sum()) if t else 0,
                                      spikes=int(result.golden.z[b, t].sum()), last_step=t == x.shape[1] - 1)
                    for t in range(x.shape[1])]
        assert trace.cycles.tolist() == expected
    return result


@st.composite
def networks_and_inputs(draw):
    n_in, n_rec, n_out = draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.integers(1, 4))
    lanes = draw(st.sampled_from([d for d in range(1, n_rec + 1) if n_rec % d == 0]))
    readout_lanes = draw(st.integers(1, n_out))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    net = random_network(rng, n_in, n_rec, n_out, weight_bits=draw(st.integers(2, 8)), membrane_bits=12,
                         adaptation_bits=6, readout_bits=12, score_bits=16)
    x = rng.random((draw(st.integers(1, 2)), draw(st.integers(1, 5)), n_in)) < draw(st.sampled_from([0.3, 1.0]))
    return net, x, lanes, readout_lanes


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks_and_inputs())
def test_loaded_weights_are_bit_exact(case):
    net, x, lanes, readout_lanes = case
    assert_loaded_core_is_bit_exact(net, x, lanes, readout_lanes)


def test_hardware_preset_sized_network_loaded_through_the_port():
    # 512 -> 128 -> 11 at 8 lanes and 1 readout lane, the UP5K configuration: 10240 + 1408 words.
    rng = np.random.default_rng(11)
    net = random_network(rng, 512, 128, 11, shift_in=2, shift_rec=2, decode="mean")
    x = rng.random((1, 2, 512)) < 0.1
    result = assert_loaded_core_is_bit_exact(net, x, lanes=8, readout_lanes=1)
    assert result.golden.z.sum() > 0



def test_port_geometry_and_contents():
    net = small_network()
    core = NeuronCore(network=net, lanes=2, readout_lanes=2, weight_loading=True)
    # (n_in + n_rec) * n_rec / L words of L weights; n_rec * ceil(n_out / RL) words of RL weights.
    assert core.weight_depths == ((3 + 4) * 2, 4 * 2)
    assert core.weight_word_bits == (2 * 4, 2 * 4)
    layout = core.weight_write.payload.shape()
    assert (layout["memory"].shape.width, layout["addr"].shape.width, layout["data"].shape.width) == (1, 4, 8)
    synaptic, readout = weight_memory_words(net, lanes=2, readout_lanes=2)
    assert core.weight_depths == (len(synaptic), len(readout))
    for unit in (core.synapses, core.readout_synapses):
        assert unit.weights.attrs == {RUNTIME_LOADED: 1}
        assert list(unit.weights.init) == [None] * unit.weights.depth  # no initial contents given
    fixed = NeuronCore(network=net, lanes=2)
    assert "weight_write" not in fixed.signature.members
    assert RUNTIME_LOADED not in fixed.synapses.weights.attrs
    for elaboratable in (core, fixed):
        Fragment.get(elaboratable, None)  # elaborates (and so uses) every unit


def test_refusals():
    net = small_network()
    with pytest.raises(TypeError, match="weight_loading must be a bool"):
        NeuronCore(network=net, weight_loading=1)

    core = NeuronCore(network=net, lanes=2)
    errors = []

    async def testbench(ctx):
        try:
            await load_weights(ctx, core)
        except ValueError as exc:
            errors.append(str(exc))

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert errors and "weight_loading=False" in errors[0]

    loading = NeuronCore(network=net, lanes=2, weight_loading=True)
    other = small_network(w_in=[[1, 2, 3, 4]] * 4, w_rec=[[0] * 4] * 4)  # n_in = 4: different depths

    async def wrong_network(ctx):
        try:
            await load_weights(ctx, loading, other)
        except ValueError as exc:
            errors.append(str(exc))

    sim = Simulator(loading)
    sim.add_clock(1e-6)
    sim.add_testbench(wrong_network)
    sim.run()
    assert "do not match the core's (14 and 8 words of 4-bit weights)" in errors[1]


async def _feed_sample(ctx, core, sample) -> list:
    """One sample [T, n_in] into the core (outputs always ready); the output items (kind, index)."""
    received = []
    raw = core.inputs.payload.as_value()
    for t in range(len(sample)):
        marker = InputKind.END_OF_SAMPLE if t == len(sample) - 1 else InputKind.END_OF_STEP
        items = [InputKind.EVENT.value | int(i) << 2 for i in np.flatnonzero(sample[t])] + [marker.value]
        for item in items:
            ctx.set(raw, item)
            ctx.set(core.inputs.valid, 1)
            await ctx.tick().until(core.inputs.ready)
        ctx.set(core.inputs.valid, 0)
        while True:
            _, _, valid, kind, index = await ctx.tick().sample(core.outputs.valid, core.outputs.payload.kind,
                                                               core.outputs.payload.index)
            if valid:
                received.append((OutputKind(kind), int(index)))
                if kind == OutputKind.CLASS or (kind == OutputKind.END_OF_STEP and t < len(sample) - 1):
                    break
    return received


def _expected_items(golden, b):
    items = []
    for t in range(golden.z.shape[1]):
        items += [(OutputKind.SPIKE, int(j)) for j in np.flatnonzero(golden.z[b, t])]
        items.append((OutputKind.END_OF_STEP, 0))
    items.append((OutputKind.CLASS, int(golden.prediction[b])))
    return items


def test_ready_only_between_samples_and_reloading_changes_the_network():
    """Ready after reset; not once a sample's first input is offered, until its class; a write
    offered together with that input goes first; new weights between samples take effect."""
    first = small_network()
    rng = np.random.default_rng(5)
    second = first.replace(w_in=rng.integers(-7, 8, (4, 3)), w_rec=rng.integers(-7, 8, (4, 4)),
                           w_out=rng.integers(-7, 8, (3, 4)))
    x = rng.random((2, 4, 3)) < 0.6
    core = NeuronCore(network=first, lanes=2, readout_lanes=1, weight_loading=True)
    received, ready_during_sample, log = [], [], []

    async def testbench(ctx):
        ctx.set(core.outputs.ready, 1)
        assert ctx.get(core.weight_write.ready)
        await load_weights(ctx, core)
        received.append(await _feed_sample(ctx, core, x[0]))
        assert ctx.get(core.weight_write.ready)  # between samples again
        await load_weights(ctx, core, second)
        # A write offered in the same cycle as the first input item is taken first.
        port = core.weight_write
        ctx.set(port.valid, 1)
        ctx.set(port.payload.memory, 1)
        ctx.set(port.payload.addr, 0)
        ctx.set(port.payload.data, weight_memory_words(second, lanes=2, readout_lanes=1)[1][0])
        ctx.set(core.inputs.payload.kind, InputKind.END_OF_STEP if not x[1, 0].any() else InputKind.EVENT)
        ctx.set(core.inputs.payload.index, int(np.flatnonzero(x[1, 0])[0]) if x[1, 0].any() else 0)
        ctx.set(core.inputs.valid, 1)
        _, _, write_ready, input_ready = await ctx.tick().sample(port.ready, core.inputs.ready)
        log.append((write_ready, input_ready))
        ctx.set(port.valid, 0)
        received.append(await _feed_sample(ctx, core, x[1]))

    async def watcher(ctx):
        # Samples the write port's ready while a sample runs (an input item has been offered).
        async for _, _, valid, ready in ctx.tick().sample(core.inputs.valid, core.weight_write.ready):
            if valid:
                ready_during_sample.append(ready)

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.add_process(watcher)
    sim.run()

    assert log == [(1, 0)]
    # While inputs are offered the write port is ready only until a sample's first item has been
    # offered without a write: sample 1's first cycle; in sample 2 the cycle the write went first
    # and the next one (the item alone). Never again while the samples run.
    assert ready_during_sample[0] == 1 and ready_during_sample.count(1) == 3 and len(ready_during_sample) > 10
    golden_first, golden_second = run_golden(first, x[:1]), run_golden(second, x[1:])
    assert received[0] == _expected_items(golden_first, 0)
    assert received[1] == _expected_items(golden_second, 0)
    assert received[0] != received[1]


def test_unwritten_weights_read_as_zero():
    # Without a load the core computes the network with all weights zero (the simulation's start state).
    net = small_network()
    zero = net.replace(w_in=np.zeros_like(net.w_in), w_rec=np.zeros_like(net.w_rec), w_out=np.zeros_like(net.w_out))
    x = np.ones((1, 3, 3), bool)
    core = NeuronCore(network=net, lanes=2, weight_loading=True)
    items = []

    async def testbench(ctx):
        ctx.set(core.outputs.ready, 1)
        items.append(await _feed_sample(ctx, core, x[0]))

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert items[0] == _expected_items(run_golden(zero, x), 0)
