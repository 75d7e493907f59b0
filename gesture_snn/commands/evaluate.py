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


def run(args) -> int:
    from gesture_snn.spec.errors import UserError
    from gesture_snn import stages

    if args.whole_recordings:
        if args.integer or args.checkpoint != "best":
            raise UserError("--whole-recordings streams the best checkpoint and, if the run is quantized, its integer "
                            "network; --integer and --checkpoint do not apply")
        result = stages.evaluate_whole_recordings(stages.WholeRecordingsOptions(
            run=args.run, data=args.data, limit=args.limit, cache_dir=args.cache_dir, progress=args.progress))
    else:
        result = stages.evaluate(stages.EvaluateOptions(
            run=args.run, checkpoint=args.checkpoint, integer=args.integer, data=args.data, device=args.device,
            plots=args.plots, raster_sample=args.raster_sample, cache_dir=args.cache_dir, progress=args.progress))
    for line in result.lines():
        print(line)
    return 0
