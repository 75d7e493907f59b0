"""Whole-recording, streaming evaluation: the network runs over each whole test recording with its
state carried from the first event to the last, and decides at every step.

The decision at step ``t`` is what the network would answer if asked then: the argmax (ties to the
lowest class) of the readout summed from the start of the recording to ``t`` for the ``mean`` and
``per_step`` decodings (the golden model's score ``s``), of the readout at ``t`` for ``last``.
From the decisions of every recording:

- ``end``: the decision at the recording's last step, with its bootstrap interval over users;
- ``curve``: accuracy against time since the recording started, every step; a recording that has
  ended keeps its final decision (``running`` is the fraction still running);
- ``time_to_stable``: for each recording whose final decision is right, the time of the first step
  from which the decision stays right to the end (median, mean, 90th percentile, in ms); the
  fraction of recordings that reach a stable right decision.

The recordings are framed whole with the run's bin and frame size (:func:`gesture_snn.framing.recording_steps`),
without a frame cache (one test split of whole recordings fits in memory: N x T x n_in bytes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gesture_snn.spec.errors import UserError
from gesture_snn.stats import accuracy_summary

__all__ = ["WholeRecordings", "decisions_float", "decisions_integer", "load_whole_recordings", "stream_run",
           "summarize"]


@dataclass
class WholeRecordings:
    """One split's recordings framed whole: ``frames[i]`` is ``uint8 [T_i, n_in]`` (binary or
    count, per the frame settings), with ``labels``, ``users`` (``int64 [N]``) and ``files``."""

    frames: list[np.ndarray]
    labels: np.ndarray
    users: np.ndarray
    files: list[str]
    bin_ms: float

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def steps(self) -> np.ndarray:
        return np.array([len(f) for f in self.frames], dtype=np.int64)


def load_whole_recordings(root: str | os.PathLike, config, *, train: bool = False, limit: int | None = None,
                          progress: bool = False) -> WholeRecordings:
    """Frame every recording of a split whole (``config``: a :class:`~gesture_snn.framing.FrameConfig`;
    its window is ignored). ``limit``: only the first recordings. UserError, naming the file, for a
    recording shorter than one bin."""
    from tqdm.auto import tqdm

    from gesture_snn.data import Recordings
    from gesture_snn.framing import events_to_frames, recording_steps

    recordings = Recordings(root, train=train)
    count = len(recordings) if limit is None else min(limit, len(recordings))
    frames = []
    for i in tqdm(range(count), desc=f"framing whole {recordings.split} recordings", disable=not progress):
        sample = recordings[i]
        try:
            steps = recording_steps(sample.events, config)
        except UserError as exc:
            raise UserError(f"{recordings.root / sample.file}: {exc}") from None
        frames.append(events_to_frames(sample.events, config, n_steps=steps).reshape(steps, -1))
    return WholeRecordings(frames=frames, labels=recordings.labels[:count].copy(), users=recordings.users[:count].copy(),
                           files=list(recordings.files[:count]), bin_ms=config.bin_ms)


def _padded(frames: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(frames), max(len(f) for f in frames), frames[0].shape[1]), dtype=np.uint8)
    for i, f in enumerate(frames):
        out[i, :len(f)] = f
    return out


def _batches(recordings: WholeRecordings, batch_size: int):
    # recordings of similar length together, so that little is padded
    order = np.argsort(recordings.steps, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def decisions_float(model, recordings: WholeRecordings, *, batch_size: int = 16, device="cpu") -> list[np.ndarray]:
    """The float model's decision at every step of every recording (``int64 [T_i]`` each)."""
    import torch

    decode = model.config.decode
    out: list[np.ndarray | None] = [None] * len(recordings)
    model.eval()
    with torch.no_grad():
        for index in _batches(recordings, batch_size):
            x = torch.from_numpy(_padded([recordings.frames[i] for i in index])).float().to(device)
            readout = model(x).readout
            scores = readout if decode == "last" else readout.cumsum(1)
            decided = scores.argmax(2).cpu().numpy()  # torch.argmax: the first maximum
            for row, i in enumerate(index):
                out[i] = decided[row, :recordings.steps[i]]
    return out


def decisions_integer(net, recordings: WholeRecordings) -> tuple[list[np.ndarray], dict]:
    """The golden integer model's decision (argmax of the score ``s``) at every step of every
    recording, and the saturation events over all of them (one recording at a time: no padded
    steps, so the counts are exact)."""
    from gesture_snn.golden import run_golden

    out, saturation = [], {}
    for frames in recordings.frames:
        trace = run_golden(net, frames[None])
        out.append(np.argmax(trace.s[0], axis=1))  # first maximum: ties to the lowest class, as the spec
        for key, count in trace.saturation.items():
            saturation[key] = saturation.get(key, 0) + int(count)
    return out, saturation


def summarize(decisions: list[np.ndarray], recordings: WholeRecordings) -> dict:
    """End accuracy, the latency-accuracy curve and the time to a stable right decision."""
    labels, users, bin_ms = recordings.labels, recordings.users, recordings.bin_ms
    steps = recordings.steps
    end = np.array([d[-1] for d in decisions]) == labels
    longest = int(steps.max())
    held = np.stack([np.concatenate([d, np.full(longest - len(d), d[-1])]) for d in decisions])
    curve_accuracy = (held == labels[:, None]).mean(0)
    running = (np.arange(longest)[None, :] < steps[:, None]).mean(0)
    stable_ms = []
    for d, label in zip(decisions, labels):
        wrong = np.flatnonzero(d != label)
        if len(wrong) and wrong[-1] == len(d) - 1:
            continue  # wrong at the end: never stable
        first = 0 if not len(wrong) else wrong[-1] + 1
        stable_ms.append((first + 1) * bin_ms)  # the decision at step k is known after k + 1 bins
    stable = np.array(stable_ms)
    return {
        "n_recordings": len(decisions),
        "duration_ms": {"min": float(steps.min() * bin_ms), "median": float(np.median(steps) * bin_ms),
                        "max": float(steps.max() * bin_ms)},
        "end": accuracy_summary(end, users),
        "curve": {"time_ms": ((np.arange(longest) + 1) * bin_ms).tolist(), "accuracy": curve_accuracy.tolist(),
                  "running": running.tolist()},
        "time_to_stable_ms": {
            "median": float(np.median(stable)) if len(stable) else None,
            "mean": float(stable.mean()) if len(stable) else None,
            "p90": float(np.quantile(stable, 0.9)) if len(stable) else None,
            "fraction_stable": len(stable) / len(decisions),
        },
    }


def stream_run(run_dir: str | os.PathLike, *, integer: bool = True, data=None, limit: int | None = None,
               progress: bool = True) -> dict:
    """Stream the whole test recordings through a run's float network (best checkpoint) and, when
    it has one and ``integer``, its integer network (golden model); write the ``streaming`` section of
    ``RUN/report.json`` and ``RUN/plots/latency_accuracy.png``; return the section."""
    from gesture_snn import plots
    from gesture_snn.checkpoints import load_model
    from gesture_snn.rundir import IntegerRun, Section, integer_dir, plot_name, plot_path, update_report

    run_dir = Path(run_dir)
    model, config = load_model(run_dir, "best")
    if config.model.architecture != "srnn":
        raise UserError(f"{run_dir} trained a {config.model.architecture}; streaming evaluates an SRNN run")
    recordings = load_whole_recordings(data or config.data, config.frames, limit=limit, progress=progress)
    if len(recordings) == 0:
        raise UserError(f"the test split of {data or config.data} is empty")
    float_decisions = decisions_float(model, recordings)
    section = {"window_steps": config.frames.n_steps, "float": summarize(float_decisions, recordings)}
    curves = {"float network": section["float"]["curve"]}
    if integer and integer_dir(run_dir).exists():
        net = IntegerRun.load(run_dir).network
        decided, saturation = decisions_integer(net, recordings)
        section["integer"] = {**summarize(decided, recordings), "saturation_events": saturation}
        section["integer_float_agreement_at_end"] = float(np.mean(
            [a[-1] == b[-1] for a, b in zip(decided, float_decisions)]))
        curves["integer network (golden model)"] = section["integer"]["curve"]
    plots.latency_accuracy(curves, plot_path(run_dir, "latency_accuracy.png"))
    section["plot"] = plot_name("latency_accuracy.png")
    update_report(run_dir, Section.STREAMING, section)
    return section
