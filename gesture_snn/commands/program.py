"""``gesture-snn program``: put a built bitstream on its board."""

from __future__ import annotations

HELP = "program a board with the run's built bitstream (the board's programmer from amaranth-boards)"

DESCRIPTION = (
    "Program the bitstream of RUN/build/NAME (from `gesture-snn build --board NAME` or --target) "
    "onto the board with the programmer amaranth-boards names for it: iceprog on the iCEBreaker, "
    "openFPGALoader on the ULX3S and ECPIX-5, icesprog on the iCESugar boards, openocd on the "
    "Lattice evaluation boards (the tool's environment variable, e.g. ICEPROG or OPENFPGALOADER, "
    "picks another binary). A missing tool is named with the Debian package that provides it "
    "(fpga-icestorm, openfpgaloader). --dry-run prints the command only. See docs/boards.md."
)


def add_arguments(parser) -> None:
    from hdl.targets import TARGETS

    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory with build/NAME/")
    device = parser.add_mutually_exclusive_group(required=True)
    device.add_argument("--board", metavar="NAME", default=None, help="the board it was built for (--board)")
    device.add_argument("--target", choices=tuple(TARGETS), default=None, help="the bare device it was built for")
    parser.add_argument("--dry-run", action="store_true", help="print the programmer's command line, run nothing")


def run(args) -> int:
    from gesture_snn.stages import ProgramOptions, program

    result = program(ProgramOptions(run=args.run, board=args.board, target=args.target, dry_run=args.dry_run))
    for line in result.lines():
        print(line)
    return 0
