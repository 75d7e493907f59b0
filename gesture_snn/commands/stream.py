"""``gesture-snn stream``: run test samples on a board over its serial port and compare with the golden model."""

from __future__ import annotations

HELP = "stream test samples to a board over UART and check its spikes and classes against the golden model"

DESCRIPTION = (
    "Open the board's serial port, bring the board to a known state and identify its bitstream "
    "(which must have been built from RUN/integer: sizes and a fingerprint of every parameter are "
    "checked), send the weights if the bitstream loads them at run time (the iCE40 UP5K build), "
    "then stream the input events of each chosen test sample step by step, framed with the run's "
    "frame settings, and read back the spikes of every step and the class. Prints them, compares "
    "them with the golden model (exit status 1 on any difference) and writes the 'stream' section "
    "of RUN/report.json. The byte protocol and the boards are described in docs/boards.md."
)


def add_arguments(parser) -> None:
    from gesture_snn.commands._options import add_cache_dir

    add_cache_dir(parser)
    from gesture_snn.spec.protocol import DEFAULT_BAUD

    parser.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB1 or COM5")
    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory with integer/ and config.json")
    parser.add_argument("--sample", type=int, nargs="+", required=True, metavar="K",
                        help="index (or indices) of the test sample(s) to stream")
    parser.add_argument("--baud", type=int, default=None,
                        help="baud rate the bitstream was built with (default: the run's build report's, "
                             f"else {DEFAULT_BAUD})")
    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the run config's)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="longest silence from the board while a reply is due")
    parser.add_argument("--no-load", dest="load", action="store_false",
                        help="do not send the weights (a board that already holds this run's weights)")
    parser.add_argument("--quiet", action="store_true", help="print one line per sample instead of every step's spikes")


def run(args) -> int:
    from gesture_snn.stages import StreamOptions, stream

    options = StreamOptions(port=args.port, run=args.run, samples=tuple(args.sample), baud=args.baud, data=args.data,
                            timeout=args.timeout, load=args.load, quiet=args.quiet, cache_dir=args.cache_dir)
    return 0 if stream(options).ok else 1
