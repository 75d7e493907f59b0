"""The ``simulate`` stage: test samples through the gateware simulation, bit for bit against the golden model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.stages._common import StageResult, Log, as_paths, check_choice, check_target, frame_cache, resolve_hardware

__all__ = ["BACKENDS", "SimulateOptions", "SimulateResult", "simulate"]

BACKENDS = ("amaranth", "cxxrtl")


@dataclass(frozen=True, kw_only=True)
class SimulateOptions:
    """What :func:`simulate` does.

    run: a run directory with ``integer/`` and ``config.json``. samples: the first K test samples
    (None: all). data: the data root (None: the run's). lanes / readout_lanes: None for the
    defaults of ``target`` (or, without a target, the largest divisor of n_rec up to 8 and
    min(lanes, n_out)). target: simulate the lanes ``build`` uses for this target. backend:
    ``amaranth`` (Python) or ``cxxrtl`` (compiled, needs g++). vcd: a waveform file (either
    backend; cxxrtl builds its model with full debug information and CXXRTL's VCD writer).
    whole_recording: each whole test recording instead of the run's window.
    """

    run: Path
    samples: int | None = 4
    data: Path | None = None
    lanes: int | None = None
    readout_lanes: int | None = None
    target: str | None = None
    backend: str = "amaranth"
    vcd: Path | None = None
    whole_recording: bool = False
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        as_paths(self, "run", "data", "vcd", "cache_dir")
        check_choice("backend", self.backend, BACKENDS)
        if self.samples is not None and (isinstance(self.samples, bool) or self.samples < 1):
            raise UserError(f"--samples: expected a positive number of samples or all (None), got {self.samples!r}")
        check_target(self.target)  # the flags first, before the run is read


@dataclass(frozen=True)
class SimulateResult(StageResult):
    """The report's ``simulate`` (or ``simulate_whole_recordings``) section; ``mismatch``: the
    first difference from the golden model, or None."""

    @property
    def mismatch(self) -> str | None:
        return self.section["first_mismatch"]

    @property
    def ok(self) -> bool:
        """Every spike and state matched the golden model."""
        return self.mismatch is None

    def lines(self) -> list[str]:
        r = self.section
        if not self.ok:
            return [f"MISMATCH: {self.mismatch}"]
        return [
            f"{r['samples']} samples, {r['steps']} steps: every spike and state matches the golden model "
            f"({r['lanes']} lanes, {r['readout_lanes']} readout lanes; cycles per step mean {r['cycles_per_step_mean']:.0f}, "
            f"max {r['cycles_per_step_max']}, worst case {r['cycles_per_step_worst_case']}; "
            f"{r['simulated_cycles_per_second']:.0f} cycles/s simulated)"
        ]


def simulate(options: SimulateOptions, *, log: Log = print) -> SimulateResult:
    """Run the test samples through the neuron core's simulation and the golden model, compare
    every value of every step, stop at the first mismatch; write the ``simulate`` section (or
    ``simulate_whole_recordings``)."""
    with frame_cache(options.cache_dir):
        return _simulate(options, log)


def _samples(options: SimulateOptions, run) -> tuple[list, list]:
    """The inputs as a list of batches (one batch of windows, or one whole recording each) and the labels."""
    data = options.data or run.config.data
    if options.whole_recording:
        from gesture_snn.streaming import load_whole_recordings

        whole = load_whole_recordings(data, run.config.frames, limit=options.samples, progress=options.progress)
        if len(whole) == 0:
            raise UserError(f"the test split of {data} has no samples")
        return [f[None] for f in whole.frames], whole.labels
    inputs, labels = run.test_inputs(data=options.data, progress=options.progress)
    if len(labels) == 0:
        raise UserError(f"the test split of {data} has no samples")
    count = len(labels) if options.samples is None else min(options.samples, len(labels))
    return [inputs[:count]], labels


def _simulate(options: SimulateOptions, log: Log) -> SimulateResult:
    import time

    import numpy as np
    from tqdm import tqdm

    from gesture_snn import golden
    from gesture_snn.rundir import IntegerRun, Section, cxxrtl_dir, update_report
    from hdl.sim import check_against_golden

    run = IntegerRun.load(options.run)
    run_dir, network = run.run_dir, run.network
    hardware = resolve_hardware(network, options.target, lanes=options.lanes, readout_lanes=options.readout_lanes)
    lanes, readout_lanes = hardware.lanes, hardware.readout_lanes
    samples, labels = _samples(options, run)
    count = sum(len(x) for x in samples)

    build = {}
    if options.backend == "cxxrtl":
        from hdl.cxxrtl import CxxrtlSimulator

        if options.progress:
            log(f"building the compiled simulation (Yosys write_cxxrtl, g++; cached in {cxxrtl_dir(run_dir)})")
        simulator = CxxrtlSimulator(network, lanes=lanes, readout_lanes=readout_lanes, cache_dir=cxxrtl_dir(run_dir),
                                    waveforms=options.vcd is not None)
        build = {"build_seconds": round(simulator.build_seconds, 3), "build_cached": simulator.cached}

    bar = tqdm(total=count, unit="sample", desc="simulate", disable=not options.progress)

    def on_sample(index, trace, mismatch):
        bar.update(1)
        bar.set_postfix(cycles_per_step=f"{trace.cycles.mean():.0f}", status="MISMATCH" if mismatch else "ok")

    started = time.perf_counter()
    traces, mismatch, done = [], None, 0
    for x in samples:  # one batch of windows, or one whole recording at a time (their lengths differ)
        reference = golden.run_golden(network, x)
        if options.backend == "cxxrtl":
            result = simulator.check_against_golden(x, reference, on_sample=lambda index: bar.update(1),
                                                    vcd_path=options.vcd)
        else:
            result = check_against_golden(network, x, reference, lanes=lanes, readout_lanes=readout_lanes,
                                          vcd_path=options.vcd, on_sample=on_sample)
        traces += result.traces
        if result.mismatch is not None:
            mismatch = f"{'recording' if options.whole_recording else 'sample'} offset {done}: {result.mismatch}"
            break
        done += len(x)
    seconds = time.perf_counter() - started
    bar.close()

    cycles = np.concatenate([trace.cycles for trace in traces])
    report = {
        "backend": options.backend,
        "input": "whole recordings" if options.whole_recording else f"window of {run.config.frames.n_steps} steps",
        "samples": len(traces),
        "steps": int(cycles.size),
        "mismatches": 0 if mismatch is None else 1,
        "first_mismatch": mismatch,
        "lanes": lanes,
        "readout_lanes": readout_lanes,
        "cycles_per_step_mean": float(cycles.mean()),
        "cycles_per_step_max": int(cycles.max()),
        "cycles_per_step_worst_case": hardware.cycle_model.worst_case_step_cycles(),
        "simulated_cycles": int(cycles.sum()),
        "seconds": round(seconds, 3),
        "simulated_cycles_per_second": round(float(cycles.sum()) / seconds, 1),
        **build,
        **({} if options.vcd is None else {"vcd": str(options.vcd), "vcd_bytes": options.vcd.stat().st_size}),
        "predictions": [trace.prediction for trace in traces],
        "labels": [int(label) for label in labels[:len(traces)]],
    }
    section = Section.SIMULATE_WHOLE_RECORDINGS if options.whole_recording else Section.SIMULATE
    update_report(run_dir, section, report)
    return SimulateResult(run=run_dir, section=report)
