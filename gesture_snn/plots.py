"""PNG figures of a training run (matplotlib, Agg backend; no display needed).

Each function draws one figure from plain arrays and writes it atomically to ``path``.
"""

from __future__ import annotations

import io
import os
from typing import Mapping, Sequence

import numpy as np

from gesture_snn.rundir import atomic_write

__all__ = ["confusion_matrix", "learning_curves", "spike_raster", "time_constants"]


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
