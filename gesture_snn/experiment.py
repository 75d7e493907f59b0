"""Experiments: several seeds of one protocol, the controls, and the firing-rate sweep.

:func:`run_experiment` trains ``seeds`` runs of one configuration (seed 0, 1, ...) into
``OUT/seed<k>/``, runs the controls (:mod:`gesture_snn.controls`) on each and writes the
aggregate: ``OUT/experiment.json``, ``OUT/experiment.md`` and ``OUT/controls.png``. Every
accuracy is the mean over seeds +- the standard deviation over seeds, with a 95 % interval from a
bootstrap over test users of the seed-mean accuracy (:mod:`gesture_snn.stats`).

:func:`run_rate_sweep` trains the same configuration at several firing-rate penalties
(``TrainConfig.rate_penalty``), ``OUT/w<weight>/seed<k>/``, and plots validation and test
accuracy against synaptic operations per sample (``OUT/rate_sweep.png``); it picks the weight that
cuts operations furthest while its mean validation accuracy stays within 1 point of the
unregularised one (the test users play no part in the choice).

Finished runs are reused, so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from gesture_snn.config import RunConfig
from gesture_snn.rundir import (EXPERIMENT_JSON, EXPERIMENT_MD, EXPERIMENT_PLOT, RATE_SWEEP_JSON, RATE_SWEEP_PLOT,
                                Section, read_report, seed_dir, sweep_dir)
from gesture_snn.controls import INFERENCE_CONTROLS, LABELS, TRAINED_CONTROLS, run_controls
from gesture_snn.spec.errors import UserError
from gesture_snn.stats import accuracy_summary

__all__ = ["RATE_SWEEP_TOLERANCE", "run_experiment", "run_rate_sweep", "train_seeds"]

#: The rate sweep keeps weights whose mean validation accuracy is at most this far below the
#: unregularised one (1 percentage point).
RATE_SWEEP_TOLERANCE = 0.01


def _load_splits(config: RunConfig, progress: bool):
    from gesture_snn.framing import load_frames

    return (load_frames(config.data, train=True, config=config.frames, progress=progress),
            load_frames(config.data, train=False, config=config.frames, progress=progress))


def _check_seeds(seeds: int) -> None:
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise UserError(f"seeds must be an integer >= 1 (the number of training runs), not {seeds!r}")


def train_seeds(config: RunConfig, out: Path, *, seeds: int, train_set, test_set, progress: bool,
                log: Callable[[str], None]) -> list[Path]:
    """Train ``config`` with seeds ``0 .. seeds - 1`` into ``out/seed<k>``, reusing finished runs
    and resuming interrupted ones; returns the run directories."""
    from gesture_snn.rundir import checkpoint_path, training_finished
    from gesture_snn.train import train

    _check_seeds(seeds)
    runs = []
    for seed in range(seeds):
        run = seed_dir(out, seed)
        runs.append(run)
        if training_finished(run):
            log(f"seed {seed}: reusing {run}")
            continue
        log(f"seed {seed}: training {run}")
        started = time.perf_counter()
        train(config.replace(train={"seed": seed}), run, resume=checkpoint_path(run, "last").exists(),
              progress=progress, train_set=train_set, test_set=test_set)
        log(f"seed {seed}: done in {time.perf_counter() - started:.0f} s")
    return runs


def run_experiment(
    config: RunConfig,
    out: str | os.PathLike,
    *,
    seeds: int = 5,
    controls: Sequence[str] = INFERENCE_CONTROLS + TRAINED_CONTROLS,
    train_set=None,
    test_set=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train ``seeds`` runs of ``config`` and their controls; write and return the aggregate."""
    from gesture_snn import plots
    from gesture_snn.spec.files import atomic_write, atomic_write_json

    _check_seeds(seeds)
    if config.model.architecture != "srnn":
        raise UserError(f"an experiment trains the SRNN and compares it with the controls; architecture "
                        f"{config.model.architecture!r} is one of the controls")
    out = Path(out)
    started = time.perf_counter()
    if train_set is None or test_set is None:
        train_set, test_set = _load_splits(config, progress)
    runs = train_seeds(config, out, seeds=seeds, train_set=train_set, test_set=test_set, progress=progress, log=log)
    sections = []
    for run in runs:
        log(f"controls of {run}")
        sections.append(run_controls(run, controls=tuple(controls), train_set=train_set, test_set=test_set,
                                     progress=progress, log=log))
    users = np.asarray(sections[0]["users"])
    summary: dict = {}
    for name in ("network", *controls):
        correct = np.array([s[name]["correct"] for s in sections])
        pairs = [s[name]["within_pair_accuracy"] for s in sections]
        entry = {"label": LABELS[name], **accuracy_summary(correct, users)}
        entry["accuracy"] = entry["mean"]
        entry["within_pair_accuracy"] = float(np.mean(pairs)) if None not in pairs else None
        entry["within_pair_sd"] = float(np.std(pairs, ddof=1)) if None not in pairs and len(pairs) > 1 else 0.0
        entry["kind"] = sections[0][name].get("kind")
        if name != "network":
            entry["below_network_pp"] = 100 * (summary["network"]["mean"] - entry["mean"])
        summary[name] = entry
    if config.model.qat_weight_bits is not None:
        summary["integer"] = _integer_summary(runs, test_set, summary["network"])
    reports = [read_report(run)[Section.TRAIN] for run in runs]
    val = [r["val_accuracy"] for r in reports]
    result = {
        "config": config.to_dict(),
        "seeds": seeds,
        "runs": [run.name for run in runs],
        "val_accuracy": {"mean": float(np.mean(val)), "sd": float(np.std(val, ddof=1)) if seeds > 1 else 0.0,
                         "per_seed": val},
        "results": summary,
        "energy": _energy(config, reports),
        "seconds": time.perf_counter() - started,
        "plot": EXPERIMENT_PLOT,
    }
    plots.control_bars(summary, out / EXPERIMENT_PLOT,
                       title=f"{out.name}: test accuracy, mean of {seeds} seeds, 95 % intervals (bootstrap over users)")
    atomic_write_json(out / EXPERIMENT_JSON, result)
    atomic_write(out / EXPERIMENT_MD, lambda f: f.write(render_markdown(result)))
    return result


def _integer_summary(runs: list[Path], test_set, network: dict) -> dict:
    """Each seed's selected network quantized with the defaults of ``gesture-snn quantize``
    (:func:`gesture_snn.quantize.quantize_network`) and run by the golden model on the test split."""
    from gesture_snn.golden import predict
    from gesture_snn.quantize import quantize_network
    from gesture_snn.checkpoints import load_model

    x = test_set.frames.reshape(len(test_set), test_set.frames.shape[1], -1)
    correct, bits = [], set()
    for run in runs:
        model, _ = load_model(run)
        net = quantize_network(model.hardware_parameters())
        predictions, _ = predict(net, x)
        correct.append(predictions == test_set.labels)
        bits.add(net.weight_bits)
    entry = {"label": f"the network as integers (golden model, {'/'.join(map(str, sorted(bits)))}-bit weights)",
             **accuracy_summary(np.array(correct), test_set.users), "kind": "integer", "within_pair_accuracy": None}
    entry["accuracy"] = entry["mean"]
    entry["below_network_pp"] = 100 * (network["mean"] - entry["mean"])
    return entry


def _energy(config: RunConfig, reports: list[dict]) -> dict:
    """The energy accounts (:func:`gesture_snn.evaluate.energy_accounts`) of the seed-mean test activity."""
    from gesture_snn.energy import Activity
    from gesture_snn.evaluate import energy_accounts

    if any("activity" not in r["test"] for r in reports):
        return {"skipped": "runs trained before gesture-snn recorded the test activity; retrain them for the energy accounts"}
    activities = [r["test"]["activity"] for r in reports]
    activity = Activity(n_steps=activities[0]["n_steps"],
                        input_events=float(np.mean([a["input_events_per_sample"] for a in activities])),
                        spikes=tuple(np.mean([a["spikes_per_sample"] for a in activities], axis=0).tolist()),
                        binary_inputs=config.frames.mode == "binary")
    return energy_accounts(activity, config.model)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def render_markdown(result: dict) -> str:
    """The experiment's table: accuracy mean +- sd over seeds, 95 % interval, points below the
    network, within-pair accuracy."""
    seeds = result["seeds"]
    lines = [
        f"# Experiment: {seeds} seeds, test users evaluated once per run",
        "",
        f"Validation accuracy of the selected checkpoints: {_pct(result['val_accuracy']['mean'])} % "
        f"(sd {_pct(result['val_accuracy']['sd'])}).",
        "",
        "| model | test accuracy % (mean +- sd) | 95 % CI (users) | below the network (pp) | cw/ccw within pair % |",
        "|---|---|---|---|---|",
    ]
    for name, e in result["results"].items():
        below = "" if name == "network" else f"{e['below_network_pp']:.1f}"
        lines.append(f"| {e['label']} | {_pct(e['mean'])} +- {_pct(e['sd'])} | {_pct(e['ci95'][0])}-{_pct(e['ci95'][1])} "
                     f"| {below} | {_pct(e['within_pair_accuracy'])} |")
    from gesture_snn.energy import markdown_table

    lines += ["", f"![controls]({result['plot']})", "",
              "## Energy per sample (seed-mean test activity; docs/energy.md)", "",
              result["energy"].get("skipped") or markdown_table(result["energy"]), "",
              f"{result['seconds']:.0f} s in all.", ""]
    return "\n".join(lines)


def run_rate_sweep(
    config: RunConfig,
    out: str | os.PathLike,
    *,
    weights: Sequence[float],
    seeds: int = 3,
    train_set=None,
    test_set=None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train ``config`` at each firing-rate penalty in ``weights`` (0 must be among them: the
    reference) with ``seeds`` seeds; write ``OUT/rate_sweep.json`` and ``OUT/rate_sweep.png``."""
    from gesture_snn import plots
    from gesture_snn.spec.files import atomic_write_json

    _check_seeds(seeds)
    weights = sorted({float(w) for w in weights})
    if not weights or weights[0] != 0.0 or any(w < 0 for w in weights):
        raise UserError(f"rate-sweep weights must be >= 0 and include 0 (the unregularised reference), not {weights}")
    out = Path(out)
    if train_set is None or test_set is None:
        train_set, test_set = _load_splits(config, progress)
    points = []
    for weight in weights:
        runs = train_seeds(config.replace(train={"rate_penalty": weight}), sweep_dir(out, weight), seeds=seeds,
                           train_set=train_set, test_set=test_set, progress=progress, log=log)
        reports = [read_report(run)[Section.TRAIN] for run in runs]
        test_correct = np.array([np.equal(r["test"]["predictions"], r["test"]["labels"]) for r in reports])
        val_correct = np.array([np.equal(r["val"]["predictions"], r["val"]["labels"]) for r in reports])
        points.append({
            "weight": weight,
            "sops": float(np.mean([r["test"]["sops_per_sample"] for r in reports])),
            "firing_rate": float(np.mean([r["test"]["firing_rates"][0] for r in reports])),
            "firing_rate_hz": float(np.mean([r["test"]["firing_rates_hz"][0] for r in reports])),
            "val": accuracy_summary(val_correct, reports[0]["val"]["users"]),
            "test": accuracy_summary(test_correct, reports[0]["test"]["users"]),
        })
    reference = points[0]["val"]["mean"]
    eligible = [p for p in points if p["val"]["mean"] >= reference - RATE_SWEEP_TOLERANCE]
    chosen = min(eligible, key=lambda p: p["sops"])
    result = {
        "config": config.to_dict(),
        "seeds": seeds,
        "points": points,
        "chosen_weight": chosen["weight"],
        "rule": f"the weight with the fewest synaptic operations per sample whose mean validation accuracy is within "
                f"{100 * RATE_SWEEP_TOLERANCE:g} pp of the unregularised one ({100 * reference:.1f} %); test users not used",
        "sops_reduction": points[0]["sops"] / chosen["sops"],
        "plot": RATE_SWEEP_PLOT,
    }
    plots.accuracy_energy_front(points, out / RATE_SWEEP_PLOT)
    atomic_write_json(out / RATE_SWEEP_JSON, result)
    return result
