"""The serial byte protocol in gateware: commands into the neuron core, its outputs into replies.

:class:`CommandDecoder` turns received bytes (EVENT lists or BITMAP frames) into :class:`~hdl.core.NeuronCore` input items,
weight writes and identification requests; :class:`ReplyEncoder` turns the core's output items
and the identification into reply bytes. The protocol itself (codes, frame lengths, the IDENT
frame) is defined once, in :mod:`gesture_snn.spec.protocol`, and docs/boards.md describes it; the
board tops (:mod:`hdl.boards`) put a UART on either side.
"""

from __future__ import annotations

import math

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import enum, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from gesture_snn.spec.protocol import (
    ADDRESS_BYTES,
    BITMAP_HEADER_BYTES,
    EVENT_BYTES,
    IDENT_FLAGS_OFFSET,
    LOAD_HEADER_BYTES,
    MAX_INPUTS,
    REPLY_BYTES,
    Command,
    DeviceInfo,
    LinkErrors,
    ReplyCode,
)
from hdl.core import InputKind, InputLayout, OutputKind, OutputLayout, WeightWriteLayout
from hdl.primitives import index_shape

__all__ = ["ERROR_BITS", "CommandDecoder", "ReplyEncoder"]

#: Width of the error flags reported in IDENT (one bit per :class:`~gesture_snn.spec.protocol.LinkErrors` member).
ERROR_BITS = len(LinkErrors)


class CommandDecoder(wiring.Component):
    """Parses host commands (docs/boards.md) from a byte stream.

    The bytes first enter a FIFO of ``buffer_bytes`` (default: the longest step the host sends,
    a BITMAP frame, ``1 + ceil(n_in / 8)`` bytes), so the receiver never waits while the core
    takes input items at its own pace (``n_rec / lanes`` cycles per event): in a lock-step
    session no byte is lost however fast the baud rate and however dense the step.

    The first byte of a frame is its command; EVENT, LOAD_WEIGHT and BITMAP then collect their
    payload bytes and are checked: an EVENT must name an input below ``n_in``, a LOAD_WEIGHT
    memory 0 or 1 and an address below that memory's depth, and only a build with
    ``weight_loading`` takes LOAD_WEIGHT. A frame that fails its check, and an unknown command
    byte (taken as a one-byte frame), is dropped with a ``bad_command`` pulse. A BITMAP frame is
    issued bit by bit as its bytes arrive (an EVENT item per set bit, in ascending order, then
    the END_OF_STEP or END_OF_SAMPLE item); a set bit at or above ``n_in`` is skipped with a
    ``bad_command`` pulse and the frame still closes the step. A framing error in the middle of
    a frame (``frame_abort``, kept in order with the bytes through the FIFO) drops the rest of
    the frame, so that the next byte starts a new one.

    Parameters (keyword-only)
    -------------------------
    n_in : int
        Inputs of the network, 1 .. 65536: EVENT indices at or above it are refused; a BITMAP
        frame has ``ceil(n_in / 8)`` bitmap bytes.
    weight_depths : (int, int)
        Words of the synaptic and of the readout weight memory (``NeuronCore.weight_depths``).
    weight_word_bits : (int, int)
        Bits per word of both memories (``NeuronCore.weight_word_bits``). A LOAD_WEIGHT word
        has ``ceil(max(weight_word_bits) / 8)`` bytes (:attr:`word_bytes`).
    weight_loading : bool
        The core has a ``weight_write`` port (``NeuronCore(weight_loading=True)``). Without it
        every LOAD_WEIGHT frame is refused, but still parsed, so the framing stays intact.
    buffer_bytes : int or None
        Depth of the receive FIFO, at least 2; None: ``1 + ceil(n_in / 8)`` (at least 2).

    Ports
    -----
    bytes : In(stream.Signature(unsigned(8)))
        Received bytes (taken whenever the FIFO has room).
    frame_abort : In(1)
        A pulse (the receiver's framing error) that drops the frame being collected.
    inputs : Out(stream.Signature(InputLayout(n_in)))
        EVENT, END_OF_STEP and END_OF_SAMPLE items for ``NeuronCore.inputs``.
    weight_write : Out(stream.Signature(WeightWriteLayout(A, W)))
        Only with ``weight_loading``: memory, address and word for ``NeuronCore.weight_write``
        (``A``: address bits of the deeper memory, ``W``: bits of the wider word).
    identify : Out(1)
        Pulses for one cycle when an IDENTIFY command arrives.
    bad_command : Out(1)
        Pulses for one cycle when a frame (or a BITMAP bit) is dropped as described above.
    """

    def __init__(self, *, n_in: int, weight_depths: tuple[int, int], weight_word_bits: tuple[int, int],
                 weight_loading: bool, buffer_bytes: int | None = None):
        if isinstance(n_in, bool) or not isinstance(n_in, int) or not 1 <= n_in <= MAX_INPUTS:
            raise ValueError(f"n_in = {n_in!r}; expected an integer in [1, {MAX_INPUTS}] (EVENT carries a 16-bit index)")
        for name, pair in (("weight_depths", weight_depths), ("weight_word_bits", weight_word_bits)):
            if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
                raise ValueError(f"{name} = {pair!r}; expected two positive integers (synaptic, readout)")
        if max(weight_depths) > 1 << (8 * ADDRESS_BYTES):
            raise ValueError(f"weight_depths = {weight_depths!r}: LOAD_WEIGHT addresses reach "
                             f"{1 << (8 * ADDRESS_BYTES)} words")
        if not isinstance(weight_loading, bool):
            raise TypeError(f"weight_loading must be a bool; got {weight_loading!r}")
        self.bitmap_bytes = math.ceil(n_in / 8)
        if buffer_bytes is None:
            buffer_bytes = max(2, BITMAP_HEADER_BYTES + self.bitmap_bytes)
        if isinstance(buffer_bytes, bool) or not isinstance(buffer_bytes, int) or buffer_bytes < 2:
            raise ValueError(f"buffer_bytes = {buffer_bytes!r}; expected an integer >= 2")
        self.n_in = n_in
        self.weight_depths = tuple(weight_depths)
        self.weight_word_bits = tuple(weight_word_bits)
        self.weight_loading = weight_loading
        self.buffer_bytes = buffer_bytes
        self.word_bytes = math.ceil(max(weight_word_bits) / 8)
        members = {
            "bytes": In(stream.Signature(unsigned(8))),
            "frame_abort": In(1),
            "inputs": Out(stream.Signature(InputLayout(n_in))),
            "identify": Out(1),
            "bad_command": Out(1),
        }
        if weight_loading:
            addr_bits = max(index_shape(depth).width for depth in weight_depths)
            members["weight_write"] = Out(stream.Signature(WeightWriteLayout(addr_bits, max(weight_word_bits))))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()

        # The receive FIFO: bit 8 of an entry marks a framing error (an abort) instead of a byte.
        m.submodules.buffer = buffer = SyncFIFOBuffered(width=9, depth=self.buffer_bytes)
        abort_pending = Signal()  # a framing error waits for room in the FIFO
        byte_first = Signal()  # ... behind a byte that arrived before it
        with m.If(abort_pending & ~byte_first):
            m.d.comb += [buffer.w_en.eq(1), buffer.w_data.eq(1 << 8)]
            with m.If(buffer.w_rdy):
                m.d.sync += abort_pending.eq(0)
        with m.Elif(self.bytes.valid):
            m.d.comb += [buffer.w_en.eq(1), buffer.w_data.eq(self.bytes.payload), self.bytes.ready.eq(buffer.w_rdy)]
            with m.If(buffer.w_rdy):
                m.d.sync += byte_first.eq(0)
        with m.If(self.frame_abort):
            m.d.sync += abort_pending.eq(1)
            with m.If(~abort_pending):
                m.d.sync += byte_first.eq(self.bytes.valid & ~self.bytes.ready)
        valid = buffer.r_rdy
        byte = buffer.r_data[:8]
        abort = buffer.r_data[8]
        take = buffer.r_en

        load_payload = LOAD_HEADER_BYTES - 1 + self.word_bytes  # LOAD_WEIGHT bytes after the command byte
        event_payload = EVENT_BYTES - 1
        payload = Signal(8 * load_payload)  # payload byte k in bits 8k .. 8k + 7
        position = Signal(range(max(load_payload, self.bitmap_bytes)))  # payload (or bitmap) byte expected next
        command = Signal(8)
        bits = Signal(8)  # the bitmap byte being issued, shifted right as its bits are issued
        bit = Signal(3)  # the bit of that byte in bits[0]
        bit_index = Cat(bit, position)  # the input of bits[0]
        item = Signal.like(self.inputs.payload)  # the input item to issue
        m.d.comb += self.inputs.payload.eq(item)

        memory = payload[:8]
        address = payload[8:8 + 8 * ADDRESS_BYTES]
        word = payload[8 + 8 * ADDRESS_BYTES:]
        if self.weight_loading:
            synaptic_depth, readout_depth = self.weight_depths
            in_depth = Mux(memory == 0, address < synaptic_depth, (memory == 1) & (address < readout_depth))
            write = self.weight_write.payload
            m.d.comb += [write.memory.eq(memory), write.addr.eq(address), write.data.eq(word)]

        with m.FSM(name="decoder"):
            with m.State("COMMAND"):
                # Waits for a command byte (an abort between frames is dropped).
                m.d.comb += take.eq(1)
                with m.If(valid & ~abort):
                    m.d.sync += [command.eq(byte), position.eq(0)]
                    with m.Switch(byte):
                        with m.Case(Command.NOP):
                            pass
                        with m.Case(Command.IDENTIFY):
                            m.d.comb += self.identify.eq(1)
                        with m.Case(Command.END_OF_STEP):
                            m.d.sync += item.kind.eq(InputKind.END_OF_STEP)
                            m.next = "ISSUE_INPUT"
                        with m.Case(Command.END_OF_SAMPLE):
                            m.d.sync += item.kind.eq(InputKind.END_OF_SAMPLE)
                            m.next = "ISSUE_INPUT"
                        with m.Case(Command.EVENT, Command.LOAD_WEIGHT):
                            m.next = "PAYLOAD"
                        with m.Case(Command.BITMAP_STEP, Command.BITMAP_SAMPLE):
                            m.next = "BITMAP"
                        with m.Default():
                            m.d.comb += self.bad_command.eq(1)
            with m.State("PAYLOAD"):
                # Collects the payload bytes of an EVENT or LOAD_WEIGHT frame.
                m.d.comb += take.eq(1)
                last = Mux(command == Command.EVENT, event_payload - 1, load_payload - 1)
                with m.If(valid & abort):
                    m.next = "COMMAND"
                with m.Elif(valid):
                    with m.Switch(position):
                        for k in range(load_payload):
                            with m.Case(k):
                                m.d.sync += payload[8 * k:8 * (k + 1)].eq(byte)
                    m.d.sync += position.eq(position + 1)
                    with m.If(position == last):
                        m.next = "CHECK"
            with m.State("CHECK"):
                # Validates the complete frame.
                index = payload[:16]
                with m.If((command == Command.EVENT) & (index < self.n_in)):
                    m.d.sync += [item.kind.eq(InputKind.EVENT), item.index.eq(index)]
                    m.next = "ISSUE_INPUT"
                if self.weight_loading:
                    with m.Elif((command == Command.LOAD_WEIGHT) & in_depth):
                        m.next = "ISSUE_WRITE"
                with m.Else():
                    m.d.comb += self.bad_command.eq(1)
                    m.next = "COMMAND"
            with m.State("BITMAP"):
                # Takes the next bitmap byte (byte `position` of the frame).
                m.d.comb += take.eq(1)
                with m.If(valid & abort):
                    m.next = "COMMAND"
                with m.Elif(valid):
                    m.d.sync += [bits.eq(byte), bit.eq(0)]
                    m.next = "SCAN"
            with m.State("SCAN"):
                # Issues an EVENT per set bit of the byte, then takes the next byte or closes the step.
                shift = [bits.eq(bits >> 1), bit.eq(bit + 1)]
                with m.If(bits == 0):
                    with m.If(position == self.bitmap_bytes - 1):
                        with m.If(command == Command.BITMAP_SAMPLE):
                            m.d.sync += item.kind.eq(InputKind.END_OF_SAMPLE)
                        with m.Else():
                            m.d.sync += item.kind.eq(InputKind.END_OF_STEP)
                        m.next = "ISSUE_INPUT"
                    with m.Else():
                        m.d.sync += position.eq(position + 1)
                        m.next = "BITMAP"
                with m.Elif(bits[0]):
                    with m.If(bit_index < self.n_in):
                        m.d.sync += [item.kind.eq(InputKind.EVENT), item.index.eq(bit_index)]
                        m.next = "ISSUE_BIT"
                    with m.Else():
                        m.d.comb += self.bad_command.eq(1)
                        m.d.sync += shift
                with m.Else():
                    m.d.sync += shift
            with m.State("ISSUE_BIT"):
                # Waits for the core to take a bitmap bit's EVENT item.
                m.d.comb += self.inputs.valid.eq(1)
                with m.If(self.inputs.ready):
                    m.d.sync += [bits.eq(bits >> 1), bit.eq(bit + 1)]
                    m.next = "SCAN"
            with m.State("ISSUE_INPUT"):
                # Waits for the core to take the input item.
                m.d.comb += self.inputs.valid.eq(1)
                with m.If(self.inputs.ready):
                    m.next = "COMMAND"
            if self.weight_loading:
                with m.State("ISSUE_WRITE"):
                    # Waits for the core to take the weight word (it does so only between samples).
                    m.d.comb += self.weight_write.valid.eq(1)
                    with m.If(self.weight_write.ready):
                        m.next = "COMMAND"
        return m


class _Frame(enum.Enum, shape=2):
    """The reply frame being sent."""

    SPIKE = 0
    END_OF_STEP = 1
    CLASS = 2
    IDENT = 3


class ReplyEncoder(wiring.Component):
    """Sends the core's output items and the identification as reply frames (docs/boards.md).

    Frames are never interleaved: a frame is chosen when the previous one has been sent, an
    IDENT requested by ``identify`` before the core's next output item. The IDENT frame is
    ``ident.encode()`` with its flags byte built at send time from the weight-loading bit and
    ``errors``, which the frame reports and ``errors_reported`` acknowledges (the owner of the
    sticky flags clears them).

    Parameters (keyword-only)
    -------------------------
    n_rec, n_out : int
        Sizes of the network (the widths of the core's output items).
    ident : gesture_snn.spec.protocol.DeviceInfo
        What IDENT reports (its ``errors`` field is ignored: the ``errors`` port supplies them).

    Ports
    -----
    outputs : In(stream.Signature(OutputLayout(n_rec, n_out)))
        ``NeuronCore.outputs``: SPIKE, END_OF_STEP and CLASS items, each taken when its frame starts.
    identify : In(1)
        A pulse: send an IDENT frame (once, however many pulses arrive before it starts).
    errors : In(ERROR_BITS)
        :class:`~gesture_snn.spec.protocol.LinkErrors` to report in the next IDENT frame.
    errors_reported : Out(1)
        Pulses for one cycle when ``errors`` has been copied into an IDENT frame.
    bytes : Out(stream.Signature(unsigned(8)))
        Reply bytes, for the transmitter.
    """

    def __init__(self, *, n_rec: int, n_out: int, ident: DeviceInfo):
        if not isinstance(ident, DeviceInfo):
            raise TypeError(f"ident must be a gesture_snn.spec.protocol.DeviceInfo; got {type(ident).__name__}")
        if (ident.n_rec, ident.n_out) != (n_rec, n_out):
            raise ValueError(f"ident describes {ident.n_rec} neurons and {ident.n_out} outputs, "
                             f"the encoder {n_rec} and {n_out}")
        self.n_rec = n_rec
        self.n_out = n_out
        self.ident = ident
        super().__init__({
            "outputs": In(stream.Signature(OutputLayout(n_rec, n_out))),
            "identify": In(1),
            "errors": In(ERROR_BITS),
            "errors_reported": Out(1),
            "bytes": Out(stream.Signature(unsigned(8))),
        })

    def elaborate(self, platform):
        m = Module()
        frame = Signal(_Frame)
        index = Signal(16)  # SPIKE neuron or CLASS index (the core's index, zero-extended)
        flags = Signal(8)  # the IDENT flags byte of the frame being sent
        position = Signal(range(max(REPLY_BYTES.values())))
        ident_pending = Signal()
        lengths = {_Frame.SPIKE: REPLY_BYTES[ReplyCode.SPIKE], _Frame.END_OF_STEP: REPLY_BYTES[ReplyCode.END_OF_STEP],
                   _Frame.CLASS: REPLY_BYTES[ReplyCode.CLASS], _Frame.IDENT: REPLY_BYTES[ReplyCode.IDENT]}
        ident_bytes = self.ident.encode()
        static_flags = self.ident.flags & ~(((1 << ERROR_BITS) - 1) << 1)  # the weight-loading bit

        with m.FSM(name="encoder"):
            with m.State("IDLE"):
                # Waits for an identification request or an output item.
                m.d.sync += position.eq(0)
                with m.If(ident_pending):
                    m.d.sync += [frame.eq(_Frame.IDENT), flags.eq(static_flags | self.errors << 1), ident_pending.eq(0)]
                    m.d.comb += self.errors_reported.eq(1)
                    m.next = "SEND"
                with m.Elif(self.outputs.valid):
                    m.d.comb += self.outputs.ready.eq(1)
                    m.d.sync += index.eq(self.outputs.payload.index)
                    with m.Switch(self.outputs.payload.kind):
                        with m.Case(OutputKind.SPIKE):
                            m.d.sync += frame.eq(_Frame.SPIKE)
                        with m.Case(OutputKind.END_OF_STEP):
                            m.d.sync += frame.eq(_Frame.END_OF_STEP)
                        with m.Default():
                            m.d.sync += frame.eq(_Frame.CLASS)
                    m.next = "SEND"
            with m.State("SEND"):
                # Sends the frame byte by byte.
                m.d.comb += self.bytes.valid.eq(1)
                with m.Switch(frame):
                    for kind, length in lengths.items():
                        with m.Case(kind):
                            with m.Switch(position):
                                for k, value in enumerate(self._frame_bytes(kind, index, flags, ident_bytes)):
                                    with m.Case(k):
                                        m.d.comb += self.bytes.payload.eq(value)
                            with m.If(self.bytes.ready & (position == length - 1)):
                                m.next = "IDLE"
                with m.If(self.bytes.ready):
                    m.d.sync += position.eq(position + 1)
        with m.If(self.identify):
            m.d.sync += ident_pending.eq(1)
        return m

    @staticmethod
    def _frame_bytes(kind: _Frame, index: Signal, flags: Signal, ident_bytes: bytes) -> list:
        """The bytes of a frame of ``kind``, as constants or expressions, code byte first."""
        if kind == _Frame.SPIKE:
            return [ReplyCode.SPIKE.value, index[:8], index[8:16]]
        if kind == _Frame.END_OF_STEP:
            return [ReplyCode.END_OF_STEP.value]
        if kind == _Frame.CLASS:
            return [ReplyCode.CLASS.value, index[:8]]
        return [flags if k == IDENT_FLAGS_OFFSET else value for k, value in enumerate(ident_bytes)]
