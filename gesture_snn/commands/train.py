"""``gesture-snn train``: train the SRNN on a DVS gesture root into a run directory."""

from __future__ import annotations

HELP = "train the adaptive spiking recurrent network (SRNN) on DVS gesture frames"

DESCRIPTION = (
    "Train the multiple-timescale SRNN (adaptive LIF neurons, learned time constants, "
    "multi-Gaussian surrogate gradient) on a DVS128-Gesture-layout data root. Writes "
    "RUN/config.json, RUN/metrics.jsonl (one line per epoch), RUN/checkpoints/last.pt and best.pt "
    "(atomically, every epoch) and the 'train' section of RUN/report.json. Settings come from "
    "--preset, then --config FILE (a JSON object with optional 'model', 'train', 'frames' "
    "sections), then the flags; with --init-from RUN the source run's configuration takes the "
    "place of the preset. --qat [BITS] trains with fake-quantized folded weights (quantization-"
    "aware training; --qat-epochs N: only the last N epochs), so that `gesture-snn quantize` "
    "gives an integer network with the trained weights. --resume continues a stopped run from "
    "its last checkpoint. "
    "Data-parallel: `torchrun --standalone --nproc-per-node N -m gesture_snn.cli -- train ...` "
    "(one process per GPU, or CPU processes with gloo; the `--` keeps torchrun from reading --run "
    "as its own --run-path). See docs/training.md."
)

from gesture_snn.commands._options import add_cache_dir

# flag -> (section, field); None values (flag not given) leave the field alone
_OVERRIDES = {
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "lr": ("train", "lr"),
    "lr_tau": ("train", "lr_tau"),
    "weight_decay": ("train", "weight_decay"),
    "schedule": ("train", "schedule"),
    "grad_clip": ("train", "grad_clip"),
    "shift": ("train", "shift"),
    "seed": ("train", "seed"),
    "qat_epochs": ("train", "qat_epochs"),
    "val_users": ("train", "val_users"),
    "patience": ("train", "patience"),
    "rate_penalty": ("train", "rate_penalty"),
    "architecture": ("model", "architecture"),
    "qat": ("model", "qat_weight_bits"),
    "hidden": ("model", "hidden"),
    "feedforward": ("model", "feedforward"),
    "neuron": ("model", "neuron"),
    "decode": ("model", "decode"),
    "frame_size": ("frames", "size"),
    "bin_ms": ("frames", "bin_ms"),
    "window_ms": ("frames", "window_ms"),
    "frame_mode": ("frames", "mode"),
    "frame_threshold": ("frames", "threshold"),
}
# may change when resuming
_RESUME_OVERRIDES = ("epochs",)


def add_arguments(parser) -> None:
    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the config's, datasets/synthetic)")
    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory to write")
    parser.add_argument("--resume", action="store_true", help="continue RUNDIR from its last checkpoint")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to train")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or epoch lines")
    add_threads_argument(parser)
    add_cache_dir(parser)
    add_config_arguments(parser)


def add_threads_argument(parser) -> None:
    parser.add_argument("--threads", type=int, metavar="N", default=None,
                        help="intra-op CPU threads (default: the cores this process may use, shared among the torchrun "
                        "processes of this machine, less the cores other work keeps busy; docs/benchmarks.md)")


def add_config_arguments(parser) -> None:
    """The flags that make a RunConfig (:func:`build_config`): preset, --config, --init-from and
    one flag per field (shared with ``gesture-snn experiment`` and ``rate-sweep``)."""
    from gesture_snn import neurons
    from gesture_snn.config import ARCHITECTURES, DECODES, NEURONS, PRESETS, SCHEDULES

    parser.add_argument("--config", metavar="FILE", default=None, help="JSON file with 'model' / 'train' / 'frames' fields")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="starting configuration: 'hardware' = 16x16x2 binary input -> 128 recurrent ALIF -> 11 "
                        "(what the integer model and the FPGA run), 'default' (the default) = 32x32x2 -> 256 -> 11, 'paper' = the "
                        "hardware shape with the SRNN authors' settings (docs/training.md)")
    parser.add_argument("--init-from", metavar="RUNDIR_OR_CHECKPOINT", default=None,
                        help="start from the weights (best checkpoint) and the configuration of another run, e.g. to "
                        "fine-tune a float run with --qat; flags change its configuration")

    opt = parser.add_argument_group("optimisation (default: the preset's)")
    opt.add_argument("--epochs", type=int, help="passes over the training split")
    opt.add_argument("--batch-size", type=int, help="global batch size")
    opt.add_argument("--lr", type=float, help="AdamW learning rate of the weights")
    opt.add_argument("--lr-tau", type=float, help="AdamW learning rate of the time constants")
    opt.add_argument("--weight-decay", type=float, help="AdamW weight decay of the weights")
    opt.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule, stepped per epoch")
    opt.add_argument("--grad-clip", type=float, help="max gradient L2 norm (0 = off)")
    opt.add_argument("--shift", type=int, metavar="PIXELS", help="augmentation: random shift of each training sample by up to PIXELS frame pixels (0 = off)")
    opt.add_argument("--seed", type=int, help="seed of initialisation, data order and augmentation")
    opt.add_argument("--rate-penalty", type=float, metavar="W",
                     help="firing-rate regularisation: add W x the mean firing rate (spikes/neuron/step) to the loss (0 = off)")

    sel = parser.add_argument_group("model selection (docs/evaluation.md; the test users are never looked at)")
    sel.add_argument("--val-users", type=int, nargs="+", metavar="USER",
                     help="training users held out for validation (default 20 21 22 23); the best epoch is chosen on them")
    sel.add_argument("--patience", type=int, metavar="N", help="early stopping after N epochs without a better validation accuracy")

    qat = parser.add_argument_group("quantization-aware training (docs/training.md)")
    qat.add_argument("--qat", type=int, nargs="?", const=8, metavar="BITS",
                     help="train with the folded weights fake-quantized to BITS (2..8, default 8) as "
                     "gesture-snn quantize will quantize them")
    qat.add_argument("--qat-epochs", type=int, metavar="N", help="quantization-aware training only in the last N epochs")
    qat.add_argument("--no-qat", action="store_true", help="float weights (turns off the preset's QAT)")

    net = parser.add_argument_group("network (default: the preset's)")
    net.add_argument("--hidden", type=int, nargs="+", metavar="N", help="recurrent layer sizes, input side first")
    net.add_argument("--feedforward", type=int, metavar="N", help="feed-forward ALIF layer before them (0 = none)")
    net.add_argument("--architecture", choices=ARCHITECTURES,
                     help="srnn (default), or a non-spiking control of the same width: frame_mlp (memoryless per-frame "
                     "MLP), gru, summed_linear (linear on time-summed input)")
    net.add_argument("--neuron", choices=NEURONS, help="; ".join(f"{k}: {v}" for k, v in neurons.NAMES.items()))
    net.add_argument("--decode", choices=DECODES, help="readout decoding: last step, time mean, or loss at every step")

    frames = parser.add_argument_group("frames (default: the preset's)")
    frames.add_argument("--frame-size", type=int, metavar="S", help="frames are S x S (S divides 128)")
    frames.add_argument("--bin-ms", type=float, help="time bin (one step) in ms")
    frames.add_argument("--window-ms", type=float, help="window from the start of each sample, ms")
    frames.add_argument("--frame-mode", choices=("binary", "count"), help="binary spikes or event counts")
    frames.add_argument("--frame-threshold", type=int, metavar="K",
                        help="binary frames: a pixel spikes when at least K events fall into it in a bin (1 = any event)")


def _overrides(args, names) -> dict:
    sections: dict = {}
    for name in names:
        value = getattr(args, name)
        if value is not None:
            section, field = _OVERRIDES[name]
            sections.setdefault(section, {})[field] = value
    return sections


def _with_flags(config, args, names):
    """``config`` with the given flags; a ConfigError names the flag as well as the field."""
    from gesture_snn.config import ConfigError

    try:
        return config.replace(**_overrides(args, names))
    except ConfigError as exc:
        message = str(exc)
        given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None
                 and (f"{_OVERRIDES[name][0]}.{_OVERRIDES[name][1]}" in message or _OVERRIDES[name][1] in message)]
        raise ConfigError(f"{' / '.join(given)}: {message}" if given else message) from None


def build_config(args):
    """The RunConfig of the command line: preset (or the --init-from run's configuration), then
    --config, then flags."""
    from gesture_snn.config import PRESETS, RunConfig, read_json
    from gesture_snn.spec.errors import UserError
    from gesture_snn.checkpoints import load_checkpoint, resolve_checkpoint

    if args.init_from is not None:
        if args.preset is not None:
            raise UserError("--init-from starts from the source run's configuration; give changes as flags, not --preset")
        source = resolve_checkpoint(args.init_from)
        config = RunConfig.from_dict(load_checkpoint(source)["config"]).replace(train={"init_from": str(source)})
    else:
        config = RunConfig.from_dict(PRESETS[args.preset or "default"])
    if args.config:
        config = RunConfig.from_dict(read_json(args.config, what="--config"), base=config)
    config = _with_flags(config, args, _OVERRIDES)
    if args.no_qat:
        if args.qat is not None or args.qat_epochs is not None:
            raise UserError("--no-qat contradicts --qat / --qat-epochs")
        config = config.replace(model={"qat_weight_bits": None}, train={"qat_epochs": None})
    if args.data is not None:
        config = config.replace(data=args.data)
    return config


def run(args) -> int:
    import os
    from pathlib import Path

    from gesture_snn.spec.errors import UserError
    from gesture_snn.stages import TrainOptions, train

    run_dir = Path(args.run)
    if args.resume:
        fixed = [f"--{n.replace('_', '-')}" for n in _OVERRIDES if n not in _RESUME_OVERRIDES and getattr(args, n) is not None]
        fixed += [flag for flag, given in (("--config", args.config), ("--init-from", args.init_from),
                                           ("--no-qat", args.no_qat), ("--preset", args.preset)) if given]
        if fixed:
            raise UserError(
                f"--resume continues {run_dir} with its saved configuration; only --epochs and --data may "
                f"be given, not {' '.join(fixed)}"
            )
        options = TrainOptions(run=run_dir, resume=True, epochs=args.epochs, data=args.data, device=args.device,
                               threads=args.threads, cache_dir=args.cache_dir, progress=args.progress)
    else:
        options = TrainOptions(run=run_dir, config=build_config(args), device=args.device, threads=args.threads,
                               cache_dir=args.cache_dir, progress=args.progress)
    result = train(options)
    if int(os.environ.get("RANK", 0)) == 0:
        for line in result.lines():
            print(line)
    return 0
