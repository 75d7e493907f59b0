"""Simulation harness: samples through :class:`~hdl.core.NeuronCore` in ``amaranth.sim``, checked against the golden model.

:func:`simulate` feeds binary input frames to the core as event streams (one testbench, no
per-cycle Python beyond waiting for hand-shakes), reads every state back from the core's
memories at each end-of-step marker, and returns one :class:`HdlTrace` per sample with the
cycles each step took. :func:`compare` finds the first value that differs from a
golden trace (``gesture_snn.golden.GoldenTrace``, or any object with the same arrays);
:func:`check_against_golden` does both, stopping at the first mismatching sample, and is what
``gesture-snn simulate`` and the tests call. The gateware does not run the golden model itself:
the caller passes the golden trace (or the function that computes it). With
``weight_loading=True`` the core's weight memories start at zero and :func:`load_weights` writes
them through the core's ``weight_write`` port before the first sample, as a board does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from gesture_snn.spec.intnet import check_binary_input
from gesture_snn.spec.memory import weight_memory_words
from hdl.core import InputKind, NeuronCore, OutputKind

__all__ = ["CLOCK_HZ", "HdlTrace", "Mismatch", "CheckResult", "simulate", "load_weights", "compare",
           "golden_trace", "check_against_golden"]

#: Clock of the simulation (only the time axis of a VCD depends on it): the iCEBreaker's 12 MHz.
CLOCK_HZ = 12e6

#: Variables compared per step, in the order of docs/fixed_point.md; "spikes" is the output stream.
COMPARED_VARIABLES = ("a", "v", "z", "spikes", "o", "s")


@dataclass(frozen=True, eq=False)
class HdlTrace:
    """One sample through the gateware (T steps).

    ``a``, ``v`` [T, n_rec] and ``z`` [T, n_rec] (uint8): the neuron state memory after step t;
    ``spikes`` [T, n_rec] (uint8): the neurons sent on the output stream in step t; ``o``, ``s``
    [T, n_out]: the readout state memory after step t; ``prediction``: the class sent at the end;
    ``cycles`` [T]: clock cycles of each step (see :meth:`~hdl.core.CycleModel.step_cycles`).
    """

    a: np.ndarray
    v: np.ndarray
    z: np.ndarray
    spikes: np.ndarray
    o: np.ndarray
    s: np.ndarray
    prediction: int
    cycles: np.ndarray


@dataclass(frozen=True)
class Mismatch:
    """The first value where gateware and golden model differ.

    ``index`` is the neuron (``a``, ``v``, ``z``, ``spikes``) or output (``o``, ``s``) index;
    for ``variable == "class"`` it is None and ``step`` is the last step.
    """

    sample: int
    step: int
    variable: str
    index: Optional[int]
    expected: int
    actual: int

    def __str__(self) -> str:
        unit = "" if self.index is None else f", {'output' if self.variable in ('o', 's') else 'neuron'} {self.index}"
        return (f"sample {self.sample}, step {self.step}{unit}, {self.variable}: "
                f"expected {self.expected}, got {self.actual}")


@dataclass(frozen=True, eq=False)
class CheckResult:
    """Outcome of :func:`check_against_golden`: the traces simulated (up to and including the first
    mismatching sample), the golden trace of all samples, and the first mismatch or None."""

    traces: list
    golden: object
    mismatch: Optional[Mismatch]

    @property
    def cycles(self) -> np.ndarray:
        """Cycles of every simulated step, concatenated over samples."""
        return np.concatenate([trace.cycles for trace in self.traces]) if self.traces else np.zeros(0, np.int64)


def simulate(
    network,
    x,
    *,
    lanes: int = 1,
    readout_lanes: int | None = None,
    weight_loading: bool = False,
    vcd_path: str | os.PathLike | None = None,
    on_sample: Callable[[int, HdlTrace], bool] | None = None,
) -> list[HdlTrace]:
    """Run binary inputs ``x`` [B, T, n_in] through a :class:`NeuronCore` of ``network``, one sample after another.

    Samples run back to back in one simulation (each closed with ``END_OF_SAMPLE``), so the
    core's reset between samples is exercised too. The inputs are always valid and the outputs
    always ready, so ``cycles`` follows :meth:`~hdl.core.CycleModel.step_cycles`.

    Parameters
    ----------
    network : gesture_snn.spec.intnet.IntegerNetwork
    x : array [B, T, n_in] of 0/1
    lanes, readout_lanes : int
        Passed to :class:`NeuronCore`.
    weight_loading : bool
        Passed to :class:`NeuronCore`; when True the weights are written through its
        ``weight_write`` port (:func:`load_weights`) before the first sample.
    vcd_path : path, optional
        Write a waveform of the whole run (large: every signal, every cycle).
    on_sample : callable(sample_index, trace) -> bool, optional
        Called after each sample; returning False stops the simulation after that sample.

    Returns the traces of the samples simulated.
    """
    from amaranth.sim import Simulator

    x = check_binary_input(x, network.n_in)
    core = NeuronCore(network=network, lanes=lanes, readout_lanes=readout_lanes, weight_loading=weight_loading)
    traces: list[HdlTrace] = []

    async def testbench(ctx):
        if weight_loading:
            await load_weights(ctx, core)
        ctx.set(core.outputs.ready, 1)
        for index, sample in enumerate(x):
            traces.append(await _run_sample(ctx, core, sample))
            if on_sample is not None and on_sample(index, traces[-1]) is False:
                return

    sim = Simulator(core)
    sim.add_clock(1 / CLOCK_HZ)
    sim.add_testbench(testbench)
    if vcd_path is None:
        sim.run()
    else:
        with sim.write_vcd(os.fspath(vcd_path)):
            sim.run()
    return traces


async def load_weights(ctx, core: NeuronCore, network=None) -> int:
    """Write both weight memories of a ``weight_loading`` core through its ``weight_write`` port.

    Writes every word of :func:`~gesture_snn.spec.memory.weight_memory_words` of ``network`` (default: the
    core's own), synaptic memory first, one word per cycle while the port is ready, and returns
    the cycles it took. Call it from a testbench while the core is between samples; ``network``
    must have the core's sizes and weight width.
    """
    if not core.weight_loading:
        raise ValueError("the core was built with weight_loading=False: its weights are fixed in the memories' init")
    network = core.network if network is None else network
    images = weight_memory_words(network, lanes=core.lanes, readout_lanes=core.readout_lanes)
    if tuple(map(len, images)) != core.weight_depths or network.weight_bits != core.network.weight_bits:
        raise ValueError(
            f"the network's weight memories ({len(images[0])} and {len(images[1])} words of {network.weight_bits}-bit "
            f"weights) do not match the core's ({core.weight_depths[0]} and {core.weight_depths[1]} words of "
            f"{core.network.weight_bits}-bit weights)"
        )
    port = core.weight_write
    layout = port.payload.shape()
    raw = port.payload.as_value()  # one integer per word: building a layout view per word is slow
    memory_at, addr_at, data_at = (layout[name].offset for name in ("memory", "addr", "data"))
    cycles = 0
    ctx.set(port.valid, 1)
    for memory, words in enumerate(images):
        for addr, word in enumerate(words):
            ctx.set(raw, memory << memory_at | addr << addr_at | word << data_at)
            while True:
                _, _, ready = await ctx.tick().sample(port.ready)
                cycles += 1
                if ready:
                    break
    ctx.set(port.valid, 0)
    return cycles


async def _run_sample(ctx, core: NeuronCore, sample: np.ndarray) -> HdlTrace:
    """Feed one sample [T, n_in] and collect its trace."""
    net = core.network
    steps = len(sample)
    trace = {
        "a": np.zeros((steps, net.n_rec), np.int64),
        "v": np.zeros((steps, net.n_rec), np.int64),
        "z": np.zeros((steps, net.n_rec), np.uint8),
        "spikes": np.zeros((steps, net.n_rec), np.uint8),
        "o": np.zeros((steps, net.n_out), np.int64),
        "s": np.zeros((steps, net.n_out), np.int64),
    }
    cycles = np.zeros(steps, np.int64)
    prediction = -1
    # Payloads as raw integers: building layout views every cycle would dominate the testbench.
    inputs, outputs = core.inputs, core.outputs
    input_raw, output_raw = inputs.payload.as_value(), outputs.payload.as_value()
    kind_bits = inputs.payload.shape()["index"].offset  # kind in the low bits, index above (both layouts)
    assert outputs.payload.shape()["index"].offset == kind_bits
    kind_mask = (1 << kind_bits) - 1
    for t in range(steps):
        last = t == steps - 1
        marker = InputKind.END_OF_SAMPLE if last else InputKind.END_OF_STEP
        items = [InputKind.EVENT.value | int(i) << kind_bits for i in np.flatnonzero(sample[t])]
        items.append(marker.value)
        ctx.set(inputs.valid, 1)
        for item in items:
            ctx.set(input_raw, item)
            while True:
                _, _, ready = await ctx.tick().sample(inputs.ready)
                cycles[t] += 1
                if ready:
                    break
        ctx.set(inputs.valid, 0)
        while True:
            _, _, valid, item = await ctx.tick().sample(outputs.valid, output_raw)
            cycles[t] += 1
            if not valid:
                continue
            kind, index = OutputKind(item & kind_mask), item >> kind_bits
            if kind == OutputKind.SPIKE:
                trace["spikes"][t, index] = 1
            elif kind == OutputKind.END_OF_STEP:
                _read_states(ctx, core, trace, t)
                if not last:
                    break
            elif kind == OutputKind.CLASS:
                prediction = index
                break
    return HdlTrace(**trace, prediction=prediction, cycles=cycles)


def _read_states(ctx, core: NeuronCore, trace: dict, t: int) -> None:
    """Copy the neuron and readout state memories into row ``t`` of ``trace``."""
    for j in range(core.network.n_rec):
        word = ctx.get(core.neurons.state.data[j])
        trace["v"][t, j], trace["a"][t, j], trace["z"][t, j] = word.v, word.a, word.z
    for k in range(core.network.n_out):
        word = ctx.get(core.readout.state.data[k])
        trace["o"][t, k], trace["s"][t, k] = word.o, word.s


def compare(golden, traces: Sequence[HdlTrace], *, first_sample: int = 0) -> Mismatch | None:
    """The first difference between ``golden`` (a golden trace of B samples) and ``traces`` (up to B), or None.

    ``golden``: a ``gesture_snn.golden.GoldenTrace``, or any object with the same arrays ``a``,
    ``v``, ``z`` [B, T, n_rec], ``o``, ``s`` [B, T, n_out] and ``prediction`` [B].

    Samples are compared in order, steps in order, and within a step the variables in spec
    order (``a``, ``v``, ``z``, then the output-stream ``spikes`` against ``z``, then ``o``,
    ``s``), lowest index first; the class after all steps. ``traces[i]`` is compared with
    golden sample ``first_sample + i``, and mismatches report that sample number.
    """
    for offset, trace in enumerate(traces):
        b = first_sample + offset
        for t in range(trace.cycles.shape[0]):
            for variable in COMPARED_VARIABLES:
                expected = getattr(golden, "z" if variable == "spikes" else variable)[b, t]
                actual = getattr(trace, variable)[t]
                differ = np.flatnonzero(np.asarray(expected, np.int64) != np.asarray(actual, np.int64))
                if differ.size:
                    j = int(differ[0])
                    return Mismatch(b, t, variable, j, int(expected[j]), int(actual[j]))
        if trace.prediction != int(golden.prediction[b]):
            return Mismatch(b, trace.cycles.shape[0] - 1, "class", None, int(golden.prediction[b]), trace.prediction)
    return None


def golden_trace(golden, network, x):
    """``golden`` if it is a golden trace, else ``golden(network, x)`` (a function computing one,
    such as ``gesture_snn.golden.run_golden``)."""
    return golden(network, x) if callable(golden) else golden


def check_against_golden(
    network,
    x,
    golden,
    *,
    lanes: int = 1,
    readout_lanes: int | None = None,
    weight_loading: bool = False,
    vcd_path: str | os.PathLike | None = None,
    on_sample: Callable[[int, HdlTrace, Mismatch | None], None] | None = None,
) -> CheckResult:
    """Simulate ``x`` [B, T, n_in] on the gateware and compare every value of every step with the golden model.

    ``golden``: the golden trace of ``x`` (see :func:`compare`), or a function ``golden(network,
    x)`` that computes it, such as ``gesture_snn.golden.run_golden``. ``lanes``, ``readout_lanes``
    and ``weight_loading`` are passed to :func:`simulate`. Stops after the first sample with a
    mismatch. ``on_sample(index, trace, mismatch)`` is called after each sample (e.g. to advance a
    progress bar). For a trained network on real samples::

        result = check_against_golden(IntegerNetwork.load(run / "integer"), frames[:3], run_golden, lanes=8)
        assert result.mismatch is None, str(result.mismatch)
    """
    golden = golden_trace(golden, network, x)
    found: list[Mismatch] = []

    def after_sample(index: int, trace: HdlTrace) -> bool:
        mismatch = compare(golden, [trace], first_sample=index)
        if on_sample is not None:
            on_sample(index, trace, mismatch)
        if mismatch is not None:
            found.append(mismatch)
            return False
        return True

    traces = simulate(network, x, lanes=lanes, readout_lanes=readout_lanes, weight_loading=weight_loading,
                      vcd_path=vcd_path, on_sample=after_sample)
    return CheckResult(traces=traces, golden=golden, mismatch=found[0] if found else None)
