"""The ``build`` stage: the run's integer network -> board top -> bitstream, with its fit and speed;
``list_boards`` (the boards and the fit of the run's network on each) and ``program`` (a built
bitstream onto its board)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.stages._common import StageResult, Log, as_paths, check_number, check_target, resolve_hardware

__all__ = ["BUILD_SPACE_BYTES", "BuildOptions", "BuildResult", "build", "ListBoardsOptions", "ListBoardsResult",
           "list_boards", "ProgramOptions", "ProgramResult", "program"]

#: Free space a build needs in RUN/build/TARGET (netlists, logs, bitstream; about 20 MB on ECP5 85k), checked first.
BUILD_SPACE_BYTES = 64 * 1024 * 1024


def _check_one_device(target, board) -> None:
    if (target is None) == (board is None):
        raise UserError("give one of --target (a bare device: ice40-up5k, ecp5-25k, ecp5-85k) and --board "
                        "(an amaranth-boards board: gesture-snn build --list-boards)")
    if board is not None:
        from hdl.boards import board as board_named

        try:
            board_named(board)
        except ValueError as exc:
            raise UserError(f"--board: {exc}") from None
    check_target(target)


def _device(target: str | None, board: str | None):
    """``(key, Target, Board)`` of a --target or --board: the key names RUN/build/KEY and build.KEY."""
    from hdl import boards, targets

    if board is not None:
        found = boards.board(board)
        return found.name, found.target, found
    spec = targets.target(target)
    return spec.name, spec, boards.board_for_target(spec)


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """What :func:`build` does: ``run`` (with ``integer/`` and ``config.json``), either ``target``
    (a bare device of :data:`hdl.targets.TARGETS`, built on its board, :attr:`hdl.targets.Target.board`)
    or ``board`` (a name of :func:`hdl.boards.boards`), ``lanes`` / ``readout_lanes`` (None: the
    device's defaults), the nextpnr placement ``seed`` (same seed, same bitstream), the UART
    ``baud`` (None: 115200 for a --target, the board's fastest reliable rate for a --board,
    :meth:`hdl.boards.Board.default_baud`) and ``program`` (program the board afterwards)."""

    run: Path
    target: str | None = None
    board: str | None = None
    lanes: int | None = None
    readout_lanes: int | None = None
    seed: int = 1
    baud: int | None = None
    program: bool = False

    def __post_init__(self):
        as_paths(self, "run")
        if self.seed < 0:
            raise UserError(f"--seed must be a non-negative integer, not {self.seed}")
        check_number("baud", self.baud, positive=True)
        _check_one_device(self.target, self.board)


@dataclass(frozen=True)
class BuildResult(StageResult):
    """The report's ``build.TARGET`` entry (resources, Fmax, cycles, real-time factor, bitstream)."""

    target: object  # hdl.targets.Target
    bin_ms: float
    programmed: tuple = ()  # the programmer's command line, if --program

    @property
    def timing_met(self) -> bool:
        return bool(self.section["timing_met"])

    @property
    def bitstream(self) -> Path:
        return self.run / self.section["bitstream"]

    def lines(self) -> list[str]:
        section, target = self.section, self.target

        def used(name):
            entry = section.get(name)
            return "-" if entry is None else f"{entry['used']}/{entry['available']}"

        return [
            f"{target.name} ({target.part}): LUT {used('luts')}, FF {used('flip_flops')}, "
            f"block RAM {used('block_ram')}" + (f", SPRAM {used('spram')}" if target.spram else "")
            + f", DSP {used('dsp')}, I/O {used('io')}",
            f"Fmax {section['fmax_mhz']} MHz at a {target.clock_mhz:g} MHz clock ({section['fmax_margin']}x): "
            f"timing {'met' if section['timing_met'] else 'NOT met'}; worst-case step "
            f"{section['cycles_per_step_worst_case']} cycles = {section['step_time_us_worst_case']} us, "
            f"{section['realtime_factor']}x real time at {self.bin_ms:g} ms bins",
            f"UART {section.get('baud')} baud (divisor {section.get('uart_divisor')}, "
            f"{100 * (section.get('baud_error') or 0):+.2f} %); bitstream: {self.bitstream}",
            *([_link_line(section["link"])] if section.get("link") else []),
            *([f"programmed: {' '.join(self.programmed)}"] if self.programmed else []),
        ]


def _link_section(run, baud: int, *, core_step_s: float, log: Log) -> dict | None:
    """The build entry's ``link``: :func:`gesture_snn.spec.link.link_budget` of the run's test split
    at ``baud``, the replies counted with the golden model's spikes of each step (None, with a
    note, if the test split cannot be framed here)."""
    from gesture_snn.golden import run_golden
    from gesture_snn.spec.link import link_budget

    try:
        inputs, _ = run.test_inputs()
    except (UserError, OSError) as exc:
        log(f"note: no end-to-end real-time factor (the test split cannot be framed: {exc})")
        return None
    spikes = run_golden(run.network, inputs).z
    return link_budget(list(inputs), n_in=run.network.n_in, baud=baud, bin_s=run.config.frames.bin_ms / 1e3,
                       core_step_s=core_step_s, spikes_per_recording=list(spikes))


def _link_line(budget: dict) -> str:
    best = budget["encodings"]["best"]
    return (f"link at {budget['baud']} baud: {budget['events_per_step_mean']:g} input events per step (busiest "
            f"recording {budget['events_per_step_busiest_recording']:g}); {best['bytes_per_s_mean']:g} of "
            f"{budget['link_bytes_per_s']:g} bytes/s; end to end {best['end_to_end_realtime_factor_mean']}x real "
            f"time (slowest recording {best['end_to_end_realtime_factor_worst']}x)")


def build(options: BuildOptions, *, log: Log = print) -> BuildResult:
    """Elaborate, synthesise, place and route the board top of the run's integer network
    (:func:`hdl.build.build`) into ``RUN/build/TARGET`` and write ``build.TARGET`` of the report.
    The run is opened with the same checks as every stage (:meth:`gesture_snn.rundir.IntegerRun.load`:
    a readable report, the frames' inputs = the network's n_in, binary frames, checksums)."""
    from gesture_snn.rundir import IntegerRun, Section, build_dir, read_report, update_report
    from gesture_snn.spec.files import check_free_space, write_errors
    from gesture_snn.spec.protocol import DEFAULT_BAUD
    from hdl.build import build as build_bitstream
    from hdl.build import report_section
    from hdl.program import programmer_command
    from hdl.uart import uart_divisor

    run = IntegerRun.load(options.run)
    run_dir, network, frames = run.run_dir, run.network, run.config.frames
    key, target, board = _device(options.target, options.board)
    hardware = resolve_hardware(network, target, lanes=options.lanes, readout_lanes=options.readout_lanes)
    baud = options.baud
    if baud is None:
        baud = board.default_baud() if options.board is not None else DEFAULT_BAUD
    try:
        uart_divisor(clock_hz=target.clock_hz, baud=baud)
    except ValueError as exc:
        raise UserError(f"--baud: {exc}") from None
    out_dir = build_dir(run_dir, key)
    check_free_space(out_dir, BUILD_SPACE_BYTES, hint="a build writes its netlists, logs and bitstream there")
    # a full disk or a read-only run directory: one message, the outputs are redone next time
    with write_errors(out_dir, needed=BUILD_SPACE_BYTES):
        result = build_bitstream(network, target, out_dir, lanes=hardware.lanes, readout_lanes=hardware.readout_lanes,
                                 seed=options.seed, board=board, baud=baud, bitstream_name=key, progress=log)
    report = read_report(run_dir)
    section = report_section(result, network, run_dir=run_dir, bin_ms=frames.bin_ms, steps=frames.n_steps,
                             measured=report.get(Section.SIMULATE))
    section["link"] = _link_section(run, baud, core_step_s=section["step_time_us_worst_case"] / 1e6, log=log)
    builds = dict(report.get(Section.BUILD) or {})
    builds[key] = section
    update_report(run_dir, Section.BUILD, builds)
    programmed = ()
    if options.program:
        from hdl.program import program as program_board

        log(f"program {board.name}: {' '.join(programmer_command(board, out_dir))}")
        programmed = tuple(program_board(board, out_dir))
    return BuildResult(run=run_dir, target=target, section=section, bin_ms=frames.bin_ms, programmed=programmed)


# --------------------------------------------------------------------------------------------
# Boards


@dataclass(frozen=True, kw_only=True)
class ListBoardsOptions:
    """What :func:`list_boards` lists: every board; with ``run``, the fit of its integer network on each."""

    run: Path | None = None

    def __post_init__(self):
        as_paths(self, "run")


@dataclass(frozen=True)
class ListBoardsResult:
    """``rows``: one dict per board (name, fpga, clock_mhz, bridge, baud, fit)."""

    rows: tuple

    def lines(self) -> list[str]:
        header = ("board", "FPGA", "clock", "USB-UART bridge", "default baud", "fit")
        table = [header] + [(row["board"], row["fpga"], f"{row['clock_mhz']:g} MHz", row["bridge"], str(row["baud"]),
                             row["fit"]) for row in self.rows]
        widths = [max(len(line[k]) for line in table) for k in range(len(header) - 1)]
        return ["  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths)) + "  " + line[-1]
                for line in table]


def _fit(network, target, cache: dict) -> str:
    """The fit estimate (:func:`hdl.build.check_estimate`) of ``network``'s core on ``target``, with its default lanes."""
    from amaranth.back import rtlil

    from hdl.build import FitError, check_estimate, estimate_resources
    from hdl.core import NeuronCore

    try:
        hardware = resolve_hardware(network, target)
    except UserError as exc:
        return f"no: {exc}"
    key = (hardware.lanes, hardware.readout_lanes, target.weight_loading)
    if key not in cache:
        core = NeuronCore(network=network, lanes=hardware.lanes, readout_lanes=hardware.readout_lanes,
                          weight_loading=target.weight_loading)
        cache[key] = rtlil.convert(core, name="top", emit_src=False)
    try:
        warnings = check_estimate(estimate_resources(cache[key], target, io=0))
    except FitError as exc:
        return "no: " + str(exc).split(": ", 1)[-1].split(". Use")[0]
    lanes = f"{hardware.lanes} lanes, {hardware.readout_lanes} readout lanes"
    return f"may not fit ({lanes}): {warnings[0]}" if warnings else f"yes ({lanes})"


def list_boards(options: ListBoardsOptions, *, log: Log = print) -> ListBoardsResult:
    """The boards of :func:`hdl.boards.boards`: FPGA, clock, bridge, default baud and (with a run) the
    fit estimate of its network's core with the board's default lanes."""
    from hdl.boards import boards

    network = None
    if options.run is not None:
        from gesture_snn.rundir import IntegerRun

        network = IntegerRun.load(options.run).network
    cache: dict = {}
    rows = []
    for board in boards().values():
        target = board.target
        rows.append({"board": board.name, "fpga": target.part, "clock_mhz": board.clock_mhz,
                     "bridge": board.bridge.chip, "baud": board.default_baud(),
                     "fit": "-" if network is None else _fit(network, target, cache)})
    return ListBoardsResult(rows=tuple(rows))


@dataclass(frozen=True, kw_only=True)
class ProgramOptions:
    """What :func:`program` does: put the bitstream of ``RUN/build/KEY`` (KEY: ``board`` or ``target``)
    on its board with the board's programmer (amaranth-boards' ``toolchain_program``);
    ``dry_run``: only say the command."""

    run: Path
    target: str | None = None
    board: str | None = None
    dry_run: bool = False

    def __post_init__(self):
        as_paths(self, "run")
        _check_one_device(self.target, self.board)


@dataclass(frozen=True)
class ProgramResult:
    """``command``: the programmer's command line; ``ran``: whether it ran."""

    command: tuple
    ran: bool

    def lines(self) -> list[str]:
        return [("programmed: " if self.ran else "would run: ") + " ".join(self.command)]


def program(options: ProgramOptions, *, log: Log = print) -> ProgramResult:
    """Program the board with the run's built bitstream (:func:`hdl.program.program`); UserError if
    it was not built or the programmer is missing (naming the package that provides it)."""
    from gesture_snn.rundir import build_dir
    from hdl.program import program as program_board
    from hdl.program import programmer_command

    key, _, board = _device(options.target, options.board)
    out_dir = build_dir(options.run, key)
    command = programmer_command(board, out_dir)
    if options.dry_run:
        return ProgramResult(command=tuple(command), ran=False)
    return ProgramResult(command=tuple(program_board(board, out_dir)), ran=True)
