"""The serial byte protocol between a host and a board running the neuron core (docs/boards.md).

This module is the single definition of the protocol: command and reply codes, frame lengths,
the identification frame, encoders and the reply decoder. The gateware (:mod:`hdl.protocol`)
builds its decoder and encoder from these constants, the host side of a session
(:mod:`gesture_snn.host_link`) speaks it over a serial port, and the simulation tests drive the
gateware with exactly the bytes produced here.

Every frame starts with a code byte that fixes its length. Host to board (commands)::

    NOP            0x00                                    1 byte
    IDENTIFY       0x01                                    1 byte   -> IDENT reply
    EVENT          0x02 index:u16                          3 bytes  input i active in this step
    END_OF_STEP    0x03                                    1 byte
    END_OF_SAMPLE  0x04                                    1 byte   closes the step and the sample
    LOAD_WEIGHT    0x05 memory:u8 address:u24 word:W bytes 5 + W    one weight-memory word
    BITMAP_STEP    0x06 bitmap:ceil(n_in / 8) bytes         1 + ceil(n_in / 8)   the step's active inputs
                                                                    (input 8j + b is bit b of byte j), closes the step
    BITMAP_SAMPLE  0x07 bitmap:ceil(n_in / 8) bytes         1 + ceil(n_in / 8)   the same, closes the step and the sample

Board to host (replies)::

    IDENT          0x80 "GS" version:u8 n_in:u16 n_rec:u16 n_out:u8 lanes:u16 readout_lanes:u8
                        word_bytes:u8 flags:u8 fingerprint:u32           18 bytes
    SPIKE          0x81 neuron:u16                                        3 bytes
    END_OF_STEP    0x82                                                   1 byte
    CLASS          0x83 class:u8                                          2 bytes

Integers are little-endian. The session is lock-step: the host sends one time step (its EVENTs
and the closing marker, or one BITMAP frame, whichever is shorter) and waits for that step's END_OF_STEP reply (and the CLASS after the
last step) before it sends the next, so the board never has to buffer more than one frame.

The pieces here: encoders (:func:`encode_step`, :func:`encode_weights`, ...) and
:class:`ReplyDecoder` (bytes to replies: :class:`DeviceInfo`, :class:`Spike`, :class:`StepEnd`,
:class:`ClassReply`).
"""

from __future__ import annotations

import enum
import hashlib
import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.memory import weight_memory_words

__all__ = [
    "PROTOCOL_VERSION", "MAGIC", "DEFAULT_BAUD", "Command", "ReplyCode", "LinkErrors",
    "EVENT_BYTES", "BITMAP_HEADER_BYTES", "ADDRESS_BYTES", "LOAD_HEADER_BYTES", "REPLY_BYTES", "IDENT_FLAGS_OFFSET", "WEIGHT_LOADING_FLAG",
    "MAX_INPUTS", "MAX_NEURONS", "MAX_OUTPUTS", "MAX_WEIGHT_WORDS",
    "ProtocolError", "DeviceInfo", "Spike", "StepEnd", "ClassReply",
    "weight_word_bytes", "network_fingerprint", "check_protocol_limits",
    "event_list_bytes", "bitmap_bytes", "choose_encoding",
    "IDENTIFY", "encode_event", "encode_bitmap", "decode_bitmap", "encode_step", "encode_load", "encode_weights",
    "encode_resync",
    "ReplyDecoder",
]

#: 2: the BITMAP_STEP / BITMAP_SAMPLE commands (version 1 had only EVENT frames).
PROTOCOL_VERSION = 2
MAGIC = b"GS"
#: Baud rate of the board tops unless built otherwise (hdl.boards); the FTDI bridges of both
#: boards also run 1000000 exactly (divisor 12 at 12 MHz, 25 at 25 MHz).
DEFAULT_BAUD = 115200


class Command(enum.IntEnum):
    """First byte of a host-to-board frame."""

    NOP = 0x00
    IDENTIFY = 0x01
    EVENT = 0x02
    END_OF_STEP = 0x03
    END_OF_SAMPLE = 0x04
    LOAD_WEIGHT = 0x05
    BITMAP_STEP = 0x06
    BITMAP_SAMPLE = 0x07


class ReplyCode(enum.IntEnum):
    """First byte of a board-to-host frame."""

    IDENT = 0x80
    SPIKE = 0x81
    END_OF_STEP = 0x82
    CLASS = 0x83


class LinkErrors(enum.IntFlag):
    """Errors the board has seen since it last sent IDENT (bits 1.. of the IDENT flags byte, shifted down)."""

    #: A UART frame ended without a stop bit (wrong baud rate, noise, a break).
    FRAMING = 1
    #: A received byte was lost because the previous one was still waiting (the host ignored lock-step).
    OVERRUN = 2
    #: An unknown command byte, an EVENT index >= n_in, a BITMAP bit at or above n_in, or a LOAD_WEIGHT
    #: the build cannot take.
    BAD_COMMAND = 4


#: Bytes of an EVENT frame (code, u16 index).
EVENT_BYTES = 3
#: Bytes of a BITMAP frame before the bitmap (the code byte); the bitmap is ceil(n_in / 8) bytes.
BITMAP_HEADER_BYTES = 1
#: Bytes of a LOAD_WEIGHT address.
ADDRESS_BYTES = 3
#: Bytes of a LOAD_WEIGHT frame before the word: code, memory, address.
LOAD_HEADER_BYTES = 2 + ADDRESS_BYTES
#: Length of each reply frame, code byte included.
REPLY_BYTES = {ReplyCode.IDENT: 18, ReplyCode.SPIKE: 3, ReplyCode.END_OF_STEP: 1, ReplyCode.CLASS: 2}
#: Position of the flags byte in the IDENT frame: bit 0 = weight loading, bits 1..3 = LinkErrors.
IDENT_FLAGS_OFFSET = 13
WEIGHT_LOADING_FLAG = 1

#: Limits set by the field widths: EVENT index u16, IDENT n_rec u16 (SPIKE index u16), n_out u8.
MAX_INPUTS = 1 << 16
MAX_NEURONS = (1 << 16) - 1
MAX_OUTPUTS = 255
MAX_WEIGHT_WORDS = 1 << (8 * ADDRESS_BYTES)


class ProtocolError(UserError):
    """The board sent something the protocol does not allow, or did not answer."""


def weight_word_bytes(network, *, lanes: int, readout_lanes: int) -> int:
    """Bytes of the word of a LOAD_WEIGHT frame: the wider of the two weight memories, rounded up to bytes."""
    return math.ceil(max(lanes, readout_lanes) * network.weight_bits / 8)


def network_fingerprint(network) -> int:
    """A 32-bit checksum of every parameter of an IntegerNetwork (first 4 bytes of a SHA-256, little-endian).

    The board reports the fingerprint of the network its bitstream was built from, so the host
    can refuse to stream to a bitstream of another network.
    """
    digest = hashlib.sha256()
    for name, value in sorted(network.parameters().items()):
        digest.update(name.encode() + b"=")
        if isinstance(value, np.ndarray):
            digest.update(repr(value.shape).encode())
            digest.update(np.ascontiguousarray(value, dtype="<i8").tobytes())
        else:
            digest.update(repr(value).encode())
        digest.update(b";")
    return int.from_bytes(digest.digest()[:4], "little")


def check_protocol_limits(network, *, lanes: int, readout_lanes: int) -> None:
    """ValueError if the network or lane counts do not fit the protocol's fields."""
    limits = (("n_in", network.n_in, MAX_INPUTS), ("n_rec", network.n_rec, MAX_NEURONS),
              ("n_out", network.n_out, MAX_OUTPUTS), ("lanes", lanes, MAX_NEURONS),
              ("readout_lanes", readout_lanes, MAX_OUTPUTS))
    for name, value, limit in limits:
        if value > limit:
            raise ValueError(f"{name} = {value} exceeds {limit}, the largest the serial protocol can carry")
    word_bytes = weight_word_bytes(network, lanes=lanes, readout_lanes=readout_lanes)
    if word_bytes > 255:
        raise ValueError(f"a weight word of {word_bytes} bytes exceeds 255 (lanes * weight_bits too large for LOAD_WEIGHT)")
    depth = (network.n_in + network.n_rec) * (network.n_rec // lanes)
    if depth > MAX_WEIGHT_WORDS:
        raise ValueError(f"{depth} synaptic weight words exceed the {MAX_WEIGHT_WORDS} that a 24-bit address reaches")


# --------------------------------------------------------------------------------------------
# Replies


@dataclass(frozen=True)
class DeviceInfo:
    """The IDENT reply: what the bitstream computes and how to talk to it.

    ``word_bytes``: data bytes of a LOAD_WEIGHT frame. ``weight_loading``: the weight memories
    start empty and must be loaded (iCE40 SPRAM) rather than being part of the bitstream.
    ``fingerprint``: :func:`network_fingerprint` of the network the bitstream was built from.
    ``errors``: :class:`LinkErrors` seen since the previous IDENT (the board clears them).
    """

    n_in: int
    n_rec: int
    n_out: int
    lanes: int
    readout_lanes: int
    word_bytes: int
    weight_loading: bool
    fingerprint: int
    errors: LinkErrors = LinkErrors(0)
    version: int = PROTOCOL_VERSION

    @classmethod
    def for_network(cls, network, *, lanes: int, readout_lanes: int, weight_loading: bool) -> "DeviceInfo":
        """What a board built from ``network`` with these lane counts reports (with no errors)."""
        check_protocol_limits(network, lanes=lanes, readout_lanes=readout_lanes)
        return cls(n_in=network.n_in, n_rec=network.n_rec, n_out=network.n_out, lanes=lanes,
                   readout_lanes=readout_lanes,
                   word_bytes=weight_word_bytes(network, lanes=lanes, readout_lanes=readout_lanes),
                   weight_loading=weight_loading, fingerprint=network_fingerprint(network))

    @property
    def flags(self) -> int:
        """The IDENT flags byte."""
        return (WEIGHT_LOADING_FLAG if self.weight_loading else 0) | int(self.errors) << 1

    def encode(self) -> bytes:
        """The IDENT frame, code byte included."""
        frame = (bytes([ReplyCode.IDENT]) + MAGIC + bytes([self.version])
                 + self.n_in.to_bytes(2, "little") + self.n_rec.to_bytes(2, "little") + bytes([self.n_out])
                 + self.lanes.to_bytes(2, "little") + bytes([self.readout_lanes, self.word_bytes, self.flags])
                 + self.fingerprint.to_bytes(4, "little"))
        assert len(frame) == REPLY_BYTES[ReplyCode.IDENT] and frame[IDENT_FLAGS_OFFSET] == self.flags
        return frame

    @classmethod
    def decode(cls, frame: bytes) -> "DeviceInfo":
        """Parse an IDENT frame; ProtocolError if it is not one of this protocol version."""
        if len(frame) != REPLY_BYTES[ReplyCode.IDENT] or frame[0] != ReplyCode.IDENT or frame[1:3] != MAGIC:
            raise ProtocolError(f"not an identification frame: {frame.hex(' ')}")
        if frame[3] != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the board speaks protocol version {frame[3]}, this host version {PROTOCOL_VERSION}; "
                "rebuild the bitstream with this version of gesture-snn"
            )
        flags = frame[IDENT_FLAGS_OFFSET]
        return cls(n_in=int.from_bytes(frame[4:6], "little"), n_rec=int.from_bytes(frame[6:8], "little"),
                   n_out=frame[8], lanes=int.from_bytes(frame[9:11], "little"), readout_lanes=frame[11],
                   word_bytes=frame[12], weight_loading=bool(flags & WEIGHT_LOADING_FLAG),
                   fingerprint=int.from_bytes(frame[14:18], "little"), errors=LinkErrors(flags >> 1 & 7),
                   version=frame[3])

    def check_network(self, network) -> None:
        """UserError unless the board runs ``network`` (same sizes and fingerprint)."""
        shape = (network.n_in, network.n_rec, network.n_out)
        if (self.n_in, self.n_rec, self.n_out) != shape:
            raise UserError(
                f"the board runs a {self.n_in} -> {self.n_rec} -> {self.n_out} network but this run's is "
                f"{shape[0]} -> {shape[1]} -> {shape[2]}; build and load the bitstream of this run "
                "(gesture-snn build --run RUNDIR --target ...)"
            )
        expected = network_fingerprint(network)
        if self.fingerprint != expected:
            raise UserError(
                f"the board's bitstream was built from another network (fingerprint {self.fingerprint:08x}, this "
                f"run's is {expected:08x}); build and load the bitstream of this run"
            )


@dataclass(frozen=True)
class Spike:
    """SPIKE reply: ``neuron`` spiked in the current step."""

    neuron: int


@dataclass(frozen=True)
class StepEnd:
    """END_OF_STEP reply: every spike of the step has been sent."""


@dataclass(frozen=True)
class ClassReply:
    """CLASS reply: the class of the sample that just ended."""

    label: int


class ReplyDecoder:
    """Turns the board's bytes into replies, frame by frame; bytes may arrive in any pieces.

    >>> decoder = ReplyDecoder()
    >>> decoder.feed(bytes([0x81, 5]))
    []
    >>> decoder.feed(bytes([0, 0x82, 0x83, 3]))
    [Spike(neuron=5), StepEnd(), ClassReply(label=3)]
    """

    def __init__(self):
        self._pending = bytearray()

    def feed(self, data: bytes) -> list:
        """Add ``data``; return the replies completed by it. ProtocolError on an unknown code byte."""
        self._pending += data
        replies = []
        while self._pending:
            code = self._pending[0]
            try:
                length = REPLY_BYTES[ReplyCode(code)]
            except ValueError:
                raise ProtocolError(
                    f"the board sent 0x{code:02x}, which starts no reply frame; check that --baud matches the "
                    "bitstream's baud rate and that nothing else uses the port"
                ) from None
            if len(self._pending) < length:
                break
            frame = bytes(self._pending[:length])
            del self._pending[:length]
            replies.append(_parse_reply(frame))
        return replies

    @property
    def partial(self) -> bool:
        """True while a frame has started but not completed."""
        return bool(self._pending)


def _parse_reply(frame: bytes):
    code = ReplyCode(frame[0])
    if code == ReplyCode.IDENT:
        return DeviceInfo.decode(frame)
    if code == ReplyCode.SPIKE:
        return Spike(int.from_bytes(frame[1:3], "little"))
    if code == ReplyCode.END_OF_STEP:
        return StepEnd()
    return ClassReply(frame[1])


# --------------------------------------------------------------------------------------------
# Commands

#: The IDENTIFY command.
IDENTIFY = bytes([Command.IDENTIFY])


def encode_event(index: int) -> bytes:
    """An EVENT frame for input ``index``."""
    if not 0 <= index < MAX_INPUTS:
        raise ValueError(f"input index {index} outside [0, {MAX_INPUTS})")
    return bytes([Command.EVENT]) + int(index).to_bytes(2, "little")


def encode_bitmap(active: Iterable[int], *, n_in: int, last: bool) -> bytes:
    """A BITMAP_STEP (or, if ``last``, BITMAP_SAMPLE) frame: input ``8 j + b`` active is bit ``b`` of bitmap byte ``j``."""
    if not 1 <= n_in <= MAX_INPUTS:
        raise ValueError(f"n_in = {n_in}; expected 1 .. {MAX_INPUTS}")
    bits = np.zeros(8 * math.ceil(n_in / 8), np.uint8)
    for i in active:
        if not 0 <= int(i) < n_in:
            raise ValueError(f"input index {i} outside [0, {n_in})")
        bits[int(i)] = 1
    code = Command.BITMAP_SAMPLE if last else Command.BITMAP_STEP
    return bytes([code]) + np.packbits(bits, bitorder="little").tobytes()


def decode_bitmap(frame: bytes, *, n_in: int) -> tuple[np.ndarray, bool]:
    """``(active input indices, last)`` of a BITMAP frame; ValueError if it is not one for ``n_in`` inputs
    or sets a bit at or above ``n_in`` (which the board refuses)."""
    if len(frame) != BITMAP_HEADER_BYTES + math.ceil(n_in / 8) or frame[0] not in (Command.BITMAP_STEP,
                                                                                  Command.BITMAP_SAMPLE):
        raise ValueError(f"not a BITMAP frame for {n_in} inputs: {frame[:8].hex(' ')}...")
    active = np.flatnonzero(np.unpackbits(np.frombuffer(frame[1:], np.uint8), bitorder="little"))
    if active.size and active[-1] >= n_in:
        raise ValueError(f"the bitmap sets input {active[-1]}, at or above n_in = {n_in}")
    return active, frame[0] == Command.BITMAP_SAMPLE


def event_list_bytes(active_inputs: int) -> int:
    """Bytes of a step as EVENT frames: ``EVENT_BYTES`` per active input and the 1-byte marker."""
    return EVENT_BYTES * int(active_inputs) + 1


def bitmap_bytes(n_in: int) -> int:
    """Bytes of a step as one BITMAP frame (which also closes the step): code byte + ``ceil(n_in / 8)``."""
    return BITMAP_HEADER_BYTES + math.ceil(n_in / 8)


def choose_encoding(active_inputs: int, n_in: int) -> str:
    """``"events"`` or ``"bitmap"``, whichever is shorter for a step with ``active_inputs`` of ``n_in``
    inputs active (the event list on a tie)."""
    return "events" if event_list_bytes(active_inputs) <= bitmap_bytes(n_in) else "bitmap"


def encode_step(active: Iterable[int], *, last: bool, n_in: int | None = None, encoding: str = "best") -> bytes:
    """One time step, closed with END_OF_STEP, or END_OF_SAMPLE if ``last``.

    ``encoding``: ``"events"`` (an EVENT per active input, then the marker), ``"bitmap"`` (one
    BITMAP frame, which needs ``n_in``) or ``"best"`` (the shorter of the two, the event list on a
    tie; the event list if ``n_in`` is None): docs/boards.md, "Bandwidth".
    """
    active = [int(i) for i in active]
    if encoding not in ("events", "bitmap", "best"):
        raise ValueError(f"encoding = {encoding!r}; expected 'events', 'bitmap' or 'best'")
    if encoding == "bitmap" and n_in is None:
        raise ValueError("the bitmap encoding needs n_in")
    if encoding == "bitmap" or (encoding == "best" and n_in is not None
                                and choose_encoding(len(active), n_in) == "bitmap"):
        return encode_bitmap(active, n_in=n_in, last=last)
    marker = Command.END_OF_SAMPLE if last else Command.END_OF_STEP
    return b"".join(encode_event(i) for i in active) + bytes([marker])


def encode_load(memory: int, address: int, word: int, *, word_bytes: int) -> bytes:
    """A LOAD_WEIGHT frame: ``word`` (unsigned) into ``address`` of weight memory ``memory`` (0 synaptic, 1 readout)."""
    if memory not in (0, 1):
        raise ValueError(f"memory = {memory}; expected 0 (synaptic weights) or 1 (readout weights)")
    if not 0 <= address < MAX_WEIGHT_WORDS:
        raise ValueError(f"address {address} outside [0, {MAX_WEIGHT_WORDS})")
    if not 0 <= word < 1 << (8 * word_bytes):
        raise ValueError(f"word {word:#x} does not fit {word_bytes} bytes")
    return (bytes([Command.LOAD_WEIGHT, memory]) + address.to_bytes(ADDRESS_BYTES, "little")
            + word.to_bytes(word_bytes, "little"))


def encode_weights(network, info: DeviceInfo) -> Iterator[bytes]:
    """LOAD_WEIGHT frames for every word of both weight memories, packed for the board's lanes.

    The words are :func:`~gesture_snn.spec.memory.weight_memory_words` at the board's ``lanes`` and
    ``readout_lanes``; memory 0 (synaptic) first, each memory from address 0 up.
    """
    for memory, words in enumerate(weight_memory_words(network, lanes=info.lanes, readout_lanes=info.readout_lanes)):
        for address, word in enumerate(words):
            yield encode_load(memory, address, word, word_bytes=info.word_bytes)


def encode_resync(word_bytes: int, n_in: int = MAX_INPUTS) -> bytes:
    """NOPs as long as the longest command (a LOAD_WEIGHT of ``word_bytes`` or a BITMAP frame for
    ``n_in`` inputs): whatever frame the board was inside, it ends and the next byte starts one.

    A partial frame completed this way runs with zeros in its missing bytes (an EVENT on input
    0, a weight word of zeros, or a bitmap that closes the step), which is why a session resynchronises before it loads weights
    and closes the stray sample before it runs one (:meth:`gesture_snn.host_link.BoardLink.reset`).
    """
    return bytes(max(LOAD_HEADER_BYTES + word_bytes, BITMAP_HEADER_BYTES + math.ceil(n_in / 8)))
