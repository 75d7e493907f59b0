"""Evaluation: accuracy, confusion, firing rates, synaptic operations and the energy estimate.

The metrics are computed from a *predictor*: any callable ``x [B, T, n_in] -> Prediction``
(class scores and the spikes of every spiking layer). :func:`float_predictor` wraps a float
:class:`~gesture_snn.model.SRNN`, :class:`IntegerPredictor` the golden model of an
:class:`~gesture_snn.spec.intnet.IntegerNetwork`; :func:`evaluate_run` evaluates either kind of a run
directory with the same accounting.

Operation counts (per sample, ``docs/training.md``):

- **Synaptic operations (SOPs, additions)**: every input event adds one weight per synapse it
  drives, so it costs the fan-out of the input (the size of the first layer); every spike of a
  spiking layer costs that layer's fan-out: its own size if it is recurrent, plus the size of
  the next layer, or the number of readout units for the last layer. Count-mode inputs count one
  event per count. Neuron updates (decays, thresholds) are not counted.
- **Dense MACs**: a non-spiking RNN of the same shape does every synapse at every step:
  ``T * (n_in * n_1 + sum over recurrent layers n_l^2 + sum n_l * n_(l+1) + n_last * n_out)``.
- **Energy**: 0.9 pJ per addition and 4.6 pJ per multiply-accumulate (32-bit float, 45 nm;
  M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014), as the
  SRNN paper uses; ``energy_ratio`` = dense energy / spiking energy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
import torch

from gesture_snn.config import ModelConfig
from gesture_snn.energy import (
    Activity,
    GRUShape,
    NetworkShape,
    connection_sparsity,
    energy_report,
    footprint_bytes,
    srnn_weights,
)
from gesture_snn.spec.errors import UserError

__all__ = [
    "ENERGY_PER_AC_PJ",
    "ENERGY_PER_MAC_PJ",
    "Evaluation",
    "IntegerPredictor",
    "Prediction",
    "ROTATION_PAIRS",
    "energy_accounts",
    "evaluate",
    "evaluate_run",
    "float_predictor",
    "rotation_pair_summary",
]

#: Energy of one 32-bit float addition / multiply-accumulate at 45 nm (Horowitz, ISSCC 2014).
ENERGY_PER_AC_PJ = 0.9
ENERGY_PER_MAC_PJ = 4.6


class Prediction(NamedTuple):
    """What a predictor returns for a batch: ``scores`` ``[B, n_out]`` (the class is the argmax,
    ties to the lowest index), ``spikes`` one ``[B, T, n]`` tensor per spiking layer, and the
    mean ``loss`` over the batch when the predictor has one (None otherwise)."""

    scores: torch.Tensor
    spikes: tuple[torch.Tensor, ...]
    loss: torch.Tensor | None = None


#: ``predict(x, y) -> Prediction`` (``y`` so that a predictor can report its loss).
Predictor = Callable[[torch.Tensor, torch.Tensor], Prediction]


@dataclass(frozen=True)
class Evaluation:
    """Accumulated results over a data set (:func:`evaluate`)."""

    labels: np.ndarray  # int64 [N]
    predictions: np.ndarray  # int64 [N]
    n_classes: int
    n_steps: int
    loss: float | None  # mean over samples
    input_events: float  # total over the set
    layer_spikes: tuple[float, ...]  # total spikes per spiking layer over the set
    shape: NetworkShape

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels)) if self.n_samples else float("nan")

    @property
    def confusion(self) -> np.ndarray:
        """``[true class, predicted class]`` counts."""
        matrix = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)
        np.add.at(matrix, (self.labels, self.predictions), 1)
        return matrix

    @property
    def per_class_accuracy(self) -> list[float | None]:
        """Recall per class (None for a class without test samples)."""
        matrix = self.confusion
        totals = matrix.sum(1)
        return [float(matrix[k, k] / totals[k]) if totals[k] else None for k in range(self.n_classes)]

    @property
    def firing_rates(self) -> list[float]:
        """Mean spikes per neuron per step, per spiking layer."""
        return [s / (self.n_samples * self.n_steps * n) for s, n in zip(self.layer_spikes, self.shape.layers)]

    @property
    def input_density(self) -> float:
        """Mean input events per input per step."""
        return self.input_events / (self.n_samples * self.n_steps * self.shape.n_inputs)

    @property
    def sops_per_sample(self) -> float:
        sops = self.input_events * self.shape.input_fanout
        sops += sum(s * f for s, f in zip(self.layer_spikes, self.shape.layer_fanouts))
        return sops / self.n_samples

    @property
    def dense_macs_per_sample(self) -> float:
        return float(self.n_steps * self.shape.synapses)

    @property
    def energy_ratio(self) -> float | None:
        """Energy of the dense RNN over the spiking one (higher = the SNN saves more); None when
        the network did no synaptic operation at all (no input event and no spike)."""
        if self.sops_per_sample == 0:
            return None
        return (self.dense_macs_per_sample * ENERGY_PER_MAC_PJ) / (self.sops_per_sample * ENERGY_PER_AC_PJ)

    def summary(self, class_names: Iterable[str] | None = None) -> dict:
        """JSON-ready metrics."""
        names = list(class_names) if class_names is not None else [str(k) for k in range(self.n_classes)]
        return {
            "test_accuracy": self.accuracy,
            "test_loss": self.loss,
            "n_samples": self.n_samples,
            "per_class_accuracy": dict(zip(names, self.per_class_accuracy)),
            "confusion_matrix": self.confusion.tolist(),
            "firing_rates": self.firing_rates,
            "input_density": self.input_density,
            "sops_per_sample": self.sops_per_sample,
            "dense_macs_per_sample": self.dense_macs_per_sample,
            "energy_per_sample_pj": self.sops_per_sample * ENERGY_PER_AC_PJ,
            "dense_energy_per_sample_pj": self.dense_macs_per_sample * ENERGY_PER_MAC_PJ,
            "energy_ratio": self.energy_ratio,
            "energy_model": (
                f"{ENERGY_PER_AC_PJ} pJ per addition, {ENERGY_PER_MAC_PJ} pJ per MAC "
                "(32-bit float, 45 nm; Horowitz, ISSCC 2014)"
            ),
        }


def float_predictor(model, *, device: torch.device | str = "cpu") -> Predictor:
    """A predictor running a float :class:`~gesture_snn.model.SRNN` (with its loss)."""

    def predict(x: torch.Tensor, y: torch.Tensor | None = None) -> Prediction:
        out = model(x.to(device))
        loss = model.loss(out, y.to(device)) if y is not None else None
        return Prediction(model.scores(out), out.spikes, loss)

    return predict


class IntegerPredictor:
    """A predictor running the golden integer model (:func:`gesture_snn.golden.run_golden`) of
    ``net`` on binary inputs; it has no loss. ``saturation`` accumulates the saturation events
    per state variable over every call; ``last_trace`` is the :class:`~gesture_snn.golden.GoldenTrace`
    of the latest batch."""

    def __init__(self, net):
        from gesture_snn.golden import SATURATING_VARIABLES

        self.net = net
        self.saturation = dict.fromkeys(SATURATING_VARIABLES, 0)
        self.last_trace = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Prediction:
        from gesture_snn.golden import run_golden

        try:
            trace = run_golden(self.net, x.cpu().numpy())
        except ValueError as exc:  # non-binary input or a shape the network does not take
            raise UserError(f"the integer network cannot run these inputs: {exc}") from None
        for name, count in trace.saturation.items():
            self.saturation[name] += count
        self.last_trace = trace
        # torch.argmax, like the spec, takes the first maximum: ties go to the lowest class
        return Prediction(torch.from_numpy(trace.scores), (torch.from_numpy(trace.z),))


@torch.no_grad()
def evaluate(predict: Predictor, loader, *, shape: NetworkShape, n_classes: int) -> Evaluation:
    """Run ``predict`` over every batch ``(x, y)`` of ``loader`` and accumulate the metrics."""
    labels, predictions = [], []
    loss_sum, loss_count = 0.0, 0
    input_events = 0.0
    layer_spikes = np.zeros(len(shape.layers))
    n_steps = 0
    for x, y in loader:
        pred = predict(x, y)
        labels.append(y.numpy())
        predictions.append(pred.scores.argmax(1).cpu().numpy())
        if pred.loss is not None:
            loss_sum += float(pred.loss) * len(y)
            loss_count += len(y)
        input_events += float(x.sum())
        if pred.spikes:  # the non-spiking controls have none
            layer_spikes += np.array([float(s.sum()) for s in pred.spikes])
        n_steps = x.shape[1]
    return Evaluation(
        labels=np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64),
        predictions=np.concatenate(predictions).astype(np.int64) if predictions else np.zeros(0, np.int64),
        n_classes=n_classes,
        n_steps=n_steps,
        loss=loss_sum / loss_count if loss_count else None,
        input_events=input_events,
        layer_spikes=tuple(layer_spikes.tolist()),
        shape=shape,
    )


#: Pairs of classes that differ only in the sense of rotation (DVS128 Gesture labels).
ROTATION_PAIRS = ((3, 4), (5, 6))


def rotation_pair_summary(evaluation: Evaluation, class_names: Sequence[str]) -> dict:
    """Accuracy on each clockwise / counter-clockwise pair and how often one is taken for the other."""
    matrix = evaluation.confusion
    out = {}
    for a, b in ROTATION_PAIRS:
        total = matrix[[a, b]].sum()
        out[f"{class_names[a]} / {class_names[b]}"] = {
            "accuracy": float((matrix[a, a] + matrix[b, b]) / total) if total else None,
            "swapped": int(matrix[a, b] + matrix[b, a]),
            "samples": int(total),
        }
    return out


def energy_accounts(activity, model_config: ModelConfig, *, model=None) -> dict:
    """The energy accounts of :mod:`gesture_snn.energy` for the per-sample ``activity`` (an
    :class:`gesture_snn.energy.Activity`) of an SRNN of ``model_config``: the seed paper's,
    NeuroBench's, a fair dense RNN, integer costs with memory reads, a GRU of the same width (the
    trained ``gru`` control) and, for the hardware shape, the gateware. ``model``: the trained
    module, for the NeuroBench footprint and connection sparsity."""
    from gesture_snn.spec.memory import DEFAULT_MAX_LANES

    shape = NetworkShape.of(model_config)
    weights = {} if model is None else {"footprint": footprint_bytes(model),
                                        "sparsity": connection_sparsity(srnn_weights(model))}
    return energy_report(
        activity,
        shape,
        gru=GRUShape(n_inputs=shape.n_inputs, hidden=shape.layers[-1], n_outputs=shape.n_outputs,
                     n_steps=activity.n_steps, readout_every_step=model_config.decode != "last"),
        lanes=DEFAULT_MAX_LANES if len(shape.layers) == 1 else None,
        adaptive=model_config.neuron == "alif",
        **weights,
    )


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    which: str = "best",
    data: str | os.PathLike | None = None,
    device: str = "auto",
    integer: bool = False,
    plots: bool = True,
    raster_sample: int = 0,
    progress: bool = True,
) -> dict:
    """Evaluate a run on the test split, merge the results into ``RUNDIR/report.json`` and write
    the PNG plots into ``RUNDIR/plots``; returns the metrics that were merged.

    Float (default): the ``which`` checkpoint; results merged into the ``train`` section; plots
    ``learning_curves.png``, ``confusion_matrix.png``, ``spike_raster.png`` and
    ``time_constants.png`` (raster and time constants of the float model either way).

    ``integer=True``: the integer network ``RUNDIR/integer`` (written by ``gesture-snn quantize``)
    run by the golden model; results, with the saturation events on the test split, go to the
    ``integer`` entry of the ``quantize`` section (the float numbers in ``train`` stay as they
    are); plots ``integer_confusion_matrix.png`` and ``integer_spike_raster.png`` (readout in
    float units, ``o * 2^-readout_exp``).
    """
    from gesture_snn import plots as plot
    from gesture_snn.checkpoints import load_model, resolve_device
    from gesture_snn.data import CLASSES
    from gesture_snn.framing import load_frames, make_loader
    from gesture_snn.rundir import (CONFIG_NAME, INTEGER_DIR, PLOTS_DIR, IntegerRun, Section, checkpoint_name,
                                    read_metrics, read_report, update_report)

    run_dir = Path(run_dir)
    dev = resolve_device(device)
    if integer:
        if not (run_dir / CONFIG_NAME).exists():
            raise UserError(f"{run_dir} is not a run directory (no {CONFIG_NAME}); train and quantize first")
        run = IntegerRun.load(run_dir)
        config, net = run.config, run.network
        predictor = IntegerPredictor(net)
        model = None
    else:
        model, config = load_model(run_dir, which, device=dev)
        predictor = float_predictor(model, device=dev)
    root = data if data is not None else config.data
    test_set = load_frames(root, train=False, config=config.frames, progress=progress)
    if len(test_set) == 0:
        raise UserError(f"the test split of {root} is empty")
    if plots and not 0 <= raster_sample < len(test_set):
        raise UserError(f"--raster-sample must be in 0..{len(test_set) - 1}, not {raster_sample}")
    loader = make_loader(test_set, batch_size=config.train.batch_size, shuffle=False)
    result = evaluate(predictor, loader, shape=NetworkShape.of(config.model), n_classes=len(CLASSES))
    summary = result.summary(CLASSES)
    summary["rotation_pairs"] = rotation_pair_summary(result, CLASSES)
    if config.model.architecture == "srnn":
        activity = Activity.from_evaluation(result, binary_inputs=config.frames.mode == "binary")
        summary["energy"] = energy_accounts(activity, config.model, model=model)
    else:
        summary["energy"] = None
    if integer:
        summary["integer_dir"] = INTEGER_DIR
        summary["saturation_events_test"] = dict(predictor.saturation)
    else:
        summary["evaluated_checkpoint"] = checkpoint_name(which)
    summary["evaluated_data"] = str(root)

    if plots:
        folder = run_dir / PLOTS_DIR
        prefix = "integer_" if integer else ""
        records = [] if integer else read_metrics(run_dir)
        if records:
            plot.learning_curves(records, folder / "learning_curves.png")
        plot.confusion_matrix(result.confusion, CLASSES, folder / f"{prefix}confusion_matrix.png")
        x = torch.from_numpy(test_set.frames[raster_sample : raster_sample + 1]).flatten(2).float()
        if integer:
            prediction = predictor(x)
            trace = predictor.last_trace
            spikes, readout = [trace.z[0]], trace.o[0] * 2.0**-net.readout_exp
        else:
            with torch.no_grad():
                out = model(x.to(dev))
            prediction = Prediction(model.scores(out), out.spikes)
            spikes, readout = [s[0].cpu().numpy() for s in out.spikes], out.readout[0].cpu().numpy()
            plot.time_constants(model.time_constants(), folder / "time_constants.png", bin_ms=config.frames.bin_ms)
        label, predicted = int(test_set.labels[raster_sample]), int(prediction.scores.argmax(1))
        plot.spike_raster(
            x[0].numpy(),
            spikes,
            readout,
            folder / f"{prefix}spike_raster.png",
            class_names=CLASSES,
            title=f"{'integer network, ' if integer else ''}test sample {raster_sample} "
            f"({test_set.files[raster_sample]}): true {CLASSES[label]}, predicted {CLASSES[predicted]}",
        )
        names = [p for p in folder.glob("*.png") if p.name.startswith("integer_") == integer]
        summary["plots"] = sorted(p.relative_to(run_dir).as_posix() for p in names)

    name = Section.QUANTIZE if integer else Section.TRAIN
    section = read_report(run_dir).get(name, {})
    if integer:
        section[Section.INTEGER] = summary
    else:
        section.update(summary)
    update_report(run_dir, name, section)
    return summary
