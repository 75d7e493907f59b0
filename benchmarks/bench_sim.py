"""Simulated clock cycles per second of the two gateware simulators on the same design, in one run.

Builds one :class:`hdl.core.NeuronCore` and runs it

- in the Amaranth Python simulator (``hdl.sim.simulate``; ``--python-samples`` short samples, the
  first of which, with the elaboration, is left out of the rate), and
- compiled with CXXRTL (``hdl.cxxrtl.CxxrtlSimulator``: Yosys ``write_cxxrtl`` + g++; the rate is
  the testbench's own simulation loop, without compilation, process start or file transfer),

checks that both give the same traces on the Python simulator's inputs and that the compiled run
matches the golden model on all of its inputs, and prints both rates (wall clock and processor
time) and their ratio. The compile time is reported, not counted.

Default design: a random network of the hardware preset's size (512 -> 128 -> 11, 8 lanes,
``gesture_snn.spec.intnet.random_network``, corner-biased) with random inputs (each input active with
probability ``--activity`` in each step). With ``--run RUNDIR``: the run's integer network and its
first test samples (framed as the run says).

    python benchmarks/bench_sim.py [--samples 32] [--steps 80] [--json out.json]
    python benchmarks/bench_sim.py --run runs/hw --samples 64

Results are in docs/benchmarks.md ("Simulation backends").
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRESET = (512, 128, 11)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", metavar="RUNDIR", help="use this run's integer network and test samples")
    parser.add_argument("--data", metavar="DIR", help="data root for --run (default: the run config's)")
    parser.add_argument("--samples", type=int, default=32, help="samples for the compiled simulation")
    parser.add_argument("--steps", type=int, default=80, help="steps per random sample (without --run)")
    parser.add_argument("--activity", type=float, default=0.1, help="input activity of random samples")
    parser.add_argument("--python-samples", type=int, default=3,
                        help="samples for the Python simulator (at least 2: the first is not timed)")
    parser.add_argument("--python-steps", type=int, default=5, help="steps per sample for the Python simulator")
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--readout-lanes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="compiled simulator cache (default: a fresh temporary one, so the compile is timed)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.python_samples < 2:
        parser.error("--python-samples must be at least 2")
    return args


def design_and_inputs(args):
    """(network, x [samples, T, n_in] bool, description)."""
    from gesture_snn.spec.intnet import random_network

    rng = np.random.default_rng(args.seed)
    if args.run is None:
        network = random_network(rng, *PRESET)
        x = rng.random((args.samples, args.steps, network.n_in)) < args.activity
        return network, x, f"random {'-'.join(map(str, PRESET))} network (seed {args.seed}), activity {args.activity}"
    from gesture_snn.rundir import IntegerRun

    run = IntegerRun.load(Path(args.run))
    inputs, _ = run.test_inputs(data=args.data)
    x = inputs[: args.samples].astype(bool)
    return run.network, x, f"{args.run}/integer, first {len(x)} test samples"


def bench_amaranth(network, x, *, lanes, readout_lanes):
    """Python simulator rate over samples 1.. of x (sample 0 carries the elaboration)."""
    from hdl.sim import simulate

    marks = []
    started = time.perf_counter()

    def on_sample(index, trace):
        marks.append((time.perf_counter(), time.process_time(), int(trace.cycles.sum())))

    traces = simulate(network, x, lanes=lanes, readout_lanes=readout_lanes, on_sample=on_sample)
    cycles = sum(cycles for _, _, cycles in marks[1:])
    wall, cpu = marks[-1][0] - marks[0][0], marks[-1][1] - marks[0][1]
    return traces, {"cycles": cycles, "seconds": wall, "cpu_seconds": cpu,
                    "setup_and_first_sample_seconds": marks[0][0] - started,
                    "cycles_per_second": cycles / wall, "cycles_per_cpu_second": cycles / cpu}


def bench_cxxrtl(network, x, x_python, *, lanes, readout_lanes, cache_dir):
    """Compiled simulator: build time, loop rate on x, golden check on x, traces on x_python."""
    from gesture_snn.golden import run_golden
    from hdl.cxxrtl import CxxrtlSimulator
    from hdl.sim import compare

    simulator = CxxrtlSimulator(network, lanes=lanes, readout_lanes=readout_lanes, cache_dir=cache_dir)
    started = time.perf_counter()
    run = simulator.run(x)
    end_to_end = time.perf_counter() - started
    mismatch = compare(run_golden(network, x), run.traces)
    return simulator.run(x_python).traces, {
        "build_seconds": simulator.build_seconds, "build_cached": simulator.cached,
        "cycles": run.cycles, "seconds": run.seconds, "cpu_seconds": run.cpu_seconds,
        "end_to_end_seconds": end_to_end,
        "cycles_per_second": run.cycles_per_second, "cycles_per_cpu_second": run.cycles / run.cpu_seconds,
        "golden_mismatch": None if mismatch is None else str(mismatch),
    }


def same_traces(left, right) -> bool:
    fields = ("a", "v", "z", "spikes", "o", "s", "cycles")
    return len(left) == len(right) and all(
        a.prediction == b.prediction and all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields)
        for a, b in zip(left, right))


def main(argv=None) -> int:
    args = parse_args(argv)
    network, x, description = design_and_inputs(args)
    readout_lanes = min(args.lanes, network.n_out) if args.readout_lanes is None else args.readout_lanes
    x_python = x[:args.python_samples, :args.python_steps]
    print(f"design: {description}; {args.lanes} lanes, {readout_lanes} readout lanes")

    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        compiled_traces, cxxrtl = bench_cxxrtl(network, x, x_python, lanes=args.lanes, readout_lanes=readout_lanes,
                                               cache_dir=args.cache_dir or tmp)
    python_traces, amaranth = bench_amaranth(network, x_python, lanes=args.lanes, readout_lanes=readout_lanes)
    agree = same_traces(compiled_traces, python_traces)

    ratio_wall = cxxrtl["cycles_per_second"] / amaranth["cycles_per_second"]
    ratio_cpu = cxxrtl["cycles_per_cpu_second"] / amaranth["cycles_per_cpu_second"]
    print(f"amaranth: {amaranth['cycles']:>10} cycles in {amaranth['seconds']:.2f} s: "
          f"{amaranth['cycles_per_second']:>12,.0f} cycles/s wall, {amaranth['cycles_per_cpu_second']:>12,.0f} cycles/s CPU "
          f"(elaboration + first sample {amaranth['setup_and_first_sample_seconds']:.1f} s, not counted)")
    print(f"cxxrtl:   {cxxrtl['cycles']:>10} cycles in {cxxrtl['seconds']:.2f} s: "
          f"{cxxrtl['cycles_per_second']:>12,.0f} cycles/s wall, {cxxrtl['cycles_per_cpu_second']:>12,.0f} cycles/s CPU "
          f"(build {cxxrtl['build_seconds']:.1f} s{' from cache' if cxxrtl['build_cached'] else ''}, not counted; "
          f"{cxxrtl['end_to_end_seconds']:.2f} s with process start and file transfer)")
    print(f"ratio cxxrtl / amaranth: {ratio_wall:,.0f}x wall clock, {ratio_cpu:,.0f}x processor time")
    print(f"same traces on the Python simulator's {len(x_python)} samples: {agree}; "
          f"compiled run vs golden model: {cxxrtl['golden_mismatch'] or 'every value matches'}")

    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": " ".join(["python", "benchmarks/bench_sim.py", *(sys.argv[1:] if argv is None else argv)]),
            "design": description, "lanes": args.lanes, "readout_lanes": readout_lanes,
            "machine": platform.platform(), "amaranth": amaranth, "cxxrtl": cxxrtl,
            "ratio_wall": ratio_wall, "ratio_cpu": ratio_cpu, "same_traces": agree,
        }, indent=2) + "\n")
    return 0 if agree and cxxrtl["golden_mismatch"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
