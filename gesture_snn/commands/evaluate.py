"""``gesture-snn evaluate``: accuracy, confusion, firing rates, operations and energy of a run."""

from __future__ import annotations

HELP = "evaluate a trained run: accuracy, confusion, firing rates, synaptic operations, energy, plots"

DESCRIPTION = (
    "Evaluate the best (or last) checkpoint of a training run on the test split: accuracy, "
    "per-class accuracy, the clockwise / counter-clockwise pairs, confusion matrix, firing rate "
    "per layer, synaptic operations per sample (each input event x fan-out of the input, each "
    "spike x fan-out of its neuron), the multiply-accumulates of a dense RNN of the same shape "
    "and the energy ratio at 0.9 pJ per addition and 4.6 pJ per MAC (Horowitz, ISSCC 2014). "
    "Merges the results into the 'train' section of RUN/report.json and writes PNG plots "
    "(learning curves, confusion matrix, spike raster, time constants) to RUN/plots/. "
    "--integer evaluates the integer network RUN/integer (from gesture-snn quantize) with the "
    "golden integer model instead, the same metrics plus saturation counts, into the 'integer' "
    "entry of the 'quantize' section (the float numbers stay) and RUN/plots/integer_*.png."
)


def add_arguments(parser) -> None:
    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory written by gesture-snn train")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    parser.add_argument("--integer", action="store_true",
                        help="evaluate the integer network RUN/integer with the golden model (gesture-snn quantize first)")
    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the one the run was trained on)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run")
    parser.add_argument("--raster-sample", type=int, default=0, metavar="I", help="test sample shown in the spike raster")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args) -> int:
    from gesture_snn.data import CLASSES
    from gesture_snn.evaluate import evaluate_run

    summary = evaluate_run(
        args.run,
        which=args.checkpoint,
        data=args.data,
        device=args.device,
        integer=args.integer,
        plots=args.plots,
        raster_sample=args.raster_sample,
        progress=args.progress,
    )
    what = "integer network (golden model)" if args.integer else f"{args.checkpoint} checkpoint"
    print(f"test accuracy {100 * summary['test_accuracy']:.1f}% on {summary['n_samples']} samples ({what})")
    for name, acc in zip(CLASSES, summary["per_class_accuracy"].values()):
        print(f"  {name:<16} {'-' if acc is None else f'{100 * acc:5.1f}%'}")
    for pair, stats in summary["rotation_pairs"].items():
        if stats["accuracy"] is not None:
            print(f"  {pair}: {100 * stats['accuracy']:.1f}%, {stats['swapped']} swapped")
    rates = ", ".join(f"{r:.4f}" for r in summary["firing_rates"])
    print(f"firing rate per layer: {rates} spikes/neuron/step; input density {summary['input_density']:.4f}")
    print(
        f"synaptic operations {summary['sops_per_sample']:.3g} per sample vs {summary['dense_macs_per_sample']:.3g} "
        f"dense MACs: energy ratio {summary['energy_ratio']:.1f}x (0.9 pJ/AC, 4.6 pJ/MAC)"
    )
    if args.integer:
        saturation = ", ".join(f"{name} {count}" for name, count in summary["saturation_events_test"].items())
        print(f"saturation events on the test split: {saturation}")
    where = "quantize section, 'integer' entry" if args.integer else "train section"
    print(f"report: {args.run}/report.json ({where}); plots: {args.run}/plots/")
    return 0
