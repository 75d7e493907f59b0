"""The ALIF neuron update: steps 1, 2, 4 and 5 of docs/fixed_point.md, one neuron per cycle."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.accumulator import TotalLayout
from hdl.primitives import decay, index_shape, rom, saturate

__all__ = ["ALIF_LATENCY", "NeuronState", "AlifUpdate"]

#: Cycles from a neuron's total entering :class:`AlifUpdate` to its state write (and spike).
ALIF_LATENCY = 6


class NeuronState(data.StructLayout):
    """One word of the neuron state memory: membrane ``v``, adaptation ``a``, last spike ``z``."""

    def __init__(self, membrane_bits: int, adaptation_bits: int):
        super().__init__({"v": signed(membrane_bits), "a": unsigned(adaptation_bits), "z": 1})


class AlifUpdate(wiring.Component):
    """Updates ``n_rec`` ALIF neurons from their synaptic totals, one neuron per cycle, fully pipelined.

    For the total of neuron ``j`` arriving in cycle ``c`` it reads ``j``'s state and parameters
    in cycle ``c``, multiplies in cycle ``c + 1`` (two multipliers: ``rho * a`` and
    ``alpha * v``), rounds the decays in ``c + 2``, adds the adaptation increment and the
    synaptic input in ``c + 3``, forms the threshold in ``c + 4`` and subtracts the reset in
    ``c + 5``, and writes the new state, and emits a spike if ``v > th``, in cycle ``c + 6``
    (:data:`ALIF_LATENCY`): at most one carry chain and a comparison per cycle, for the iCE40's
    clock. Each neuron is read once per step and written six cycles later, so a stream of
    totals in any order never reads a word that is still being written.

    Memories (depth ``n_rec``, address ``j`` = neuron ``j``)
    ---------------------------------------------------------
    ``state``: :class:`NeuronState` ``{v, a, z}``, read and written every step, initially zero.
    ``alpha``, ``rho`` (``decay_bits``), ``adapt_inc`` (``adaptation_bits``), ``threshold_base``
    (``membrane_bits - 1``): unsigned, read only, from the network.

    Parameters (keyword-only)
    -------------------------
    network : gesture_snn.spec.intnet.IntegerNetwork
        Supplies ``n_rec``, the widths, ``acc_bits`` and the parameter vectors.

    Ports
    -----
    totals : In(stream.Signature(TotalLayout(n_rec, acc_bits), always_ready=True))
        ``target`` = neuron ``j``, ``value`` = its synaptic input ``acc_j`` of this step (spec step 3).
    first : In(1)
        Level: the stored state is treated as zero (the first step of a sample). Hold it for the
        whole update pass.
    spikes : Out(stream.Signature(unsigned, always_ready=True))
        The index of every neuron that spikes, in the cycle its state is written.
    busy : Out(1)
        A neuron is in the pipeline (its state is not written yet).
    """

    def __init__(self, *, network):
        net = network
        self.n_rec = net.n_rec
        self.decay_bits = net.decay_bits
        self.membrane_bits = net.membrane_bits
        self.adaptation_bits = net.adaptation_bits
        self.threshold_bits = net.threshold_bits
        self.state = memory.Memory(shape=NeuronState(net.membrane_bits, net.adaptation_bits), depth=net.n_rec, init=[])
        self.alpha = rom(net.alpha, net.decay_bits)
        self.rho = rom(net.rho, net.decay_bits)
        self.adapt_inc = rom(net.adapt_inc, net.adaptation_bits)
        self.threshold_base = rom(net.threshold_base, net.membrane_bits - 1)
        super().__init__({
            "totals": In(stream.Signature(TotalLayout(net.n_rec, net.acc_bits), always_ready=True)),
            "first": In(1),
            "spikes": Out(stream.Signature(index_shape(net.n_rec), always_ready=True)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        memories = {"state": self.state, "alpha": self.alpha, "rho": self.rho,
                    "adapt_inc": self.adapt_inc, "threshold_base": self.threshold_base}
        reads = {}
        for name, mem in memories.items():
            m.submodules[name] = mem
            reads[name] = mem.read_port()
            m.d.comb += reads[name].addr.eq(self.totals.payload.target)
        state_write = self.state.write_port()

        # Stage 1: memory data valid; the old state (zero on the first step) meets the decays.
        s1_valid = Signal()
        s1_neuron = Signal.like(self.totals.payload.target)
        s1_acc = Signal.like(self.totals.payload.value)
        m.d.sync += [
            s1_valid.eq(self.totals.valid),
            s1_neuron.eq(self.totals.payload.target),
            s1_acc.eq(self.totals.payload.value),
        ]
        old = reads["state"].data
        v_old = Mux(self.first, 0, old.v)
        a_old = Mux(self.first, 0, old.a)
        z_old = old.z & ~self.first

        # Stage 2: the registered products (one multiplier each).
        s2_valid = Signal()
        s2_neuron = Signal.like(s1_neuron)
        s2_acc = Signal.like(s1_acc)
        s2_z_old = Signal()
        s2_rho_a = Signal(unsigned(self.adaptation_bits + self.decay_bits))
        s2_alpha_v = Signal(signed(self.membrane_bits + self.decay_bits + 1))
        s2_adapt_inc = Signal.like(reads["adapt_inc"].data)
        s2_threshold_base = Signal.like(reads["threshold_base"].data)
        m.d.sync += [
            s2_valid.eq(s1_valid),
            s2_neuron.eq(s1_neuron),
            s2_acc.eq(s1_acc),
            s2_z_old.eq(z_old),
            s2_rho_a.eq(reads["rho"].data * a_old),
            s2_alpha_v.eq(v_old * reads["alpha"].data),
            s2_adapt_inc.eq(reads["adapt_inc"].data),
            s2_threshold_base.eq(reads["threshold_base"].data),
        ]

        # Stage 3: the decays, rounded (spec: decay(x, q)).
        s3_valid = Signal()
        s3_neuron = Signal.like(s2_neuron)
        s3_acc = Signal.like(s2_acc)
        s3_z_old = Signal()
        s3_rho_a = Signal(unsigned(self.adaptation_bits + 1))
        s3_alpha_v = Signal(signed(self.membrane_bits + 1))
        s3_adapt_inc = Signal.like(s2_adapt_inc)
        s3_threshold_base = Signal.like(s2_threshold_base)
        m.d.sync += [
            s3_valid.eq(s2_valid), s3_neuron.eq(s2_neuron), s3_acc.eq(s2_acc), s3_z_old.eq(s2_z_old),
            s3_rho_a.eq(decay(s2_rho_a, self.decay_bits)), s3_alpha_v.eq(decay(s2_alpha_v, self.decay_bits)),
            s3_adapt_inc.eq(s2_adapt_inc), s3_threshold_base.eq(s2_threshold_base),
        ]
        # Stage 4: 1. adaptation a = usat_AW(decay(a, rho) + z * adapt_inc); the membrane's exact
        # decay-plus-input sum.
        s4_valid = Signal()
        s4_neuron = Signal.like(s3_neuron)
        s4_z_old = Signal()
        s4_a_new = Signal(unsigned(self.adaptation_bits))
        s4_v_sum = Signal(signed(max(self.membrane_bits + 1, len(s3_acc)) + 1))
        s4_threshold_base = Signal.like(s3_threshold_base)
        m.d.sync += [
            s4_valid.eq(s3_valid), s4_neuron.eq(s3_neuron), s4_z_old.eq(s3_z_old),
            s4_a_new.eq(saturate(s3_rho_a + Mux(s3_z_old, s3_adapt_inc, 0), unsigned(self.adaptation_bits))),
            s4_v_sum.eq(s3_alpha_v + s3_acc),
            s4_threshold_base.eq(s3_threshold_base),
        ]
        # Stage 5: 2. threshold th = b0 + a (never saturates).
        s5_valid = Signal()
        s5_neuron = Signal.like(s4_neuron)
        s5_z_old = Signal()
        s5_a_new = Signal.like(s4_a_new)
        s5_v_sum = Signal.like(s4_v_sum)
        s5_th = Signal(unsigned(self.threshold_bits))
        m.d.sync += [
            s5_valid.eq(s4_valid), s5_neuron.eq(s4_neuron), s5_z_old.eq(s4_z_old), s5_a_new.eq(s4_a_new),
            s5_v_sum.eq(s4_v_sum), s5_th.eq(s4_threshold_base + s4_a_new),
        ]
        # Stage 6: 4. the membrane's exact sum decay(v, alpha) + acc - z * th.
        s6_valid = Signal()
        s6_neuron = Signal.like(s5_neuron)
        s6_a_new = Signal.like(s5_a_new)
        s6_th = Signal.like(s5_th)
        s6_v_exact = Signal(signed(max(len(s5_v_sum), len(s5_th) + 1) + 1))
        m.d.sync += [
            s6_valid.eq(s5_valid), s6_neuron.eq(s5_neuron), s6_a_new.eq(s5_a_new), s6_th.eq(s5_th),
            s6_v_exact.eq(s5_v_sum - Mux(s5_z_old, s5_th, 0)),
        ]
        # v = sat_VW(exact sum); 5. spike v > th (strictly greater), which is exact > th while
        # th is below the largest membrane value (th >= 0, so saturating low never spikes).
        v_max = (1 << (self.membrane_bits - 1)) - 1
        v_new = Signal(signed(self.membrane_bits))
        z_new = Signal()
        m.d.comb += [
            v_new.eq(saturate(s6_v_exact, signed(self.membrane_bits))),
            z_new.eq((s6_v_exact > s6_th) & (s6_th < v_max)),
            state_write.addr.eq(s6_neuron),
            state_write.data.v.eq(v_new),
            state_write.data.a.eq(s6_a_new),
            state_write.data.z.eq(z_new),
            state_write.en.eq(s6_valid),
            self.spikes.valid.eq(s6_valid & z_new),
            self.spikes.payload.eq(s6_neuron),
            self.busy.eq(s1_valid | s2_valid | s3_valid | s4_valid | s5_valid | s6_valid),
        ]
        return m
