"""The ``build`` stage: the run's integer network -> board top -> bitstream, with its fit and speed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.stages._common import StageResult, Log, as_paths, check_target, resolve_hardware

__all__ = ["BUILD_SPACE_BYTES", "BuildOptions", "BuildResult", "build"]

#: Free space a build needs in RUN/build/TARGET (netlists, logs, bitstream; about 20 MB on ECP5 85k), checked first.
BUILD_SPACE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """What :func:`build` does: ``run`` (with ``integer/`` and ``config.json``), ``target`` (a
    name of :data:`hdl.targets.TARGETS`), ``lanes`` / ``readout_lanes`` (None: the target's
    defaults) and the nextpnr placement ``seed`` (same seed, same bitstream)."""

    run: Path
    target: str
    lanes: int | None = None
    readout_lanes: int | None = None
    seed: int = 1

    def __post_init__(self):
        as_paths(self, "run")
        if self.seed < 0:
            raise UserError(f"--seed must be a non-negative integer, not {self.seed}")
        check_target(self.target)


@dataclass(frozen=True)
class BuildResult(StageResult):
    """The report's ``build.TARGET`` entry (resources, Fmax, cycles, real-time factor, bitstream)."""

    target: object  # hdl.targets.Target
    bin_ms: float

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
            f"bitstream: {self.bitstream}",
        ]


def build(options: BuildOptions, *, log: Log = print) -> BuildResult:
    """Elaborate, synthesise, place and route the board top of the run's integer network
    (:func:`hdl.build.build`) into ``RUN/build/TARGET`` and write ``build.TARGET`` of the report.
    The run is opened with the same checks as every stage (:meth:`gesture_snn.rundir.IntegerRun.load`:
    a readable report, the frames' inputs = the network's n_in, binary frames, checksums)."""
    from gesture_snn.rundir import IntegerRun, Section, build_dir, read_report, update_report
    from gesture_snn.spec.files import check_free_space, write_error
    from hdl.build import build as build_bitstream
    from hdl.build import report_section

    run = IntegerRun.load(options.run)
    run_dir, network, frames = run.run_dir, run.network, run.config.frames
    hardware = resolve_hardware(network, options.target, lanes=options.lanes, readout_lanes=options.readout_lanes)
    target = hardware.target
    out_dir = build_dir(run_dir, target.name)
    check_free_space(out_dir, BUILD_SPACE_BYTES, hint="a build writes its netlists, logs and bitstream there")
    try:
        result = build_bitstream(network, target, out_dir, lanes=hardware.lanes, readout_lanes=hardware.readout_lanes,
                                 seed=options.seed, progress=log)
    except OSError as exc:  # a full disk or a read-only run directory: one message, the outputs are redone next time
        error = write_error(getattr(exc, "filename", None) or out_dir, exc, needed=BUILD_SPACE_BYTES)
        if error is exc:
            raise
        raise error from None
    report = read_report(run_dir)
    section = report_section(result, network, run_dir=run_dir, bin_ms=frames.bin_ms, steps=frames.n_steps,
                             measured=report.get(Section.SIMULATE))
    builds = dict(report.get(Section.BUILD) or {})
    builds[target.name] = section
    update_report(run_dir, Section.BUILD, builds)
    return BuildResult(run=run_dir, target=target, section=section, bin_ms=frames.bin_ms)
