"""``gesture-snn rate-sweep``: accuracy against synaptic operations over firing-rate penalties."""

from __future__ import annotations

HELP = "sweep the firing-rate penalty: validation / test accuracy against synaptic operations"

DESCRIPTION = (
    "Train the configuration (as gesture-snn train) at each firing-rate penalty W (the loss gains "
    "W x the mean firing rate) with seeds 0..N-1 into OUT/w<W>/seed<k>; plot validation and test "
    "accuracy (mean, 95 % interval over users) against synaptic operations per sample "
    "(OUT/rate_sweep.png, OUT/rate_sweep.json) and choose the weight with the fewest operations "
    "whose mean validation accuracy is within 1 pp of the unregularised one. See docs/evaluation.md."
)


def add_arguments(parser) -> None:
    from gesture_snn.commands.experiment import add_seed_set_arguments

    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0], metavar="W",
                        help="rate penalties to train (0, the reference, is added if missing)")
    add_seed_set_arguments(parser, seeds=3, out="sweep directory (OUT/w<W>/seed<k>)")


def run(args) -> int:
    from gesture_snn.commands.train import build_config
    from gesture_snn.stages import RateSweepOptions, rate_sweep

    result = rate_sweep(RateSweepOptions(config=build_config(args), out=args.out, weights=tuple(args.weights),
                                         seeds=args.seeds, threads=args.threads, cache_dir=args.cache_dir,
                                         progress=args.progress))
    for line in result.lines():
        print(line)
    return 0
