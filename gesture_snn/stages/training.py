"""The ``train`` stage: a :class:`~gesture_snn.config.RunConfig` trained into a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gesture_snn.spec.errors import UserError
from gesture_snn.stages._common import StageResult, apply_threads, as_paths, check_choice, check_threads, frame_cache

__all__ = ["TrainOptions", "TrainResult", "train"]


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """What :func:`train` does.

    run: the run directory to write.
    config: the :class:`~gesture_snn.config.RunConfig` to train; None with ``resume``: the run's
        saved ``config.json``.
    resume: continue the run from its last checkpoint (the configuration must be the saved one
        except for ``train.epochs`` and ``data``).
    epochs, data: with ``config`` None and ``resume``: train to this many epochs / on this root.
    device: ``auto``, ``cpu`` or ``cuda``. threads: intra-op CPU threads (None: the rule of
    :func:`gesture_snn.threads.choose_threads`). cache_dir: the frame cache (None: DATA/frame_cache).
    progress: progress bars and a line per epoch.
    """

    run: Path
    config: object | None = None
    resume: bool = False
    epochs: int | None = None
    data: Path | None = None
    device: str = "auto"
    threads: int | None = None
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        as_paths(self, "run", "data", "cache_dir")
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        if self.config is None and not self.resume:
            raise UserError("train: give a configuration (config=RunConfig...), or resume=True to continue a run")
        if self.config is not None and (self.epochs is not None or self.data is not None):
            raise UserError("train: epochs and data go into the configuration (config.replace(...)); "
                            "they are separate options only when resuming with the saved configuration")
        check_threads(self.threads)


@dataclass(frozen=True)
class TrainResult(StageResult):
    """The finished training run: ``run`` and ``section`` (the ``train`` section of its report)."""

    @property
    def test_accuracy(self) -> float:
        """The selected checkpoint's accuracy on the test users (evaluated once)."""
        return self.section["test"]["accuracy"]

    @property
    def best_epoch(self) -> int:
        return self.section["best_epoch"]

    def lines(self) -> list[str]:
        """The summary ``gesture-snn train`` prints."""
        r = self.section
        return [
            f"selected epoch {r['best_epoch']} on the validation users {r['split']['val_users']} "
            f"(val accuracy {100 * r['val_accuracy']:.1f}%); test accuracy, evaluated once: "
            f"{100 * r['test']['accuracy']:.1f}% (95% CI over users {100 * r['test']['ci95'][0]:.1f}-"
            f"{100 * r['test']['ci95'][1]:.1f}%), last epoch {100 * r['test_last']['accuracy']:.1f}%; "
            f"{r['train_seconds']:.0f} s; run: {self.run} (next: gesture-snn evaluate --run {self.run})"
        ]


def _config(options: TrainOptions):
    from gesture_snn.config import ConfigError, RunConfig
    from gesture_snn.rundir import CONFIG_NAME

    if options.config is not None:
        return options.config
    saved = options.run / CONFIG_NAME
    if not saved.exists():
        raise UserError(f"--resume: {saved} does not exist; nothing to resume")
    config = RunConfig.load(saved)
    if options.epochs is not None:
        try:
            config = config.replace(train={"epochs": options.epochs})
        except ConfigError as exc:
            raise ConfigError(f"--epochs: {exc}") from None
    if options.data is not None:
        config = config.replace(data=str(options.data))
    return config


def train(options: TrainOptions, *, train_set=None, test_set=None,
          on_epoch_end: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``options.config`` into ``options.run`` (:func:`gesture_snn.train.train`: validation
    users select the epoch, the test users are evaluated once); returns the report's ``train``
    section. ``train_set`` / ``test_set``: FrameSets to use instead of loading the configuration's
    data; ``on_epoch_end``: called with each epoch's metrics."""
    from gesture_snn import train as training

    config = _config(options)
    apply_threads(options.threads)
    with frame_cache(options.cache_dir):
        section = training.train(config, options.run, device=options.device, resume=options.resume,
                                 progress=options.progress, train_set=train_set, test_set=test_set,
                                 on_epoch_end=on_epoch_end)
    return TrainResult(run=options.run, section=section)

