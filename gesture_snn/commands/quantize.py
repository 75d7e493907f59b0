"""``gesture-snn quantize``: float checkpoint -> integer network, checked with the golden model."""

from __future__ import annotations

from gesture_snn.commands._options import with_cache_dir

HELP = "quantize a trained SRNN to the integer network of docs/fixed_point.md and check it"

DESCRIPTION = (
    "Load the run's best (or last) checkpoint, fold (1 - alpha) into the weights, quantize them "
    "to --weight-bits with one power-of-two scale per matrix, decays to --decay-bits multipliers, "
    "thresholds and adaptation to membrane units, and refuse anything that does not fit the "
    "declared widths. Writes the integer network to RUN/integer/ (manifest.json + .npy arrays), "
    "runs the golden integer model on the training split (saturation counts) and the test split "
    "(accuracy, agreement with the float network), and writes the 'quantize' section of "
    "RUN/report.json. The hardware shape is one recurrent ALIF layer fed by binary frames "
    "(train with --preset hardware). A run trained with --qat BITS is quantized through the "
    "model's weight hooks, which already return weights on the integer grid: the integer weights "
    "are the trained ones (--weight-bits defaults to BITS)."
)


def add_arguments(parser) -> None:
    from gesture_snn.commands._options import add_cache_dir

    add_cache_dir(parser)
    from gesture_snn.intnet import WIDTH_LIMITS
    from gesture_snn.quantize import DEFAULT_MEMBRANE_HEADROOM

    parser.add_argument("--run", metavar="RUNDIR", required=True, help="trained run directory")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint to quantize")
    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the run config's)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size of float and integer inference")
    parser.add_argument("--compare-bits", type=int, nargs="*", default=[4], metavar="N",
                        help="also report the integer test accuracy at these weight widths (not saved)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    widths = parser.add_argument_group("widths in bits (docs/fixed_point.md)")
    widths.add_argument("--weight-bits", type=int, default=None,
                        help="signed symmetric weights, 2..8 (default: the run's --qat bits, else 8)")
    for name, default in (("decay_bits", 12), ("membrane_bits", 16), ("adaptation_bits", 16), ("readout_bits", 24),
                          ("score_bits", 32)):
        lo, hi = WIDTH_LIMITS[name]
        widths.add_argument(f"--{name.replace('_', '-')}", type=int, default=default, help=f"{lo}..{hi}")
    widths.add_argument("--membrane-headroom", type=float, default=DEFAULT_MEMBRANE_HEADROOM,
                        help="the membrane range holds this many times the highest threshold (b0 + beta)")


WIDTH_ARGS = ("weight_bits", "decay_bits", "membrane_bits", "adaptation_bits", "readout_bits", "score_bits")


@with_cache_dir
def run(args) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from gesture_snn.data import load_frames
    from gesture_snn.errors import UserError
    from gesture_snn.golden import SATURATING_VARIABLES, predict
    from gesture_snn.quantize import QuantizationError, quantize_network
    from gesture_snn.rundir import update_report
    from gesture_snn.train import load_model

    run_dir = Path(args.run)
    if run_dir.is_dir():
        from gesture_snn.runs import check_run_files

        check_run_files(run_dir)  # a damaged report.json or metrics.jsonl, before the work
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    from gesture_snn.commands._options import check_number

    check_number("--membrane-headroom", args.membrane_headroom, positive=True)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist; train first (gesture-snn train --run {run_dir})")
    if args.weight_bits is not None and not 2 <= args.weight_bits <= 8:
        raise UserError(f"--weight-bits {args.weight_bits}: the hardware takes weights of 2 to 8 bits")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {args.batch_size}")
    model, config = load_model(run_dir, args.checkpoint)
    qat_bits = config.model.qat_weight_bits
    widths = {name: getattr(args, name) for name in WIDTH_ARGS}
    if widths["weight_bits"] is None:
        widths["weight_bits"] = qat_bits if qat_bits is not None else 8
    elif qat_bits is not None and widths["weight_bits"] != qat_bits:
        print(f"note: the run was trained with {qat_bits}-bit quantization-aware training; its weights are "
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
    try:
        net = quantize_network(params, membrane_headroom=args.membrane_headroom, **widths)
    except ValueError as exc:  # IntegerNetwork validation of the widths themselves
        raise UserError(f"cannot quantize: {exc}") from None
    integer_dir = net.save(run_dir / "integer")
    print(f"integer network {net.n_in} -> {net.n_rec} -> {net.n_out}, {net.weight_bits}-bit weights, "
          f"shift_in {net.shift_in}, shift_rec {net.shift_rec}, membrane 2^-{net.membrane_exp}: {integer_dir}")

    root = args.data if args.data is not None else config.data
    train_set = load_frames(root, train=True, config=config.frames, progress=args.progress)
    test_set = load_frames(root, train=False, config=config.frames, progress=args.progress)

    def flat(frames):
        return frames.reshape(len(frames), frames.shape[1], -1)

    x_train, x_test = flat(train_set.frames), flat(test_set.frames)
    labels = test_set.labels

    with torch.no_grad():
        float_pred = np.concatenate([
            model.scores(model(torch.from_numpy(x_test[i:i + args.batch_size]).float())).argmax(1).numpy()
            for i in range(0, len(x_test), args.batch_size)
        ]) if len(x_test) else np.zeros(0, np.int64)
    int_pred, test_saturation = predict(net, x_test, batch_size=args.batch_size)
    _, train_saturation = predict(net, x_train, batch_size=args.batch_size)

    def accuracy(pred):
        return float(np.mean(pred == labels)) if len(labels) else None

    steps = x_train.shape[1]
    updates = {"a": net.n_rec, "v": net.n_rec, "o": net.n_out, "s": net.n_out if net.decode == "mean" else 0}
    compared = {}
    for bits in args.compare_bits:
        if bits == net.weight_bits:
            continue
        try:
            other = quantize_network(params, membrane_headroom=args.membrane_headroom, **{**widths, "weight_bits": bits})
        except (QuantizationError, ValueError) as exc:
            compared[str(bits)] = {"error": str(exc)}
            continue
        other_pred, other_saturation = predict(other, x_test, batch_size=args.batch_size)
        compared[str(bits)] = {
            "int_test_accuracy": accuracy(other_pred),
            "prediction_agreement": float(np.mean(other_pred == float_pred)) if len(labels) else None,
            "saturation_events_test": other_saturation,
        }

    report = {
        "checkpoint": args.checkpoint,
        "qat_weight_bits": qat_bits,
        "integer_dir": str(integer_dir),
        "widths": widths,
        "shift_in": net.shift_in,
        "shift_rec": net.shift_rec,
        "membrane_exp": net.membrane_exp,
        "readout_exp": net.readout_exp,
        "acc_bits": net.acc_bits,
        "decode": net.decode,
        "membrane_headroom": args.membrane_headroom,
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
    update_report(run_dir, "quantize", report)

    def pct(value):
        return "n/a" if value is None else f"{100 * value:.2f} %"

    print(f"test accuracy: float {pct(report['float_test_accuracy'])}, integer {pct(report['int_test_accuracy'])}, "
          f"agreement {pct(report['prediction_agreement'])}")
    print("saturation events on the training set: "
          + ", ".join(f"{key} {count}" for key, count in train_saturation.items()))
    for bits, result in compared.items():
        if "error" in result:
            print(f"{bits}-bit weights: {result['error']}")
        else:
            print(f"{bits}-bit weights: integer test accuracy {pct(result['int_test_accuracy'])}, "
                  f"agreement {pct(result['prediction_agreement'])}")
    return 0
