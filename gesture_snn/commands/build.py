"""``gesture-snn build``: integer network -> board top -> bitstream, with resources, timing and real-time factor."""

from __future__ import annotations

HELP = ("build an FPGA bitstream of the run's integer network for an amaranth-boards board (Amaranth's build "
        "system, Yosys + nextpnr from PyPI) and report its fit and speed")

DESCRIPTION = (
    "Load RUN/integer and put the neuron core behind a UART on the board's Amaranth platform "
    "(amaranth-boards: its uart, LEDs, clock and power-on reset; hdl/boards.py). --board NAME "
    "builds for any amaranth-boards board with an iCE40 UP5K or an ECP5 and a UART (--list-boards "
    "lists them, with the fit of the run's network); --target ice40-up5k / ecp5-25k / ecp5-85k "
    "builds the bare device on the iCEBreaker / ULX3S as before. The RTLIL's memories and "
    "multipliers are estimated and a design that cannot fit is refused before any tool runs; then "
    "Amaranth's build script runs Yosys, nextpnr (fixed seed, JSON report) and icepack / ecppack: "
    "the YoWASP tools unless the Amaranth tool variables YOSYS, NEXTPNR_ICE40, ICEPACK, "
    "NEXTPNR_ECP5, ECPPACK name others (a system toolchain). Files go to RUN/build/NAME/; "
    "RUN/report.json gets build.NAME: LUTs, flip-flops, block RAM, SPRAM, DSP (used and "
    "available), Fmax against the clock, the UART baud rate and its divisor error, cycles per time "
    "step (worst case, and measured if `simulate` ran with the same lanes), the real-time factor "
    "at the run's bin width, latency per gesture and the bitstream path. --program then programs "
    "the board (its amaranth-boards programmer: iceprog, openFPGALoader, ...). Exits with status 1 "
    "if timing is not met. See docs/hardware.md, 'Building bitstreams', and docs/boards.md."
)


def add_arguments(parser) -> None:
    from hdl.targets import TARGETS

    parser.add_argument("--run", metavar="RUNDIR", default=None,
                        help="run directory with integer/ and config.json (required to build)")
    device = parser.add_mutually_exclusive_group()
    device.add_argument("--board", metavar="NAME", default=None,
                        help="an amaranth-boards board (e.g. icebreaker, ulx3s-85f, ecpix5-85f; see --list-boards)")
    device.add_argument("--target", choices=tuple(TARGETS), default=None,
                        help="a bare device: ice40-up5k (iCEBreaker, 12 MHz, weights in SPRAM loaded over the UART), "
                             "ecp5-25k / ecp5-85k (ULX3S, 25 MHz, weights in the bitstream); 115200 baud")
    device.add_argument("--list-boards", action="store_true",
                        help="list the boards (FPGA, clock, USB-UART bridge, default baud; with --run the fit of "
                             "the run's network) and exit")
    parser.add_argument("--lanes", type=int, default=None,
                        help="parallel synaptic lanes, a divisor of n_rec (default: the largest divisor up to "
                             "8 on an iCE40 UP5K, 16 on an ECP5 12F/25F, 32 on a 45F/85F)")
    parser.add_argument("--readout-lanes", type=int, default=None,
                        help="parallel readout lanes, 1 .. n_out (default: 1 on the UP5K, min(lanes, n_out) on ECP5)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (same seed, same bitstream)")
    parser.add_argument("--baud", type=int, default=None,
                        help="UART baud rate (default: 115200 for --target; for --board the fastest standard "
                             "rate the board's USB-UART bridge carries that its clock makes within 2 %%)")
    parser.add_argument("--program", action="store_true",
                        help="program the board after the build (amaranth-boards' programmer for the board)")


def run(args) -> int:
    from gesture_snn.spec.errors import UserError
    from gesture_snn.stages import BuildOptions, ListBoardsOptions, build, list_boards

    if args.list_boards:
        for line in list_boards(ListBoardsOptions(run=args.run)).lines():
            print(line)
        return 0
    if args.run is None:
        raise UserError("--run is required to build (only --list-boards goes without it)")
    options = BuildOptions(run=args.run, target=args.target, board=args.board, lanes=args.lanes,
                           readout_lanes=args.readout_lanes, seed=args.seed, baud=args.baud, program=args.program)
    result = build(options, log=lambda line: print(line, flush=True))
    for line in result.lines():
        print(line)
    return 0 if result.timing_met else 1
