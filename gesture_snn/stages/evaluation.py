"""The ``evaluate`` stage: a trained run (float or integer) on the test split, and the
whole-recording evaluation (every test recording streamed from its first event to its last)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.stages._common import StageResult, as_paths, check_choice, frame_cache

__all__ = ["EvaluateOptions", "EvaluateResult", "WholeRecordingsOptions", "WholeRecordingsResult", "evaluate",
           "evaluate_whole_recordings"]


@dataclass(frozen=True, kw_only=True)
class EvaluateOptions:
    """What :func:`evaluate` does.

    run: a trained run directory. checkpoint: ``best`` or ``last``. integer: evaluate the
    integer network ``RUN/integer`` with the golden model instead (quantize first). data: the
    data root (None: the run's). device: ``auto``, ``cpu`` or ``cuda``. plots: write the PNG
    plots. raster_sample: the test sample shown in the spike raster. cache_dir: the frame cache.
    """

    run: Path
    checkpoint: str = "best"
    integer: bool = False
    data: Path | None = None
    device: str = "auto"
    plots: bool = True
    raster_sample: int = 0
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        as_paths(self, "run", "data", "cache_dir")
        check_choice("checkpoint", self.checkpoint, ("best", "last"))
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        if self.raster_sample < 0:
            raise UserError(f"--raster-sample must be a test sample index >= 0, got {self.raster_sample}")


@dataclass(frozen=True)
class EvaluateResult:
    """The metrics merged into the report (``train`` section, or ``quantize.integer``)."""

    run: Path
    integer: bool
    checkpoint: str
    summary: dict

    @property
    def test_accuracy(self) -> float:
        return self.summary["test_accuracy"]

    def lines(self) -> list[str]:
        """The summary ``gesture-snn evaluate`` prints."""
        from gesture_snn.data import CLASSES

        s = self.summary
        what = "integer network (golden model)" if self.integer else f"{self.checkpoint} checkpoint"
        lines = [f"test accuracy {100 * s['test_accuracy']:.1f}% on {s['n_samples']} samples ({what})"]
        for name, acc in zip(CLASSES, s["per_class_accuracy"].values()):
            lines.append(f"  {name:<16} {'-' if acc is None else f'{100 * acc:5.1f}%'}")
        for pair, stats in s["rotation_pairs"].items():
            if stats["accuracy"] is not None:
                lines.append(f"  {pair}: {100 * stats['accuracy']:.1f}%, {stats['swapped']} swapped")
        rates = ", ".join(f"{r:.4f}" for r in s["firing_rates"])
        lines.append(f"firing rate per layer: {rates} spikes/neuron/step; input density {s['input_density']:.4f}")
        ratio = "n/a (no operations)" if s["energy_ratio"] is None else format(s["energy_ratio"], ".1f") + "x"
        lines.append(f"synaptic operations {s['sops_per_sample']:.3g} per sample vs {s['dense_macs_per_sample']:.3g} "
                     f"dense MACs: energy ratio {ratio} (0.9 pJ/AC, 4.6 pJ/MAC)")
        if self.integer:
            saturation = ", ".join(f"{name} {count}" for name, count in s["saturation_events_test"].items())
            lines.append(f"saturation events on the test split: {saturation}")
        where = "quantize section, 'integer' entry" if self.integer else "train section"
        lines.append(f"report: {self.run}/report.json ({where}); plots: {self.run}/plots/")
        return lines


def evaluate(options: EvaluateOptions) -> EvaluateResult:
    """Evaluate the run on the test split (:func:`gesture_snn.evaluate.evaluate_run`): accuracy,
    confusion, firing rates, operations, energy and plots, merged into its report."""
    from gesture_snn import evaluate as evaluation
    from gesture_snn.rundir import check_run_files

    check_run_files(options.run)  # a damaged report.json or metrics.jsonl, before the evaluation
    with frame_cache(options.cache_dir):
        summary = evaluation.evaluate_run(options.run, which=options.checkpoint, data=options.data,
                                          device=options.device, integer=options.integer, plots=options.plots,
                                          raster_sample=options.raster_sample, progress=options.progress)
    return EvaluateResult(run=options.run, integer=options.integer, checkpoint=options.checkpoint, summary=summary)


@dataclass(frozen=True, kw_only=True)
class WholeRecordingsOptions:
    """What :func:`evaluate_whole_recordings` does: ``run`` (its best checkpoint and, if
    quantized, its integer network), ``data`` (None: the run's root), ``limit`` (the first N
    test recordings; None: all)."""

    run: Path
    data: Path | None = None
    limit: int | None = None
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        as_paths(self, "run", "data", "cache_dir")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit must be at least 1, not {self.limit}")


@dataclass(frozen=True)
class WholeRecordingsResult(StageResult):
    """The ``streaming`` section: per network (``float``, ``integer``) the latency-accuracy curve,
    the accuracy at the end and the time to a stable decision."""

    def lines(self) -> list[str]:
        lines = []
        for name in ("float", "integer"):
            if name in self.section:
                s = self.section[name]
                stable = s["time_to_stable_ms"]
                median = "-" if stable["median"] is None else f"{stable['median']:.0f} ms"
                lines.append(
                    f"{name}: {s['n_recordings']} whole recordings ({s['duration_ms']['min'] / 1000:.1f}-"
                    f"{s['duration_ms']['max'] / 1000:.1f} s): accuracy at the end {100 * s['end']['mean']:.1f}% "
                    f"[{100 * s['end']['ci95'][0]:.1f}-{100 * s['end']['ci95'][1]:.1f}], stable right decision in "
                    f"{100 * stable['fraction_stable']:.0f}% of them after a median {median}")
        lines.append(f"report: {self.run}/report.json (streaming section); plot: {self.run}/{self.section['plot']}")
        return lines


def evaluate_whole_recordings(options: WholeRecordingsOptions) -> WholeRecordingsResult:
    """Stream every whole test recording through the run's network(s)
    (:func:`gesture_snn.streaming.stream_run`); writes the ``streaming`` section and its plot."""
    from gesture_snn.rundir import check_run_files
    from gesture_snn.streaming import stream_run

    check_run_files(options.run)
    with frame_cache(options.cache_dir):
        section = stream_run(options.run, data=options.data, limit=options.limit, progress=options.progress)
    return WholeRecordingsResult(run=options.run, section=section)
