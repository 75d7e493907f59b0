"""``gesture-snn simulate``: run test samples through the gateware simulation and compare with the golden model."""

from __future__ import annotations

from gesture_snn.commands._options import with_cache_dir

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

BACKENDS = ("amaranth", "cxxrtl")
#: Default lane count: the largest divisor of n_rec up to this.
DEFAULT_MAX_LANES = 8


def add_arguments(parser) -> None:
    from gesture_snn.commands._options import add_cache_dir

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
                        help="write a waveform of the whole simulation (large; amaranth backend only)")
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


@with_cache_dir
def run(args) -> int:
    import time

    import numpy as np

    from tqdm import tqdm

    from gesture_snn.errors import UserError
    from gesture_snn.rundir import update_report
    from gesture_snn.runs import IntegerRun
    from hdl.sim import check_against_golden

    if args.vcd is not None and args.backend != "amaranth":
        raise UserError("--vcd needs --backend amaranth (the compiled simulation writes no waveform)")
    if args.target is not None:  # the flags first, before the run is read
        from hdl.targets import target

        try:
            target(args.target)
        except ValueError as exc:
            raise UserError(f"--target: {exc}") from None
    run = IntegerRun.load(args.run)
    run_dir, network = run.run_dir, run.network
    hardware = run.hardware(args.target, lanes=args.lanes, readout_lanes=args.readout_lanes, max_lanes=DEFAULT_MAX_LANES)
    lanes, readout_lanes, cycle_model = hardware.lanes, hardware.readout_lanes, hardware.cycle_model

    if args.whole_recording:
        from gesture_snn.streaming import load_whole_recordings

        whole = load_whole_recordings(args.data or run.config.data, run.config.frames, limit=args.samples,
                                      progress=args.progress)
        if len(whole) == 0:
            raise UserError(f"the test split of {args.data or run.config.data} has no samples")
        samples, labels = [f[None] for f in whole.frames], whole.labels
    else:
        inputs, labels = run.test_inputs(data=args.data, progress=args.progress)
        if len(labels) == 0:
            raise UserError(f"the test split of {args.data or run.config.data} has no samples")
        samples = [inputs[:len(labels) if args.samples is None else min(args.samples, len(labels))]]
    count = sum(len(x) for x in samples)

    build = {}
    if args.backend == "cxxrtl":
        from hdl.cxxrtl import CxxrtlSimulator

        if args.progress:
            print("building the compiled simulation (Yosys write_cxxrtl, g++; cached in "
                  f"{run_dir / 'build' / 'cxxrtl'})", flush=True)
        simulator = CxxrtlSimulator(network, lanes=lanes, readout_lanes=readout_lanes,
                                    cache_dir=run_dir / "build" / "cxxrtl")
        build = {"build_seconds": round(simulator.build_seconds, 3), "build_cached": simulator.cached}

    bar = tqdm(total=count, unit="sample", desc="simulate", disable=not args.progress)

    def on_sample(index, trace, mismatch):
        bar.update(1)
        bar.set_postfix(cycles_per_step=f"{trace.cycles.mean():.0f}", status="MISMATCH" if mismatch else "ok")

    started = time.perf_counter()
    traces, mismatch, done = [], None, 0
    for x in samples:  # one batch of windows, or one whole recording at a time (their lengths differ)
        if args.backend == "cxxrtl":
            result = simulator.check_against_golden(x, on_sample=lambda index: bar.update(1))
        else:
            result = check_against_golden(network, x, lanes=lanes, readout_lanes=readout_lanes, vcd_path=args.vcd,
                                          on_sample=on_sample)
        traces += result.traces
        if result.mismatch is not None:
            mismatch = f"{'recording' if args.whole_recording else 'sample'} offset {done}: {result.mismatch}"
            break
        done += len(x)
    seconds = time.perf_counter() - started
    bar.close()

    cycles = np.concatenate([trace.cycles for trace in traces])
    report = {
        "backend": args.backend,
        "input": "whole recordings" if args.whole_recording else f"window of {run.config.frames.n_steps} steps",
        "samples": len(traces),
        "steps": int(cycles.size),
        "mismatches": 0 if mismatch is None else 1,
        "first_mismatch": mismatch,
        "lanes": lanes,
        "readout_lanes": readout_lanes,
        "cycles_per_step_mean": float(cycles.mean()),
        "cycles_per_step_max": int(cycles.max()),
        "cycles_per_step_worst_case": cycle_model.worst_case_step_cycles(),
        "simulated_cycles": int(cycles.sum()),
        "seconds": round(seconds, 3),
        "simulated_cycles_per_second": round(float(cycles.sum()) / seconds, 1),
        **build,
        "predictions": [trace.prediction for trace in traces],
        "labels": [int(label) for label in labels[:len(traces)]],
    }
    update_report(run_dir, "simulate_whole_recordings" if args.whole_recording else "simulate", report)

    if mismatch is not None:
        print(f"MISMATCH: {mismatch}")
        return 1
    print(
        f"{report['samples']} samples, {report['steps']} steps: every spike and state matches the golden model "
        f"({lanes} lanes, {readout_lanes} readout lanes; cycles per step mean {report['cycles_per_step_mean']:.0f}, max {report['cycles_per_step_max']}, "
        f"worst case {report['cycles_per_step_worst_case']}; {report['simulated_cycles_per_second']:.0f} cycles/s simulated)"
    )
    return 0
