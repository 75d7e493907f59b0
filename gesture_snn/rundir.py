"""The run directory: every path and every ``report.json`` section of a run, in one place.

Every stage writes into one run directory::

    RUN/config.json             the configuration (gesture-snn train)
    RUN/metrics.jsonl           one JSON object per finished epoch
    RUN/checkpoints/last.pt     the last epoch, and best.pt the selected one
    RUN/integer/                the integer network (gesture-snn quantize)
    RUN/plots/*.png             the plots of evaluate, controls and the streaming evaluation
    RUN/controls/NAME/          the trained controls, each a run directory of its own
    RUN/build/TARGET/           a bitstream build; RUN/build/cxxrtl/ the compiled simulation
    RUN/report.json             one section per stage (:class:`Section`)
    RUN/report.md               the demo's summary

and an experiment or rate sweep writes ``OUT/seed<k>/`` (``OUT/w<W>/seed<k>/``), each a run
directory, beside ``OUT/experiment.json``, ``experiment.md``, ``controls.png`` (``rate_sweep.json``,
``rate_sweep.png``).

``report.json`` holds one section per stage; a stage replaces only its own section
(:func:`update_report`). Every write goes through :mod:`gesture_snn.spec.files` (atomic,
crash-safe).

:func:`check_run_files` checks that ``report.json`` and ``metrics.jsonl`` are readable (before a
stage does its expensive work); :meth:`IntegerRun.load` reads ``RUN/integer`` (checksums
verified) and ``RUN/config.json`` and checks that they fit together (binary frames, the frames'
inputs = the network's ``n_in``). Every stage that reads the integer network (evaluate
``--integer``, the whole-recording evaluation, simulate, build, stream) opens the run through it.
The ``*_finished`` functions say whether a stage's result is in the run (the demo reuses those).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.files import atomic_write_json
from gesture_snn.spec.intnet import IntegerNetwork

__all__ = [
    "BUILD_DIR", "CHECKPOINT_DIR", "CONFIG_NAME", "CONTROLS_DIR", "CXXRTL_DIR", "INTEGER_DIR", "METRICS_NAME",
    "PLOTS_DIR", "REPORT_MD_NAME", "REPORT_NAME", "IntegerRun", "Section", "build_dir", "built", "check_run_files",
    "checkpoint_path", "controls_finished", "cxxrtl_dir", "evaluated", "integer_dir", "plot_path", "quantized",
    "read_report", "simulated", "streamed", "training_finished", "update_report",
]

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
INTEGER_DIR = "integer"
PLOTS_DIR = "plots"
CONTROLS_DIR = "controls"
BUILD_DIR = "build"
CXXRTL_DIR = "cxxrtl"  # under BUILD_DIR
REPORT_NAME = "report.json"
REPORT_MD_NAME = "report.md"
CHECKPOINTS = ("last", "best")


class Section:
    """The sections of ``report.json`` (and the entry ``quantize.integer``)."""

    TRAIN = "train"
    CONTROLS = "controls"
    QUANTIZE = "quantize"
    INTEGER = "integer"  # entry of the quantize section: evaluate --integer
    STREAMING = "streaming"  # evaluate --whole-recordings
    SIMULATE = "simulate"
    SIMULATE_WHOLE_RECORDINGS = "simulate_whole_recordings"
    BUILD = "build"  # one entry per target
    STREAM = "stream"  # the board
    DEMO = "demo"


# --------------------------------------------------------------------------------------------
# paths


def checkpoint_path(run_dir: str | os.PathLike, which: str = "last") -> Path:
    """``RUN/checkpoints/<which>.pt`` (``which`` is ``"last"`` or ``"best"``)."""
    if which not in CHECKPOINTS:
        raise ValueError(f"which must be 'last' or 'best', not {which!r}")
    return Path(run_dir) / CHECKPOINT_DIR / f"{which}.pt"


def checkpoint_name(which: str) -> str:
    """The checkpoint as the report names it: ``checkpoints/<which>.pt``."""
    return f"{CHECKPOINT_DIR}/{which}.pt"


def integer_dir(run_dir: str | os.PathLike) -> Path:
    """``RUN/integer``: the integer network."""
    return Path(run_dir) / INTEGER_DIR


def plot_path(run_dir: str | os.PathLike, name: str) -> Path:
    """``RUN/plots/<name>``."""
    return Path(run_dir) / PLOTS_DIR / name


def plot_name(name: str) -> str:
    """The plot as the report names it: ``plots/<name>``."""
    return f"{PLOTS_DIR}/{name}"


def control_dir(run_dir: str | os.PathLike, name: str) -> Path:
    """``RUN/controls/<name>``: the run directory of a trained control."""
    return Path(run_dir) / CONTROLS_DIR / name


def control_name(name: str) -> str:
    """The trained control as the report names it: ``controls/<name>``."""
    return f"{CONTROLS_DIR}/{name}"


def build_dir(run_dir: str | os.PathLike, target: str) -> Path:
    """``RUN/build/<target>``: a bitstream build."""
    return Path(run_dir) / BUILD_DIR / target


def cxxrtl_dir(run_dir: str | os.PathLike) -> Path:
    """``RUN/build/cxxrtl``: the compiled simulation's cache."""
    return Path(run_dir) / BUILD_DIR / CXXRTL_DIR


# the folder of an experiment or a rate sweep (OUT): one run directory per seed (and weight)

EXPERIMENT_JSON = "experiment.json"
EXPERIMENT_MD = "experiment.md"
EXPERIMENT_PLOT = "controls.png"
RATE_SWEEP_JSON = "rate_sweep.json"
RATE_SWEEP_PLOT = "rate_sweep.png"


def seed_dir(out: str | os.PathLike, seed: int) -> Path:
    """``OUT/seed<k>``: the run directory of one seed of an experiment."""
    return Path(out) / f"seed{seed}"


def sweep_dir(out: str | os.PathLike, weight: float) -> Path:
    """``OUT/w<W>``: the seeds of one firing-rate penalty of a rate sweep."""
    return Path(out) / f"w{weight:g}"


# --------------------------------------------------------------------------------------------
# report.json


def read_report(run_dir: str | os.PathLike) -> dict:
    """``RUN_DIR/report.json`` ({} if there is none); UserError if it is not a JSON object."""
    path = Path(run_dir) / REPORT_NAME
    if not path.exists():
        return {}
    try:
        report = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is damaged (not valid JSON: {exc}); delete it and run the stages again, or "
                        f"restore it (every stage rewrites only its own section)") from None
    if not isinstance(report, dict):
        raise UserError(f"{path} is damaged (not a JSON object of stage sections)")
    return report


def update_report(run_dir: str | os.PathLike, section: str, data: dict) -> Path:
    """Replace one section of ``RUN_DIR/report.json``, keeping the others."""
    report = read_report(run_dir)
    report[section] = data
    return atomic_write_json(Path(run_dir) / REPORT_NAME, report)


def check_run_files(run_dir: str | os.PathLike) -> dict:
    """UserError naming the file unless ``RUN/report.json`` (if present) is a JSON object and
    every line of ``RUN/metrics.jsonl`` (if present) is a JSON object; returns the report."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return {}  # the stage's own loaders say what to create
    report = read_report(run_dir)
    metrics = run_dir / METRICS_NAME
    if metrics.exists():
        try:
            lines = metrics.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise UserError(f"{metrics} is damaged (not UTF-8: {exc}); gesture-snn train --run {run_dir} --resume "
                            "rewrites it from the last checkpoint") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                raise UserError(f"{metrics} line {number} is damaged ({line[:60]!r}); gesture-snn train --run {run_dir} "
                                "--resume rewrites it from the last checkpoint")
    return report


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The records of ``RUN/metrics.jsonl`` ([] if there is none)."""
    path = Path(run_dir) / METRICS_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# what is finished


def _section(run_dir: str | os.PathLike, name: str) -> dict:
    section = read_report(run_dir).get(name) if Path(run_dir).is_dir() else None
    return section if isinstance(section, dict) else {}


def training_finished(run_dir: str | os.PathLike, *, epochs: int | None = None) -> bool:
    """Whether ``run_dir`` holds a finished training run: its test result is in the report (it
    is written once every epoch has run or training stopped early), and, if ``epochs`` is given,
    the run was trained for that many epochs."""
    train = _section(run_dir, Section.TRAIN)
    return "test" in train and (epochs is None or train.get("epochs") == epochs)


def evaluated(run_dir: str | os.PathLike) -> bool:
    """Whether ``gesture-snn evaluate`` (float) has merged its metrics into the train section."""
    return "energy_ratio" in _section(run_dir, Section.TRAIN)


def controls_finished(run_dir: str | os.PathLike, names) -> bool:
    """Whether the controls section holds every control in ``names``."""
    return set(names) <= set(_section(run_dir, Section.CONTROLS))


def quantized(run_dir: str | os.PathLike) -> bool:
    """Whether ``gesture-snn quantize`` finished (the integer test accuracy is in the report)."""
    return "int_test_accuracy" in _section(run_dir, Section.QUANTIZE)


def streamed(run_dir: str | os.PathLike, *, integer: bool = True) -> bool:
    """Whether the whole-recording evaluation finished (with the integer network if ``integer``)."""
    section = _section(run_dir, Section.STREAMING)
    return "integer" in section if integer else "float" in section


def simulated(run_dir: str | os.PathLike, *, backend: str, samples: int | None) -> bool:
    """Whether ``gesture-snn simulate`` ran ``samples`` test samples (None: the whole test split)
    with ``backend`` and found no mismatch."""
    sim = _section(run_dir, Section.SIMULATE)
    wanted = _section(run_dir, Section.QUANTIZE).get("n_test", -1) if samples is None else samples
    return sim.get("backend") == backend and sim.get("samples", 0) >= wanted and sim.get("mismatches") == 0


def built(run_dir: str | os.PathLike, target: str) -> bool:
    """Whether the bitstream of ``target`` is in the report and on disk."""
    build = _section(run_dir, Section.BUILD).get(target) or {}
    return bool(build.get("bitstream")) and (Path(run_dir) / build["bitstream"]).exists()


# --------------------------------------------------------------------------------------------
# the integer network with its configuration


@dataclass(frozen=True)
class IntegerRun:
    """A run directory's integer network and configuration, checked against each other.

    ``run_dir``: the run directory; ``network``: ``RUN/integer``; ``config``: ``RUN/config.json``.
    Use :meth:`load`.
    """

    run_dir: Path
    network: IntegerNetwork
    config: object  # gesture_snn.config.RunConfig

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "IntegerRun":
        """Load ``run_dir/integer`` and ``run_dir/config.json``.

        Raises :class:`~gesture_snn.spec.errors.UserError` (or the loaders' own errors, which are
        UserErrors) if either is missing or malformed, if the run's frames are not binary (the
        integer network takes one event per active input per step) or if they do not have the
        network's ``n_in`` inputs.
        """
        from gesture_snn.config import RunConfig

        run_dir = Path(run_dir)
        check_run_files(run_dir)
        network = IntegerNetwork.load(integer_dir(run_dir))
        config = RunConfig.load(run_dir / CONFIG_NAME)
        if config.frames.mode != "binary":
            raise UserError(
                f"the run's frames are in {config.frames.mode!r} mode; the integer network takes binary "
                "input (train the hardware network with --frame-mode binary)"
            )
        if config.frames.n_inputs != network.n_in:
            raise UserError(
                f"the run's frames have {config.frames.n_inputs} inputs but {integer_dir(run_dir)} has n_in = "
                f"{network.n_in}; quantize the run again"
            )
        return cls(run_dir=run_dir, network=network, config=config)

    def test_inputs(self, *, data: str | os.PathLike | None = None,
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The test split as the network's input: ``(inputs, labels)``.

        ``inputs`` is ``uint8 [N, T, n_in]`` (0 or 1; T = the run's ``frames.n_steps``), sample
        ``k`` of the split framed with the run's frame settings; ``labels`` is ``int64 [N]``.
        ``data``: the data root (default: the run config's); ``progress``: show a progress bar
        while the split is framed (only on a cache miss).
        """
        from gesture_snn.framing import load_frames

        frames = self.config.frames
        frameset = load_frames(data or self.config.data, train=False, config=frames, progress=progress)
        return frameset.frames.reshape(len(frameset), frames.n_steps, self.network.n_in), frameset.labels
