"""``gesture-snn rate-sweep``: accuracy against synaptic operations over firing-rate penalties."""

from __future__ import annotations

from gesture_snn.commands._options import with_cache_dir

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


@with_cache_dir
def run(args) -> int:
    from gesture_snn.commands.train import apply_threads, build_config
    from gesture_snn.experiment import run_rate_sweep

    apply_threads(args)
    result = run_rate_sweep(build_config(args), args.out, weights=sorted({0.0, *args.weights}), seeds=args.seeds,
                            progress=args.progress)
    for p in result["points"]:
        print(f"w={p['weight']:<6g} SOPs/sample {p['sops']:10.4g}  rate {p['firing_rate']:.3f} ({p['firing_rate_hz']:.1f} Hz)  "
              f"val {100 * p['val']['mean']:5.1f}%  test {100 * p['test']['mean']:5.1f}% "
              f"[{100 * p['test']['ci95'][0]:.1f}-{100 * p['test']['ci95'][1]:.1f}]")
    print(f"chosen weight {result['chosen_weight']:g} ({result['rule']}): {result['sops_reduction']:.2f}x fewer operations; "
          f"{args.out}/rate_sweep.png")
    return 0
