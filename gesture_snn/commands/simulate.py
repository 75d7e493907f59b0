"""``gesture-snn simulate``: run test samples through the gateware simulation and compare with the golden model."""

from __future__ import annotations

HELP = "simulate the neuron-array gateware on test samples, bit for bit against the golden model"

DESCRIPTION = (
    "Load RUN/integer (the integer network) and the first K test samples of the run's data "
    "(framed with the run's frame settings, binary mode), run them through the Amaranth "
    "simulation of the neuron core and through the golden model, and compare every spike and "
    "every state (a, v, z, the output spike stream, o, s) at every step, and the class. On the "
    "first mismatch it stops, prints sample, step, neuron or output, variable, expected and "
    "actual value, and exits with status 1. Writes the 'simulate' section of RUN/report.json "
    "(backend, samples, steps, mismatches, cycles per step). The Python simulator (--backend "
    "amaranth) runs about 10^4 cycles per second: a 512 -> 128 -> 11 network at 8 lanes takes "
    "tens of seconds per sample. --backend cxxrtl compiles the same gateware with Yosys "
    "write_cxxrtl and g++ (cached in RUN/build/cxxrtl/, rebuilt when the network changes) and "
    "runs about 10^7 cycles per second, fast enough for --samples all. See docs/hardware.md and "
    "docs/benchmarks.md."
)

def add_arguments(parser) -> None:
    from gesture_snn.commands._options import add_cache_dir
    from gesture_snn.spec.memory import DEFAULT_MAX_LANES
    from gesture_snn.stages.simulation import BACKENDS

    add_cache_dir(parser)
    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory with integer/ and config.json")
    parser.add_argument("--samples", type=sample_count, default=4, metavar="K|all",
                        help="number of test samples (the first K), or all of them")
    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the run config's)")
    parser.add_argument("--lanes", type=int, default=None,
                        help=f"parallel synaptic lanes, a divisor of n_rec (default: the largest divisor up to {DEFAULT_MAX_LANES})")
    parser.add_argument("--readout-lanes", type=int, default=None,
                        help="parallel readout lanes, 1 .. n_out (default: min(lanes, n_out); 1 is the smallest design)")
    parser.add_argument("--target", default=None,
                        help="simulate the lanes that `gesture-snn build --target TARGET` uses (ice40-up5k: 8 and 1), "
                             "so that build reports these measured cycles")
    parser.add_argument("--backend", choices=BACKENDS, default="amaranth",
                        help="simulator: amaranth (Python) or cxxrtl (compiled; needs g++)")
    parser.add_argument("--vcd", metavar="FILE", default=None,
                        help="write a waveform of the whole simulation (large; with --backend cxxrtl in seconds per sample)")
    parser.add_argument("--whole-recording", action="store_true",
                        help="simulate each whole test recording (every bin from its first event to its last) "
                        "instead of the run's window, with the same per-step comparison; use --backend cxxrtl")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def sample_count(text: str) -> int | None:
    """``--samples``: a positive integer, or ``all`` (None)."""
    import argparse

    if text == "all":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of samples or 'all', got {text!r}")
    return count


def run(args) -> int:
    from gesture_snn.stages import SimulateOptions, simulate

    options = SimulateOptions(run=args.run, samples=args.samples, data=args.data, lanes=args.lanes,
                              readout_lanes=args.readout_lanes, target=args.target, backend=args.backend, vcd=args.vcd,
                              whole_recording=args.whole_recording, cache_dir=args.cache_dir, progress=args.progress)
    result = simulate(options, log=lambda line: print(line, flush=True))
    for line in result.lines():
        print(line)
    return 0 if result.ok else 1
