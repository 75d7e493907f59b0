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
from amaranth import Elaboratable
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
    assert frame == bytes([0x80, ord("G"), ord("S"), 2, 0x00, 0x02, 0x80, 0x00, 11, 8, 0, 1, 8,
                           0b1011, 0x78, 0x56, 0x34, 0x12])
    assert DeviceInfo.decode(frame) == info
    with pytest.raises(ProtocolError, match="version 1, this host version 2"):  # a bitstream without BITMAP
        DeviceInfo.decode(frame[:3] + b"\x01" + frame[4:])
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
    assert protocol.encode_resync(8, 12) == bytes(13)  # a LOAD_WEIGHT of 8 bytes is longer than a bitmap of 12 inputs
    assert protocol.encode_resync(8) == bytes(1 + 65536 // 8)  # a bitmap of the most inputs is the longest frame
    # 12 inputs: the event list while it is as short as the 3-byte bitmap frame (one event: 4 bytes > 3)
    assert protocol.encode_step([], last=False, n_in=12) == b"\x03"
    assert protocol.encode_step([5], last=True, n_in=12) == b"\x07\x20\x00"
    assert protocol.encode_step([0, 11], last=False, n_in=12, encoding="events") == b"\x02\x00\x00\x02\x0b\x00\x03"
    assert protocol.encode_step([0, 11], last=False, n_in=12, encoding="bitmap") == b"\x06\x01\x08"
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
    best = SampleExchange(frames, n_rec=4)  # 3 inputs: a bitmap frame is 2 bytes, shorter than any event
    assert best.outgoing() == b"\x06\x06"
    best.receive([StepEnd()])
    assert best.outgoing() == b"\x07\x01"
    exchange = SampleExchange(frames, n_rec=4, encoding="events")
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
        bitmap = 1 + -(-self.network.n_in // 8)
        lengths = {Command.EVENT: 3, Command.LOAD_WEIGHT: protocol.LOAD_HEADER_BYTES + self.info.word_bytes,
                   Command.BITMAP_STEP: bitmap, Command.BITMAP_SAMPLE: bitmap}
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
        elif code in (Command.BITMAP_STEP, Command.BITMAP_SAMPLE):
            active, last = protocol.decode_bitmap(frame, n_in=self.network.n_in)
            self._steps[-1][active] = 1
            return self._command(bytes([Command.END_OF_SAMPLE if last else Command.END_OF_STEP]))
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
    bitmap_bytes = -(-n_in // 8)
    while k < len(data):
        code = data[k]
        length = {Command.EVENT: 3, Command.LOAD_WEIGHT: 5 + word_bytes, Command.BITMAP_STEP: 1 + bitmap_bytes,
                  Command.BITMAP_SAMPLE: 1 + bitmap_bytes}.get(code, 1)
        if code in (Command.BITMAP_STEP, Command.BITMAP_SAMPLE):  # issued byte by byte as the bytes arrive
            for j, byte in enumerate(data[k + 1:k + length]):
                for b in range(8):
                    if byte >> b & 1:
                        if 8 * j + b < n_in:
                            inputs.append(("EVENT", 8 * j + b))
                        else:
                            bad += 1
            if k + length <= len(data):
                inputs.append(("END_OF_SAMPLE" if code == Command.BITMAP_SAMPLE else "END_OF_STEP", 0))
            k += length
            continue
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
    st.sampled_from([b"\x00", b"\x01", b"\x03", b"\x04", b"\x08", b"\xff", b"\x80"]),
    st.builds(lambda code, bitmap: bytes([code]) + bitmap, st.sampled_from([6, 7]),  # 12 inputs: bits 12..15 refused
              st.binary(min_size=2, max_size=2) | st.sampled_from([b"\x00\x00", b"\xff\x0f", b"\xff\xff"])),
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
        await ctx.tick().repeat(40 * (stall + 2))  # the FIFO drains (a bitmap byte issues up to 8 events)

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
            for _ in range(4):  # the byte, then time to let the item through the FIFO; every cycle is watched
                if ctx.get(dut.inputs.valid):
                    kind = ctx.get(dut.inputs.payload.kind).name
                    taken.append((kind, ctx.get(dut.inputs.payload.index) if kind == "EVENT" else 0))
                await ctx.tick()
                ctx.set(dut.bytes.valid, 0)
                ctx.set(dut.frame_abort, 0)

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

    async def run_sample(self, ctx, frames, *, encoding="best") -> host_link.SampleResult:
        exchange = SampleExchange(frames, n_rec=self.dut.core.network.n_rec, encoding=encoding)
        while not exchange.done:
            data = exchange.outgoing()
            if data:
                await self.send(ctx, data)
            exchange.receive(await self.receive(ctx))
        return exchange.result


async def host_session(ctx, host, net, samples, *, infos: list, results: list) -> None:
    """IDENTIFY (checked against ``net``), the weights if the board loads them, every sample, IDENTIFY
    again, through a SimulatedHost; the IDENT replies go to ``infos``, the samples' results to ``results``."""
    info = await host.identify(ctx)
    info.check_network(net)
    infos.append(info)
    if info.weight_loading:
        await host.send(ctx, b"".join(protocol.encode_weights(net, info)))
    for sample in samples:
        results.append(await host.run_sample(ctx, sample))
    infos.append(await host.identify(ctx))


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
        await host_session(ctx, host, net, x, infos=infos, results=results)

    simulate_host(dut, script)
    assert infos[0] == dut.ident and infos[0].weight_loading == weight_loading
    assert (infos[0].lanes, infos[0].readout_lanes) == (lanes, readout_lanes)
    assert infos[1].errors == LinkErrors(0)
    assert golden.z.any() and not golden.z.all()  # the samples exercise spiking and silence
    for b, result in enumerate(results):
        for t in range(x.shape[1]):
            assert result.spikes[t].tolist() == golden.z[b, t].tolist(), f"sample {b}, step {t}"
        assert result.prediction == golden.prediction[b], f"sample {b}"


@pytest.mark.parametrize("encoding", ["events", "bitmap", "best"])
def test_uart_path_takes_either_input_encoding_without_losing_a_byte(encoding):
    """Bytes in -> golden spikes and class out with each encoding. One lane and 16 neurons make the
    core take 16 cycles per event, so a dense bitmap byte (8 events) takes longer than the next
    byte's 40 cycles on the line: the decoder's FIFO must absorb the step (no overrun; with a
    2-byte FIFO the all-active step overruns). 44 inputs (not a multiple of 8), steps empty, all
    active and random."""
    from hdl.boards import SerialNeuronCore

    net = small_network(seed=5, n_in=44, n_rec=16, n_out=3)
    rng = np.random.default_rng(11)
    x = random_samples(rng, 1, 4, net.n_in, density=0.4)
    x[0, 1] = 0
    x[0, 2] = 1
    golden = run_golden(net, x)
    dut = SerialNeuronCore(network=net, divisor=DIVISOR, lanes=1, weight_loading=False)
    seen = []

    async def script(ctx, host):
        seen.append(await host.run_sample(ctx, x[0], encoding=encoding))
        seen.append((await host.identify(ctx)).errors)

    simulate_host(dut, script)
    result, errors = seen
    assert errors == LinkErrors(0)
    assert result.spikes.tolist() == golden.z[0].tolist() and result.prediction == golden.prediction[0]


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
        await host.send(ctx, protocol.encode_resync(dut.ident.word_bytes, net.n_in))  # ... completed by the resync
        seen.append(await errors(ctx, host))
        seen.append(await host.run_sample(ctx, np.ones((1, net.n_in), np.uint8)))
        seen.append(ctx.get(dut.status.error))

    simulate_host(dut, script)
    assert seen[0] == (1, LinkErrors.BAD_COMMAND)
    assert seen[1] == (0, LinkErrors(0))
    assert seen[2] == (1, LinkErrors.FRAMING)
    assert isinstance(seen[3], host_link.SampleResult) and seen[4] == 0  # the link still works


# ================================================================================================
# Board tops (amaranth-boards platforms)
#
# A board top is simulated as elaborated for its platform, with the platform's resources replaced:
# ResourcesAsPorts looks resources up in the real amaranth-boards platform but hands out
# amaranth.lib.io.SimulationPort objects, so the top's own io.Buffer components, UART, LEDs and
# held pins run in the simulator; the clock and reset that the platform would add
# (create_missing_domain) are the simulator's. That the real platform takes the same top is
# checked by preparing it for every board (tests/gateware/test_build.py).


class ResourcesAsPorts:
    """A stand-in for a board's platform in simulation: ``lookup`` is the board's, ``request(dir="-")``
    gives SimulationPorts (kept in ``ports`` by (name, number))."""

    def __init__(self, board):
        self.board = board
        self.platform = board.platform()
        self.ports = {}

    def lookup(self, name, number=0):
        return self.platform.lookup(name, number)

    def request(self, name, number=0, *, dir="-"):
        from types import SimpleNamespace

        from amaranth.lib import io

        assert dir == "-", "the board top uses io.Buffer components, not platform buffers"
        resource = self.lookup(name, number)

        def port(pins):
            return io.SimulationPort(pins.dir, len(pins.names), invert=pins.invert, name=f"{name}_{number}")

        if hasattr(resource.ios[0], "names"):
            ports = port(resource.ios[0])
        else:
            ports = SimpleNamespace(**{sub.name: port(sub.ios[0]) for sub in resource.ios if hasattr(sub, "ios")})
        self.ports[name, number] = ports
        return ports


class _OnPlatform(Elaboratable):
    """Elaborates ``top`` for ``platform`` whatever platform the simulator passes."""

    def __init__(self, top, platform):
        self.top, self.platform = top, platform

    def elaborate(self, platform):
        return self.top.elaborate(self.platform)


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-25f"])
def test_board_top_over_its_uart_returns_the_golden_models_spikes_and_class(name):
    """The board top at the board's clock and default baud rate: bytes in, golden spikes and class out."""
    from types import SimpleNamespace

    from hdl.boards import BoardTop, board

    found = board(name)
    net = small_network()
    x = random_samples(np.random.default_rng(7), 2, 4, net.n_in)
    golden = run_golden(net, x)
    top = BoardTop.for_board(found, network=net, lanes=4, readout_lanes=1,
                             weight_loading=found.target.weight_loading, baud=found.default_baud())
    platform = ResourcesAsPorts(found)
    sim = Simulator(_OnPlatform(top, platform))
    uart = platform.ports["uart", 0]
    dut = SimpleNamespace(rx=uart.rx.i, tx=uart.tx.o, divisor=top.system.divisor, core=top.system.core)
    host = SimulatedHost(dut)
    sim.add_clock(1 / found.clock_hz)
    sim.add_testbench(host.monitor.process, background=True)
    results, infos, leds = [], [], {}

    async def testbench(ctx):
        ctx.set(dut.rx, 1)  # the line idles high
        await ctx.tick().repeat(2 * dut.divisor)
        await host_session(ctx, host, net, x, infos=infos, results=results)
        for number, role in enumerate(top.leds):  # the level shown (an active-low LED's pin is inverted)
            port = platform.ports["led", number]
            leds[role] = ctx.get(port.o) ^ int(port.invert[0])
        for (resource, number), ports in platform.ports.items():
            if resource == "esp32":
                leds["esp32_gpio0"] = ctx.get(ports.gpio0.o)

    sim.add_testbench(testbench)
    sim.run()
    assert top.baud == found.default_baud() and infos[0] == top.system.ident
    assert infos[0].errors == infos[1].errors == LinkErrors(0)
    for b, result in enumerate(results):
        assert [row.tolist() for row in result.spikes] == golden.z[b].tolist(), f"sample {b}"
        assert result.prediction == golden.prediction[b], f"sample {b}"
    assert leds["error"] == 0 and leds["busy"] == 0
    assert sum(leds[f"prediction{k}"] << k for k in range(4)) == golden.prediction[-1]
    assert leds.get("esp32_gpio0") == (1 if name == "ulx3s-25f" else None)  # held high on the ULX3S


def test_board_top_leds_follow_the_board_and_skip_the_uart_pins():
    from hdl.boards import LED_ROLES, BoardTop, board

    net = small_network()
    for name, roles in (("icebreaker", LED_ROLES[:7]), ("ulx3s-85f", board("ulx3s-85f").led_roles),
                        ("colorlight-5a75b-r7-0", [])):
        found = board(name)
        top = BoardTop.for_board(found, network=net, weight_loading=found.target.weight_loading)
        top.elaborate(ResourcesAsPorts(found))
        assert top.leds == list(roles), name  # the Colorlight's only LED is its UART tx pin
    assert board("ulx3s-85f").led_roles[-2:] == ("error", "heartbeat")


def test_board_top_refuses_a_baud_rate_its_clock_cannot_make():
    from hdl.boards import BoardTop, board

    with pytest.raises(ValueError, match="7.7 % off"):
        BoardTop.for_board(board("icebreaker"), network=small_network(), baud=2_600_000)
    with pytest.raises(ValueError, match="LED role"):
        BoardTop(network=small_network(), clock_hz=12e6, led_roles=("blink",))
    with pytest.raises(TypeError, match="needs an Amaranth platform"):
        BoardTop(network=small_network(), clock_hz=12e6).elaborate(None)


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

    def wrong_class(frame):  # the CLASS reply (last byte of the answer to the sample's last step) is off by one
        out = real(frame)
        last = frame[0] in (Command.END_OF_SAMPLE, Command.BITMAP_SAMPLE)
        return out[:-1] + bytes([(out[-1] + 1) % 11]) if last else out

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


def test_stream_uses_the_baud_rate_of_the_run_s_build_unless_given(run_dir, fake_board_port, capsys):
    from gesture_snn import cli
    from gesture_snn.rundir import Section, update_report
    from gesture_snn.spec.intnet import IntegerNetwork

    net = IntegerNetwork.load(run_dir / "integer")
    update_report(run_dir, Section.BUILD, {"icebreaker": {"baud": 3_000_000, "uart_divisor": 4}})
    port = fake_board_port(FakeBoard(net, weight_loading=False))
    assert cli.main(["stream", "--port", port, "--run", str(run_dir), "--sample", "2", "--timeout", "2",
                     "--quiet"]) == 0
    assert "3000000 baud (build icebreaker)" in capsys.readouterr().out
    assert json.loads((run_dir / "report.json").read_text())["stream"]["baud"] == 3_000_000
    assert cli.main(["stream", "--port", port, "--run", str(run_dir), "--sample", "2", "--timeout", "2",
                     "--quiet", "--baud", "1000000"]) == 0
    assert "1000000 baud (--baud)" in capsys.readouterr().out
    assert json.loads((run_dir / "report.json").read_text())["stream"]["baud"] == 1_000_000
    update_report(run_dir, Section.BUILD, {"icebreaker": {"baud": 3_000_000}, "ulx3s-25f": {"baud": 1_000_000}})
    assert cli.main(["stream", "--port", port, "--run", str(run_dir), "--sample", "2", "--timeout", "2"]) == 2
    assert "different baud rates (icebreaker: 3000000, ulx3s-25f: 1000000)" in capsys.readouterr().err


def test_build_entry_gives_the_link_budget_of_the_test_split(run_dir):
    from gesture_snn.rundir import IntegerRun
    from gesture_snn.spec import link
    from gesture_snn.stages.bitstream import _link_line, _link_section

    run = IntegerRun.load(run_dir)
    budget = _link_section(run, 3_000_000, core_step_s=1e-4, log=print)
    inputs, _ = run.test_inputs()
    counts = inputs.sum(axis=2)
    assert budget["events_per_step_mean"] == pytest.approx(counts.mean(), abs=1e-3)
    assert budget["events_per_step_busiest_recording"] == pytest.approx(counts.mean(axis=1).max(), abs=1e-3)
    best = budget["encodings"]["best"]
    sent = [link.step_bytes(int(k), 32) for k in counts.ravel()]
    assert best["bytes_per_step_mean"] == pytest.approx(np.mean(sent), abs=0.01)
    assert 0 < best["end_to_end_realtime_factor_worst"] <= best["end_to_end_realtime_factor_mean"]
    assert "link at 3000000 baud" in _link_line(budget)
