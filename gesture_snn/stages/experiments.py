"""The stages that train and compare several networks: ``controls`` (the controls that remove
time, on one run), ``experiment`` (several seeds with all controls) and ``rate_sweep`` (accuracy
against synaptic operations over firing-rate penalties)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.stages._common import StageResult, Log, apply_threads, as_paths, as_tuple, check_threads, frame_cache

__all__ = ["ControlsOptions", "ControlsResult", "ExperimentOptions", "ExperimentResult", "RateSweepOptions",
           "RateSweepResult", "controls", "experiment", "rate_sweep"]


def _all_controls() -> tuple[str, ...]:
    from gesture_snn.controls import INFERENCE_CONTROLS, TRAINED_CONTROLS

    return tuple(INFERENCE_CONTROLS + TRAINED_CONTROLS)


def _check_controls(names) -> None:
    known = _all_controls()
    unknown = [c for c in names if c not in known]
    if unknown:
        raise UserError(f"unknown controls {unknown}; choose from {list(known)}")


@dataclass(frozen=True, kw_only=True)
class _TrainingOptions:
    """The options of every stage here: ``threads`` (intra-op CPU threads; None: the rule of
    :func:`gesture_snn.threads.choose_threads`), ``cache_dir`` (the frame cache), ``progress``."""

    threads: int | None = None
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        as_paths(self, "cache_dir")
        check_threads(self.threads)
        if hasattr(self, "controls"):
            as_tuple(self, "controls")
            _check_controls(self.controls)

    @contextlib.contextmanager
    def environment(self):
        """The CPU threads and the frame cache in effect while the stage runs."""
        apply_threads(self.threads)
        with frame_cache(self.cache_dir):
            yield


@dataclass(frozen=True, kw_only=True)
class ControlsOptions(_TrainingOptions):
    """What :func:`controls` does: on the finished run ``run``, the ``controls`` named (default:
    all of :data:`gesture_snn.controls.INFERENCE_CONTROLS` and ``TRAINED_CONTROLS``)."""

    run: Path
    controls: tuple[str, ...] = field(default_factory=_all_controls)

    def __post_init__(self):
        super().__post_init__()
        as_paths(self, "run")


@dataclass(frozen=True)
class ControlsResult(StageResult):
    """The report's ``controls`` section: the network and each control, with intervals."""

    def entries(self) -> dict:
        return {k: v for k, v in self.section.items() if isinstance(v, dict)}

    def lines(self) -> list[str]:
        from gesture_snn.controls import table_lines

        return table_lines(self.entries()) + [
            f"report: {self.run}/report.json (controls section); plot: {self.run}/{self.section['plot']}"]


def controls(options: ControlsOptions, *, log: Log = print) -> ControlsResult:
    """Score the run's selected network beside the controls (:func:`gesture_snn.controls.run_controls`)."""
    from gesture_snn.controls import run_controls

    with options.environment():
        section = run_controls(options.run, controls=options.controls, progress=options.progress, log=log)
    return ControlsResult(run=options.run, section=section)


@dataclass(frozen=True, kw_only=True)
class ExperimentOptions(_TrainingOptions):
    """What :func:`experiment` does: train ``config`` (a :class:`~gesture_snn.config.RunConfig`)
    with seeds 0 .. ``seeds`` - 1 into ``out/seed<k>`` and run ``controls`` on each."""

    config: object
    out: Path
    seeds: int = 5
    controls: tuple[str, ...] = field(default_factory=_all_controls)

    def __post_init__(self):
        super().__post_init__()
        as_paths(self, "out")


@dataclass(frozen=True)
class ExperimentResult:
    """``OUT/experiment.json``: every accuracy as mean +- sd over seeds with intervals."""

    out: Path
    result: dict

    def lines(self) -> list[str]:
        from gesture_snn.controls import table_lines
        from gesture_snn.rundir import EXPERIMENT_MD, EXPERIMENT_PLOT

        return table_lines(self.result["results"]) + [
            f"{self.result['seeds']} seeds, {self.result['seconds']:.0f} s; {self.out}/{EXPERIMENT_MD}, "
            f"{self.out}/{EXPERIMENT_PLOT}"]


def experiment(options: ExperimentOptions, *, log: Log = print) -> ExperimentResult:
    """Train the seeds and their controls (:func:`gesture_snn.experiment.run_experiment`); finished runs are reused."""
    from gesture_snn.experiment import run_experiment

    with options.environment():
        result = run_experiment(options.config, options.out, seeds=options.seeds, controls=options.controls,
                                progress=options.progress, log=log)
    return ExperimentResult(out=options.out, result=result)


@dataclass(frozen=True, kw_only=True)
class RateSweepOptions(_TrainingOptions):
    """What :func:`rate_sweep` does: train ``config`` at each firing-rate penalty of ``weights``
    (0, the reference, is added) with ``seeds`` seeds into ``out/w<W>/seed<k>``."""

    config: object
    out: Path
    weights: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
    seeds: int = 3

    def __post_init__(self):
        super().__post_init__()
        as_paths(self, "out")
        object.__setattr__(self, "weights", tuple(sorted({0.0, *map(float, self.weights)})))


@dataclass(frozen=True)
class RateSweepResult:
    """``OUT/rate_sweep.json``: the points (weight, operations, accuracies) and the chosen weight."""

    out: Path
    result: dict

    def lines(self) -> list[str]:
        from gesture_snn.rundir import RATE_SWEEP_PLOT

        lines = []
        for p in self.result["points"]:
            lines.append(
                f"w={p['weight']:<6g} SOPs/sample {p['sops']:10.4g}  rate {p['firing_rate']:.3f} "
                f"({p['firing_rate_hz']:.1f} Hz)  val {100 * p['val']['mean']:5.1f}%  test {100 * p['test']['mean']:5.1f}% "
                f"[{100 * p['test']['ci95'][0]:.1f}-{100 * p['test']['ci95'][1]:.1f}]")
        r = self.result
        lines.append(f"chosen weight {r['chosen_weight']:g} ({r['rule']}): {r['sops_reduction']:.2f}x fewer operations; "
                     f"{self.out}/{RATE_SWEEP_PLOT}")
        return lines


def rate_sweep(options: RateSweepOptions, *, log: Log = print) -> RateSweepResult:
    """Train the sweep (:func:`gesture_snn.experiment.run_rate_sweep`); finished runs are reused."""
    from gesture_snn.experiment import run_rate_sweep

    with options.environment():
        result = run_rate_sweep(options.config, options.out, weights=options.weights, seeds=options.seeds,
                                progress=options.progress, log=log)
    return RateSweepResult(out=options.out, result=result)
