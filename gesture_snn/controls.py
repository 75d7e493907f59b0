"""Controls that remove time: does the trained network use the order of frames, its memory and
its adaptation?

Every control is scored on the same test users as the network, with the same interval (a
bootstrap over users, :mod:`gesture_snn.stats`) and the clockwise / counter-clockwise
within-pair accuracy (:func:`within_pair_accuracy`: chance is 50 %). Two kinds:

On the trained network (its selected checkpoint), at inference:

- ``reversed``: the test frames played backwards in time;
- ``shuffled``: the frames of each test sample in a random order (fixed seed);
- ``no_adaptation``: adaptation switched off (``beta = 0``: a constant threshold ``b0``);
- ``no_recurrence``: the recurrent weights set to zero.

Trained with the same protocol (same frames, same validation users, same seed, selected on
validation, tested once), into ``RUN/controls/<name>/``:

- ``frame_mlp``: a memoryless per-frame MLP of the network's width, logits averaged over time;
- ``lif``: the same SRNN with LIF neurons (no adaptation);
- ``summed_linear``: a linear classifier on the time-summed input;
- ``gru``: a GRU of the network's width (the non-spiking recurrent baseline of the energy
  comparison; it may use time, so it is reported beside the controls, not as one).

If the network uses time, the order-removing controls (``frame_mlp``, ``reversed``,
``shuffled``, ``summed_linear``) fall well below it and near 50 % within the cw/ccw pairs;
``no_recurrence`` falls if the recurrence carries memory; ``no_adaptation`` and ``lif`` fall if
adaptation matters (the README's results say what was measured).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch

from gesture_snn.config import RunConfig
from gesture_snn.spec.errors import UserError
from gesture_snn.evaluate import ROTATION_PAIRS
from gesture_snn.stats import accuracy_summary

__all__ = [
    "INFERENCE_CONTROLS",
    "TRAINED_CONTROLS",
    "control_config",
    "table_lines",
    "control_inputs",
    "control_model",
    "run_controls",
    "score",
    "within_pair_accuracy",
]

INFERENCE_CONTROLS = ("reversed", "shuffled", "no_adaptation", "no_recurrence")
TRAINED_CONTROLS = ("frame_mlp", "lif", "summed_linear", "gru")
#: Human-readable names (report, plot).
LABELS = {
    "network": "the network",
    "reversed": "time-reversed input",
    "shuffled": "frames shuffled",
    "no_adaptation": "adaptation off (beta = 0)",
    "no_recurrence": "recurrent weights zeroed",
    "frame_mlp": "memoryless per-frame MLP",
    "lif": "LIF network (trained)",
    "summed_linear": "linear on time-summed input",
    "gru": "GRU (non-spiking baseline)",
}


def within_pair_accuracy(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """On the test samples of the clockwise / counter-clockwise classes (3 / 4, 5 / 6), the
    fraction whose score for the true class beats the score for the other direction of the same
    arm (ties count half). Without time the two are alike: chance is 0.5. None without such
    samples."""
    hits = []
    for a, b in ROTATION_PAIRS:
        for true, other in ((a, b), (b, a)):
            rows = labels == true
            diff = scores[rows, true] - scores[rows, other]
            hits.extend(np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0)).tolist())
    return float(np.mean(hits)) if hits else None


def control_config(config: RunConfig, name: str) -> RunConfig:
    """The run configuration of a trained control: the network's, with the architecture (or the
    neuron model) changed and everything else (frames, epochs, optimiser, seed, validation users)
    kept. The non-spiking controls have float weights (no QAT)."""
    if name == "lif":
        return config.replace(model={"neuron": "lif"})
    if name in ("frame_mlp", "summed_linear", "gru"):
        return config.replace(model={"architecture": name, "qat_weight_bits": None}, train={"qat_epochs": None})
    raise ValueError(f"unknown trained control {name!r}; expected one of {TRAINED_CONTROLS}")


def control_inputs(x: torch.Tensor, name: str, *, seed: int) -> torch.Tensor:
    """The test input of an inference control: ``x`` ``[B, T, n]`` reversed or shuffled in time
    (a fixed permutation per sample, drawn from ``seed``), else unchanged."""
    if name == "reversed":
        return x.flip(1)
    if name == "shuffled":
        generator = torch.Generator().manual_seed(seed)
        order = torch.stack([torch.randperm(x.shape[1], generator=generator) for _ in range(x.shape[0])])
        return torch.gather(x, 1, order[:, :, None].expand_as(x))
    return x


def control_model(model, name: str):
    """A copy of the trained SRNN with adaptation off (``no_adaptation``) or the recurrent
    weights zeroed (``no_recurrence``); the model itself for the input controls. UserError if
    the model lacks what the control removes."""
    if name in ("reversed", "shuffled"):
        return model
    if getattr(model.config, "architecture", "srnn") != "srnn":
        raise UserError(f"control {name!r} needs a spiking network; this run trained a {model.config.architecture}")
    changed = copy.deepcopy(model)
    if name == "no_adaptation":
        if not any(layer.adaptive for layer in changed.layers):
            raise UserError("control 'no_adaptation' needs ALIF neurons; this run's network has LIF neurons (no adaptation)")
        for layer in changed.layers:
            layer.beta = 0.0
    elif name == "no_recurrence":
        layers = [layer for layer in changed.layers if layer.recurrent_weight() is not None]
        if not layers:
            raise UserError("control 'no_recurrence' needs recurrent layers; this network has none")
        with torch.no_grad():
            for layer in layers:
                layer.recurrent.zero_()
    else:
        raise ValueError(f"unknown inference control {name!r}; expected one of {INFERENCE_CONTROLS}")
    return changed


@torch.no_grad()
def score(model, frames: np.ndarray, *, batch_size: int = 64, transform=None) -> np.ndarray:
    """Class scores ``[N, n_out]`` of ``model`` on ``frames`` ``uint8 [N, T, ...]`` (flattened
    per step), optionally passing each batch's input through ``transform`` first."""
    model.eval()
    out = []
    for start in range(0, len(frames), batch_size):
        x = torch.from_numpy(frames[start:start + batch_size]).flatten(2).float()
        if transform is not None:
            x = transform(x, start)
        out.append(model.scores(model(x)).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def _entry(scores: np.ndarray, labels: np.ndarray, users: np.ndarray, **extra) -> dict:
    correct = scores.argmax(1) == labels
    summary = accuracy_summary(correct, users)
    return {
        "accuracy": summary["mean"],
        "ci95": summary["ci95"],
        "within_pair_accuracy": within_pair_accuracy(scores, labels),
        "correct": correct.astype(int).tolist(),
        **extra,
    }


def table_lines(entries: dict) -> list[str]:
    """The table of ``gesture-snn controls`` and ``experiment``: per entry (with ``label``,
    ``accuracy``, ``ci95``, ``within_pair_accuracy``) the test accuracy, its interval over users
    and the cw/ccw within-pair accuracy, in percent."""

    def pct(x):
        return "   -" if x is None else f"{100 * x:5.1f}"

    lines = [f"{'':34} {'test %':>7} {'95% CI (users)':>15} {'cw/ccw pair %':>14}"]
    for entry in entries.values():
        lines.append(f"{entry['label']:34} {pct(entry['accuracy']):>7} {pct(entry['ci95'][0]):>7}-{pct(entry['ci95'][1]):<6} "
                     f"{pct(entry['within_pair_accuracy']):>14}")
    return lines


def run_controls(
    run_dir: str | os.PathLike,
    *,
    controls: tuple[str, ...] = INFERENCE_CONTROLS + TRAINED_CONTROLS,
    train_set=None,
    test_set=None,
    progress: bool = True,
    log=print,
) -> dict:
    """Score the run's selected network and each control on the test split; write the
    ``controls`` section of ``RUN/report.json`` and ``RUN/plots/controls.png``; return the section.

    ``train_set`` / ``test_set``: :class:`~gesture_snn.framing.FrameSet` s (default: the run's data,
    framed as the run was). Trained controls that already finished are reused.
    """
    from gesture_snn import plots
    from gesture_snn.framing import load_frames
    from gesture_snn.checkpoints import load_model
    from gesture_snn.rundir import (Section, checkpoint_path, control_dir, control_name, plot_name, plot_path, read_report,
                                    training_finished, update_report)
    from gesture_snn.train import train

    run_dir = Path(run_dir)
    unknown = [c for c in controls if c not in INFERENCE_CONTROLS + TRAINED_CONTROLS]
    if unknown:
        raise UserError(f"unknown controls {unknown}; choose from {list(INFERENCE_CONTROLS + TRAINED_CONTROLS)}")
    if not checkpoint_path(run_dir, "best").exists():
        raise UserError(f"{run_dir} has no trained network (checkpoints/best.pt); train it first")
    if not training_finished(run_dir):
        raise UserError(f"{run_dir}: training has not finished (no test result in report.json); "
                        f"finish it with gesture-snn train --run {run_dir} --resume")
    model, config = load_model(run_dir, "best")
    if config.model.architecture != "srnn":
        raise UserError(f"{run_dir} trained a {config.model.architecture}; controls are run on an SRNN run")
    if test_set is None:
        test_set = load_frames(config.data, train=False, config=config.frames, progress=progress)
    if train_set is None and any(c in TRAINED_CONTROLS for c in controls):
        train_set = load_frames(config.data, train=True, config=config.frames, progress=progress)
    labels, users = test_set.labels, test_set.users
    seed = config.train.seed
    section = {"network": _entry(score(model, test_set.frames), labels, users, kind="network")}
    for name in controls:
        if name in INFERENCE_CONTROLS:
            changed = control_model(model, name)
            scores = score(changed, test_set.frames,
                           transform=lambda x, start, name=name: control_inputs(x, name, seed=seed + start))
            section[name] = _entry(scores, labels, users, kind="inference")
        else:
            if name == "lif" and config.model.neuron == "lif":
                raise UserError("control 'lif' compares with LIF neurons; this run's network is already LIF")
            folder = control_dir(run_dir, name)
            if not training_finished(folder):
                log(f"training control {name} into {folder}")
                train(control_config(config, name), folder, resume=checkpoint_path(folder, "last").exists(),
                      progress=progress, train_set=train_set, test_set=test_set)
            trained, _ = load_model(folder, "best")
            section[name] = _entry(score(trained, test_set.frames), labels, users, kind="trained", run=control_name(name),
                                   val_accuracy=read_report(folder)[Section.TRAIN]["val_accuracy"])
    for name, entry in section.items():
        entry["label"] = LABELS[name]
    section["users"] = users.tolist()
    section["labels"] = labels.tolist()
    plots.control_bars({k: v for k, v in section.items() if isinstance(v, dict)}, plot_path(run_dir, "controls.png"),
                       title=f"{run_dir.name}: test accuracy with 95 % intervals (bootstrap over users)")
    section["plot"] = plot_name("controls.png")
    update_report(run_dir, Section.CONTROLS, section)
    return section
