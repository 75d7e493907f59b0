"""``gesture-snn experiment``: several seeds of one protocol with all controls, and intervals."""

from __future__ import annotations

HELP = "train N seeds with the validation protocol, run the controls on each, report mean +- sd and intervals"

DESCRIPTION = (
    "Train the configuration given by --preset / --config / the flags (as gesture-snn train) with "
    "seeds 0..N-1 into OUT/seed<k>, selecting each on the validation users and testing it once, "
    "then run the controls on each (gesture-snn controls). Reports every accuracy as the mean +- "
    "sd over seeds with a 95 % interval from a bootstrap over test users, and the cw/ccw "
    "within-pair accuracy: OUT/experiment.json, OUT/experiment.md, OUT/controls.png. Finished "
    "runs are reused, so a stopped experiment continues. See docs/evaluation.md."
)


def add_arguments(parser) -> None:
    from gesture_snn.controls import INFERENCE_CONTROLS, TRAINED_CONTROLS

    parser.add_argument("--controls", nargs="*", choices=INFERENCE_CONTROLS + TRAINED_CONTROLS,
                        default=list(INFERENCE_CONTROLS + TRAINED_CONTROLS), metavar="NAME",
                        help="controls to run on every seed (default: all; none: --controls with no name)")
    add_seed_set_arguments(parser, seeds=5, out="experiment directory (one run directory per seed)")


def add_seed_set_arguments(parser, *, seeds: int, out: str) -> None:
    """The flags of a command that trains one configuration with several seeds (experiment, rate-sweep)."""
    from gesture_snn.commands._options import add_cache_dir
    from gesture_snn.commands.train import add_config_arguments, add_threads_argument

    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the config's, datasets/synthetic)")
    parser.add_argument("--out", metavar="DIR", required=True, help=out)
    parser.add_argument("--seeds", type=int, default=seeds, metavar="N", help="number of seeds (0, 1, ... N-1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars or epoch lines")
    add_threads_argument(parser)
    add_cache_dir(parser)
    add_config_arguments(parser)


def run(args) -> int:
    from gesture_snn.commands.train import build_config
    from gesture_snn.stages import ExperimentOptions, experiment

    result = experiment(ExperimentOptions(config=build_config(args), out=args.out, seeds=args.seeds,
                                          controls=tuple(args.controls), threads=args.threads,
                                          cache_dir=args.cache_dir, progress=args.progress))
    for line in result.lines():
        print(line)
    return 0
