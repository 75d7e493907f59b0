"""Board tops: the neuron core behind a UART on any amaranth-boards board with an iCE40 UP5K or an ECP5.

:class:`SerialNeuronCore` is the board-independent part: UART receiver, :class:`~hdl.protocol.CommandDecoder`,
:class:`~hdl.core.NeuronCore`, :class:`~hdl.protocol.ReplyEncoder` and UART transmitter, with
status signals for LEDs. :class:`BoardTop` puts it on an Amaranth platform: it
``platform.request()``-s the board's ``uart`` and ``led`` resources, and takes its ``sync`` clock
domain from the platform (the board oscillator, and the platform's power-on reset; on the iCE40
the reset is held 15 us after configuration, while the block RAMs cannot yet be read).

:func:`boards` finds the boards by walking ``amaranth_boards``: every platform on an iCE40 UP5K
or an ECP5 (LFE5U, LFE5UM, LFE5UM5G) with a ``uart`` resource. A :class:`Board` adds what
amaranth-boards does not say: the USB-UART bridge and its reliable baud rate, which LED shows
what, and pins to hold (the ULX3S's ESP32 GPIO0). The bare ``--target`` devices of
:mod:`hdl.targets` map to boards through :attr:`hdl.targets.Target.board`. docs/boards.md lists
the boards, the LEDs and the byte protocol.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from dataclasses import dataclass

from amaranth import Elaboratable, Module, Mux, Signal
from amaranth.lib import data, io, wiring
from amaranth.lib.wiring import In, Out

from gesture_snn.spec.protocol import DEFAULT_BAUD, DeviceInfo, LinkErrors
from hdl.core import NeuronCore, OutputKind
from hdl.protocol import ERROR_BITS, CommandDecoder, ReplyEncoder
from hdl import targets
from hdl.uart import UARTReceiver, UARTTransmitter, uart_divisor

__all__ = [
    "StatusLayout", "SerialNeuronCore", "LED_ROLES", "Bridge", "BRIDGES", "EXCLUDED", "Board", "boards", "board",
    "board_for_target", "BoardTop", "resource_pins",
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

#: What an LED of a board top shows, in the order LEDs ``led 0, 1, ...`` get them unless a board
#: says otherwise: "error" (a link error since the last IDENT), "heartbeat" (blinks, period about
#: 0.7 s, while the clock runs), "busy" and "prediction0".."prediction3" (:class:`StatusLayout`),
#: "low" (off).
LED_ROLES = ("error", "heartbeat", "busy", "prediction0", "prediction1", "prediction2", "prediction3", "low")


@dataclass(frozen=True)
class Bridge:
    """The USB-UART bridge of a board: ``chip``, the highest baud rate the project uses on it
    (``max_baud``) and where that comes from (``source``)."""

    chip: str
    max_baud: int
    source: str


_FT2232H = Bridge("FTDI FT2232H", 3_000_000,
                  "FTDI DS_FT2232H data sheet: UART up to 12 Mbaud; 3 Mbaud is an exact divisor of its 12 MHz "
                  "baud clock and the project's reliable limit")
_FT231X = Bridge("FTDI FT231X", 3_000_000, "FTDI DS_FT231X data sheet: 300 baud to 3 Mbaud at TTL levels")
_UNKNOWN = Bridge("unknown", DEFAULT_BAUD, "no data sheet rate known: the protocol's default")
_NONE = Bridge("none (UART pins on a header: an external adapter)", DEFAULT_BAUD,
               "depends on the adapter: the protocol's default")

#: The USB-UART bridge of each amaranth-boards module (schematics of the boards); others: unknown.
BRIDGES: dict[str, Bridge] = {
    "icebreaker": _FT2232H,  # iCEBreaker v1.0: FT2232H, channel B is the UART
    "ulx3s": _FT231X,  # ULX3S v3.0: FT231XS
    "ecpix5": _FT2232H,  # ECPIX-5: FT2232HQ, channel B is the UART
    "ecp5_5g_evn": _FT2232H,  # Lattice ECP5-5G evaluation board: FT2232H
    "versa_ecp5": _FT2232H,  # Lattice ECP5 Versa: FT2232H
    "versa_ecp5_5g": _FT2232H,
    "icesugar": Bridge("iCELink (MCU, USB CDC)", DEFAULT_BAUD, "no rate documented: the protocol's default"),
    "icesugar_pro": Bridge("iCELink (MCU, USB CDC)", DEFAULT_BAUD, "no rate documented: the protocol's default"),
    "colorlight_5a75b_r7_0": _NONE,  # the "UART" is the J19 LED and button pins
}

#: LED roles of boards whose LEDs are not used in :data:`LED_ROLES` order (by module).
_LED_ROLES = {
    # ULX3S: the prediction on the first four LEDs, busy on D4, error on D6, heartbeat on D7 (as the
    # project's hand-written ULX3S table had them).
    "ulx3s": ("prediction0", "prediction1", "prediction2", "prediction3", "busy", "low", "error", "heartbeat"),
}
#: Pins a board top holds high, by module: (resource, number, subsignal). The ULX3S's ESP32 would
#: otherwise reset or reconfigure the FPGA through GPIO0.
_HOLD_HIGH = {"ulx3s": (("esp32", 0, "gpio0"),)}
#: Extra resources amaranth-boards keeps apart (by module): the iCEBreaker's snap-off LEDs.
_EXTRA_RESOURCES = {"icebreaker": "break_off_pmod"}

#: Boards that qualify but cannot build, by module, with the reason (docs/boards.md).
EXCLUDED = {
    "supercon19badge": "amaranth-boards 0.0.21's toolchain_prepare passes its keyword arguments twice, so "
                       "no build option (seed, report) can be given",
}

_UP5K = ("iCE40UP5K",)
_ECP5 = ("LFE5U-", "LFE5UM-", "LFE5UM5G-")


@dataclass(frozen=True)
class Board:
    """One amaranth-boards board the project builds for.

    ``name``: the ``--board`` name (module name with dashes, plus the device size where a module
    has several, e.g. ``ulx3s-85f``); ``module`` / ``platform_class``: where amaranth-boards
    defines it; ``family``, ``device``, ``package``, ``speed``: the FPGA as amaranth names it;
    ``clock_hz``: the platform's default clock (the design's clock); ``bridge``: its
    :class:`Bridge`; ``led_roles``: what ``led 0, 1, ...`` show; ``hold_high``: pins held high;
    ``uart_extra``: the uart's lines besides rx and tx (left unconnected).
    """

    name: str
    module: str
    platform_class: str
    family: str
    device: str
    package: str
    speed: str
    clock_hz: float
    bridge: Bridge
    led_roles: tuple[str, ...]
    hold_high: tuple = ()
    uart_extra: tuple[str, ...] = ()

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6

    @property
    def part(self) -> str:
        if self.family == "ice40":
            return f"{self.device}-{self.package}"
        return f"{self.device}-{self.speed}{self.package}C"

    def platform(self):
        """A fresh platform instance (a platform can prepare one design only)."""
        module = importlib.import_module(f"amaranth_boards.{self.module}")
        platform = getattr(module, self.platform_class)()
        extra = _EXTRA_RESOURCES.get(self.module)
        if extra:
            platform.add_resources(getattr(platform, extra))
        return platform

    @functools.cached_property
    def target(self) -> targets.Target:
        """The board's FPGA as a build target (:func:`hdl.targets.device_target`), named as the board."""
        from amaranth.vendor import LatticeECP5Platform

        if self.family == "ice40":
            nextpnr_device = self.device.replace("iCE40", "").lower()
        else:
            nextpnr_device = LatticeECP5Platform._nextpnr_device_options[self.device].lstrip("-")
        return targets.device_target(name=self.name, board=self.name, device=self.device, package=self.package,
                                     part=self.part, nextpnr_device=nextpnr_device, clock_mhz=self.clock_mhz)

    def default_baud(self) -> int:
        """The fastest standard rate the bridge carries that the board clock makes within 2 %
        (:func:`gesture_snn.spec.link.fastest_baud`)."""
        from gesture_snn.spec.link import fastest_baud

        return fastest_baud(self.clock_hz, bridge_max_baud=self.bridge.max_baud)


def resource_pins(resource) -> set[str]:
    """The package pins of an amaranth ``Resource`` (all its subsignals)."""
    pins = set()

    def walk(ios):
        for item in ios:
            if hasattr(item, "ios"):
                walk(item.ios)
            elif hasattr(item, "p"):  # DiffPairs
                pins.update(item.p.names)
                pins.update(item.n.names)
            elif hasattr(item, "names"):
                pins.update(item.names)

    walk(resource.ios)
    return pins


def _board_from_platform(module: str, cls, several: bool) -> Board | None:
    from amaranth.build import ResourceError
    from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

    if not (issubclass(cls, (LatticeICE40Platform, LatticeECP5Platform)) and cls.__module__.endswith(f".{module}")):
        return None
    try:
        platform = cls()
        device = platform.device
        uart = platform.lookup("uart", 0)
    except (ResourceError, TypeError, AttributeError, NotImplementedError):
        return None
    if not device.startswith(_UP5K + _ECP5) or platform.default_clk is None:
        return None
    try:
        clock_hz = float(platform.default_clk_frequency)
    except (AttributeError, ResourceError, ValueError):
        return None
    name = module.replace("_", "-") + (f"-{device.rsplit('-', 1)[-1].lower()}" if several else "")
    return Board(
        name=name, module=module, platform_class=cls.__name__, family="ice40" if device.startswith(_UP5K) else "ecp5",
        device=device, package=platform.package, speed=str(getattr(platform, "speed", "") or ""), clock_hz=clock_hz,
        bridge=BRIDGES.get(module, _UNKNOWN), led_roles=_LED_ROLES.get(module, LED_ROLES),
        hold_high=_HOLD_HIGH.get(module, ()),
        uart_extra=tuple(sub.name for sub in uart.ios if sub.name not in ("rx", "tx")),
    )


@functools.cache
def boards() -> dict[str, Board]:
    """Every amaranth-boards board on an iCE40 UP5K or an ECP5 with a ``uart`` resource, by name (sorted)."""
    import amaranth_boards

    found = {}
    for info in pkgutil.iter_modules(amaranth_boards.__path__):
        if info.name.startswith("_") or info.name in ("test", "resources", "extensions") or info.name in EXCLUDED:
            continue
        try:
            module = importlib.import_module(f"amaranth_boards.{info.name}")
        except Exception:  # noqa: BLE001 - a board module that does not import is no board of ours
            continue
        classes = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                   if cls.__module__ == module.__name__ and not inspect.isabstract(cls)]
        candidates = [cls for cls in classes if hasattr(cls, "device") and isinstance(getattr(cls, "device"), str)]
        for cls in candidates:
            board = _board_from_platform(info.name, cls, several=len(candidates) > 1)
            if board is not None:
                found[board.name] = board
    return dict(sorted(found.items()))


def board(name: str) -> Board:
    """The :class:`Board` called ``name`` (underscores taken as dashes); ValueError listing the boards otherwise."""
    known = boards()
    found = known.get(name.replace("_", "-").lower())
    if found is None:
        raise ValueError(f"unknown board {name!r}; expected one of {', '.join(known)} (gesture-snn build --list-boards)")
    return found


def board_for_target(target: targets.Target) -> Board:
    """The board a bare ``--target`` build uses (:attr:`hdl.targets.Target.board`)."""
    return board(target.board)


class BoardTop(Elaboratable):
    """A :class:`SerialNeuronCore` on an Amaranth platform: the board's UART, LEDs and clock.

    ``elaborate`` requests ``uart 0`` and the ``led`` resources with ``dir="-"`` and puts
    ``amaranth.lib.io.Buffer`` components on rx, tx (any other line of the uart, e.g. the ULX3S's RTS and
    DTR, stays unconnected) and every LED that does not share a pin with the UART, driven by
    ``led_roles`` (:data:`LED_ROLES`; the port inverts an active-low LED). The ``sync`` domain is left to the
    platform (``create_missing_domain``): the default clock, with the platform's power-on reset.
    Top-level port names are the platform's (``uart_0__rx__io``, ``led_0__io``, ...), no
    tool-generated suffixes.

    Parameters (keyword-only)
    -------------------------
    network : gesture_snn.spec.intnet.IntegerNetwork
    clock_hz : float
        The platform's default clock frequency.
    baud : int
        UART bits per second (:func:`hdl.uart.uart_divisor` refuses a rate the clock cannot make
        within 2 %).
    lanes, readout_lanes, weight_loading
        Passed to :class:`~hdl.core.NeuronCore`.
    led_roles : tuple of str
        What ``led 0, 1, ...`` show.
    hold_high : tuple of (resource, number, subsignal)
        Pins driven high (other subsignals of the resource are left unconnected).

    Attributes: ``system`` (the :class:`SerialNeuronCore`), ``baud``, ``clock_hz``, ``leds``
    (after elaboration: the role of each LED driven).
    """

    def __init__(self, *, network, clock_hz: float, baud: int = DEFAULT_BAUD, lanes: int = 1,
                 readout_lanes: int | None = None, weight_loading: bool = False, led_roles=LED_ROLES,
                 hold_high=()):
        for role in led_roles:
            if role not in LED_ROLES:
                raise ValueError(f"LED role {role!r}; expected one of {', '.join(LED_ROLES)}")
        self.clock_hz = float(clock_hz)
        self.baud = baud
        self.led_roles = tuple(led_roles)
        self.hold_high = tuple(hold_high)
        self.system = SerialNeuronCore(network=network, divisor=uart_divisor(clock_hz=self.clock_hz, baud=baud),
                                       lanes=lanes, readout_lanes=readout_lanes, weight_loading=weight_loading)
        self.leds: list[str] = []

    @classmethod
    def for_board(cls, board: Board, *, network, **options) -> "BoardTop":
        """The top for ``board``: its clock, LED roles and held pins; ``options`` as for the class."""
        return cls(network=network, clock_hz=board.clock_hz, led_roles=board.led_roles, hold_high=board.hold_high,
                   **options)

    def elaborate(self, platform):
        from amaranth.build import ResourceError

        if platform is None:
            raise TypeError("BoardTop needs an Amaranth platform (hdl.boards.board(NAME).platform()); "
                            "simulate SerialNeuronCore for a platform-independent design")
        m = Module()
        m.submodules.system = system = self.system

        uart_resource = platform.lookup("uart", 0)
        uart = platform.request("uart", 0, dir="-")  # lines other than rx and tx stay unconnected
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [system.rx.eq(rx.i), tx.o.eq(system.tx)]
        taken = resource_pins(uart_resource)

        heartbeat = Signal(max(1, int(self.clock_hz).bit_length() - 1))  # top bit: a period of 2^w / clock, 0.7 s
        m.d.sync += heartbeat.eq(heartbeat + 1)
        status = system.status
        levels = {"heartbeat": heartbeat[-1], "error": status.error, "busy": status.busy, "low": 0,
                  **{f"prediction{k}": status.prediction[k] for k in range(4)}}
        self.leds = []
        for number, role in enumerate(self.led_roles):
            try:
                resource = platform.lookup("led", number)
            except ResourceError:
                break
            if resource_pins(resource) & taken:
                continue  # e.g. the Colorlight 5A-75B, whose UART tx is its LED
            m.submodules[f"led_{number}"] = led = io.Buffer("o", platform.request("led", number, dir="-"))
            m.d.comb += led.o.eq(levels[role])  # the port inverts an active-low LED
            self.leds.append(role)

        for name, number, subsignal in self.hold_high:
            pins = platform.request(name, number, dir="-")
            m.submodules[f"{name}_{number}_{subsignal}"] = held = io.Buffer("o", getattr(pins, subsignal))
            m.d.comb += held.o.eq(1)
        return m
