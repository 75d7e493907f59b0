"""The ``stream`` stage: test samples on a board over its serial port, against the golden model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.protocol import DEFAULT_BAUD
from gesture_snn.stages._common import StageResult, Log, as_paths, as_tuple, check_number, frame_cache

__all__ = ["StreamOptions", "StreamResult", "stream", "build_baud"]


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """What :func:`stream` does.

    port: the board's serial port. run: a run directory with ``integer/`` and ``config.json``.
    samples: indices of the test samples to stream. baud: the bitstream's baud rate (None: the
    ``baud`` of the run's build report entries, :func:`build_baud`; 115200 without one). data: the
    data root (None: the run's). timeout: longest silence (s) while a reply is due. load: send
    the weights if the bitstream loads them at run time. quiet: one line per sample instead of
    every step's spikes.
    """

    port: str
    run: Path
    samples: tuple[int, ...]
    baud: int | None = None
    data: Path | None = None
    timeout: float = 5.0
    load: bool = True
    quiet: bool = False
    cache_dir: Path | None = None

    def __post_init__(self):
        as_paths(self, "run", "data", "cache_dir")
        as_tuple(self, "samples")
        check_number("timeout", self.timeout, positive=True)
        if self.baud is not None and self.baud < 1:
            raise UserError(f"--baud must be a positive number of bits per second, got {self.baud}")
        if not self.samples:
            raise UserError("--sample: give at least one test sample")


@dataclass(frozen=True)
class StreamResult(StageResult):
    """The report's ``stream`` section; ``ok``: every spike and class matched the golden model."""

    @property
    def ok(self) -> bool:
        return self.section["mismatches"] == 0


def build_baud(report: dict) -> tuple[int, str]:
    """``(baud, where)``: the baud rate of the run's bitstream, from the report's ``build`` entries.

    One rate among the entries that state one: that rate; none: :data:`DEFAULT_BAUD` (the rate
    of builds before the baud rate was a build option); several: UserError (choose with --baud).
    """
    entries = {key: entry.get("baud") for key, entry in (report.get("build") or {}).items()
               if isinstance(entry, dict) and entry.get("baud")}
    rates = sorted(set(entries.values()))
    if not rates:
        return DEFAULT_BAUD, "the default"
    if len(rates) > 1:
        listing = ", ".join(f"{key}: {baud}" for key, baud in sorted(entries.items()))
        raise UserError(f"the run's builds use different baud rates ({listing}); give the board's with --baud")
    keys = sorted(key for key, baud in entries.items() if baud == rates[0])
    return int(rates[0]), f"build {', '.join(keys)}"


def stream(options: StreamOptions, *, log: Log = print) -> StreamResult:
    """Reset and identify the board (its bitstream must hold the run's network), send the weights
    if it loads them at run time, stream each sample step by step, compare the spikes of every
    step and the class with the golden model, and write the ``stream`` section."""
    with frame_cache(options.cache_dir):
        return _stream(options, log)


def _stream(options: StreamOptions, log: Log) -> StreamResult:
    import time

    import numpy as np

    from gesture_snn.golden import run_golden
    from gesture_snn.host_link import BoardLink, open_serial
    from gesture_snn.rundir import IntegerRun, Section, read_report, update_report

    run = IntegerRun.load(options.run)
    run_dir, network = run.run_dir, run.network
    baud, baud_from = (options.baud, "--baud") if options.baud is not None else build_baud(read_report(run_dir))
    inputs, labels = run.test_inputs(data=options.data)
    bad = [k for k in options.samples if not 0 <= k < len(labels)]
    if bad:
        raise UserError(f"--sample {bad[0]} is not a test sample; the test split has {len(labels)} "
                        f"(0 .. {len(labels) - 1})")
    x = inputs[list(options.samples)]
    golden = run_golden(network, x)

    port = open_serial(options.port, baud=baud)
    try:
        link = BoardLink(port, timeout_s=options.timeout)
        info = link.reset(n_in=network.n_in)
        info.check_network(network)
        log(f"board: {info.n_in} -> {info.n_rec} -> {info.n_out}, {info.lanes} lanes, {info.readout_lanes} readout "
            f"lanes, weights {'loaded at run time' if info.weight_loading else 'in the bitstream'}, "
            f"fingerprint {info.fingerprint:08x}; {baud} baud ({baud_from})")
        load_seconds = None
        if info.weight_loading and options.load:
            started = time.perf_counter()
            link.load_weights(network, progress=not options.quiet)
            load_seconds = time.perf_counter() - started
        samples = []
        for row, k in enumerate(options.samples):
            started = time.perf_counter()
            result = link.run_sample(x[row])
            seconds = time.perf_counter() - started
            expected = golden.z[row].astype(np.uint8)
            steps_differ = np.flatnonzero((result.spikes != expected).any(axis=1))
            label = int(labels[k])
            if not options.quiet:
                for t, spikes in enumerate(result.spikes):
                    marker = "" if (spikes == expected[t]).all() else (
                        f"   MISMATCH: golden {' '.join(map(str, np.flatnonzero(expected[t]))) or '-'}")
                    log(f"  sample {k} step {t:3d}: {' '.join(map(str, np.flatnonzero(spikes))) or '-'}{marker}")
            golden_class = int(golden.prediction[row])
            match = steps_differ.size == 0 and result.prediction == golden_class
            log(f"sample {k} (label {label}): class {result.prediction}, golden model {golden_class}, "
                f"spikes match in {x.shape[1] - steps_differ.size} of {x.shape[1]} steps "
                f"({'ok' if match else 'MISMATCH'}; {seconds:.2f} s)")
            samples.append({
                "sample": k, "label": label, "prediction": result.prediction, "golden_prediction": golden_class,
                "spikes": int(result.spikes.sum()), "steps_mismatched": int(steps_differ.size),
                "first_mismatched_step": int(steps_differ[0]) if steps_differ.size else None,
                "seconds": round(seconds, 3),
            })
        errors = link.identify().errors
    finally:
        port.close()

    mismatches = sum(s["steps_mismatched"] > 0 or s["prediction"] != s["golden_prediction"] for s in samples)
    section = {
        "port": options.port,
        "baud": baud,
        "weight_loading": info.weight_loading,
        "weights_sent": load_seconds is not None,
        "weight_load_seconds": None if load_seconds is None else round(load_seconds, 3),
        "samples": samples,
        "mismatches": mismatches,
        "link_errors": [flag.name for flag in type(errors) if flag in errors],
    }
    update_report(run_dir, Section.STREAM, section)
    if errors:
        log(f"warning: the board saw link errors: {errors!r}")
    return StreamResult(run=run_dir, section=section)
