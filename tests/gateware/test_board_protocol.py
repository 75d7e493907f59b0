# amaranth: UnusedElaboratable=no
"""The serial protocol: host side (gesture_snn.spec.protocol, gesture_snn.host_link), gateware
(hdl.protocol), the UART path end to end (hdl.boards.SerialNeuronCore in simulation against the
golden model), the board tops and their pins, and ``gesture-snn stream`` against a software
stand-in for a board on a pseudo-terminal."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from gesture_snn import host_link
from gesture_snn.golden import run_golden
from gesture_snn.host_link import SampleExchange
from gesture_snn.spec import protocol
from gesture_snn.spec.errors import UserError
from gesture_snn.spec.intnet import random_network
from gesture_snn.spec.memory import weight_memory_words
from gesture_snn.spec.protocol import (
    ClassReply,
    Command,
    DeviceInfo,
    LinkErrors,
    ProtocolError,
    ReplyDecoder,
    Spike,
    StepEnd,
)
from uart_line import LineMonitor, drive_bytes

DIVISOR = 4  # clock cycles per UART bit in the simulations


def small_network(seed=3, n_in=12, n_rec=8, n_out=3):
    return random_network(np.random.default_rng(seed), n_in, n_rec, n_out)


def random_samples(rng, count, steps, n_in, density=0.3):
    return (rng.random((count, steps, n_in)) < density).astype(np.uint8)


def reply_bytes(reply) -> bytes:
    """What a board sends for ``reply`` (built by hand from docs/boards.md, independently of the decoder)."""
    if isinstance(reply, Spike):
        return bytes([0x81, reply.neuron & 0xFF, reply.neuron >> 8])
    if isinstance(reply, StepEnd):
        return b"\x82"
    if isinstance(reply, ClassReply):
        return bytes([0x83, reply.label])
    return reply.encode()


# ================================================================================================
# Host side


def test_device_info_frame_layout_and_round_trip():
    info = DeviceInfo(n_in=512, n_rec=128, n_out=11, lanes=8, readout_lanes=1, word_bytes=8, weight_loading=True,
                      fingerprint=0x12345678, errors=LinkErrors.FRAMING | LinkErrors.BAD_COMMAND)
    frame = info.encode()
    assert frame == bytes([0x80, ord("G"), ord("S"), 1, 0x00, 0x02, 0x80, 0x00, 11, 8, 0, 1, 8,
                           0b1011, 0x78, 0x56, 0x34, 0x12])
    assert DeviceInfo.decode(frame) == info
    with pytest.raises(ProtocolError, match="version 2"):
        DeviceInfo.decode(frame[:3] + b"\x02" + frame[4:])
    with pytest.raises(ProtocolError, match="not an identification"):
        DeviceInfo.decode(b"\x80GX" + frame[3:])


replies = st.one_of(
    st.builds(Spike, st.integers(0, 65535)),
    st.just(StepEnd()),
    st.builds(ClassReply, st.integers(0, 255)),
    st.builds(DeviceInfo, n_in=st.integers(1, 65535), n_rec=st.integers(1, 65535), n_out=st.integers(1, 255),
              lanes=st.integers(1, 65535), readout_lanes=st.integers(1, 255), word_bytes=st.integers(1, 255),
              weight_loading=st.booleans(), fingerprint=st.integers(0, 2**32 - 1),
              errors=st.sampled_from(list(LinkErrors) + [LinkErrors(0), LinkErrors(7)])),
)


@settings(max_examples=60, deadline=None)
@given(sequence=st.lists(replies, max_size=8), cuts=st.lists(st.integers(0, 200), max_size=6))
def test_reply_decoder_handles_any_split_of_the_byte_stream(sequence, cuts):
    data = b"".join(reply_bytes(reply) for reply in sequence)
    decoder = ReplyDecoder()
    decoded = []
    start = 0
    for cut in sorted(cuts) + [len(data)]:
        decoded += decoder.feed(data[start:max(start, cut)])
        start = max(start, cut)
    assert decoded == sequence and not decoder.partial


def test_reply_decoder_refuses_a_byte_that_starts_no_frame():
    with pytest.raises(ProtocolError, match="0x41.*--baud"):
        ReplyDecoder().feed(b"\x82\x41")


def test_command_encoders():
    assert protocol.encode_step([5, 300], last=False) == b"\x02\x05\x00\x02\x2c\x01\x03"
    assert protocol.encode_step([], last=True) == b"\x04"
    assert protocol.encode_load(1, 0x030201, 0xAABB, word_bytes=3) == b"\x05\x01\x01\x02\x03\xbb\xaa\x00"
    assert protocol.encode_resync(8) == bytes(13)
    for bad in (lambda: protocol.encode_event(65536), lambda: protocol.encode_load(2, 0, 0, word_bytes=1),
                lambda: protocol.encode_load(0, 1 << 24, 0, word_bytes=1),
                lambda: protocol.encode_load(0, 0, 256, word_bytes=1)):
        with pytest.raises(ValueError):
            bad()


def test_weight_frames_hold_the_weight_memory_words():
    net = small_network()
    info = DeviceInfo.for_network(net, lanes=4, readout_lanes=2, weight_loading=True)
    synaptic, readout = weight_memory_words(net, lanes=4, readout_lanes=2)
    frames = list(protocol.encode_weights(net, info))
    assert info.word_bytes == 4 and len(frames) == len(synaptic) + len(readout)
    expected = [protocol.encode_load(0, a, w, word_bytes=4) for a, w in enumerate(synaptic)]
    expected += [protocol.encode_load(1, a, w, word_bytes=4) for a, w in enumerate(readout)]
    assert frames == expected


def test_fingerprint_covers_every_parameter():
    net = small_network()
    base = protocol.network_fingerprint(net)
    assert protocol.network_fingerprint(small_network()) == base
    w_in = net.w_in.copy()
    w_in[0, 0] = -w_in[0, 0] if w_in[0, 0] else 1
    alpha = net.alpha.copy()
    alpha[-1] ^= 1
    changed = [net.replace(w_in=w_in), net.replace(alpha=alpha), net.replace(shift_in=(net.shift_in + 1) % 4),
               net.replace(decode="mean" if net.decode == "last" else "last"), net.replace(readout_exp=5)]
    assert all(protocol.network_fingerprint(other) != base for other in changed)


def test_device_info_check_refuses_another_network():
    net = small_network()
    info = DeviceInfo.for_network(net, lanes=2, readout_lanes=1, weight_loading=False)
    info.check_network(net)
    with pytest.raises(UserError, match="12 -> 8 -> 3 network but this run's is 12 -> 8 -> 4"):
        info.check_network(small_network(n_out=4))
    with pytest.raises(UserError, match="built from another network"):
        info.check_network(small_network(seed=4))
    with pytest.raises(ValueError, match="n_out = 300 exceeds 255"):
        DeviceInfo.for_network(small_network(n_out=300), lanes=1, readout_lanes=1, weight_loading=False)


def test_sample_exchange_is_lock_step():
    frames = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    exchange = SampleExchange(frames, n_rec=4)
    assert exchange.outgoing() == b"\x02\x01\x00\x02\x02\x00\x03"
    assert exchange.outgoing() == b""  # the board has not answered step 0 yet
    exchange.receive([Spike(3), Spike(0)])
    assert exchange.outgoing() == b""
    exchange.receive([StepEnd()])
    assert exchange.outgoing() == b"\x02\x00\x00\x04"
    exchange.receive([Spike(2), StepEnd()])
    assert not exchange.done and exchange.outgoing() == b""
    exchange.receive([ClassReply(7)])
    assert exchange.done and exchange.result.prediction == 7
    assert exchange.result.spikes.tolist() == [[1, 0, 0, 1], [0, 0, 1, 0]]


@pytest.mark.parametrize(("replies", "message"), [
    ([StepEnd(), StepEnd()], "ended a step that was not sent"),
    ([Spike(4)], "network has 4 neurons"),
    ([StepEnd(), ClassReply(1)], "after 1 of 2 steps"),
    ([DeviceInfo(1, 4, 1, 1, 1, 1, False, 0)], "unexpected reply"),
])
def test_sample_exchange_refuses_replies_that_do_not_fit(replies, message):
    exchange = SampleExchange(np.zeros((2, 3), np.uint8), n_rec=4)
    exchange.outgoing()
    with pytest.raises(ProtocolError, match=message):
        exchange.receive(replies)


# ================================================================================================
# A software stand-in for a board (golden model behind the byte protocol) for BoardLink and the CLI


class FakeBoard:
    """Answers the byte protocol like a board built from ``network`` would (spikes from the golden model).

    ``loaded``: the LOAD_WEIGHT words received, per memory, by address.
    """

    def __init__(self, network, *, lanes=2, readout_lanes=1, weight_loading=True):
        self.network = network
        self.info = DeviceInfo.for_network(network, lanes=lanes, readout_lanes=readout_lanes,
                                           weight_loading=weight_loading)
        self.loaded = ({}, {})
        self._input = bytearray()
        self._steps: list[np.ndarray] = []

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the host, return the replies they cause."""
        self._input += data
        out = bytearray()
        lengths = {Command.EVENT: 3, Command.LOAD_WEIGHT: protocol.LOAD_HEADER_BYTES + self.info.word_bytes}
        while self._input:
            length = lengths.get(self._input[0], 1)
            if len(self._input) < length:
                break
            frame, self._input = bytes(self._input[:length]), self._input[length:]
            out += self._command(frame)
        return bytes(out)

    def _command(self, frame: bytes) -> bytes:
        code = frame[0]
        if not self._steps:
            self._steps.append(np.zeros(self.network.n_in, np.uint8))
        if code == Command.IDENTIFY:
            return self.info.encode()
        if code == Command.EVENT:
            self._steps[-1][int.from_bytes(frame[1:3], "little")] = 1
        elif code == Command.LOAD_WEIGHT:
            self.loaded[frame[1]][int.from_bytes(frame[2:5], "little")] = int.from_bytes(frame[5:], "little")
        elif code in (Command.END_OF_STEP, Command.END_OF_SAMPLE):
            trace = run_golden(self.network, np.array(self._steps)[None])
            out = b"".join(reply_bytes(Spike(int(j))) for j in np.flatnonzero(trace.z[0, -1])) + b"\x82"
            if code == Command.END_OF_SAMPLE:
                self._steps = []
                return out + reply_bytes(ClassReply(int(trace.prediction[0])))
            self._steps.append(np.zeros(self.network.n_in, np.uint8))
            return out
        return b""


class FakePort:
    """A serial port wired to a FakeBoard (reads return at most what the board has sent)."""

    def __init__(self, board, *, garbage=b""):
        self.board = board
        self.pending = bytearray(garbage)

    def write(self, data):
        self.pending += self.board.receive(bytes(data))

    @property
    def in_waiting(self):
        return len(self.pending)

    def read(self, size):
        data, self.pending = bytes(self.pending[:size]), self.pending[size:]
        return data


def test_board_link_session_against_the_fake_board():
    net = small_network()
    board = FakeBoard(net)
    session = host_link.BoardLink(FakePort(board, garbage=b"\x17\x81"), timeout_s=1)  # stale bytes are drained
    info = session.reset()
    info.check_network(net)
    assert info == board.info
    session.load_weights(net)
    synaptic, readout = weight_memory_words(net, lanes=2, readout_lanes=1)
    assert board.loaded == (dict(enumerate(synaptic)), dict(enumerate(readout)))
    x = random_samples(np.random.default_rng(0), 2, 4, net.n_in)
    golden = run_golden(net, x)
    for b in range(2):
        result = session.run_sample(x[b])
        assert np.array_equal(result.spikes, golden.z[b]) and result.prediction == golden.prediction[b]


def test_board_link_reports_a_silent_board():
    class SilentPort(FakePort):
        def write(self, data):
            pass

    session = host_link.BoardLink(SilentPort(None), timeout_s=0.2)
    with pytest.raises(ProtocolError, match="no reply from the board for 0.2 s"):
        session.reset()


# ================================================================================================
# Gateware: decoder and encoder alone


def parse_commands(data: bytes, *, n_in, depths, word_bytes, weight_loading):
    """Reference parse of a command byte stream: (inputs, writes, identifies, bad) as the decoder must produce them."""
    inputs, writes, identifies, bad = [], [], 0, 0
    k = 0
    while k < len(data):
        code = data[k]
        length = {Command.EVENT: 3, Command.LOAD_WEIGHT: 5 + word_bytes}.get(code, 1)
        if k + length > len(data):
            break
        frame = data[k:k + length]
        k += length
        if code == Command.IDENTIFY:
            identifies += 1
        elif code == Command.END_OF_STEP:
            inputs.append(("END_OF_STEP", 0))
        elif code == Command.END_OF_SAMPLE:
            inputs.append(("END_OF_SAMPLE", 0))
        elif code == Command.EVENT:
            index = int.from_bytes(frame[1:3], "little")
            if index < n_in:
                inputs.append(("EVENT", index))
            else:
                bad += 1
        elif code == Command.LOAD_WEIGHT:
            memory, address = frame[1], int.from_bytes(frame[2:5], "little")
            if weight_loading and memory in (0, 1) and address < depths[memory]:
                writes.append((memory, address, int.from_bytes(frame[5:], "little")))
            else:
                bad += 1
        elif code != Command.NOP:
            bad += 1
    return inputs, writes, identifies, bad


command_frames = st.one_of(
    st.sampled_from([b"\x00", b"\x01", b"\x03", b"\x04", b"\x06", b"\xff", b"\x80"]),
    st.builds(lambda i: b"\x02" + i.to_bytes(2, "little"), st.integers(0, 20) | st.integers(0, 65535)),
    st.builds(lambda mem, a, w: bytes([5, mem]) + a.to_bytes(3, "little") + w.to_bytes(2, "little"),
              st.integers(0, 2), st.integers(0, 45) | st.integers(0, 2**24 - 1), st.integers(0, 2**16 - 1)),
)


@settings(max_examples=30, deadline=None)
@given(frames=st.lists(command_frames, max_size=12), weight_loading=st.booleans(), stall=st.integers(0, 3))
def test_command_decoder_matches_a_reference_parse(frames, weight_loading, stall):
    from hdl.protocol import CommandDecoder

    depths, word_bits = (40, 8), (16, 12)  # word_bytes = 2
    dut = CommandDecoder(n_in=12, weight_depths=depths, weight_word_bits=word_bits, weight_loading=weight_loading)
    data = b"".join(frames)
    expected = parse_commands(data, n_in=12, depths=depths, word_bytes=2, weight_loading=weight_loading)
    got = ([], [], [0], [0])

    async def sink(ctx):
        # The core side takes an item only every `stall + 1` cycles; pulses are counted every cycle.
        cycle = 0
        async for _, _, *values in ctx.tick().sample(
                dut.inputs.valid, dut.inputs.ready, dut.inputs.payload, dut.identify, dut.bad_command,
                *((dut.weight_write.valid, dut.weight_write.ready, dut.weight_write.payload) if weight_loading else ())):
            valid, ready, item, identify, bad = values[:5]
            if valid and ready:
                got[0].append((item.kind.name, int(item.index) if item.kind.name == "EVENT" else 0))
            if weight_loading and values[5] and values[6]:
                write = values[7]
                got[1].append((int(write.memory), int(write.addr), int(write.data)))
            got[2][0] += identify
            got[3][0] += bad
            cycle += 1
            ready_now = cycle % (stall + 1) == 0
            ctx.set(dut.inputs.ready, ready_now)
            if weight_loading:
                ctx.set(dut.weight_write.ready, ready_now)

    async def source(ctx):
        for byte in data:
            ctx.set(dut.bytes.valid, 1)
            ctx.set(dut.bytes.payload, byte)
            await ctx.tick().until(dut.bytes.ready)
        ctx.set(dut.bytes.valid, 0)
        await ctx.tick().repeat(3 * (stall + 2))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(sink, background=True)
    sim.add_testbench(source)
    sim.run()
    assert (got[0], got[1], got[2][0], got[3][0]) == expected


def test_command_decoder_drops_a_frame_cut_by_a_framing_error():
    from hdl.protocol import CommandDecoder

    dut = CommandDecoder(n_in=12, weight_depths=(40, 8), weight_word_bits=(16, 8), weight_loading=False)
    taken = []

    async def testbench(ctx):
        ctx.set(dut.inputs.ready, 1)
        for byte, abort in ((0x02, 0), (0x05, 0), (None, 1), (0x02, 0), (0x07, 0), (0x00, 0), (0x03, 0)):
            ctx.set(dut.frame_abort, abort)
            ctx.set(dut.bytes.valid, byte is not None)
            ctx.set(dut.bytes.payload, byte or 0)
            await ctx.tick()
            for _ in range(3):  # let the item through
                ctx.set(dut.bytes.valid, 0)
                ctx.set(dut.frame_abort, 0)
                if ctx.get(dut.inputs.valid):
                    kind = ctx.get(dut.inputs.payload.kind).name
                    taken.append((kind, ctx.get(dut.inputs.payload.index) if kind == "EVENT" else 0))
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert taken == [("EVENT", 7), ("END_OF_STEP", 0)]


def test_reply_encoder_frames_core_outputs_and_identification():
    from hdl.core import OutputKind
    from hdl.protocol import ReplyEncoder

    net = small_network(n_rec=300)  # spike indices above 255 use both bytes
    ident = DeviceInfo.for_network(net, lanes=1, readout_lanes=1, weight_loading=True)
    dut = ReplyEncoder(n_rec=300, n_out=3, ident=ident)
    monitor = bytearray()
    reported = [0]

    async def sink(ctx):
        ctx.set(dut.bytes.ready, 1)
        async for _, _, valid, byte, acknowledged in ctx.tick().sample(dut.bytes.valid, dut.bytes.payload,
                                                                       dut.errors_reported):
            if valid:
                monitor.append(byte)
            reported[0] += acknowledged

    async def source(ctx):
        ctx.set(dut.errors, int(LinkErrors.OVERRUN))
        ctx.set(dut.identify, 1)
        await ctx.tick()
        ctx.set(dut.identify, 0)
        for kind, index in ((OutputKind.SPIKE, 2), (OutputKind.SPIKE, 299), (OutputKind.END_OF_STEP, 0),
                            (OutputKind.CLASS, 2)):
            ctx.set(dut.outputs.valid, 1)
            ctx.set(dut.outputs.payload.kind, kind)
            ctx.set(dut.outputs.payload.index, index)
            await ctx.tick().until(dut.outputs.ready)
        ctx.set(dut.outputs.valid, 0)
        await ctx.tick().repeat(5)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(sink, background=True)
    sim.add_testbench(source)
    sim.run()
    expected_ident = dataclasses.replace(ident, errors=LinkErrors.OVERRUN)
    assert ReplyDecoder().feed(bytes(monitor)) == [expected_ident, Spike(2), Spike(299), StepEnd(), ClassReply(2)]
    assert reported == [1]


# ================================================================================================
# The UART path end to end: bytes in through the receiver, replies out of the transmitter


class SimulatedHost:
    """The host end of a SerialNeuronCore's serial lines in simulation, using gesture_snn.host_link's code."""

    def __init__(self, dut):
        self.dut = dut
        self.monitor = LineMonitor(dut.tx, divisor=dut.divisor)
        self.decoder = ReplyDecoder()
        self.consumed = 0

    async def send(self, ctx, data: bytes) -> None:
        await drive_bytes(ctx, self.dut.rx, data, divisor=self.dut.divisor)

    async def receive(self, ctx, *, limit=200_000) -> list:
        """Replies completed by the next bytes from the board (fails after ``limit`` silent cycles)."""
        for _ in range(0, limit, self.dut.divisor):
            if len(self.monitor.received) > self.consumed:
                data = bytes(self.monitor.received[self.consumed:])
                self.consumed += len(data)
                replies = self.decoder.feed(data)
                if replies:
                    return replies
            await ctx.tick().repeat(self.dut.divisor)
        raise AssertionError("the board stopped answering")

    async def identify(self, ctx) -> DeviceInfo:
        await self.send(ctx, protocol.IDENTIFY)
        (info,) = await self.receive(ctx)
        return info

    async def run_sample(self, ctx, frames) -> host_link.SampleResult:
        exchange = SampleExchange(frames, n_rec=self.dut.core.network.n_rec)
        while not exchange.done:
            data = exchange.outgoing()
            if data:
                await self.send(ctx, data)
            exchange.receive(await self.receive(ctx))
        return exchange.result


def simulate_host(dut, host_script):
    """Run ``host_script(ctx, host)`` against ``dut`` (a SerialNeuronCore) with a line monitor on its tx."""
    host = SimulatedHost(dut)
    sim = Simulator(dut)
    sim.add_clock(1 / 12e6)
    sim.add_testbench(host.monitor.process, background=True)

    async def testbench(ctx):
        await host_script(ctx, host)

    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize(("lanes", "readout_lanes", "weight_loading"), [(4, 3, True), (2, 1, False)])
def test_uart_path_returns_the_golden_models_spikes_and_class(lanes, readout_lanes, weight_loading):
    from hdl.boards import SerialNeuronCore

    net = small_network()
    x = random_samples(np.random.default_rng(7), 2, 5, net.n_in)
    golden = run_golden(net, x)
    dut = SerialNeuronCore(network=net, divisor=DIVISOR, lanes=lanes, readout_lanes=readout_lanes,
                           weight_loading=weight_loading)
    results, infos = [], []

    async def script(ctx, host):
        info = await host.identify(ctx)
        info.check_network(net)
        infos.append(info)
        if info.weight_loading:
            await host.send(ctx, b"".join(protocol.encode_weights(net, info)))
        for sample in x:
            results.append(await host.run_sample(ctx, sample))
        infos.append(await host.identify(ctx))

    simulate_host(dut, script)
    assert infos[0] == dut.ident and infos[0].weight_loading == weight_loading
    assert (infos[0].lanes, infos[0].readout_lanes) == (lanes, readout_lanes)
    assert infos[1].errors == LinkErrors(0)
    assert golden.z.any() and not golden.z.all()  # the samples exercise spiking and silence
    for b, result in enumerate(results):
        for t in range(x.shape[1]):
            assert result.spikes[t].tolist() == golden.z[b, t].tolist(), f"sample {b}, step {t}"
        assert result.prediction == golden.prediction[b], f"sample {b}"


def test_uart_path_reports_link_errors_and_resynchronises():
    from hdl.boards import SerialNeuronCore

    net = small_network()
    dut = SerialNeuronCore(network=net, divisor=DIVISOR, lanes=8, weight_loading=True)
    seen = []

    async def errors(ctx, host):
        """(the error LED before IDENTIFY, the errors IDENT reports)."""
        await ctx.tick().repeat(4 * DIVISOR)
        return ctx.get(dut.status.error), (await host.identify(ctx)).errors

    async def script(ctx, host):
        await host.send(ctx, b"\x42" + protocol.encode_event(net.n_in))  # unknown command, input out of range
        seen.append(await errors(ctx, host))
        seen.append(await errors(ctx, host))  # cleared by the report
        await drive_bytes(ctx, dut.rx, b"\x01", divisor=DIVISOR, stop=0)  # framing error: IDENTIFY lost
        await ctx.tick().repeat(DIVISOR)  # the line idles before the next start bit
        await host.send(ctx, b"\x05\x00\x01")  # a LOAD_WEIGHT cut short ...
        await host.send(ctx, protocol.encode_resync(dut.ident.word_bytes))  # ... completed by the resync
        seen.append(await errors(ctx, host))
        seen.append(await host.run_sample(ctx, np.ones((1, net.n_in), np.uint8)))
        seen.append(ctx.get(dut.status.error))

    simulate_host(dut, script)
    assert seen[0] == (1, LinkErrors.BAD_COMMAND)
    assert seen[1] == (0, LinkErrors(0))
    assert seen[2] == (1, LinkErrors.FRAMING)
    assert isinstance(seen[3], host_link.SampleResult) and seen[4] == 0  # the link still works


# ================================================================================================
# Board tops


def test_targets_and_their_constraint_files():
    from hdl.boards import BOARDS, ICEBREAKER, ULX3S, constraints_for_target
    from hdl.targets import TARGETS

    assert {name: (BOARDS[t.board], t.weight_loading) for name, t in TARGETS.items()} == {
        "ice40-up5k": (ICEBREAKER, True), "ecp5-25k": (ULX3S, False), "ecp5-85k": (ULX3S, False)}
    name, pcf = constraints_for_target("ice40-up5k")
    assert name == "icebreaker.pcf"
    for line in ("set_io -nowarn clk12 35", "set_io -nowarn -pullup yes uart_rx 6", "set_io -nowarn uart_tx 9",
                 "set_io -nowarn led_r 11", "set_io -nowarn led_g 37", "set_frequency clk12 12"):
        assert re.search(rf"^{line}\b", pcf, re.M), line
    name, lpf = constraints_for_target("ecp5-85k")
    assert name == "ulx3s.lpf"
    for line in ('LOCATE COMP "clk25" SITE "G2";', 'LOCATE COMP "uart_rx" SITE "M1";', 'LOCATE COMP "uart_tx" SITE "L4";',
                 'IOBUF PORT "uart_rx" IO_TYPE=LVCMOS33 PULLMODE=UP;', 'FREQUENCY PORT "clk25" 25 MHZ;'):
        assert line in lpf
    with pytest.raises(ValueError, match="unknown target 'gowin'; expected one of ice40-up5k, ecp5-25k, ecp5-85k"):
        constraints_for_target("gowin")


@pytest.mark.parametrize("target", ["ice40-up5k", "ecp5-25k"])
def test_board_top_ports_are_exactly_the_constrained_pins(target):
    from amaranth.back import rtlil

    from hdl.boards import constraints_for_target, top_for_target

    top = top_for_target(target, small_network(), lanes=2)
    assert top.system.core.weight_loading == (target == "ice40-up5k")
    _, text = constraints_for_target(target)
    constrained = set(re.findall(r"^set_io -nowarn(?: -pullup yes)? (\w+) ", text, re.M)
                      + re.findall(r'^LOCATE COMP "(\w+)"', text, re.M))
    assert set(top.signature.members) == constrained
    ports = re.findall(r"^module \\top$.*?^end$", rtlil.convert(top, name="top"), re.M | re.S)[0]
    wires = set(re.findall(r"^\s*wire width 1 (?:input|output) \d+\s+\\(\w+)$", ports, re.M))
    assert wires == constrained  # no clock or reset ports beyond the pins


def test_board_top_refuses_a_baud_rate_its_clock_cannot_make():
    from hdl.boards import BoardTop
    from hdl.targets import target

    with pytest.raises(ValueError, match="7.7 % off"):
        BoardTop(target=target("ice40-up5k"), network=small_network(), baud=2_600_000)
    with pytest.raises(ValueError, match="reset_cycles"):
        BoardTop(target=target("ecp5-25k"), network=small_network(), reset_cycles=0)


def test_icebreaker_top_comes_out_of_reset_and_identifies_itself_through_its_pins():
    """The whole top in simulation, its clock driven on the clk12 pin: reset, UART, LEDs."""
    from hdl.boards import top_for_target

    net = small_network()
    top = top_for_target("ice40-up5k", net, lanes=4, baud=3_000_000, reset_cycles=20)  # divisor 4 at 12 MHz
    assert top.system.divisor == 4
    half_period = 1 / 24e6
    received = bytearray()
    checks = {}

    async def clock(ctx):
        while True:
            ctx.set(top.clk12, 1)
            await ctx.delay(half_period)
            ctx.set(top.clk12, 0)
            await ctx.delay(half_period)

    async def cycles(ctx, count):
        for _ in range(count):
            await ctx.posedge(top.clk12)

    async def line_monitor(ctx):
        # As uart_line.LineMonitor, counting rising edges of the clock pin (the top has no simulator clock).
        while True:
            await ctx.negedge(top.uart_tx)
            await cycles(ctx, 2)
            byte = 0
            for k in range(8):
                await cycles(ctx, 4)
                byte |= ctx.get(top.uart_tx) << k
            await cycles(ctx, 4)
            received.append(byte)

    async def host(ctx):
        await cycles(ctx, 5)
        checks["reset"] = (ctx.get(top.uart_tx), ctx.get(top.led_r), ctx.get(top.led1))
        await cycles(ctx, 30)
        for bit in [0] + [(Command.IDENTIFY >> k) & 1 for k in range(8)] + [1]:
            ctx.set(top.uart_rx, bit)
            await cycles(ctx, 4)
        while len(received) < 18:
            await cycles(ctx, 4)
        checks["ident"] = ReplyDecoder().feed(bytes(received))
        checks["leds"] = (ctx.get(top.led_r), ctx.get(top.led1))

    sim = Simulator(top)
    sim.add_process(clock)
    sim.add_testbench(line_monitor, background=True)
    sim.add_testbench(host)
    sim.run()
    assert checks["reset"] == (1, 1, 0)  # line idle, red LED (active low) off, busy LED off
    assert checks["ident"] == [top.system.ident]
    assert checks["leds"] == (1, 0)


# ================================================================================================
# gesture-snn stream


@pytest.fixture
def run_dir(integer_run_dir):
    return integer_run_dir


@pytest.fixture
def fake_board_port():
    """``start(board) -> path``: a pseudo-terminal whose other end a thread answers as ``board``."""
    pytest.importorskip("serial")
    import select

    threads, fds, stop = [], [], threading.Event()

    def start(board):
        controller, device = os.openpty()
        fds.extend([controller, device])

        def serve():
            while not stop.is_set():
                if select.select([controller], [], [], 0.05)[0]:
                    try:
                        data = os.read(controller, 4096)
                    except OSError:
                        return
                    os.write(controller, board.receive(data))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return os.ttyname(device)

    yield start
    stop.set()
    for thread in threads:
        thread.join()
    for fd in fds:
        os.close(fd)


def test_stream_command_compares_the_board_with_the_golden_model(run_dir, fake_board_port, capsys):
    from gesture_snn import cli
    from gesture_snn.spec.intnet import IntegerNetwork

    net = IntegerNetwork.load(run_dir / "integer")
    board = FakeBoard(net, lanes=4, readout_lanes=1, weight_loading=True)
    port = fake_board_port(board)
    status = cli.main(["stream", "--port", port, "--run", str(run_dir), "--sample", "3", "0", "--timeout", "2"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "board: 32 -> 8 -> 11, 4 lanes, 1 readout lanes, weights loaded at run time" in out
    assert re.search(r"sample 3 step   4: ", out)
    assert re.search(r"sample 0 \(label \d+\): class \d+, golden model \d+, spikes match in 5 of 5 steps \(ok", out)
    assert len(board.loaded[0]) == (32 + 8) * 2
    report = json.loads((run_dir / "report.json").read_text())["stream"]
    assert [s["sample"] for s in report["samples"]] == [3, 0]
    assert report["mismatches"] == 0 and report["weights_sent"] and report["link_errors"] == []


def test_stream_command_reports_a_board_that_differs(run_dir, fake_board_port, capsys):
    from gesture_snn import cli
    from gesture_snn.spec.intnet import IntegerNetwork

    net = IntegerNetwork.load(run_dir / "integer")
    board = FakeBoard(net, weight_loading=False)
    real = board._command

    def wrong_class(frame):  # the CLASS reply (last byte of the answer to END_OF_SAMPLE) is off by one
        out = real(frame)
        return out[:-1] + bytes([(out[-1] + 1) % 11]) if frame[0] == Command.END_OF_SAMPLE else out

    board._command = wrong_class
    status = cli.main(["stream", "--port", fake_board_port(board), "--run", str(run_dir), "--sample", "1",
                       "--timeout", "2", "--quiet"])
    out = capsys.readouterr().out
    assert status == 1 and "MISMATCH" in out and "weights in the bitstream" in out
    assert json.loads((run_dir / "report.json").read_text())["stream"]["mismatches"] == 1


def test_stream_command_refuses_another_networks_board(run_dir, fake_board_port, capsys):
    from gesture_snn import cli

    port = fake_board_port(FakeBoard(random_network(np.random.default_rng(6), 32, 8, 11)))
    assert cli.main(["stream", "--port", port, "--run", str(run_dir), "--sample", "0", "--timeout", "2"]) == 2
    assert "built from another network" in capsys.readouterr().err
    assert cli.main(["stream", "--port", port, "--run", str(run_dir), "--sample", "999"]) == 2
    assert "--sample 999 is not a test sample" in capsys.readouterr().err
