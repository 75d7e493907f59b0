"""PNG figures of a training run (matplotlib, Agg backend; no display needed).

Each function draws one figure from plain arrays and writes it atomically to ``path``.
"""

from __future__ import annotations

import io
import os
from typing import Mapping, Sequence

import numpy as np

from gesture_snn.spec.files import atomic_write

__all__ = ["accuracy_energy_front", "confusion_matrix", "control_bars", "latency_accuracy", "learning_curves",
           "spike_raster", "time_constants"]


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def _save(fig, path: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buffer.getvalue()), binary=True)


def learning_curves(metrics: Sequence[Mapping], path: str | os.PathLike) -> None:
    """Loss, accuracy and firing rate per epoch (``metrics.jsonl`` records)."""
    epochs = [r["epoch"] for r in metrics]
    fig, (ax_loss, ax_acc, ax_rate) = _figure(1, 3, figsize=(13, 3.6))
    for split, style in (("train", "-"), ("val", "--")):  # the test split is not evaluated per epoch
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in metrics], style, label=split)
        ax_acc.plot(epochs, [100 * r[f"{split}_accuracy"] for r in metrics], style, label=split)
    rates = np.array([r["firing_rates"] for r in metrics])
    for i in range(rates.shape[1] if rates.ndim == 2 else 0):
        ax_rate.plot(epochs, rates[:, i], label=f"layer {i} (train)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="%", title="accuracy", ylim=(0, 100))
    ax_rate.set(xlabel="epoch", ylabel="spikes / neuron / step", title="firing rate")
    for ax in (ax_loss, ax_acc, ax_rate):
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> None:
    """Row-normalised confusion matrix with the counts written in the cells."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    fig, ax = _figure(figsize=(7.5, 6.5))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for i, j in zip(*np.nonzero(matrix)):
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                color="white" if normalised[i, j] > 0.5 else "black")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion (accuracy {np.trace(matrix) / max(matrix.sum(), 1):.1%})")
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    _save(fig, path)


def spike_raster(
    inputs: np.ndarray,
    layer_spikes: Sequence[np.ndarray],
    readout: np.ndarray,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str],
    title: str = "",
) -> None:
    """One sample: input events, the spikes of every layer ([T, n] each) and the readout [T, n_out]."""
    panels = [("input", inputs)] + [(f"layer {i}", s) for i, s in enumerate(layer_spikes)]
    fig, axes = _figure(len(panels) + 1, 1, figsize=(9, 2.2 * (len(panels) + 1)), sharex=True)
    for ax, (name, spikes) in zip(axes, panels):
        t, n = np.nonzero(np.asarray(spikes))
        ax.scatter(t, n, s=1.5, marker="|", color="black", linewidths=0.6)
        ax.set(ylabel=f"{name}\nneuron", ylim=(-0.5, spikes.shape[1] - 0.5))
        ax.set_title(f"{name}: {spikes.mean():.3f} spikes per unit per step", fontsize=9, loc="left")
    ax = axes[-1]
    import matplotlib

    palette = matplotlib.colormaps["tab20"].colors  # 11 classes: more than the default 10 colours
    for k, name in enumerate(class_names):
        ax.plot(readout[:, k], label=name, lw=1, color=palette[(2 * k) % 20 + (2 * k) // 20])
    ax.set(xlabel="time step", ylabel="readout o_t")
    ax.legend(fontsize=6, ncol=2, loc="upper left")
    fig.suptitle(title)
    _save(fig, path)


def time_constants(taus: Mapping[str, np.ndarray], path: str | os.PathLike, *, bin_ms: float) -> None:
    """Histogram of each learned time-constant vector (in steps and in ms)."""
    fig, axes = _figure(1, len(taus), figsize=(4 * len(taus), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], taus.items()):
        ax.hist(values, bins=30, color="tab:blue", alpha=0.8)
        ax.set(xlabel=f"steps (1 step = {bin_ms:g} ms)", ylabel="neurons", title=name)
        ax.axvline(np.median(values), color="black", lw=1, ls="--", label=f"median {np.median(values):.1f}")
        ax.legend(fontsize=8)
    _save(fig, path)


def control_bars(entries: Mapping[str, Mapping], path: str | os.PathLike, *, title: str) -> None:
    """Test accuracy of the network and each control (``accuracy``, ``ci95`` error bars), with
    the cw/ccw within-pair accuracy (``within_pair_accuracy``) beside it; chance lines."""
    names = list(entries)
    fig, (ax, ax_pair) = _figure(1, 2, figsize=(12, 0.45 * len(names) + 1.6), sharey=True,
                                 gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(names))[::-1]
    for axis, key, chance, label in ((ax, "accuracy", 100 / 11, "test accuracy (%)"),
                                     (ax_pair, "within_pair_accuracy", 50.0, "cw / ccw within pair (%)")):
        values = [entries[n].get(key) for n in names]
        colours = ["tab:blue" if n == "network" else "tab:grey" for n in names]
        axis.barh(y, [100 * (v or 0) for v in values], color=colours, alpha=0.85)
        if key == "accuracy":
            low = [100 * (entries[n]["accuracy"] - entries[n]["ci95"][0]) for n in names]
            high = [100 * (entries[n]["ci95"][1] - entries[n]["accuracy"]) for n in names]
            axis.errorbar([100 * v for v in values], y, xerr=[low, high], fmt="none", ecolor="black", capsize=3)
        for yi, v, n in zip(y, values, names):
            if v is not None:
                right = max(v, entries[n]["ci95"][1]) if key == "accuracy" else v
                axis.text(100 * right + 1.5, yi, f"{100 * v:.1f}", va="center", fontsize=8)
        axis.axvline(chance, color="tab:red", ls=":", lw=1, label=f"chance {chance:.0f} %")
        axis.set(xlim=(0, 105), xlabel=label)
        axis.legend(fontsize=8, loc="lower right")
        axis.grid(axis="x", alpha=0.3)
    ax.set_yticks(y, [entries[n].get("label", n) for n in names])
    ax.set_title(title, fontsize=9, loc="left")
    _save(fig, path)


def latency_accuracy(curves: Mapping[str, Mapping], path: str | os.PathLike) -> None:
    """Accuracy against time since the recording started (``time_ms``, ``accuracy``), one line
    per network (float, integer), with the fraction of recordings still running."""
    fig, ax = _figure(figsize=(7, 3.8))
    for name, curve in curves.items():
        ax.plot(curve["time_ms"], [100 * a for a in curve["accuracy"]], label=name)
    first = next(iter(curves.values()))
    ax2 = ax.twinx()
    ax2.plot(first["time_ms"], [100 * r for r in first["running"]], color="tab:grey", ls=":", lw=1)
    ax2.set_ylabel("recordings still running (%)", color="tab:grey")
    ax2.set_ylim(0, 105)
    ax.set(xlabel="time since the recording started (ms)", ylabel="accuracy of the decision so far (%)",
           ylim=(0, 100), title="streaming decision over whole recordings")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def accuracy_energy_front(points: Sequence[Mapping], path: str | os.PathLike) -> None:
    """Validation and test accuracy (mean, 95 % interval) against synaptic operations per sample,
    one point per regularisation weight (``weight``, ``sops``, ``val``, ``test``)."""
    fig, ax = _figure(figsize=(7, 4))
    for key, colour in (("val", "tab:orange"), ("test", "tab:blue")):
        x = [p["sops"] for p in points]
        mean = np.array([100 * p[key]["mean"] for p in points])
        low = mean - [100 * p[key]["ci95"][0] for p in points]
        high = [100 * p[key]["ci95"][1] for p in points] - mean
        ax.errorbar(x, mean, yerr=[low, high], fmt="o-", color=colour, capsize=3, label=f"{key} accuracy")
    for p in points:
        ax.annotate(f"w={p['weight']:g}", (p["sops"], 100 * p["test"]["mean"]), textcoords="offset points",
                    xytext=(4, -10), fontsize=7)
    ax.set(xscale="log", xlabel="synaptic operations per sample (log)", ylabel="accuracy (%)",
           title="firing-rate regularisation: the accuracy-energy front")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)
