"""``gesture-snn quantize``: float checkpoint -> integer network, checked with the golden model."""

from __future__ import annotations

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
    from gesture_snn.spec.intnet import WIDTH_DEFAULTS, WIDTH_LIMITS
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
                        help="signed symmetric weights, 2..8 (default: the run's --qat bits, else "
                             f"{WIDTH_DEFAULTS['weight_bits']})")
    for name, default in WIDTH_DEFAULTS.items():
        if name == "weight_bits":
            continue
        lo, hi = WIDTH_LIMITS[name]
        widths.add_argument(f"--{name.replace('_', '-')}", type=int, default=default, help=f"{lo}..{hi}")
    widths.add_argument("--membrane-headroom", type=float, default=DEFAULT_MEMBRANE_HEADROOM,
                        help="the membrane range holds this many times the highest threshold (b0 + beta)")


def run(args) -> int:
    from gesture_snn.spec.intnet import WIDTH_DEFAULTS
    from gesture_snn.stages import QuantizeOptions, quantize

    widths = {name: getattr(args, name) for name in WIDTH_DEFAULTS}
    options = QuantizeOptions(run=args.run, checkpoint=args.checkpoint, data=args.data, batch_size=args.batch_size,
                              compare_bits=tuple(args.compare_bits), membrane_headroom=args.membrane_headroom,
                              cache_dir=args.cache_dir, progress=args.progress, **widths)
    for line in quantize(options).lines():
        print(line)
    return 0
