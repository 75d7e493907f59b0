"""Board tops: the neuron core behind a UART on the iCEBreaker (iCE40 UP5K) and the ULX3S (ECP5).

:class:`SerialNeuronCore` is the board-independent part: UART receiver, :class:`~hdl.protocol.CommandDecoder`,
:class:`~hdl.core.NeuronCore`, :class:`~hdl.protocol.ReplyEncoder` and UART transmitter, with
status signals for LEDs. A :class:`Board` is the pins of one board; the FPGA on it (family,
device, package), its oscillator frequency and the core's defaults are the build target's
(:class:`hdl.targets.Target`, the one table of them). :class:`BoardTop` wraps the core for one
target: its only ports are the board's pins, it makes the ``sync`` clock domain from the
oscillator pin with a power-on reset, and drives the LEDs. :func:`top_for_target` and
:func:`constraints_for_target` give the build flow the top and the pin constraints (.pcf for
nextpnr-ice40, .lpf for nextpnr-ecp5) of a target. docs/boards.md describes the pins, the LEDs
and the byte protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import ClockDomain, ClockSignal, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gesture_snn.spec.protocol import DEFAULT_BAUD, DeviceInfo, LinkErrors
from hdl.core import NeuronCore, OutputKind
from hdl.protocol import ERROR_BITS, CommandDecoder, ReplyEncoder
from hdl import targets
from hdl.uart import UARTReceiver, UARTTransmitter, uart_divisor

__all__ = [
    "StatusLayout", "SerialNeuronCore", "Pin", "Board", "ICEBREAKER", "ULX3S", "BOARDS",
    "BoardTop", "top_for_target", "constraints_for_target",
]


class StatusLayout(data.StructLayout):
    """What :class:`SerialNeuronCore` shows on LEDs.

    ``error``: a link error (:class:`~gesture_snn.spec.protocol.LinkErrors`) happened since the last
    IDENT; ``busy``: a sample is running (from its first input item to its class);
    ``prediction``: the low 4 bits of the last class sent.
    """

    def __init__(self):
        super().__init__({"error": 1, "busy": 1, "prediction": 4})


class SerialNeuronCore(wiring.Component):
    """A :class:`~hdl.core.NeuronCore` that talks the byte protocol of docs/boards.md over a UART.

    ``rx`` -> :class:`~hdl.uart.UARTReceiver` -> :class:`~hdl.protocol.CommandDecoder` -> core ->
    :class:`~hdl.protocol.ReplyEncoder` -> :class:`~hdl.uart.UARTTransmitter` -> ``tx``. The
    receiver's framing errors and overruns and the decoder's refused frames are kept as sticky
    flags, reported (and cleared) by the next IDENT frame. Uses the ``sync`` domain.

    Parameters (keyword-only)
    -------------------------
    network : gesture_snn.spec.intnet.IntegerNetwork
        The network (see :class:`~hdl.core.NeuronCore`).
    divisor : int
        Clock cycles per UART bit (:func:`hdl.uart.uart_divisor`), at least 4.
    lanes, readout_lanes, weight_loading
        Passed to :class:`~hdl.core.NeuronCore`. With ``weight_loading`` the host must send the
        weights (LOAD_WEIGHT) before the first sample.

    Attributes: ``core`` (the :class:`~hdl.core.NeuronCore`), ``ident`` (the
    :class:`~gesture_snn.spec.protocol.DeviceInfo` the IDENT frame reports), ``divisor``.

    Ports
    -----
    rx : In(1)
        Serial line from the host (idle high).
    tx : Out(1)
        Serial line to the host (idle high).
    status : Out(StatusLayout())
        For LEDs.
    """

    def __init__(self, *, network, divisor: int, lanes: int = 1, readout_lanes: int | None = None,
                 weight_loading: bool = False):
        self.core = NeuronCore(network=network, lanes=lanes, readout_lanes=readout_lanes, weight_loading=weight_loading)
        self.ident = DeviceInfo.for_network(network, lanes=self.core.lanes, readout_lanes=self.core.readout_lanes,
                                            weight_loading=weight_loading)
        self.receiver = UARTReceiver(divisor=divisor)
        self.transmitter = UARTTransmitter(divisor=divisor)
        self.divisor = divisor
        self.decoder = CommandDecoder(n_in=network.n_in, weight_depths=self.core.weight_depths,
                                      weight_word_bits=self.core.weight_word_bits, weight_loading=weight_loading)
        self.encoder = ReplyEncoder(n_rec=network.n_rec, n_out=network.n_out, ident=self.ident)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "status": Out(StatusLayout())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = self.receiver
        m.submodules.decoder = decoder = self.decoder
        m.submodules.core = core = self.core
        m.submodules.encoder = encoder = self.encoder
        m.submodules.transmitter = transmitter = self.transmitter

        m.d.comb += [
            receiver.rx.eq(self.rx),
            self.tx.eq(transmitter.tx),
            decoder.frame_abort.eq(receiver.framing_error),
        ]
        wiring.connect(m, receiver.bytes, decoder.bytes)
        wiring.connect(m, decoder.inputs, core.inputs)
        if core.weight_loading:
            wiring.connect(m, decoder.weight_write, core.weight_write)
        wiring.connect(m, core.outputs, encoder.outputs)
        wiring.connect(m, encoder.bytes, transmitter.bytes)
        m.d.comb += encoder.identify.eq(decoder.identify)

        # Sticky link errors, in LinkErrors bit order; an error in the cycle they are reported stays.
        errors = Signal(ERROR_BITS)
        events = Signal(ERROR_BITS)
        for flag, pulse in ((LinkErrors.FRAMING, receiver.framing_error), (LinkErrors.OVERRUN, receiver.overrun),
                            (LinkErrors.BAD_COMMAND, decoder.bad_command)):
            m.d.comb += events[flag.bit_length() - 1].eq(pulse)
        m.d.comb += encoder.errors.eq(errors)
        m.d.sync += errors.eq(Mux(encoder.errors_reported, 0, errors) | events)

        # Status: a sample runs from its first input item to its class.
        output = core.outputs
        class_taken = output.valid & output.ready & (output.payload.kind == OutputKind.CLASS)
        busy = Signal()
        prediction = Signal(4)
        with m.If(core.inputs.valid & core.inputs.ready):
            m.d.sync += busy.eq(1)
        with m.If(class_taken):
            m.d.sync += [busy.eq(0), prediction.eq(output.payload.index)]
        m.d.comb += [self.status.error.eq(errors != 0), self.status.busy.eq(busy),
                     self.status.prediction.eq(prediction)]
        return m


# --------------------------------------------------------------------------------------------
# Boards

#: What a pin of a board top does. "clock": the oscillator input; "uart_rx" / "uart_tx": the
#: FTDI serial bridge (rx is the FPGA's input); "heartbeat": blinks (period about 0.7 s) while the
#: clock runs; "error", "busy", "prediction0".."prediction3": :class:`StatusLayout` fields;
#: "high" / "low": driven constant.
PIN_ROLES = ("clock", "uart_rx", "uart_tx", "heartbeat", "error", "busy",
             "prediction0", "prediction1", "prediction2", "prediction3", "high", "low")


@dataclass(frozen=True)
class Pin:
    """One top-level port of a board top: its port name, package pin (site), role (:data:`PIN_ROLES`),
    and whether it is active low (an LED that lights on 0) or needs the FPGA's pull-up."""

    name: str
    site: str
    role: str
    active_low: bool = False
    pullup: bool = False

    def __post_init__(self):
        if self.role not in PIN_ROLES:
            raise ValueError(f"pin {self.name}: role {self.role!r}; expected one of {', '.join(PIN_ROLES)}")


@dataclass(frozen=True)
class Board:
    """A board: its name (:attr:`hdl.targets.Target.board`) and the pins a board top uses.

    ``pins`` must hold exactly one "clock", "uart_rx" and "uart_tx" pin. The FPGA, its package
    and the oscillator frequency are the target's (:mod:`hdl.targets`), not the board's: a board
    can carry more than one device (the ULX3S: ``ecp5-25k`` and ``ecp5-85k``).
    """

    name: str
    pins: tuple[Pin, ...]

    def __post_init__(self):
        for role in ("clock", "uart_rx", "uart_tx"):
            if sum(pin.role == role for pin in self.pins) != 1:
                raise ValueError(f"board {self.name}: needs exactly one {role!r} pin")
        names = [pin.name for pin in self.pins]
        if len(set(names)) != len(names):
            raise ValueError(f"board {self.name}: pin names repeat: {names}")

    def pin(self, role: str) -> Pin:
        """The (first) pin with ``role``."""
        return next(pin for pin in self.pins if pin.role == role)


#: iCEBreaker v1.0 (iCE40UP5K-SG48, 12 MHz oscillator, FTDI FT2232H channel B as UART). Pins as
#: in amaranth-boards' icebreaker.py and the board's icebreaker.pcf: the two on-board LEDs
#: (active low) and the five LEDs of the snap-off section (PMOD2; LED1 is the red one in the middle).
ICEBREAKER = Board(
    name="icebreaker",
    pins=(
        Pin("clk12", "35", "clock"),
        Pin("uart_rx", "6", "uart_rx", pullup=True),
        Pin("uart_tx", "9", "uart_tx"),
        Pin("led_g", "37", "heartbeat", active_low=True),
        Pin("led_r", "11", "error", active_low=True),
        Pin("led1", "26", "busy"),
        Pin("led2", "27", "prediction0"),
        Pin("led3", "25", "prediction1"),
        Pin("led4", "23", "prediction2"),
        Pin("led5", "21", "prediction3"),
    ),
)

#: ULX3S (ECP5 LFE5U-12F/25F/45F/85F in CABGA381, 25 MHz oscillator, FTDI FT231X as UART). Pins as
#: in amaranth-boards' ulx3s.py and the board's ulx3s_v20.lpf: FTDI TXD (M1) is the FPGA's
#: receive line, RXD (L4) its transmit line; eight active-high LEDs; ``wifi_gpio0`` is held
#: high so that the on-board ESP32 does not reset the FPGA.
ULX3S = Board(
    name="ulx3s",
    pins=(
        Pin("clk25", "G2", "clock"),
        Pin("uart_rx", "M1", "uart_rx", pullup=True),
        Pin("uart_tx", "L4", "uart_tx"),
        Pin("led0", "B2", "prediction0"),
        Pin("led1", "C2", "prediction1"),
        Pin("led2", "C1", "prediction2"),
        Pin("led3", "D2", "prediction3"),
        Pin("led4", "D1", "busy"),
        Pin("led5", "E2", "low"),
        Pin("led6", "E1", "error"),
        Pin("led7", "H3", "heartbeat"),
        Pin("wifi_gpio0", "L2", "high"),
    ),
)


#: The boards by name (:attr:`hdl.targets.Target.board`).
BOARDS: dict[str, Board] = {board.name: board for board in (ICEBREAKER, ULX3S)}


class BoardTop(wiring.Component):
    """A :class:`SerialNeuronCore` on a build target's board: ports are exactly the board's pins.

    The ``sync`` domain is clocked by the oscillator pin (``target.clock_mhz``) and held in reset
    for ``reset_cycles`` cycles after configuration (a counter whose flip-flops start at zero; the
    iCE40 block RAMs need a few microseconds after configuration before they read correctly). The
    UART divisor is computed from the clock and ``baud`` (:func:`hdl.uart.uart_divisor` refuses a
    baud rate more than 2 % off).

    Parameters (keyword-only)
    -------------------------
    target : hdl.targets.Target
        The build target: its board (``BOARDS[target.board]``), clock and default weight loading.
    network : gesture_snn.spec.intnet.IntegerNetwork
    lanes, readout_lanes
        Passed to :class:`~hdl.core.NeuronCore`.
    weight_loading : bool or None
        Passed to :class:`~hdl.core.NeuronCore`; None (default): ``target.weight_loading`` (True
        on the UP5K, whose synaptic weights live in SPRAM, False on the ECP5, whose block RAMs the
        bitstream initialises).
    baud : int
        UART bits per second, default 115200.
    reset_cycles : int
        Power-on reset length in clock cycles, at least 1 (default 4096: 341 us at 12 MHz).

    Attributes: ``target``, ``board``, ``system`` (the :class:`SerialNeuronCore`), ``baud``.

    Ports
    -----
    One 1-bit port per :class:`Pin` of the board, named as the pin: the clock and ``uart_rx``
    are inputs, everything else an output.
    """

    def __init__(self, *, target: targets.Target, network, lanes: int = 1, readout_lanes: int | None = None,
                 weight_loading: bool | None = None, baud: int = DEFAULT_BAUD, reset_cycles: int = 4096):
        if not isinstance(target, targets.Target):
            raise TypeError(f"target must be an hdl.targets.Target; got {type(target).__name__}")
        if target.board not in BOARDS:
            raise ValueError(f"target {target.name}: no pins for board {target.board!r}; boards: {', '.join(BOARDS)}")
        if isinstance(reset_cycles, bool) or not isinstance(reset_cycles, int) or reset_cycles < 1:
            raise ValueError(f"reset_cycles = {reset_cycles!r}; expected a positive integer (clock cycles)")
        if weight_loading is None:
            weight_loading = target.weight_loading
        self.target = target
        self.board = board = BOARDS[target.board]
        self.baud = baud
        self.reset_cycles = reset_cycles
        self.system = SerialNeuronCore(network=network, divisor=uart_divisor(clock_hz=target.clock_hz, baud=baud),
                                       lanes=lanes, readout_lanes=readout_lanes, weight_loading=weight_loading)
        super().__init__({
            pin.name: In(1, init=1 if pin.role == "uart_rx" else 0) if pin.role in ("clock", "uart_rx") else Out(1)
            for pin in board.pins
        })

    def elaborate(self, platform):
        m = Module()
        board = self.board
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(getattr(self, board.pin("clock").name))

        # Power-on reset: a counter outside the reset it drives.
        reset_count = Signal(range(self.reset_cycles + 1), reset_less=True)
        in_reset = reset_count != self.reset_cycles
        with m.If(in_reset):
            m.d.sync += reset_count.eq(reset_count + 1)
        m.d.comb += ResetSignal("sync").eq(in_reset)

        m.submodules.system = system = self.system
        m.d.comb += [system.rx.eq(getattr(self, board.pin("uart_rx").name)),
                     getattr(self, board.pin("uart_tx").name).eq(system.tx)]

        heartbeat = Signal(max(1, int(self.target.clock_hz).bit_length() - 1))  # top bit: a period of 2^w / clock, 0.7 s
        m.d.sync += heartbeat.eq(heartbeat + 1)
        status = system.status
        levels = {"heartbeat": heartbeat[-1], "error": status.error, "busy": status.busy,
                  "high": 1, "low": 0, **{f"prediction{k}": status.prediction[k] for k in range(4)}}
        for pin in board.pins:
            if pin.role in levels:
                level = levels[pin.role]
                m.d.comb += getattr(self, pin.name).eq(~level if pin.active_low else level)
        return m


def top_for_target(target: str, network, **options) -> BoardTop:
    """The :class:`BoardTop` of a build target ("ice40-up5k": iCEBreaker, "ecp5-25k" / "ecp5-85k": ULX3S).

    ``options`` go to :class:`BoardTop` (``lanes``, ``readout_lanes``, ``weight_loading``, ``baud``,
    ``reset_cycles``); ValueError for an unknown target.
    """
    return BoardTop(target=targets.target(target), network=network, **options)


def constraints_for_target(target: str) -> tuple[str, str]:
    """``(filename, text)`` of the pin constraint file of a target's board, the target's clock included.

    ``<board>.pcf`` for nextpnr-ice40 or ``<board>.lpf`` for nextpnr-ecp5, by the target's family;
    ValueError for an unknown target.
    """
    spec = targets.target(target)
    board = BOARDS[spec.board]
    ice40 = spec.family == "ice40"
    lines = [f"# {board.name}: pins of the gesture-snn board top (hdl/boards.py; docs/boards.md)"]
    for pin in board.pins:
        comment = f"  # {pin.role}{', active low' if pin.active_low else ''}"
        if ice40:
            pullup = " -pullup yes" if pin.pullup else ""
            lines.append(f"set_io -nowarn{pullup} {pin.name} {pin.site}{comment}")
        else:
            attrs = "IO_TYPE=LVCMOS33" + (" PULLMODE=UP" if pin.pullup else "")
            if pin.role not in ("clock", "uart_rx", "uart_tx"):
                attrs += " DRIVE=4"
            lines.append(f'LOCATE COMP "{pin.name}" SITE "{pin.site}";{comment}')
            lines.append(f'IOBUF PORT "{pin.name}" {attrs};')
    clock = board.pin("clock").name
    if ice40:
        lines.append(f"set_frequency {clock} {spec.clock_mhz:g}")
    else:
        lines.append(f'FREQUENCY PORT "{clock}" {spec.clock_mhz:g} MHZ;')
    return f"{board.name}.{'pcf' if ice40 else 'lpf'}", "\n".join(lines) + "\n"
