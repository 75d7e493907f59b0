# amaranth: UnusedElaboratable=no
"""hdl.uart: divisor choice, transmitter timing, receiver sampling and errors, loopback of random bytes."""

from __future__ import annotations

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from hdl.uart import RECEIVER_MIN_DIVISOR, UARTReceiver, UARTTransmitter, uart_divisor
from uart_line import LineMonitor, drive_bytes, frame_bits


def run(dut, *testbenches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for testbench in background:
        sim.add_testbench(testbench, background=True)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    sim.run()


class ReceiverLog:
    """Background testbench: takes every byte and counts error pulses of a UARTReceiver."""

    def __init__(self, receiver, *, ready=True):
        self.receiver = receiver
        self.ready = ready
        self.bytes = bytearray()
        self.framing_errors = 0
        self.overruns = 0

    async def process(self, ctx):
        receiver = self.receiver
        ctx.set(receiver.bytes.ready, self.ready)
        async for _, _, valid, ready, payload, framing, overrun in ctx.tick().sample(
                receiver.bytes.valid, receiver.bytes.ready, receiver.bytes.payload, receiver.framing_error,
                receiver.overrun):
            if valid and ready:
                self.bytes.append(payload)
            self.framing_errors += framing
            self.overruns += overrun


# --- divisor ---------------------------------------------------------------------------------


def test_divisor_of_the_boards():
    assert uart_divisor(clock_hz=12e6, baud=115200) == 104
    assert uart_divisor(clock_hz=25e6, baud=115200) == 217
    assert uart_divisor(clock_hz=12e6, baud=1_000_000) == 12
    assert uart_divisor(clock_hz=12e6, baud=3_000_000) == RECEIVER_MIN_DIVISOR


@pytest.mark.parametrize(("clock_hz", "baud", "message"), [
    (12e6, 2_600_000, "gives 2400000 baud, 7.7 % off"),  # 12 MHz / 5
    (12e6, 4_000_000, "at least 4"),
    (12e6, 0, "positive integer"),
    (0, 9600, "positive frequency"),
])
def test_divisor_refuses_inexact_or_too_fast_rates(clock_hz, baud, message):
    with pytest.raises(ValueError, match=message):
        uart_divisor(clock_hz=clock_hz, baud=baud)


def test_components_refuse_bad_divisors():
    with pytest.raises(ValueError, match="divisor = 3; expected an integer >= 4"):
        UARTReceiver(divisor=3)
    with pytest.raises(ValueError, match="divisor = 0"):
        UARTTransmitter(divisor=0)
    with pytest.raises(ValueError, match="divisor = 4.0"):
        UARTTransmitter(divisor=4.0)


# --- transmitter -----------------------------------------------------------------------------


@pytest.mark.parametrize("divisor", [1, 5])
def test_transmitter_puts_each_bit_on_the_line_for_divisor_cycles(divisor):
    dut = UARTTransmitter(divisor=divisor)
    data = [0x00, 0xA5]
    levels = []

    async def recorder(ctx):
        async for _, _, tx in ctx.tick().sample(dut.tx):
            levels.append(tx)

    async def testbench(ctx):
        assert ctx.get(dut.tx) == 1 and not ctx.get(dut.busy)
        await ctx.tick().repeat(2)
        ctx.set(dut.bytes.valid, 1)
        for byte in data:
            ctx.set(dut.bytes.payload, byte)
            await ctx.tick().until(dut.bytes.ready)
        ctx.set(dut.bytes.valid, 0)
        await ctx.tick().until(~dut.busy)
        await ctx.tick().repeat(3)

    run(dut, testbench, background=[recorder])
    # Idle high, then the frames 10 * divisor + 1 cycles apart (one idle cycle between them), then idle.
    start = levels.index(0)
    assert start >= 2 and set(levels[:start]) == {1}
    expected = []
    for byte in data:
        expected += [bit for bit in frame_bits(byte) for _ in range(divisor)] + [1]
    assert levels[start:start + len(expected)] == expected
    assert set(levels[start + len(expected):]) == {1}


# --- receiver --------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.975, 1.025])
def test_receiver_tolerates_a_baud_rate_off_by_2_5_percent(scale):
    dut = UARTReceiver(divisor=16)
    log = ReceiverLog(dut)
    data = bytes([0x55, 0x00, 0xFF, 0x81])

    async def sender(ctx):
        await drive_bytes(ctx, dut.rx, data, divisor=16, scale=scale)
        await ctx.tick().repeat(40)

    run(dut, sender, background=[log.process])
    assert (bytes(log.bytes), log.framing_errors, log.overruns) == (data, 0, 0)


def test_receiver_ignores_a_glitch_and_recovers_from_a_framing_error():
    divisor = 8
    dut = UARTReceiver(divisor=divisor)
    log = ReceiverLog(dut)

    async def sender(ctx):
        ctx.set(dut.rx, 0)  # a glitch shorter than half a bit
        await ctx.tick().repeat(2)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        await drive_bytes(ctx, dut.rx, b"\x3c", divisor=divisor, stop=0)  # no stop bit
        ctx.set(dut.rx, 0)  # the line stays low a while (a break): one error, not one per bit time
        await ctx.tick().repeat(30 * divisor)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(2 * divisor)
        await drive_bytes(ctx, dut.rx, b"\xc3", divisor=divisor)
        await ctx.tick().repeat(2 * divisor)

    run(dut, sender, background=[log.process])
    assert (bytes(log.bytes), log.framing_errors, log.overruns) == (b"\xc3", 1, 0)


def test_receiver_keeps_the_waiting_byte_and_reports_an_overrun():
    divisor = 4
    dut = UARTReceiver(divisor=divisor)
    log = ReceiverLog(dut, ready=False)
    taken = []

    async def sender(ctx):
        await drive_bytes(ctx, dut.rx, b"\x11\x22", divisor=divisor)
        await ctx.tick().repeat(2 * divisor)
        assert ctx.get(dut.bytes.valid) and ctx.get(dut.bytes.payload) == 0x11
        ctx.set(dut.bytes.ready, 1)
        await ctx.tick()
        assert not ctx.get(dut.bytes.valid)
        taken.append(0x11)

    run(dut, sender, background=[log.process])
    assert (log.framing_errors, log.overruns, taken) == (0, 1, [0x11])


# --- loopback --------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(data=st.binary(min_size=1, max_size=6), divisor=st.integers(RECEIVER_MIN_DIVISOR, 11))
def test_loopback_carries_any_bytes(data, divisor):
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor=divisor)
    m.submodules.rx = rx = UARTReceiver(divisor=divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    log = ReceiverLog(rx)

    async def sender(ctx):
        ctx.set(tx.bytes.valid, 1)
        for byte in data:
            ctx.set(tx.bytes.payload, byte)
            await ctx.tick().until(tx.bytes.ready)
        ctx.set(tx.bytes.valid, 0)
        await ctx.tick().repeat(12 * divisor)

    run(m, sender, background=[log.process])
    assert (bytes(log.bytes), log.framing_errors, log.overruns) == (data, 0, 0)


def test_line_monitor_reads_what_drive_bytes_writes():
    """The two test helpers agree with each other (so they can judge the gateware)."""
    m = Module()
    ticks = Signal(4)
    m.d.sync += ticks.eq(ticks + 1)  # a design with a clock domain
    line = Signal(init=1)
    monitor = LineMonitor(line, divisor=4)

    async def sender(ctx):
        await ctx.tick().repeat(3)
        await drive_bytes(ctx, line, b"\x00\x7f\x80", divisor=4)
        await ctx.tick().repeat(8)

    run(m, sender, background=[monitor.process])
    assert bytes(monitor.received) == b"\x00\x7f\x80"
