"""The ``quantize`` stage: a trained float network -> the integer network, checked with the golden model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.intnet import WIDTH_DEFAULTS
from gesture_snn.stages._common import StageResult, Log, as_paths, as_tuple, check_choice, check_number, frame_cache

__all__ = ["QuantizeOptions", "QuantizeResult", "WIDTH_NAMES", "quantize"]

#: The widths a quantization sets (docs/fixed_point.md), in the order of the report.
WIDTH_NAMES = tuple(WIDTH_DEFAULTS)


def _default_headroom() -> float:
    from gesture_snn.quantize import DEFAULT_MEMBRANE_HEADROOM

    return DEFAULT_MEMBRANE_HEADROOM


@dataclass(frozen=True, kw_only=True)
class QuantizeOptions:
    """What :func:`quantize` does.

    run: a trained run directory (hardware shape, binary frames). checkpoint: ``best`` or
    ``last``. data: the data root (None: the run's). batch_size: of float and integer inference.
    compare_bits: also report the integer test accuracy at these weight widths (not saved).
    weight_bits: 2..8 (None: the run's QAT bits, else 8); the other widths default to
    :data:`gesture_snn.spec.intnet.WIDTH_DEFAULTS`. membrane_headroom: the membrane range holds
    this many times the highest threshold.
    """

    run: Path
    checkpoint: str = "best"
    data: Path | None = None
    batch_size: int = 64
    compare_bits: tuple[int, ...] = (4,)
    weight_bits: int | None = None
    decay_bits: int = WIDTH_DEFAULTS["decay_bits"]
    membrane_bits: int = WIDTH_DEFAULTS["membrane_bits"]
    adaptation_bits: int = WIDTH_DEFAULTS["adaptation_bits"]
    readout_bits: int = WIDTH_DEFAULTS["readout_bits"]
    score_bits: int = WIDTH_DEFAULTS["score_bits"]
    membrane_headroom: float = field(default_factory=_default_headroom)
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        as_paths(self, "run", "data", "cache_dir")
        as_tuple(self, "compare_bits")
        check_choice("checkpoint", self.checkpoint, ("best", "last"))
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        check_number("membrane_headroom", self.membrane_headroom, positive=True)
        if self.weight_bits is not None and not 2 <= self.weight_bits <= 8:
            raise UserError(f"--weight-bits {self.weight_bits}: the hardware takes weights of 2 to 8 bits")


@dataclass(frozen=True)
class QuantizeResult(StageResult):
    """The integer network written to ``RUN/integer`` and the report's ``quantize`` section."""

    network: object  # gesture_snn.spec.intnet.IntegerNetwork

    @property
    def int_test_accuracy(self) -> float | None:
        return self.section["int_test_accuracy"]

    def lines(self) -> list[str]:
        """The summary ``gesture-snn quantize`` prints."""
        net, report = self.network, self.section

        def pct(value):
            return "n/a" if value is None else f"{100 * value:.2f} %"

        lines = [
            f"integer network {net.n_in} -> {net.n_rec} -> {net.n_out}, {net.weight_bits}-bit weights, "
            f"shift_in {net.shift_in}, shift_rec {net.shift_rec}, membrane 2^-{net.membrane_exp}: {report['integer_dir']}",
            f"test accuracy: float {pct(report['float_test_accuracy'])}, integer {pct(report['int_test_accuracy'])}, "
            f"agreement {pct(report['prediction_agreement'])}",
            "saturation events on the training set: "
            + ", ".join(f"{key} {count}" for key, count in report["saturation_events"].items() if key != "total"),
        ]
        for bits, result in report["other_weight_bits"].items():
            if "error" in result:
                lines.append(f"{bits}-bit weights: {result['error']}")
            else:
                lines.append(f"{bits}-bit weights: integer test accuracy {pct(result['int_test_accuracy'])}, "
                             f"agreement {pct(result['prediction_agreement'])}")
        return lines


def quantize(options: QuantizeOptions, *, log: Log = print) -> QuantizeResult:
    """Quantize the run's checkpoint (:func:`gesture_snn.quantize.quantize_network`), save it to
    ``RUN/integer``, run the golden model on the training split (saturation counts) and the test
    split (accuracy, agreement with the float network) and write the ``quantize`` section."""
    with frame_cache(options.cache_dir):
        return _quantize(options, log)


def _quantize(options: QuantizeOptions, log: Log) -> QuantizeResult:
    import numpy as np
    import torch

    from gesture_snn.checkpoints import load_model
    from gesture_snn.framing import load_frames
    from gesture_snn.golden import SATURATING_VARIABLES, predict
    from gesture_snn.quantize import QuantizationError, quantize_network
    from gesture_snn.rundir import Section, check_run_files, integer_dir, update_report

    run_dir = options.run
    check_run_files(run_dir)  # a damaged report.json or metrics.jsonl, before the work
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist; train first (gesture-snn train --run {run_dir})")
    model, config = load_model(run_dir, options.checkpoint)
    qat_bits = config.model.qat_weight_bits
    widths = {name: getattr(options, name) for name in WIDTH_NAMES}
    if widths["weight_bits"] is None:
        widths["weight_bits"] = qat_bits if qat_bits is not None else WIDTH_DEFAULTS["weight_bits"]
    elif qat_bits is not None and widths["weight_bits"] != qat_bits:
        log(f"note: the run was trained with {qat_bits}-bit quantization-aware training; its weights are "
            f"quantized again to {widths['weight_bits']} bits")
    if config.frames.mode != "binary":
        raise UserError(
            f"the run's frames are in {config.frames.mode!r} mode; the integer network takes binary input "
            "(train the hardware network with --frame-mode binary or --preset hardware)"
        )
    try:
        params = model.hardware_parameters()
    except ValueError as exc:
        raise UserError(f"cannot quantize this model: {exc} (train with --preset hardware)") from None
    headroom = options.membrane_headroom
    try:
        net = quantize_network(params, membrane_headroom=headroom, **widths)
    except ValueError as exc:  # IntegerNetwork validation of the widths themselves
        raise UserError(f"cannot quantize: {exc}") from None
    saved = net.save(integer_dir(run_dir))

    root = options.data if options.data is not None else config.data
    train_set = load_frames(root, train=True, config=config.frames, progress=options.progress)
    test_set = load_frames(root, train=False, config=config.frames, progress=options.progress)

    def flat(frames):
        return frames.reshape(len(frames), frames.shape[1], -1)

    x_train, x_test = flat(train_set.frames), flat(test_set.frames)
    labels = test_set.labels
    batch = options.batch_size

    with torch.no_grad():
        float_pred = np.concatenate([
            model.scores(model(torch.from_numpy(x_test[i:i + batch]).float())).argmax(1).numpy()
            for i in range(0, len(x_test), batch)
        ]) if len(x_test) else np.zeros(0, np.int64)
    int_pred, test_saturation = predict(net, x_test, batch_size=batch)
    _, train_saturation = predict(net, x_train, batch_size=batch)

    def accuracy(pred):
        return float(np.mean(pred == labels)) if len(labels) else None

    steps = x_train.shape[1]
    updates = {"a": net.n_rec, "v": net.n_rec, "o": net.n_out, "s": net.n_out if net.decode == "mean" else 0}
    compared = {}
    for bits in options.compare_bits:
        if bits == net.weight_bits:
            continue
        try:
            other = quantize_network(params, membrane_headroom=headroom, **{**widths, "weight_bits": bits})
        except (QuantizationError, ValueError) as exc:
            compared[str(bits)] = {"error": str(exc)}
            continue
        other_pred, other_saturation = predict(other, x_test, batch_size=batch)
        compared[str(bits)] = {
            "int_test_accuracy": accuracy(other_pred),
            "prediction_agreement": float(np.mean(other_pred == float_pred)) if len(labels) else None,
            "saturation_events_test": other_saturation,
        }

    report = {
        "checkpoint": options.checkpoint,
        "qat_weight_bits": qat_bits,
        "integer_dir": str(saved),
        "widths": widths,
        "shift_in": net.shift_in,
        "shift_rec": net.shift_rec,
        "membrane_exp": net.membrane_exp,
        "readout_exp": net.readout_exp,
        "acc_bits": net.acc_bits,
        "decode": net.decode,
        "membrane_headroom": headroom,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "float_test_accuracy": accuracy(float_pred),
        "int_test_accuracy": accuracy(int_pred),
        "prediction_agreement": float(np.mean(int_pred == float_pred)) if len(labels) else None,
        "saturation_events": {**train_saturation, "total": sum(train_saturation.values())},
        "saturation_fraction": {
            key: (train_saturation[key] / (len(x_train) * steps * updates[key]) if updates[key] and len(x_train) else 0.0)
            for key in SATURATING_VARIABLES
        },
        "saturation_events_test": test_saturation,
        "other_weight_bits": compared,
    }
    if report["float_test_accuracy"] is not None:
        report["accuracy_drop_pp"] = 100.0 * (report["float_test_accuracy"] - report["int_test_accuracy"])
    update_report(run_dir, Section.QUANTIZE, report)
    return QuantizeResult(run=run_dir, network=net, section=report)
