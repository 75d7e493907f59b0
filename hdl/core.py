"""The neuron core: the whole integer SRNN of docs/fixed_point.md as one stream-in, stream-out component.

Input: a stream of active input addresses per time step, closed by an end-of-step or end-of-sample
marker. Output: per step the indices of the neurons that spiked and an end-of-step marker; per
sample the class. docs/hardware.md has the block diagram, memory layout, FSM and cycle formula.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from gesture_snn.spec.intnet import IntegerNetwork
from gesture_snn.spec.memory import check_lanes, weight_memory_words
from hdl.accumulator import EventAccumulator
from hdl.alif import ALIF_LATENCY, AlifUpdate
from hdl.primitives import index_shape
from hdl.readout import READOUT_LATENCY, ReadoutUpdate
from hdl.spike_list import SpikeList

__all__ = ["STEP_OVERHEAD_CYCLES", "CycleModel", "InputKind", "OutputKind", "InputLayout", "OutputLayout",
           "WeightWriteLayout", "NeuronCore"]

#: Fixed cycles of every time step beyond the event-, neuron- and output-proportional terms of
#: :meth:`CycleModel.step_cycles`: accepting the step marker (1), fetching the first spike for the
#: recurrent replay (1), priming the synaptic flush (1), the ALIF pipeline and its hand-over
#: (ALIF_LATENCY + 1), fetching the first spike for the readout (1), priming the readout flush
#: (1), the readout pipeline and its hand-over (READOUT_LATENCY + 1), the end-of-step output (1).
STEP_OVERHEAD_CYCLES = 1 + 1 + 1 + (ALIF_LATENCY + 1) + 1 + 1 + (READOUT_LATENCY + 1) + 1


@dataclass(frozen=True)
class CycleModel:
    """Geometry and clock cycles per time step of a :class:`NeuronCore` (docs/hardware.md).

    Usable without building the gateware (e.g. to check a cycle budget before synthesis).
    Refuses a lane count the core cannot use (:func:`gesture_snn.spec.memory.check_lanes`).

    Parameters (keyword-only)
    -------------------------
    n_in, n_rec, n_out : int
        Network sizes (inputs, recurrent neurons, outputs).
    lanes : int
        Synaptic accumulators updated per cycle: a divisor of ``n_rec``, 1 .. n_rec.
    readout_lanes : int
        Readout accumulators updated per cycle, 1 .. n_out (need not divide ``n_out``).
    """

    n_in: int
    n_rec: int
    n_out: int
    lanes: int
    readout_lanes: int

    def __post_init__(self):
        check_lanes(n_in=self.n_in, n_rec=self.n_rec, n_out=self.n_out, lanes=self.lanes,
                    readout_lanes=self.readout_lanes)

    @property
    def blocks(self) -> int:
        """Memory words (cycles) per neuron-side event: ``n_rec / lanes``."""
        return self.n_rec // self.lanes

    @property
    def readout_blocks(self) -> int:
        """Memory words (cycles) per readout event: ``ceil(n_out / readout_lanes)``."""
        return -(-self.n_out // self.readout_lanes)

    def step_cycles(self, *, input_events: int, previous_spikes: int, spikes: int, last_step: bool = False) -> int:
        """Clock cycles of one time step when inputs are always valid and outputs always ready.

        ``input_events``: in-range input events of the step (an out-of-range one costs 1 cycle);
        ``previous_spikes``: spikes of the step before (0 in the first step of a sample);
        ``spikes``: spikes of this step; ``last_step``: the step is closed with ``END_OF_SAMPLE``
        (one more cycle for the class). Counted from the cycle the step's first input item is
        offered to the cycle its ``END_OF_STEP`` (or ``CLASS``) output is taken, both included::

            (input_events + previous_spikes) * n_rec / lanes + spikes * ceil(n_out / readout_lanes)
              + n_rec + n_out + STEP_OVERHEAD_CYCLES (+ 1 at the end of a sample)
        """
        return ((input_events + previous_spikes) * self.blocks
                + spikes * self.readout_blocks
                + self.n_rec + self.n_out
                + STEP_OVERHEAD_CYCLES + int(last_step))

    def worst_case_step_cycles(self) -> int:
        """:meth:`step_cycles` with every input active and every neuron spiking in both steps."""
        return self.step_cycles(input_events=self.n_in, previous_spikes=self.n_rec, spikes=self.n_rec, last_step=True)


class InputKind(enum.Enum, shape=2):
    """What an input item is."""

    #: ``index`` is an input that is active in this step (one item per active input).
    EVENT = 0
    #: Closes the time step; ``index`` is ignored.
    END_OF_STEP = 1
    #: Closes the time step and the sample: the class follows and the next step starts a new
    #: sample from the all-zero state.
    END_OF_SAMPLE = 2


class OutputKind(enum.Enum, shape=2):
    """What an output item is."""

    #: ``index`` is a neuron that spiked in this step (ascending order within a step).
    SPIKE = 0
    #: Every spike of the step has been sent and every state of the step is written.
    END_OF_STEP = 1
    #: ``index`` is the class of the sample that just ended (after its last END_OF_STEP).
    CLASS = 2


class InputLayout(data.StructLayout):
    """Payload of :attr:`NeuronCore.inputs`: ``kind`` (:class:`InputKind`) and ``index``."""

    def __init__(self, n_in: int):
        super().__init__({"kind": InputKind, "index": index_shape(n_in)})


class OutputLayout(data.StructLayout):
    """Payload of :attr:`NeuronCore.outputs`: ``kind`` (:class:`OutputKind`) and ``index``."""

    def __init__(self, n_rec: int, n_out: int):
        width = max(index_shape(n_rec).width, index_shape(n_out).width)
        super().__init__({"kind": OutputKind, "index": index_shape(1 << width)})


class WeightWriteLayout(data.StructLayout):
    """Payload of :attr:`NeuronCore.weight_write`: which weight memory, the word address and the word.

    ``memory``: 0 = the synaptic weights ``[w_in | w_rec]``, 1 = the readout weights ``w_out``;
    ``addr`` and ``data`` are as wide as the deeper / wider of the two (the upper bits are
    ignored for the other); see :func:`gesture_snn.spec.memory.weight_memory_words` for the contents.
    """

    def __init__(self, addr_bits: int, word_bits: int):
        super().__init__({"memory": unsigned(1), "addr": unsigned(addr_bits), "data": unsigned(word_bits)})


class NeuronCore(wiring.Component):
    """One recurrent layer of ALIF neurons with a leaky readout, time-multiplexed over ``lanes`` adders.

    Per time step the core (1) adds the input weight column of every input event to ``n_rec``
    synaptic accumulators, ``lanes`` neurons per cycle, (2) replays the previous step's spikes as
    recurrent events the same way, (3) updates every neuron, one per cycle, through the ALIF
    pipeline (adaptation, threshold, membrane with subtractive reset and saturation, spike),
    (4) replays this step's spikes onto the readout accumulators while sending them out, and (5)
    updates the readouts, scores and the argmax. Neuron ``j`` is lane ``j % lanes`` of block
    ``j // lanes``; output ``k`` is lane ``k % readout_lanes`` of readout block
    ``k // readout_lanes``. The arithmetic is docs/fixed_point.md bit for bit.

    A sample is a sequence of steps; its last step is closed with ``END_OF_SAMPLE`` instead of
    ``END_OF_STEP``. After the last ``END_OF_STEP`` output the core sends the class and treats
    all state as zero in the next step (no clearing pass is needed).

    Memories (all inside the units; docs/hardware.md has the full table)
    ---------------------------------------------------------------------
    ``synapses.weights``: ``[w_in | w_rec]`` columns, ``(n_in + n_rec) * blocks`` words of
    ``lanes`` weights (``w_in`` and then ``w_rec`` images of :func:`gesture_snn.spec.memory.memory_images`).
    ``synapses.sums``: ``blocks`` words of ``lanes`` accumulators (``acc_bits``).
    ``neurons.state`` ``{v, a, z}`` and ``neurons.alpha/rho/adapt_inc/threshold_base``: ``n_rec`` words.
    ``spikes.indices``: ``n_rec`` neuron indices.
    ``readout_synapses.weights``: ``n_rec * readout_blocks`` words of ``readout_lanes`` weights.
    ``readout_synapses.sums``: ``readout_blocks`` words. ``readout.state`` ``{o, s}`` and
    ``readout.alpha_out``: ``n_out`` words.

    Parameters (keyword-only)
    -------------------------
    network : gesture_snn.spec.intnet.IntegerNetwork
        Sizes, widths and every memory's contents.
    lanes : int
        Synaptic accumulators updated per cycle: a divisor of ``n_rec``, 1 .. n_rec. Each event
        costs ``n_rec / lanes`` cycles.
    readout_lanes : int or None
        Readout accumulators updated per cycle, 1 .. n_out; each spike costs
        ``ceil(n_out / readout_lanes)`` cycles. Default ``min(lanes, n_out)``. Fewer lanes mean
        narrower readout memories (1 is the smallest design; see docs/hardware.md).
    weight_loading : bool
        False: the weight memories are initialised from ``network`` (the bitstream carries
        them). True: they start at zero, have no initial contents (so Yosys may map the
        single-port synaptic memory to iCE40 SPRAM, which a bitstream cannot initialise) and
        are written through the ``weight_write`` port before the first sample; ``network``
        still supplies the sizes, widths and every other parameter.

    Attributes: ``network``, ``lanes``, ``readout_lanes``, ``weight_loading``, ``cycle_model``
    (:class:`CycleModel`: cycles per step), ``weight_depths`` and ``weight_word_bits`` (words and
    bits per word of the synaptic and the readout weight memory, in that order), and the units
    ``synapses``, ``neurons``, ``spikes``, ``readout_synapses``, ``readout`` (whose memories the
    simulation harness reads).

    Ports
    -----
    inputs : In(stream.Signature(InputLayout(n_in)))
        Per step: one ``EVENT`` per active input (any order, each input at most once; an
        ``index >= n_in`` is accepted and ignored), then ``END_OF_STEP`` or ``END_OF_SAMPLE``.
        Not accepted while the core finishes a step.
    outputs : Out(stream.Signature(OutputLayout(n_rec, n_out)))
        Per step: a ``SPIKE`` per spiking neuron, then ``END_OF_STEP``; after the last step of a
        sample, ``CLASS``. Back-pressure stalls the core.
    weight_write : In(stream.Signature(WeightWriteLayout(A, W)))
        Only with ``weight_loading=True``. Writes word ``addr`` of weight memory ``memory`` (0:
        synaptic, 1: readout) with ``data``; ``A`` and ``W`` cover the larger of the two
        memories. Ready only while the core is idle between samples: after reset or after a
        ``CLASS`` item, until the first input item of the next sample is offered. A pending
        write takes precedence over that input item. Words not written read as zero.
    """

    def __init__(self, *, network, lanes: int = 1, readout_lanes: int | None = None, weight_loading: bool = False):
        if not isinstance(network, IntegerNetwork):
            raise TypeError(f"network must be a gesture_snn.spec.intnet.IntegerNetwork; got {type(network).__name__}")
        network.validate()  # sizes >= 1, widths inside spec.intnet.WIDTH_LIMITS (all of which the datapath supports)
        self.network = network
        if readout_lanes is None:
            readout_lanes = min(lanes, network.n_out) if isinstance(lanes, int) else 1  # bad lanes: refused below
        self.cycle_model = CycleModel(n_in=network.n_in, n_rec=network.n_rec, n_out=network.n_out, lanes=lanes,
                                      readout_lanes=readout_lanes)
        n_rec = network.n_rec
        if not isinstance(weight_loading, bool):
            raise TypeError(f"weight_loading must be a bool; got {weight_loading!r}")
        self.lanes = lanes
        self.readout_lanes = readout_lanes
        self.weight_loading = weight_loading
        weight_max = (1 << (network.weight_bits - 1)) - 1
        self.readout_acc_bits = (n_rec * weight_max).bit_length() + 1

        synapse_words, readout_words = weight_memory_words(network, lanes=lanes, readout_lanes=readout_lanes)
        self.weight_depths = (len(synapse_words), len(readout_words))
        self.weight_word_bits = (lanes * network.weight_bits, readout_lanes * network.weight_bits)
        self.synapses = EventAccumulator(
            weights=None if weight_loading else synapse_words,
            n_targets=n_rec, n_columns=network.n_in + n_rec, lanes=lanes,
            weight_bits=network.weight_bits, acc_bits=network.acc_bits,
            column_shifts=((0, network.shift_in), (network.n_in, network.shift_rec)),
        )
        self.neurons = AlifUpdate(network=network)
        self.spikes = SpikeList(n_rec=n_rec)
        self.readout_synapses = EventAccumulator(
            weights=None if weight_loading else readout_words,
            n_targets=network.n_out, n_columns=n_rec, lanes=readout_lanes,
            weight_bits=network.weight_bits, acc_bits=self.readout_acc_bits,
        )
        self.readout = ReadoutUpdate(network=network, acc_bits=self.readout_acc_bits)
        members = {
            "inputs": In(stream.Signature(InputLayout(network.n_in))),
            "outputs": Out(stream.Signature(OutputLayout(n_rec, network.n_out))),
        }
        if weight_loading:
            addr_bits = max(index_shape(depth).width for depth in self.weight_depths)
            members["weight_write"] = In(stream.Signature(WeightWriteLayout(addr_bits, max(self.weight_word_bits))))
        super().__init__(members)

    # --- gateware ------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        m.submodules.synapses = synapses = self.synapses
        m.submodules.neurons = neurons = self.neurons
        m.submodules.spikes = spikes = self.spikes
        m.submodules.readout_synapses = readout_synapses = self.readout_synapses
        m.submodules.readout = readout = self.readout
        n_in = self.network.n_in

        # Fixed connections: totals flow into the update units, new spikes into the list.
        wiring.connect(m, synapses.totals, neurons.totals)
        wiring.connect(m, neurons.spikes, spikes.append)
        wiring.connect(m, readout_synapses.totals, readout.totals)

        first = Signal(init=1)  # the coming step is the first of a sample: stored state counts as zero
        last_of_sample = Signal()  # the step being finished was closed with END_OF_SAMPLE
        m.d.comb += [neurons.first.eq(first), readout.first.eq(first)]

        # The spike fork of READOUT: each spike goes to the output stream and to the readout
        # accumulator; a flag remembers which side already took it.
        output_taken = Signal()
        readout_taken = Signal()

        # Weight loading: writes are taken between samples, before the sample's first input item.
        writing = Signal()  # a weight write is taken this cycle (it holds the input stream)
        if self.weight_loading:
            sample_started = Signal()  # an input item of the current sample has been offered
            write = self.weight_write.payload
            for index, unit in enumerate((synapses, readout_synapses)):
                depth, word_bits = self.weight_depths[index], self.weight_word_bits[index]
                m.d.comb += [
                    unit.weight_write.valid.eq(writing & (write.memory == index)),
                    unit.weight_write.payload.addr.eq(write.addr[:index_shape(depth).width]),
                    unit.weight_write.payload.data.eq(write.data[:word_bits]),
                ]

        item = self.inputs.payload
        with m.FSM(name="phase"):
            with m.State("EVENTS"):
                # Waits for input items: events go to the synaptic accumulator, a marker ends the step's input.
                if self.weight_loading:
                    m.d.comb += [
                        self.weight_write.ready.eq(first & ~sample_started),
                        writing.eq(self.weight_write.valid & self.weight_write.ready),
                    ]
                    with m.If(self.inputs.valid & ~writing):
                        m.d.sync += sample_started.eq(1)
                offered = self.inputs.valid & ~writing  # a weight write holds the input item
                with m.Switch(item.kind):
                    with m.Case(InputKind.EVENT):
                        in_range = item.index < n_in
                        m.d.comb += [
                            synapses.events.valid.eq(offered & in_range),
                            synapses.events.payload.column.eq(item.index),
                            self.inputs.ready.eq(~writing & (~in_range | synapses.events.ready)),
                        ]
                    with m.Case(InputKind.END_OF_STEP, InputKind.END_OF_SAMPLE):
                        m.d.comb += self.inputs.ready.eq(~writing)
                        with m.If(offered):
                            m.d.sync += last_of_sample.eq(item.kind == InputKind.END_OF_SAMPLE)
                            m.d.comb += spikes.start.eq(1)
                            m.next = "REPLAY"
                    with m.Default():  # reserved kind: drop
                        m.d.comb += self.inputs.ready.eq(~writing)
            with m.State("REPLAY"):
                # Waits for the previous step's spikes to be added as recurrent events (columns n_in + j).
                m.d.comb += [
                    synapses.events.valid.eq(spikes.replay.valid),
                    synapses.events.payload.column.eq(n_in + spikes.replay.payload),
                    spikes.replay.ready.eq(synapses.events.ready),
                ]
                with m.If(~spikes.busy):
                    m.d.comb += spikes.restart.eq(1)
                    m.next = "FLUSH_SYNAPSES"
            with m.State("FLUSH_SYNAPSES"):
                # Waits for every neuron's total to enter the ALIF pipeline (which appends this step's spikes).
                m.d.comb += [synapses.events.valid.eq(1), synapses.events.payload.flush.eq(1)]
                with m.If(synapses.events.ready):
                    m.next = "UPDATE"
            with m.State("UPDATE"):
                # Waits for the ALIF pipeline to write its last neuron.
                with m.If(~neurons.busy):
                    m.d.comb += spikes.start.eq(1)
                    m.next = "READOUT"
            with m.State("READOUT"):
                # Waits for each of this step's spikes to be taken by the output and by the readout accumulator.
                replay = spikes.replay
                m.d.comb += [
                    self.outputs.valid.eq(replay.valid & ~output_taken),
                    self.outputs.payload.kind.eq(OutputKind.SPIKE),
                    self.outputs.payload.index.eq(replay.payload),
                    readout_synapses.events.valid.eq(replay.valid & ~readout_taken),
                    readout_synapses.events.payload.column.eq(replay.payload),
                    replay.ready.eq((output_taken | self.outputs.ready) & (readout_taken | readout_synapses.events.ready)),
                ]
                with m.If(replay.valid & replay.ready):
                    m.d.sync += [output_taken.eq(0), readout_taken.eq(0)]
                with m.Else():
                    m.d.sync += [
                        output_taken.eq(output_taken | (self.outputs.valid & self.outputs.ready)),
                        readout_taken.eq(readout_taken | (readout_synapses.events.valid & readout_synapses.events.ready)),
                    ]
                with m.If(~spikes.busy):
                    m.next = "FLUSH_READOUT"
            with m.State("FLUSH_READOUT"):
                # Waits for every output's total to enter the readout pipeline.
                m.d.comb += [readout_synapses.events.valid.eq(1), readout_synapses.events.payload.flush.eq(1)]
                with m.If(readout_synapses.events.ready):
                    m.next = "SCORE"
            with m.State("SCORE"):
                # Waits for the readout pipeline to write its last output (the argmax is then final).
                with m.If(~readout.busy):
                    m.next = "END_OF_STEP"
            with m.State("END_OF_STEP"):
                # Waits for the consumer to take the end-of-step marker.
                m.d.comb += [self.outputs.valid.eq(1), self.outputs.payload.kind.eq(OutputKind.END_OF_STEP)]
                with m.If(self.outputs.ready):
                    m.d.sync += first.eq(0)
                    with m.If(last_of_sample):
                        m.next = "CLASS"
                    with m.Else():
                        m.next = "EVENTS"
            with m.State("CLASS"):
                # Waits for the consumer to take the class; then the next step starts a new sample.
                m.d.comb += [
                    self.outputs.valid.eq(1),
                    self.outputs.payload.kind.eq(OutputKind.CLASS),
                    self.outputs.payload.index.eq(readout.prediction),
                ]
                with m.If(self.outputs.ready):
                    m.d.sync += first.eq(1)
                    if self.weight_loading:
                        m.d.sync += sample_started.eq(0)
                    m.d.comb += spikes.restart.eq(1)
                    m.next = "EVENTS"
        return m
