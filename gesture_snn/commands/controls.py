"""``gesture-snn controls``: the controls that remove time, on one trained run."""

from __future__ import annotations

HELP = "controls that remove time (reversed, shuffled, no adaptation, no recurrence, memoryless MLP, LIF, ...)"

DESCRIPTION = (
    "Score a trained run's selected network on the test users beside controls that remove time: "
    "at inference the time-reversed input, frames shuffled within each sample, adaptation off "
    "(beta = 0) and recurrent weights zeroed; trained with the same protocol (validation users, "
    "one test evaluation) into RUN/controls/NAME: a memoryless per-frame MLP of the same width "
    "(logits averaged over time), the LIF network, a linear classifier on the time-summed input "
    "and a GRU (the non-spiking baseline). Each with a 95 % interval from a bootstrap over test "
    "users and the clockwise / counter-clockwise within-pair accuracy (chance 50 %). Writes the "
    "'controls' section of RUN/report.json and RUN/plots/controls.png. For several seeds use "
    "gesture-snn experiment. See docs/evaluation.md."
)


def add_arguments(parser) -> None:
    from gesture_snn.commands._options import add_cache_dir
    from gesture_snn.commands.train import add_threads_argument
    from gesture_snn.controls import INFERENCE_CONTROLS, TRAINED_CONTROLS

    parser.add_argument("--run", metavar="RUNDIR", required=True, help="a finished training run (gesture-snn train)")
    parser.add_argument("--controls", nargs="+", choices=INFERENCE_CONTROLS + TRAINED_CONTROLS,
                        default=list(INFERENCE_CONTROLS + TRAINED_CONTROLS), metavar="NAME",
                        help=f"which controls (default: all: {' '.join(INFERENCE_CONTROLS + TRAINED_CONTROLS)})")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_threads_argument(parser)
    add_cache_dir(parser)


def run(args) -> int:
    from gesture_snn.stages import ControlsOptions, controls

    result = controls(ControlsOptions(run=args.run, controls=tuple(args.controls), threads=args.threads,
                                      cache_dir=args.cache_dir, progress=args.progress))
    for line in result.lines():
        print(line)
    return 0
