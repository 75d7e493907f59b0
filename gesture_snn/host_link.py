"""The host side of a session with a board over a serial port (docs/boards.md).

The protocol itself (codes, frames, encoders, :class:`~gesture_snn.spec.protocol.ReplyDecoder`)
is :mod:`gesture_snn.spec.protocol`. Here: :class:`SampleExchange` (the lock-step exchange of one
sample without any I/O), :class:`BoardLink` (the same over a serial port) and
:func:`open_serial`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.protocol import (
    DEFAULT_BAUD,
    IDENTIFY,
    MAX_INPUTS,
    ClassReply,
    Command,
    DeviceInfo,
    ProtocolError,
    ReplyDecoder,
    Spike,
    StepEnd,
    encode_resync,
    encode_step,
    encode_weights,
)

__all__ = ["SampleResult", "SampleExchange", "BoardLink", "open_serial"]


# --------------------------------------------------------------------------------------------
# A sample, lock-step, without I/O


@dataclass(frozen=True, eq=False)
class SampleResult:
    """What the board returned for one sample: ``spikes`` [T, n_rec] (uint8) and the class."""

    spikes: np.ndarray
    prediction: int


class SampleExchange:
    """The host side of one sample, lock-step and without I/O.

    Call :meth:`outgoing` for bytes to send (a whole step, or nothing while the board is still
    answering the previous one) and :meth:`receive` with the replies that arrive, until
    :attr:`done`; then :attr:`result`. ``frames`` is the sample's binary input [T, n_in].
    ``encoding``: how a step's inputs are sent (:func:`~gesture_snn.spec.protocol.encode_step`):
    ``"best"`` (default: per step the shorter of the EVENT list and the BITMAP frame),
    ``"events"`` or ``"bitmap"``.
    """

    def __init__(self, frames, *, n_rec: int, encoding: str = "best"):
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[0] < 1:
            raise ValueError(f"frames must have shape [T >= 1, n_in]; got {frames.shape}")
        self._steps = [np.flatnonzero(step) for step in frames]
        self._n_in = frames.shape[1]
        self._encoding = encoding
        self._spikes = np.zeros((len(self._steps), n_rec), np.uint8)
        self._sent = 0  # steps sent
        self._ended = 0  # END_OF_STEP replies received
        self._prediction: int | None = None

    @property
    def done(self) -> bool:
        return self._prediction is not None

    def outgoing(self) -> bytes:
        """The next step's frames if the board has answered every step sent so far, else ``b""``."""
        if self._sent != self._ended or self._sent == len(self._steps):
            return b""
        t = self._sent
        self._sent += 1
        return encode_step(self._steps[t], last=t == len(self._steps) - 1, n_in=self._n_in, encoding=self._encoding)

    def receive(self, replies: Sequence) -> None:
        """Account for replies; ProtocolError if one does not fit the exchange."""
        for reply in replies:
            if self.done:
                raise ProtocolError(f"the board sent {reply} after the class")
            if isinstance(reply, Spike):
                if self._ended == self._sent:
                    raise ProtocolError(f"the board sent {reply} for a step that was not sent")
                if not 0 <= reply.neuron < self._spikes.shape[1]:
                    raise ProtocolError(f"the board sent {reply}, but the network has {self._spikes.shape[1]} neurons")
                self._spikes[self._ended, reply.neuron] = 1
            elif isinstance(reply, StepEnd):
                if self._ended == self._sent:
                    raise ProtocolError("the board ended a step that was not sent")
                self._ended += 1
            elif isinstance(reply, ClassReply):
                if self._ended != len(self._steps):
                    raise ProtocolError(f"the board sent {reply} after {self._ended} of {len(self._steps)} steps")
                self._prediction = reply.label
            else:
                raise ProtocolError(f"unexpected reply during a sample: {reply}")

    @property
    def result(self) -> SampleResult:
        if not self.done:
            raise RuntimeError("the sample has not finished")
        return SampleResult(spikes=self._spikes, prediction=self._prediction)


# --------------------------------------------------------------------------------------------
# A session over a serial port


class BoardLink:
    """A session with a board over a byte port (a pySerial ``Serial``, or anything with
    ``write(data)``, ``read(size)`` returning ``b""`` after its timeout, and ``in_waiting``).

    ``timeout_s``: longest silence from the board while a reply is due before ProtocolError.
    ``encoding``: how steps are sent (:class:`SampleExchange`; default per step the shorter).
    Typical use::

        link = BoardLink(open_serial("/dev/ttyUSB1", baud=115200))
        info = link.reset()
        info.check_network(network)
        if info.weight_loading:
            link.load_weights(network)
        result = link.run_sample(frames)        # frames [T, n_in], binary

    Attributes: ``info``, the last :class:`DeviceInfo` received (None before :meth:`identify`).
    """

    def __init__(self, port, *, timeout_s: float = 5.0, encoding: str = "best"):
        self.port = port
        self.timeout_s = timeout_s
        self.encoding = encoding
        self.info: DeviceInfo | None = None
        self._decoder = ReplyDecoder()

    def reset(self, *, n_in: int = MAX_INPUTS) -> DeviceInfo:
        """Bring the board to a known state and identify it, within ``timeout_s`` in all.

        Drains what the board is still sending, ends any frame it was inside (:func:`encode_resync`,
        sized for the largest word a LOAD_WEIGHT may carry and a BITMAP frame of ``n_in`` inputs:
        pass the network's to keep the reset short at a slow baud rate), closes any sample it was inside with
        END_OF_SAMPLE (discarding that sample's replies), then sends IDENTIFY. A port that keeps
        sending without going quiet, sends nothing, or sends replies that never end the sample is a
        ProtocolError after ``timeout_s`` seconds at most.
        """
        deadline = time.monotonic() + self.timeout_s
        self._drain(deadline=deadline)
        self._write(encode_resync(255, n_in) + bytes([Command.END_OF_SAMPLE]))
        while not any(isinstance(reply, ClassReply) for reply in self._receive(deadline=deadline, waiting_for=(
                "the end of the interrupted sample after the reset"))):
            pass
        return self.identify(deadline=deadline)

    def identify(self, *, deadline: float | None = None) -> DeviceInfo:
        """Send IDENTIFY and return the board's IDENT reply (which clears the board's error flags);
        ProtocolError if none comes within ``timeout_s`` (or by ``deadline``, a ``time.monotonic()``)."""
        deadline = time.monotonic() + self.timeout_s if deadline is None else deadline
        self._write(IDENTIFY)
        while True:
            for reply in self._receive(deadline=deadline, waiting_for="the identification (IDENT)"):
                if not isinstance(reply, DeviceInfo):
                    raise ProtocolError(f"expected the identification, got {reply}")
                self.info = reply
                return reply

    def load_weights(self, network, *, progress: bool = False) -> None:
        """Send every weight word of ``network`` packed for the board's lanes (only between samples; no reply)."""
        from tqdm import tqdm

        frames = list(encode_weights(network, self._identified()))
        chunk = 256
        with tqdm(total=len(frames), unit="word", desc="load weights", disable=not progress) as bar:
            for start in range(0, len(frames), chunk):
                self._write(b"".join(frames[start:start + chunk]))
                bar.update(len(frames[start:start + chunk]))

    def run_sample(self, frames) -> SampleResult:
        """Stream one sample [T, n_in] lock-step and return the board's spikes and class."""
        exchange = SampleExchange(frames, n_rec=self._identified().n_rec, encoding=self.encoding)
        while not exchange.done:
            data = exchange.outgoing()
            if data:
                self._write(data)
            exchange.receive(self._receive())
        return exchange.result

    def _identified(self) -> DeviceInfo:
        if self.info is None:
            raise RuntimeError("identify the board first (BoardLink.reset or BoardLink.identify)")
        return self.info

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except _port_errors() as exc:
            raise ProtocolError(f"cannot write to the board's port ({exc}); is it still connected?") from None

    def _read(self) -> bytes:
        try:
            return self.port.read(max(1, getattr(self.port, "in_waiting", 0)))
        except _port_errors() as exc:
            raise ProtocolError(f"cannot read from the board's port ({exc}); is it still connected?") from None

    def _receive(self, *, deadline: float | None = None, waiting_for: str = "a reply") -> list:
        """Replies completed by the next bytes from the board.

        ProtocolError after ``timeout_s`` without a completed reply (silence, or bytes that never
        complete a frame: noise), or at ``deadline`` (a ``time.monotonic()``) if that comes first.
        """
        limit = time.monotonic() + self.timeout_s
        deadline = limit if deadline is None else min(deadline, limit)
        received = 0
        while True:
            data = self._read()
            if data:
                received += len(data)
                replies = self._decoder.feed(data)
                if replies:
                    return replies
            if time.monotonic() >= deadline:
                if received:
                    raise ProtocolError(
                        f"the board sent {received} bytes but no complete reply while waiting for {waiting_for} "
                        f"({self.timeout_s:g} s); check --baud against the bitstream's baud rate and that the port is "
                        "the board running this project's bitstream")
                raise ProtocolError(
                    f"no reply from the board for {self.timeout_s:g} s while waiting for {waiting_for}; check the port, "
                    "that the bitstream is loaded, and that --baud matches the bitstream's baud rate"
                )

    def _drain(self, quiet_s: float = 0.1, *, deadline: float | None = None) -> None:
        """Read and drop bytes until the board has been silent for ``quiet_s``; ProtocolError if
        it is not silent by ``deadline`` (default ``timeout_s`` from now)."""
        if hasattr(self.port, "reset_input_buffer"):
            try:
                self.port.reset_input_buffer()
            except _port_errors() as exc:
                raise ProtocolError(f"cannot use the board's port ({exc}); is it still connected?") from None
        started = last = time.monotonic()
        deadline = started + self.timeout_s if deadline is None else deadline
        dropped = 0
        while time.monotonic() - last < quiet_s:
            data = self._read()
            if data:
                dropped += len(data)
                last = time.monotonic()
            if time.monotonic() >= deadline:
                raise ProtocolError(
                    f"the port never went quiet: {dropped} bytes in {time.monotonic() - started:.1f} s before the reset; "
                    "it is not a board idling with this project's bitstream (wrong port, or --baud differs from the "
                    "bitstream's baud rate)")
        self._decoder = ReplyDecoder()


def _port_errors() -> tuple:
    """What a failing port raises: OSError and pySerial's SerialException (if pySerial is installed)."""
    try:
        import serial
    except ImportError:
        return (OSError,)
    try:
        import termios
    except ImportError:  # not POSIX
        return (OSError, serial.SerialException)
    return (OSError, serial.SerialException, termios.error)


def open_serial(port: str, *, baud: int = DEFAULT_BAUD, timeout_s: float = 0.05):
    """Open a serial port with pySerial, 8N1 at ``baud``, reads returning after ``timeout_s``."""
    try:
        import serial
    except ImportError:
        raise UserError("gesture-snn stream needs pySerial: pip install pyserial") from None
    try:
        return serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=timeout_s)
    except (serial.SerialException, ValueError) as exc:
        raise UserError(f"cannot open serial port {port!r} at {baud} baud: {exc}") from None
