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

    from gesture_snn.config import RunConfig
    from gesture_snn.errors import UserError
    from gesture_snn.intnet import IntegerNetwork
    from gesture_snn.rundir import read_report, update_report
    from hdl.build import build, report_section
    from hdl.core import CycleModel
    from hdl.targets import target as target_named

    run_dir = Path(args.run)
    network = IntegerNetwork.load(run_dir / "integer")
    frames = RunConfig.load(run_dir / "config.json").frames
    target = target_named(args.target)
    lanes = target.default_lanes(network.n_rec) if args.lanes is None else args.lanes
    readout_lanes = (target.default_readout_lanes(lanes, network.n_out) if args.readout_lanes is None
                     else args.readout_lanes)
    try:
        CycleModel(n_in=network.n_in, n_rec=network.n_rec, n_out=network.n_out, lanes=lanes,
                   readout_lanes=readout_lanes)
    except ValueError as exc:
        raise UserError(f"--lanes / --readout-lanes: {exc}") from None
    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, not {args.seed}")

    result = build(network, target, run_dir / "build" / target.name, lanes=lanes, readout_lanes=readout_lanes,
                   seed=args.seed, progress=lambda line: print(line, flush=True))
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
