"""``gesture-snn evaluate``: accuracy, confusion, firing rates, operations and energy of a run."""

from __future__ import annotations

from gesture_snn.commands._options import with_cache_dir

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
    from gesture_snn.commands._options import add_cache_dir

    add_cache_dir(parser)
    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory written by gesture-snn train")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    parser.add_argument("--integer", action="store_true",
                        help="evaluate the integer network RUN/integer with the golden model (gesture-snn quantize first)")
    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the one the run was trained on)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run")
    parser.add_argument("--raster-sample", type=int, default=0, metavar="I", help="test sample shown in the spike raster")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="skip the PNG plots")
    parser.add_argument("--whole-recordings", action="store_true",
                        help="instead: stream every whole test recording through the network (state carried from the "
                        "first event to the last, a decision at every step) and, if quantized, the integer network; "
                        "latency-accuracy curve, end accuracy, time to a stable decision ('streaming' section)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="with --whole-recordings: the first N recordings")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


@with_cache_dir
def run(args) -> int:
    from gesture_snn.data import CLASSES
    from gesture_snn.evaluate import evaluate_run
    from gesture_snn.errors import UserError
    from gesture_snn.runs import check_run_files

    check_run_files(args.run)  # a damaged report.json or metrics.jsonl, before the evaluation
    if args.raster_sample < 0:
        raise UserError(f"--raster-sample must be a test sample index >= 0, got {args.raster_sample}")

    if args.whole_recordings:
        return _stream(args)

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
        f"dense MACs: energy ratio "
        f"{'n/a (no operations)' if summary['energy_ratio'] is None else format(summary['energy_ratio'], '.1f') + 'x'} "
        f"(0.9 pJ/AC, 4.6 pJ/MAC)"
    )
    if args.integer:
        saturation = ", ".join(f"{name} {count}" for name, count in summary["saturation_events_test"].items())
        print(f"saturation events on the test split: {saturation}")
    where = "quantize section, 'integer' entry" if args.integer else "train section"
    print(f"report: {args.run}/report.json ({where}); plots: {args.run}/plots/")
    return 0


def _stream(args) -> int:
    from gesture_snn.errors import UserError
    from gesture_snn.streaming import stream_run

    if args.integer or args.checkpoint != "best":
        raise UserError("--whole-recordings streams the best checkpoint and, if the run is quantized, its integer "
                        "network; --integer and --checkpoint do not apply")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, not {args.limit}")
    section = stream_run(args.run, data=args.data, limit=args.limit, progress=args.progress)
    for name in ("float", "integer"):
        if name in section:
            s = section[name]
            stable = s["time_to_stable_ms"]
            median = "-" if stable["median"] is None else f"{stable['median']:.0f} ms"
            print(f"{name}: {s['n_recordings']} whole recordings ({s['duration_ms']['min'] / 1000:.1f}-"
                  f"{s['duration_ms']['max'] / 1000:.1f} s): accuracy at the end {100 * s['end']['mean']:.1f}% "
                  f"[{100 * s['end']['ci95'][0]:.1f}-{100 * s['end']['ci95'][1]:.1f}], stable right decision in "
                  f"{100 * stable['fraction_stable']:.0f}% of them after a median {median}")
    print(f"report: {args.run}/report.json (streaming section); plot: {args.run}/{section['plot']}")
    return 0
