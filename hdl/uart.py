"""Asynchronous serial (UART) receiver and transmitter: 8 data bits, no parity, 1 stop bit (8N1).

A frame on the line is a start bit (0), eight data bits least significant first and a stop bit
(1); the line idles high. Both components run at a fixed ``divisor`` (clock cycles per bit),
which :func:`uart_divisor` (:mod:`gesture_snn.spec.link`) computes from the clock and the baud
rate, refusing a rate the clock cannot approximate within 2 %. The board tops (:mod:`hdl.boards`)
connect them to the boards' USB-UART bridges; docs/boards.md describes the byte protocol carried
over them.
"""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from gesture_snn.spec.link import BAUD_TOLERANCE, FRAME_BITS, RECEIVER_MIN_DIVISOR, uart_divisor

__all__ = ["BAUD_TOLERANCE", "RECEIVER_MIN_DIVISOR", "uart_divisor", "UARTReceiver", "UARTTransmitter"]

# The divisor rule, its tolerance and the receiver's smallest divisor are the link budget's
# (gesture_snn.spec.link), defined once there.


def _check_divisor(divisor, minimum: int) -> None:
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < minimum:
        raise ValueError(f"divisor = {divisor!r}; expected an integer >= {minimum} (clock cycles per bit)")


class UARTReceiver(wiring.Component):
    """Receives 8N1 frames from a serial line into a byte stream.

    The line is synchronised to the clock (two flip-flops) and watched for a falling edge; the
    start bit is checked ``divisor // 2`` cycles later (a shorter low pulse is a glitch and is
    ignored), then the eight data bits and the stop bit are sampled one ``divisor`` apart, near
    the middle of each bit. A received byte waits in an output register until it is taken; the
    line cannot be stalled, so a byte that completes while the previous one is still waiting is
    dropped and ``overrun`` pulses. A stop bit that reads 0 drops the byte, pulses
    ``framing_error`` and makes the receiver wait for the line to return high (a break or a
    wrong baud rate therefore costs one error per low period, not one per bit time).

    Parameters (keyword-only)
    -------------------------
    divisor : int
        Clock cycles per bit, at least :data:`RECEIVER_MIN_DIVISOR` (see :func:`uart_divisor`).

    Ports
    -----
    rx : In(1)
        The serial line (idle high), from a pin; asynchronous to the clock.
    bytes : Out(stream.Signature(unsigned(8)))
        Received bytes, in order. ``valid`` stays high until ``ready``.
    framing_error : Out(1)
        Pulses for one cycle when a frame ends with a 0 stop bit (the byte is dropped).
    overrun : Out(1)
        Pulses for one cycle when a byte is dropped because the previous one was not taken.
    """

    def __init__(self, *, divisor: int):
        _check_divisor(divisor, RECEIVER_MIN_DIVISOR)
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "bytes": Out(stream.Signature(unsigned(8))),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        divisor = self.divisor
        line = Signal(init=1)
        m.submodules.synchronizer = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(divisor))  # cycles left until the next sample point
        bit = Signal(range(8))  # data bit being received
        shift = Signal(8)  # data bits so far, the latest entering at the top
        sample = timer == 0

        with m.If(self.bytes.ready):
            m.d.sync += self.bytes.valid.eq(0)

        with m.FSM(name="receiver"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(sample):
                    m.d.sync += [timer.eq(divisor - 1), bit.eq(0)]
                    with m.If(line):  # the start bit did not last half a bit: a glitch
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(sample):
                    m.d.sync += [timer.eq(divisor - 1), shift.eq(shift >> 1 | line << 7), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(sample):
                    with m.If(line):
                        with m.If(self.bytes.valid & ~self.bytes.ready):
                            m.d.comb += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.bytes.valid.eq(1), self.bytes.payload.eq(shift)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.framing_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                # Waits for the line to go high again after a frame without a stop bit.
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """Sends a byte stream as 8N1 frames on a serial line.

    A byte is taken when the transmitter is idle and sent as start bit, eight data bits (least
    significant first) and stop bit, each ``divisor`` cycles long; the next byte is taken in the
    cycle after the stop bit, so back-to-back frames are ``10 * divisor + 1`` cycles apart.
    ``tx`` comes straight from a flip-flop (no glitches) and is high while idle and in reset.

    Parameters (keyword-only)
    -------------------------
    divisor : int
        Clock cycles per bit, at least 1 (see :func:`uart_divisor`).

    Ports
    -----
    bytes : In(stream.Signature(unsigned(8)))
        Bytes to send, in order.
    tx : Out(1)
        The serial line, to a pin.
    busy : Out(1)
        High while a frame is being sent.
    """

    def __init__(self, *, divisor: int):
        _check_divisor(divisor, 1)
        self.divisor = divisor
        super().__init__({
            "bytes": In(stream.Signature(unsigned(8))),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        divisor = self.divisor
        frame = Signal(FRAME_BITS, init=(1 << FRAME_BITS) - 1)  # bit 0 is on the line; ones shift in
        bits_left = Signal(range(FRAME_BITS + 1))
        timer = Signal(range(divisor))
        m.d.comb += [self.tx.eq(frame[0]), self.busy.eq(bits_left != 0)]

        with m.If(bits_left == 0):
            m.d.comb += self.bytes.ready.eq(1)
            with m.If(self.bytes.valid):
                m.d.sync += [
                    frame.eq((1 << 9) | self.bytes.payload << 1),  # stop, data, start (bit 0)
                    bits_left.eq(FRAME_BITS),
                    timer.eq(divisor - 1),
                ]
        with m.Elif(timer == 0):
            m.d.sync += [
                frame.eq(frame >> 1 | 1 << (FRAME_BITS - 1)),
                bits_left.eq(bits_left - 1),
                timer.eq(divisor - 1),
            ]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m
