"""``gesture-snn build``: integer network -> board top -> bitstream, with resources, timing and real-time factor."""

from __future__ import annotations

HELP = "build an FPGA bitstream of the run's integer network (Yosys + nextpnr from PyPI) and report its fit and speed"

DESCRIPTION = (
    "Load RUN/integer, elaborate the board top for the target (hdl/boards.py: the neuron core "
    "behind a UART), write it as RTLIL and Verilog, estimate its memories and multipliers and "
    "refuse a design that cannot fit, synthesise it with Yosys, refuse a netlist larger than the "
    "device, place and route it with nextpnr (fixed seed, the board clock as constraint) and pack "
    "the bitstream, all with the YoWASP tools (the first call of each compiles it: about a minute). "
    "Files go to RUN/build/TARGET/; RUN/report.json gets build.TARGET: LUTs, flip-flops, block "
    "RAM, SPRAM, DSP (used and available), Fmax against the clock, cycles per time step (worst "
    "case, and measured if `simulate` ran with the same lanes), the real-time factor at the run's "
    "bin width, latency per gesture and the bitstream path. Exits with status 1 if timing is not "
    "met. See docs/hardware.md, 'Building bitstreams'."
)


#: Free space a build needs in RUN/build/TARGET (netlists, logs, bitstream; about 20 MB on ECP5 85k), checked first.
BUILD_SPACE_BYTES = 64 * 1024 * 1024


def add_arguments(parser) -> None:
    from hdl.targets import TARGETS

    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory with integer/ and config.json")
    parser.add_argument("--target", required=True, choices=tuple(TARGETS),
                        help="ice40-up5k: iCEBreaker, 12 MHz, weights in SPRAM loaded over the UART; "
                             "ecp5-25k / ecp5-85k: ULX3S, 25 MHz, weights in the bitstream")
    parser.add_argument("--lanes", type=int, default=None,
                        help="parallel synaptic lanes, a divisor of n_rec (default: the largest divisor up to "
                             "8 on ice40-up5k, 16 on ecp5-25k, 32 on ecp5-85k)")
    parser.add_argument("--readout-lanes", type=int, default=None,
                        help="parallel readout lanes, 1 .. n_out (default: 1 on ice40-up5k, min(lanes, n_out) on ECP5)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (same seed, same bitstream)")


def run(args) -> int:
    from pathlib import Path

    from gesture_snn.errors import UserError
    from gesture_snn.rundir import read_report, update_report, write_error
    from gesture_snn.runs import IntegerRun
    from hdl.build import build, report_section

    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, not {args.seed}")
    run = IntegerRun.load(args.run)  # the same checks as simulate and stream: n_in = the frames' inputs, digests
    run_dir, network, frames = run.run_dir, run.network, run.config.frames
    hardware = run.hardware(args.target, lanes=args.lanes, readout_lanes=args.readout_lanes)
    target, lanes, readout_lanes = hardware.target, hardware.lanes, hardware.readout_lanes
    out_dir = run_dir / "build" / target.name
    from gesture_snn.rundir import check_free_space

    check_free_space(out_dir, BUILD_SPACE_BYTES, hint="a build writes its netlists, logs and bitstream there")
    try:
        result = build(network, target, out_dir, lanes=lanes, readout_lanes=readout_lanes,
                       seed=args.seed, progress=lambda line: print(line, flush=True))
    except OSError as exc:  # a full disk or a read-only run directory: one message, the outputs are redone next time
        error = write_error(getattr(exc, "filename", None) or out_dir, exc, needed=BUILD_SPACE_BYTES)
        if error is exc:
            raise
        raise error from None
    report = read_report(run_dir)
    section = report_section(result, network, run_dir=run_dir, bin_ms=frames.bin_ms, steps=frames.n_steps,
                             measured=report.get("simulate"))
    builds = dict(report.get("build") or {})
    builds[target.name] = section
    update_report(run_dir, "build", builds)

    def used(name):
        entry = section.get(name)
        return "-" if entry is None else f"{entry['used']}/{entry['available']}"

    print(f"{target.name} ({target.part}): LUT {used('luts')}, FF {used('flip_flops')}, "
          f"block RAM {used('block_ram')}" + (f", SPRAM {used('spram')}" if target.spram else "")
          + f", DSP {used('dsp')}, I/O {used('io')}")
    print(f"Fmax {section['fmax_mhz']} MHz at a {target.clock_mhz:g} MHz clock ({section['fmax_margin']}x): "
          f"timing {'met' if section['timing_met'] else 'NOT met'}; worst-case step "
          f"{section['cycles_per_step_worst_case']} cycles = {section['step_time_us_worst_case']} us, "
          f"{section['realtime_factor']}x real time at {frames.bin_ms:g} ms bins")
    print(f"bitstream: {run_dir / section['bitstream']}")
    return 0 if section["timing_met"] else 1
