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
    from gesture_snn.stages import BuildOptions, build

    options = BuildOptions(run=args.run, target=args.target, lanes=args.lanes, readout_lanes=args.readout_lanes,
                           seed=args.seed)
    result = build(options, log=lambda line: print(line, flush=True))
    for line in result.lines():
        print(line)
    return 0 if result.timing_met else 1
