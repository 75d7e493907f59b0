"""The list of neurons that spiked in the last update pass, written once and replayed twice."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.primitives import index_shape

__all__ = ["SpikeList"]


class SpikeList(wiring.Component):
    """Stores up to ``n_rec`` neuron indices in arrival order and replays them as a stream.

    The ALIF update appends this step's spikes; the core replays the list once for the readout
    and output stream of this step and once more, in the next step, as recurrent events. The
    replay is event-driven: it costs one cycle per stored spike (when the consumer is ready)
    plus one cycle to fetch the first entry, whatever ``n_rec`` is.

    Memory: ``indices``, ``n_rec`` words of ``index_shape(n_rec)``; entry ``e`` is the ``e``-th
    spike of the pass.

    Parameters (keyword-only)
    -------------------------
    n_rec : int
        Number of neurons, the largest possible number of entries.

    Ports
    -----
    append : In(stream.Signature(index_shape(n_rec), always_ready=True))
        Each transfer stores one neuron index at the end of the list.
    restart : In(1)
        Strobe: empty the list (appends start at entry 0 again). Not during a replay.
    start : In(1)
        Strobe: begin replaying entries 0 .. count - 1. Not while appending: an entry written in
        the strobe cycle would be read stale.
    replay : Out(stream.Signature(index_shape(n_rec)))
        The stored indices in order, the first one the cycle after ``start``.
    busy : Out(1)
        A replay is in progress (entries remain to be sent).
    """

    def __init__(self, *, n_rec: int):
        if not isinstance(n_rec, int) or n_rec < 1:
            raise ValueError(f"n_rec = {n_rec!r}; expected a positive integer")
        self.n_rec = n_rec
        self.indices = memory.Memory(shape=index_shape(n_rec), depth=n_rec, init=[])
        super().__init__({
            "append": In(stream.Signature(index_shape(n_rec), always_ready=True)),
            "restart": In(1),
            "start": In(1),
            "replay": Out(stream.Signature(index_shape(n_rec))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.indices = self.indices
        write = self.indices.write_port()
        read = self.indices.read_port()

        count = Signal(range(self.n_rec + 1))
        with m.If(self.restart):
            m.d.sync += count.eq(0)
        with m.Elif(self.append.valid):
            m.d.sync += count.eq(count + 1)
        m.d.comb += [write.addr.eq(count), write.data.eq(self.append.payload), write.en.eq(self.append.valid)]

        # The read address runs one entry ahead of `position`, so the data of `position` is
        # always on the read port: the next entry is fetched in the cycle the current one leaves.
        position = Signal(range(self.n_rec + 1))
        sent = self.replay.valid & self.replay.ready
        m.d.comb += [
            read.addr.eq(Mux(self.start, 0, position + sent)),
            self.replay.payload.eq(read.data),
            self.replay.valid.eq(self.busy),
        ]
        with m.If(self.start):
            m.d.sync += [position.eq(0), self.busy.eq(count != 0)]
        with m.Elif(sent):
            m.d.sync += position.eq(position + 1)
            with m.If(position + 1 == count):
                m.d.sync += self.busy.eq(0)
        return m
