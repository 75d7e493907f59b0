"""The readout integrators, the score and the class decision: steps 6 and 7 of docs/fixed_point.md."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.accumulator import TotalLayout
from hdl.primitives import decay, rom, saturate

__all__ = ["READOUT_LATENCY", "ReadoutState", "ReadoutUpdate"]

#: Cycles from an output's total entering :class:`ReadoutUpdate` to its argmax update (the
#: state is written one cycle earlier).
READOUT_LATENCY = 6


class ReadoutState(data.StructLayout):
    """One word of the readout state memory: readout ``o`` and score ``s``."""

    def __init__(self, readout_bits: int, score_bits: int):
        super().__init__({"o": signed(readout_bits), "s": signed(score_bits)})


class ReadoutUpdate(wiring.Component):
    """Updates ``n_out`` leaky readouts and their scores, one output per cycle, and tracks the argmax.

    For the total of output ``k`` arriving in cycle ``c`` it reads ``k``'s state and decay in
    cycle ``c``, multiplies ``alpha_out * o`` in cycle ``c + 1``, rounds the decay in ``c + 2``,
    adds the total in ``c + 3`` and the old score in ``c + 4``, writes ``o`` and ``s`` in cycle
    ``c + 5`` and updates the argmax in ``c + 6`` (:data:`READOUT_LATENCY`):

        o_k <- sat_OW(decay(o_k, alpha_out_k) + total_k)
        s_k <- sat_SW(s_k + o_k)   (decode "mean")   or   s_k <- o_k   (decode "last")

    Totals must arrive in output order 0 .. n_out - 1 (as :class:`~hdl.accumulator.EventAccumulator`
    sends them): the argmax restarts at output 0 and replaces its candidate only on a strictly
    greater score, so ties go to the lowest index.

    Memories (depth ``n_out``, address ``k`` = output ``k``)
    ---------------------------------------------------------
    ``state``: :class:`ReadoutState` ``{o, s}``, initially zero. ``alpha_out``: unsigned
    ``decay_bits``, read only, from the network.

    Parameters (keyword-only)
    -------------------------
    network : gesture_snn.spec.intnet.IntegerNetwork
        Supplies ``n_out``, ``decay_bits``, ``readout_bits``, ``score_bits``, ``decode`` and ``alpha_out``.
    acc_bits : int
        Signed width of the incoming totals, in bits.

    Ports
    -----
    totals : In(stream.Signature(TotalLayout(n_out, acc_bits), always_ready=True))
        ``target`` = output ``k``, ``value`` = ``sum over spiking j of w_out[k, j]`` of this step.
    first : In(1)
        Level: the stored state is treated as zero (the first step of a sample).
    prediction : Out(range(n_out))
        Index of the largest score (ties: lowest index) of the last complete pass; while a pass
        runs it holds the running candidate, so read it when ``busy`` is low.
    busy : Out(1)
        An output is in the pipeline.
    """

    def __init__(self, *, network, acc_bits: int):
        net = network
        self.n_out = net.n_out
        self.decay_bits = net.decay_bits
        self.readout_bits = net.readout_bits
        self.score_bits = net.score_bits
        self.decode = net.decode
        self.state = memory.Memory(shape=ReadoutState(net.readout_bits, net.score_bits), depth=net.n_out, init=[])
        self.alpha_out = rom(net.alpha_out, net.decay_bits)
        super().__init__({
            "totals": In(stream.Signature(TotalLayout(net.n_out, acc_bits), always_ready=True)),
            "first": In(1),
            "prediction": Out(range(net.n_out)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.state = self.state
        m.submodules.alpha_out = self.alpha_out
        state_read = self.state.read_port()
        alpha_read = self.alpha_out.read_port()
        state_write = self.state.write_port()
        m.d.comb += [state_read.addr.eq(self.totals.payload.target), alpha_read.addr.eq(self.totals.payload.target)]

        # Stage 1: memory data valid; the old state (zero on the first step) meets the decay.
        s1_valid = Signal()
        s1_output = Signal.like(self.totals.payload.target)
        s1_total = Signal.like(self.totals.payload.value)
        m.d.sync += [
            s1_valid.eq(self.totals.valid),
            s1_output.eq(self.totals.payload.target),
            s1_total.eq(self.totals.payload.value),
        ]
        o_old = Mux(self.first, 0, state_read.data.o)
        s_old = Mux(self.first, 0, state_read.data.s)

        # Stage 2: the registered product.
        s2_valid = Signal()
        s2_output = Signal.like(s1_output)
        s2_total = Signal.like(s1_total)
        s2_s_old = Signal(signed(self.score_bits))
        s2_alpha_o = Signal(signed(self.readout_bits + self.decay_bits + 1))
        m.d.sync += [
            s2_valid.eq(s1_valid),
            s2_output.eq(s1_output),
            s2_total.eq(s1_total),
            s2_s_old.eq(s_old),
            s2_alpha_o.eq(o_old * alpha_read.data),
        ]
        # Stage 3: the rounded decay.
        s3_valid, s3_output = Signal(), Signal.like(s2_output)
        s3_total, s3_s_old = Signal.like(s2_total), Signal.like(s2_s_old)
        s3_alpha_o = Signal(signed(self.readout_bits + 1))
        m.d.sync += [s3_valid.eq(s2_valid), s3_output.eq(s2_output), s3_total.eq(s2_total), s3_s_old.eq(s2_s_old),
                     s3_alpha_o.eq(decay(s2_alpha_o, self.decay_bits))]
        # Stage 4: 6. o = sat_OW(decay(o, alpha_out) + total).
        s4_valid, s4_output, s4_s_old = Signal(), Signal.like(s3_output), Signal.like(s3_s_old)
        s4_o = Signal(signed(self.readout_bits))
        m.d.sync += [s4_valid.eq(s3_valid), s4_output.eq(s3_output), s4_s_old.eq(s3_s_old),
                     s4_o.eq(saturate(s3_alpha_o + s3_total, signed(self.readout_bits)))]
        # Stage 5: the exact score sum (decode "mean") or the readout itself ("last").
        s5_valid, s5_output, s5_o = Signal(), Signal.like(s4_output), Signal.like(s4_o)
        s5_sum = Signal(signed(self.score_bits + 1))
        m.d.sync += [s5_valid.eq(s4_valid), s5_output.eq(s4_output), s5_o.eq(s4_o),
                     s5_sum.eq(s4_s_old + s4_o if self.decode == "mean" else s4_o)]
        # Stage 6: 7. s = sat_SW(sum); write back.
        s6_valid, s6_output = Signal(), Signal.like(s5_output)
        s6_s = Signal(signed(self.score_bits))
        s_new = saturate(s5_sum, signed(self.score_bits))
        m.d.sync += [s6_valid.eq(s5_valid), s6_output.eq(s5_output), s6_s.eq(s_new)]
        m.d.comb += [
            state_write.addr.eq(s5_output),
            state_write.data.o.eq(s5_o),
            state_write.data.s.eq(s_new),
            state_write.en.eq(s5_valid),
            self.busy.eq(s1_valid | s2_valid | s3_valid | s4_valid | s5_valid | s6_valid),
        ]
        # The running argmax, one stage later.
        best_score = Signal(signed(self.score_bits))
        best_output = self.prediction
        with m.If(s6_valid & ((s6_output == 0) | (s6_s > best_score))):
            m.d.sync += [best_score.eq(s6_s), best_output.eq(s6_output)]
        return m
