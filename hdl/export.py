"""The neuron core as an IP block: :class:`~hdl.core.NeuronCore` alone, as Verilog with stable port names.

:class:`CoreExport` wraps one core in a top module whose ports are explicitly named signals
(``in_valid``, ``in_kind``, ``out_index``, ``weight_write_addr``, ...; :data:`PORT_NAMES`), so
the names in the Verilog are the documented ones and never tool-generated (``\\weight_write__valid$24``).
:func:`export_core` converts it with ``amaranth.back.verilog.convert`` and, for every memory the
core initialises (the weights and the neuron / readout parameters), replaces the inline
``initial`` block Yosys writes by ``$readmemh("<file>.hex", mem, 0, depth - 1)`` and returns the
file's lines, so that the images are separate, documented and replaceable files. :func:`write_export`
writes the Verilog, the ``.hex`` images, ``memories.json`` and a README (docs/ip_core.md describes
the block). The state memories (sums, neuron and readout state, spike list) keep Yosys' inline
all-zero ``initial`` blocks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from amaranth import Elaboratable, Module, Signal
from amaranth.hdl import Const, Shape

from gesture_snn.spec.files import atomic_write
from hdl.core import STEP_OVERHEAD_CYCLES, InputKind, NeuronCore, OutputKind

__all__ = ["DEFAULT_NAME", "PORT_NAMES", "Port", "ExportedMemory", "ExportedCore", "CoreExport", "export_core",
           "write_export", "header_ports"]

#: Default Verilog module name of the exported core.
DEFAULT_NAME = "gesture_snn_core"

#: Every port the exported module can have, in documentation order; ``weight_write_*`` only with
#: ``weight_loading=True``.
PORT_NAMES = ("clk", "rst", "in_valid", "in_ready", "in_kind", "in_index", "out_valid", "out_ready", "out_kind",
              "out_index", "weight_write_valid", "weight_write_ready", "weight_write_memory", "weight_write_addr",
              "weight_write_data")

#: The memories the core initialises, as (unit, attribute, file stem, what it holds).
_INITIALISED = (
    ("synapses", "weights", "synapse_weights",
     "[w_in | w_rec]: word c * G + g (G = n_rec / lanes), lane l = weight of column c (input c, or recurrent "
     "neuron c - n_in) onto neuron g * lanes + l"),
    ("neurons", "alpha", "alpha", "membrane decay alpha of neuron j at address j"),
    ("neurons", "rho", "rho", "adaptation decay rho of neuron j at address j"),
    ("neurons", "adapt_inc", "adapt_inc", "adaptation increment of neuron j at address j"),
    ("neurons", "threshold_base", "threshold_base", "base threshold of neuron j at address j"),
    ("readout_synapses", "weights", "readout_weights",
     "w_out: word j * H + h (H = ceil(n_out / readout_lanes)), lane l = weight of neuron j onto output "
     "h * readout_lanes + l"),
    ("readout", "alpha_out", "alpha_out", "readout decay alpha_out of output k at address k"),
)


@dataclass(frozen=True)
class Port:
    """One port of the exported module: ``name``, ``direction`` (``input`` / ``output``), ``width`` (bits), ``meaning``."""

    name: str
    direction: str
    width: int
    meaning: str


@dataclass(frozen=True)
class ExportedMemory:
    """A memory initialised from ``file`` by ``$readmemh``: its instance path in the module, depth, width (bits),
    lanes per word, bits per lane, signedness of the lanes, contents and the file's lines."""

    file: str
    path: str
    depth: int
    width: int
    lanes: int
    lane_bits: int
    signed: bool
    contents: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ExportedCore:
    """What :func:`export_core` returns: the module ``name``, its ``verilog``, ``ports``, ``memories`` and the ``core``."""

    name: str
    verilog: str
    ports: tuple[Port, ...]
    memories: tuple[ExportedMemory, ...]
    core: NeuronCore


class CoreExport(Elaboratable):
    """A :class:`~hdl.core.NeuronCore` (instance ``core``) behind explicitly named ports (:data:`PORT_NAMES`).

    The payload fields of the core's streams become ports of their own (``in_kind``,
    ``in_index``, ...); ``clk`` and ``rst`` are the ``sync`` domain's. :attr:`ports` lists the
    signals in documentation order (without ``clk`` / ``rst``, which the conversion adds).
    """

    def __init__(self, core: NeuronCore):
        self.core = core
        inputs, outputs = core.inputs.payload.shape(), core.outputs.payload.shape()
        self.in_valid = Signal(name="in_valid")
        self.in_ready = Signal(name="in_ready")
        width = lambda field: Shape.cast(field.shape).width  # plain signals: enum fields would make views
        self.in_kind = Signal(width(inputs["kind"]), name="in_kind")
        self.in_index = Signal(width(inputs["index"]), name="in_index")
        self.out_valid = Signal(name="out_valid")
        self.out_ready = Signal(name="out_ready")
        self.out_kind = Signal(width(outputs["kind"]), name="out_kind")
        self.out_index = Signal(width(outputs["index"]), name="out_index")
        self.ports = [self.in_valid, self.in_ready, self.in_kind, self.in_index,
                      self.out_valid, self.out_ready, self.out_kind, self.out_index]
        if core.weight_loading:
            layout = core.weight_write.payload.shape()
            self.weight_write_valid = Signal(name="weight_write_valid")
            self.weight_write_ready = Signal(name="weight_write_ready")
            self.weight_write_memory = Signal(width(layout["memory"]), name="weight_write_memory")
            self.weight_write_addr = Signal(width(layout["addr"]), name="weight_write_addr")
            self.weight_write_data = Signal(width(layout["data"]), name="weight_write_data")
            self.ports += [self.weight_write_valid, self.weight_write_ready, self.weight_write_memory,
                           self.weight_write_addr, self.weight_write_data]

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.d.comb += [
            core.inputs.valid.eq(self.in_valid),
            core.inputs.payload.kind.eq(self.in_kind),
            core.inputs.payload.index.eq(self.in_index),
            self.in_ready.eq(core.inputs.ready),
            self.out_valid.eq(core.outputs.valid),
            self.out_kind.eq(core.outputs.payload.kind),
            self.out_index.eq(core.outputs.payload.index),
            core.outputs.ready.eq(self.out_ready),
        ]
        if core.weight_loading:
            m.d.comb += [
                core.weight_write.valid.eq(self.weight_write_valid),
                core.weight_write.payload.memory.eq(self.weight_write_memory),
                core.weight_write.payload.addr.eq(self.weight_write_addr),
                core.weight_write.payload.data.eq(self.weight_write_data),
                self.weight_write_ready.eq(core.weight_write.ready),
            ]
        return m


def _port_table(wrapper: CoreExport) -> tuple[Port, ...]:
    core = wrapper.core
    net = core.network
    kinds_in = ", ".join(f"{kind.value} = {kind.name}" for kind in InputKind)
    kinds_out = ", ".join(f"{kind.value} = {kind.name}" for kind in OutputKind)
    meaning = {
        "in_valid": "an input item is offered",
        "in_ready": "the core takes the offered item at this rising edge (may depend on in_kind / in_index)",
        "in_kind": f"input item kind: {kinds_in}",
        "in_index": f"EVENT: the active input, 0 .. n_in - 1 = {net.n_in - 1} (larger: ignored, 1 cycle)",
        "out_valid": "an output item is offered",
        "out_ready": "the consumer takes the offered item at this rising edge (low: the core stalls)",
        "out_kind": f"output item kind: {kinds_out}",
        "out_index": f"SPIKE: the neuron, 0 .. {net.n_rec - 1}; CLASS: the class, 0 .. {net.n_out - 1}",
        "weight_write_valid": "a weight word is offered",
        "weight_write_ready": "the core writes the offered word at this rising edge (only between samples)",
        "weight_write_memory": "0 = synaptic weights [w_in | w_rec], 1 = readout weights w_out",
        "weight_write_addr": f"word address ({core.weight_depths[0]} synaptic, {core.weight_depths[1]} readout words)",
        "weight_write_data": f"the word ({core.weight_word_bits[0]} bits synaptic, {core.weight_word_bits[1]} bits "
                             "readout; upper bits ignored for the narrower)",
    }
    ports = [Port("clk", "input", 1, "clock of the single `sync` domain; everything happens at its rising edge"),
             Port("rst", "input", 1, "synchronous reset, active high: back to the idle state between samples "
                                     "(memories keep their contents)")]
    inputs = {"in_valid", "in_kind", "in_index", "out_ready", "weight_write_valid", "weight_write_memory",
              "weight_write_addr", "weight_write_data"}
    for signal in wrapper.ports:
        ports.append(Port(signal.name, "input" if signal.name in inputs else "output", len(signal), meaning[signal.name]))
    return tuple(ports)


def _words(memory) -> list[int]:
    """The initial contents of an Amaranth memory as unsigned integers."""
    mask = (1 << Shape.cast(memory.shape).width) - 1
    return [Const.cast(element).value & mask for element in memory.init]


def _memory_table(core: NeuronCore) -> list[tuple[str, str, object, str]]:
    """(instance path, file stem, Amaranth memory, contents) of every memory the core initialises."""
    if core.weight_loading:
        return [(f"core.{unit}.{attribute}", stem, getattr(getattr(core, unit), attribute), contents)
                for unit, attribute, stem, contents in _INITIALISED if attribute != "weights"]
    return [(f"core.{unit}.{attribute}", stem, getattr(getattr(core, unit), attribute), contents)
            for unit, attribute, stem, contents in _INITIALISED]


def _module_spans(verilog: str) -> dict[str, tuple[int, int]]:
    """``{module name: (start, end)}`` of every module of ``verilog`` (escaped names without the backslash)."""
    spans = {}
    for match in re.finditer(r"^module \\?(\S+)\s*\(.*?^endmodule$", verilog, re.MULTILINE | re.DOTALL):
        spans[match[1]] = (match.start(), match.end())
    return spans


def _use_readmemh(verilog: str, name: str, path: str, memory_name: str, file: str, words: list[int]) -> str:
    """Replace the inline ``initial`` block of memory ``memory_name`` in module ``name.<unit path>`` by ``$readmemh``.

    Checks that the inline block holds exactly ``words`` first (RuntimeError otherwise: the
    Verilog backend's output changed shape)."""
    module = f"{name}.{path.rsplit('.', 1)[0]}"
    spans = _module_spans(verilog)
    if module not in spans:
        raise RuntimeError(f"the exported Verilog has no module {module!r}")
    start, end = spans[module]
    text = verilog[start:end]
    escaped = re.escape(memory_name)
    block = re.compile(rf"(?P<declaration>^  reg \[\d+:0\] {escaped} \[(?P<top>\d+):0\];\n)"
                       rf"  initial begin\n(?P<body>(?:    {escaped}\[\d+\] = \d+'[hdb][0-9a-f]+;\n)*)  end\n", re.MULTILINE)
    match = block.search(text)
    if match is None:
        raise RuntimeError(f"no inline initial block for memory {memory_name!r} in module {module!r}")
    bases = {"h": 16, "d": 10, "b": 2}
    inline = {int(a): int(v, bases[base])
              for a, base, v in re.findall(rf"{escaped}\[(\d+)\] = \d+'([hdb])([0-9a-f]+);", match["body"])}
    if [inline.get(address, 0) for address in range(len(words))] != words or int(match["top"]) != len(words) - 1:
        raise RuntimeError(f"the inline contents of memory {memory_name!r} in module {module!r} differ from its image")
    replacement = (f"{match['declaration']}  initial $readmemh(\"{file}\", {memory_name}, 0, {len(words) - 1});\n")
    text = text[:match.start()] + replacement + text[match.end():]
    return verilog[:start] + text + verilog[end:]


def export_core(network, *, lanes: int = 1, readout_lanes: int | None = None, weight_loading: bool = False,
                name: str = DEFAULT_NAME) -> ExportedCore:
    """The Verilog of a :class:`~hdl.core.NeuronCore` of ``network`` as module ``name`` with the ports of
    :class:`CoreExport`, its initialised memories loaded by ``$readmemh`` from ``<stem>.hex`` files (returned
    with their lines). ``weight_loading=True``: the weight memories have no initial contents and are
    written through the ``weight_write_*`` ports."""
    from amaranth.back import verilog

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"module name {name!r} is not a plain Verilog identifier")
    core = NeuronCore(network=network, lanes=lanes, readout_lanes=readout_lanes, weight_loading=weight_loading)
    wrapper = CoreExport(core)
    text = verilog.convert(wrapper, name=name, ports=wrapper.ports, emit_src=False)
    memories = []
    for path, stem, memory, contents in _memory_table(core):
        words = _words(memory)
        file = f"{stem}.hex"
        text = _use_readmemh(text, name, path, path.rsplit(".", 1)[1], file, words)
        width = Shape.cast(memory.shape).width
        element = getattr(memory.shape, "elem_shape", None)
        lane_count = getattr(memory.shape, "length", 1)
        lane_bits = width // lane_count
        digits = max(1, -(-width // 4))
        memories.append(ExportedMemory(
            file=file, path=path, depth=memory.depth, width=width, lanes=lane_count, lane_bits=lane_bits,
            signed=bool(element is not None and element.signed), contents=contents,
            lines=tuple(f"{word:0{digits}x}" for word in words)))
    return ExportedCore(name=name, verilog=text, ports=_port_table(wrapper), memories=tuple(memories), core=core)


def header_ports(verilog: str, name: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` of module ``name`` in ``verilog``, read from its header and declarations."""
    spans = _module_spans(verilog)
    start, end = spans[name]
    text = verilog[start:end]
    header = re.match(rf"module {re.escape(name)}\((?P<ports>[^)]*)\);", text)
    if header is None:
        raise ValueError(f"module {name!r} has no port list")
    ports = {}
    for port in (p.strip() for p in header["ports"].split(",")):
        declaration = re.search(rf"^  (input|output) (?:\[(\d+):0\] )?{re.escape(port)};$", text, re.MULTILINE)
        if declaration is None:
            raise ValueError(f"port {port!r} of module {name!r} has no declaration")
        ports[port] = (declaration[1], int(declaration[2] or 0) + 1)
    return ports


def write_export(exported: ExportedCore, directory: str | Path, *, source: str = "") -> dict[str, Path]:
    """Write ``<name>.v``, the ``.hex`` images, ``memories.json`` and ``README.md`` into ``directory``; return the paths
    by role (``verilog``, ``readme``, ``manifest`` and one per memory file). ``source``: where the network came from
    (for the README)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}

    def write(key, file, text):
        paths[key] = atomic_write(directory / file, lambda f: f.write(text))

    write("verilog", f"{exported.name}.v", exported.verilog)
    for memory in exported.memories:
        write(memory.file, memory.file, "\n".join(memory.lines) + "\n")
    manifest = {
        "module": exported.name,
        "ports": [{"name": p.name, "direction": p.direction, "width": p.width} for p in exported.ports],
        "memories": {m.file: {"instance": m.path, "depth": m.depth, "width": m.width, "lanes": m.lanes,
                              "lane_bits": m.lane_bits, "signed": m.signed, "contents": m.contents}
                     for m in exported.memories},
    }
    write("manifest", "memories.json", json.dumps(manifest, indent=2) + "\n")
    write("readme", "README.md", readme(exported, source=source))
    return paths


def readme(exported: ExportedCore, *, source: str = "") -> str:
    """The README of an export: ports, clock and reset, stream protocol, cycle formula, memory files."""
    core = exported.core
    net, model = core.network, core.cycle_model
    fixed = net.n_rec + net.n_out + STEP_OVERHEAD_CYCLES
    lines = [
        f"# `{exported.name}`: the gesture-snn neuron core",
        "",
        f"One recurrent layer of {net.n_rec} ALIF neurons with {net.n_in} inputs and a leaky readout of "
        f"{net.n_out} outputs (docs/fixed_point.md of gesture-snn, bit for bit), time-multiplexed over "
        f"{core.lanes} synaptic lanes and {core.readout_lanes} readout lanes"
        + (f"; network from `{source}`" if source else "") + ". Generated by `gesture-snn export`; "
        "docs/ip_core.md of the project explains the block in full.",
        "",
        "## Files",
        "",
        f"- `{exported.name}.v`: the module `{exported.name}` and its submodules (`{exported.name}.core...`, "
        "escaped identifiers), Verilog-2001 from Amaranth / Yosys `write_verilog`.",
    ]
    for memory in exported.memories:
        lines.append(f"- `{memory.file}`: `$readmemh` image of `{memory.path}`, {memory.depth} words of "
                     f"{memory.width} bits ({memory.lanes} x {memory.lane_bits}-bit "
                     f"{'signed' if memory.signed else 'unsigned'} lanes, lane 0 in the low bits): {memory.contents}.")
    lines += [
        "- `memories.json`: the same list, machine-readable, with the port list.",
        "",
        "The Verilog initialises these memories with `initial $readmemh(\"FILE\", mem, 0, depth - 1);` by plain "
        "file name: run the simulator or synthesis tool in this directory (or copy the .hex files next to where "
        "it looks; Yosys also looks beside the .v file), or edit the paths. Replacing a .hex file with another "
        "network of the same sizes, widths and lanes changes the weights without new Verilog. "
        + ("The weight memories have no initial contents: write them through `weight_write_*` before the first "
           "sample. " if core.weight_loading else "")
        + "The state memories (accumulators, neuron and readout state, spike list) start at zero from inline "
        "`initial` blocks, which FPGA flows honour; the core needs that start (reset does not clear memories).",
        "",
        "## Ports",
        "",
        "| port | direction | width | meaning |",
        "|---|---|---|---|",
    ]
    for port in exported.ports:
        lines.append(f"| `{port.name}` | {port.direction} | {port.width} | {port.meaning} |")
    lines += [
        "",
        "## Clock and reset",
        "",
        "One clock domain (Amaranth's `sync`): every register and memory write acts on the rising edge of `clk`. "
        "`rst` is synchronous and active high: held high at a rising edge it returns the control state to "
        "idle (the next input item starts a new sample); memories keep their contents. No reset is needed "
        "after configuration on an FPGA (the registers' initial values are the reset values).",
        "",
        "## Stream protocol",
        "",
        "Both streams follow Amaranth's `lib.stream` rules (like AXI-Stream): an item is transferred at a rising "
        "edge where `valid` and `ready` are both high; a source must not make `valid` depend on `ready` and "
        "must hold the item until it is taken. `in_ready` may depend combinationally on `in_kind` / `in_index`.",
        "",
        "- Input, per time step: one `EVENT` item per active input (any order, each input at most once), then "
        "`END_OF_STEP`, or `END_OF_SAMPLE` for the last step of a sample. A step starts with its first input "
        "item; after the marker the core computes the step and takes no input until the step's "
        "`END_OF_STEP` output has been taken.",
        "- Output, per time step: one `SPIKE` item per neuron that spiked (ascending index), then "
        "`END_OF_STEP` (every state of the step is written); after the last step of a sample, `CLASS` with "
        "the argmax of the readout scores. The next step after `CLASS` starts a new sample from the all-zero "
        "state.",
        "",
        "## Cycles per step",
        "",
        "With E = in-range input events of the step, P = spikes of the previous step (0 in a sample's first step) "
        "and S = spikes of this step, inputs always valid and outputs always ready, counted from the cycle the "
        "step's first input item is offered to the cycle its `END_OF_STEP` (or `CLASS`) item is taken:",
        "",
        "    cycles = (E + P) * n_rec / lanes + S * ceil(n_out / readout_lanes) + n_rec + n_out + "
        f"{STEP_OVERHEAD_CYCLES} (+ 1 on a sample's last step)",
        f"           = (E + P) * {model.blocks} + S * {model.readout_blocks} + {fixed} (+ 1)",
        "",
        f"Worst case (every input active, every neuron spiking in both steps): "
        f"{model.worst_case_step_cycles()} cycles. Input gaps, out-of-range events (1 cycle each) and output "
        "stalls add to it.",
        "",
    ]
    return "\n".join(lines)
