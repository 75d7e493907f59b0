"""Event-driven, lane-parallel synaptic accumulation.

One :class:`EventAccumulator` adds a column of a weight matrix to a set of accumulators for
every event it receives and, on a flush marker, streams the totals out in target order while
clearing them. The neuron core uses two: one for the recurrent layer (input events and replayed
spikes onto ``n_rec`` neurons) and one for the readout (this step's spikes onto ``n_out``
outputs).
"""

from __future__ import annotations

import functools
import operator
from typing import Sequence

from amaranth import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.primitives import index_shape

__all__ = ["RUNTIME_LOADED", "EventLayout", "TotalLayout", "WeightWordLayout", "EventAccumulator"]

#: Attribute on a memory whose contents are written at run time: its initial contents are
#: undefined on the device, so the build (``hdl.build``) drops them before synthesis, and Yosys
#: may then map it to a RAM that a bitstream cannot initialise (iCE40 SPRAM). In simulation it
#: starts at zero.
RUNTIME_LOADED = "gesture_snn_loaded_at_runtime"


class EventLayout(data.StructLayout):
    """Payload of :attr:`EventAccumulator.events`.

    ``column``: the weight-matrix column to add (a pre-synaptic source). ``flush``: when 1 the
    item is an end marker instead of an event; ``column`` is then ignored.
    """

    def __init__(self, n_columns: int):
        super().__init__({"column": index_shape(n_columns), "flush": 1})


class TotalLayout(data.StructLayout):
    """Payload of :attr:`EventAccumulator.totals`: one target's accumulated sum."""

    def __init__(self, n_targets: int, acc_bits: int):
        super().__init__({"target": index_shape(n_targets), "value": signed(acc_bits)})


def _times(value: Value, factor: int) -> Value:
    """``value * factor`` as shifts and adds, so that synthesis does not spend a hard multiplier
    (and, on the iCE40, an untimed combinational DSP path) on a constant factor."""
    terms = [value << bit for bit in range(factor.bit_length()) if factor >> bit & 1]
    return functools.reduce(operator.add, terms) if terms else Const(0)


class WeightWordLayout(data.StructLayout):
    """Payload of :attr:`EventAccumulator.weight_write`: one weight word and its address."""

    def __init__(self, depth: int, word_bits: int):
        super().__init__({"addr": index_shape(depth), "data": unsigned(word_bits)})


class EventAccumulator(wiring.Component):
    """Adds weight columns, selected by events, into ``n_targets`` exact accumulators, ``lanes`` at a time.

    Target ``j`` is held by lane ``j % lanes`` of block ``j // lanes``; there are
    ``blocks = ceil(n_targets / lanes)`` blocks. Each event costs ``blocks`` cycles: block ``b``
    reads weight word ``column * blocks + b`` (``lanes`` weights) and accumulator word ``b``,
    and one cycle later writes back the ``lanes`` sums. Events are accepted back to back. A flush
    marker streams the ``n_targets`` totals out, one per cycle in target order, clearing each
    accumulator word after its last lane; the marker is accepted with the last total. The flush
    takes ``n_targets + 1`` cycles.

    The accumulator width is the caller's promise that no sum can overflow (the core sizes it with
    ``IntegerNetwork.acc_bits``); with exact sums the order of events cannot change a total.

    Memories
    --------
    ``weights``: ``n_columns * blocks`` words of ``lanes`` signed ``weight_bits`` lanes, read only
    (or written through ``weight_write``); word ``c * blocks + b``, lane ``l`` holds
    ``weights[b * lanes + l, c]`` (zero beyond ``n_targets``). This is the packing of
    :func:`gesture_snn.spec.memory.memory_images`. When written at run time it is a single-port memory
    without initial contents (one address shared by reads and writes, the read disabled while
    writing): the shape Yosys maps to iCE40 SPRAM (``SB_SPRAM256KA``, no init in the bitstream).
    ``sums``: ``blocks`` words of ``lanes`` signed ``acc_bits`` lanes, all zero between flushes.

    Parameters (keyword-only)
    -------------------------
    weights : sequence of int, or None
        The packed weight words (``n_columns * blocks`` unsigned integers, lane 0 in the least
        significant bits), e.g. ``MemoryImage.words``; the initial contents of ``weights``.
        None: the memory starts at zero and gets the ``weight_write`` port instead.
    n_targets : int
        Number of accumulators (post-synaptic neurons or outputs).
    n_columns : int
        Number of weight columns (event sources).
    lanes : int
        Accumulators updated in parallel, 1 .. n_targets.
    weight_bits : int
        Signed width of one weight, in bits.
    acc_bits : int
        Signed width of one accumulator, in bits.
    column_shifts : sequence of (int, int)
        ``(first_column, left_shift)`` pairs in increasing ``first_column`` order, the first at
        column 0: weights of columns ``first_column ..`` (up to the next pair) are added shifted
        left by ``left_shift`` bits.

    Ports
    -----
    events : In(stream.Signature(EventLayout(n_columns)))
        Events (``flush = 0``: add column ``column``) and flush markers (``flush = 1``). An event
        is accepted in the cycle its last block is issued.
    totals : Out(stream.Signature(TotalLayout(n_targets, acc_bits), always_ready=True))
        During a flush: ``target`` and its accumulated ``value``, targets 0 .. n_targets - 1 in
        consecutive cycles. The consumer cannot stall it.
    weight_write : In(stream.Signature(WeightWordLayout(n_columns * blocks, lanes * weight_bits), always_ready=True))
        Only with ``weights=None``: each transfer writes ``data`` (lane 0 in the least
        significant bits) to weight word ``addr``. Only while no event is being issued (the
        write takes the memory's single port); the caller guarantees it.
    """

    def __init__(self, *, weights: Sequence[int] | None, n_targets: int, n_columns: int, lanes: int, weight_bits: int,
                 acc_bits: int, column_shifts: Sequence[tuple[int, int]] = ((0, 0),)):
        for name, value in (("n_targets", n_targets), ("n_columns", n_columns), ("lanes", lanes),
                            ("weight_bits", weight_bits), ("acc_bits", acc_bits)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}; expected a positive integer")
        if lanes > n_targets:
            raise ValueError(f"lanes = {lanes} exceeds n_targets = {n_targets}; lanes beyond the last target hold nothing")
        if acc_bits < weight_bits:
            raise ValueError(f"acc_bits = {acc_bits} is narrower than weight_bits = {weight_bits}; one weight would not fit")
        shifts = [(int(first), int(shift)) for first, shift in column_shifts]
        firsts = [first for first, _ in shifts]
        if not shifts or firsts[0] != 0 or firsts != sorted(set(firsts)) or firsts[-1] >= n_columns:
            raise ValueError(
                f"column_shifts = {list(column_shifts)!r}; expected (first_column, shift) pairs starting at "
                f"column 0, strictly increasing, below n_columns = {n_columns}"
            )
        if any(shift < 0 or weight_bits + shift > acc_bits for _, shift in shifts):
            raise ValueError(f"column_shifts = {shifts!r}: every shift must be >= 0 and keep a shifted weight "
                             f"inside acc_bits = {acc_bits}")
        self.n_targets = n_targets
        self.n_columns = n_columns
        self.lanes = lanes
        self.blocks = -(-n_targets // lanes)
        self.weight_bits = weight_bits
        self.acc_bits = acc_bits
        self.column_shifts = tuple(shifts)
        depth = n_columns * self.blocks
        weight_layout = data.ArrayLayout(signed(weight_bits), lanes)
        self.writable = weights is None
        if self.writable:
            init = []
        else:
            words = list(weights)
            if len(words) != depth:
                raise ValueError(
                    f"{len(words)} weight words given; expected n_columns * blocks = {n_columns} * {self.blocks} "
                    f"= {depth}"
                )
            if any(not 0 <= word < 1 << weight_layout.size for word in words):
                raise ValueError(f"weight words must be unsigned {weight_layout.size}-bit integers")
            init = [data.Const(weight_layout, word) for word in words]
        self.weights = memory.Memory(shape=weight_layout, depth=depth, init=init,
                                     attrs={RUNTIME_LOADED: 1} if self.writable else None)
        self.sums = memory.Memory(shape=data.ArrayLayout(signed(acc_bits), lanes), depth=self.blocks, init=[])
        members = {
            "events": In(stream.Signature(EventLayout(n_columns))),
            "totals": Out(stream.Signature(TotalLayout(n_targets, acc_bits), always_ready=True)),
        }
        if self.writable:
            members["weight_write"] = In(stream.Signature(WeightWordLayout(depth, weight_layout.size),
                                                          always_ready=True))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.weights = self.weights
        m.submodules.sums = self.sums
        weight_read = self.weights.read_port()
        weight_address = Signal.like(weight_read.addr)  # the events' read address
        if self.writable:
            # One address for both ports and no read while writing: a single-port memory.
            weight_write = self.weights.write_port()
            shared_address = Signal.like(weight_read.addr)
            load = self.weight_write
            m.d.comb += [
                shared_address.eq(Mux(load.valid, load.payload.addr, weight_address)),
                weight_read.addr.eq(shared_address),
                weight_read.en.eq(~load.valid),
                weight_write.addr.eq(shared_address),
                weight_write.data.eq(load.payload.data),
                weight_write.en.eq(load.valid),
            ]
        else:
            m.d.comb += weight_read.addr.eq(weight_address)
        sum_write = self.sums.write_port()
        # With a single block, consecutive events read the word written in the same cycle.
        sum_read = self.sums.read_port(transparent_for=(sum_write,) if self.blocks == 1 else ())

        last_block = self.blocks - 1
        block = Signal(range(self.blocks))  # block issued this cycle for the current event
        event = self.events.valid & ~self.events.payload.flush
        column = self.events.payload.column

        # Which shift group the event's column belongs to.
        group = Signal(range(len(self.column_shifts)))
        for index, (first, _) in enumerate(self.column_shifts[1:], start=1):
            with m.If(column >= first):
                m.d.comb += group.eq(index)

        # Stage 1 (the cycle after an issue): read data is valid; add and write back.
        s1_valid = Signal()
        s1_block = Signal.like(block)
        s1_group = Signal.like(group)
        m.d.sync += s1_valid.eq(0)
        for lane in range(self.lanes):
            weight = weight_read.data[lane]
            shifted = weight << self.column_shifts[0][1]
            for index, (_, shift) in enumerate(self.column_shifts[1:], start=1):
                shifted = Mux(s1_group == index, weight << shift, shifted)
            m.d.comb += sum_write.data[lane].eq(sum_read.data[lane] + shifted)
        m.d.comb += [
            sum_write.addr.eq(s1_block),
            sum_write.en.eq(s1_valid),
        ]

        # Flush: target counter split into (block, lane) to avoid a divider.
        flush_target = Signal(range(self.n_targets))
        flush_block = Signal(range(self.blocks))
        flush_lane = Signal(range(self.lanes))
        lane_done = (flush_lane == self.lanes - 1) | (flush_target == self.n_targets - 1)

        with m.FSM(name="accumulator"):
            with m.State("ACCUMULATE"):
                # Waits for events; issues one block per cycle, then for a flush marker.
                m.d.comb += [
                    weight_address.eq(_times(column, self.blocks) + block),
                    sum_read.addr.eq(block),  # block is 0 when idle: primes the flush read
                ]
                with m.If(event):
                    m.d.sync += [s1_valid.eq(1), s1_block.eq(block), s1_group.eq(group)]
                    with m.If(block == last_block):
                        m.d.comb += self.events.ready.eq(1)
                        m.d.sync += block.eq(0)
                    with m.Else():
                        m.d.sync += block.eq(block + 1)
                with m.Elif(self.events.valid):  # flush marker; word 0 is being read now
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                # Waits for every target to be streamed out; accepts the marker with the last one.
                m.d.comb += [
                    self.totals.valid.eq(1),
                    self.totals.payload.target.eq(flush_target),
                    self.totals.payload.value.eq(sum_read.data[flush_lane]),
                    # Hold the word until its last lane is out, then fetch the next one and clear this one.
                    sum_read.en.eq(lane_done),
                    sum_read.addr.eq(Mux(flush_block == last_block, 0, flush_block + 1)),
                    sum_write.addr.eq(flush_block),
                    sum_write.data.eq(0),
                    sum_write.en.eq(lane_done),
                ]
                m.d.sync += [
                    flush_target.eq(flush_target + 1),
                    flush_lane.eq(Mux(lane_done, 0, flush_lane + 1)),
                    flush_block.eq(flush_block + lane_done),
                ]
                with m.If(flush_target == self.n_targets - 1):
                    m.d.comb += self.events.ready.eq(1)
                    m.d.sync += [flush_target.eq(0), flush_lane.eq(0), flush_block.eq(0)]
                    m.next = "ACCUMULATE"
        return m
