"""``gesture-snn synthetic``: write the built-in synthetic gesture set in tonic's DVSGesture layout."""

from __future__ import annotations

HELP = "write the built-in synthetic DVS128-Gesture-like event set (tonic's on-disk layout)"

DESCRIPTION = (
    "Simulate an event camera filming 29 users performing the 11 DVS128 Gesture classes and write "
    "the recordings as OUT/DVSGesture/ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<label>.npy "
    "(x, y, p, t in ms) plus placeholder archives, so that tonic.datasets.DVSGesture(OUT) loads them "
    "without a download. Users 1-23 are the training split, 24-29 the test split. The same seed "
    "gives the same bytes. Limbs are brighter or darker than the background at random, so the "
    "direction of an arm circle can only be read from the order of frames. Sizes: quick (2-2.8 s "
    "recordings, 506 train + 132 test, the demo default, about half a minute on 2 cores), full (4-8 s "
    "recordings, 1077 train + 264 test like the real set), tiny (0.3 s recordings, for tests). "
    "See docs/synthetic_data.md."
)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--out",
        default="datasets/synthetic",
        metavar="DIR",
        help="data root: the set goes to DIR/DVSGesture (pass DIR to tonic or to --data)",
    )
    parser.add_argument("--size", choices=("quick", "full", "tiny"), default="quick", help="how much to generate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole set (>= 0)")
    parser.add_argument(
        "--force", action="store_true", help="regenerate even if the same (or another) synthetic set is there"
    )
    parser.add_argument("--workers", type=int, default=None, help="processes to render with (default: up to 2)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args) -> int:
    from gesture_snn.spec.errors import UserError
    from gesture_snn.synthetic import generate

    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    summary = generate(
        args.out, size=args.size, seed=args.seed, force=args.force, workers=args.workers, progress=args.progress
    )
    print(summary)
    return 0
