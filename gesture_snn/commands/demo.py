"""``gesture-snn demo``: the whole pipeline on the built-in synthetic set, with a report."""

from __future__ import annotations

from pathlib import Path

HELP = "run the whole pipeline on the synthetic set: data, training, integer model, gateware check, bitstream"
DESCRIPTION = (
    "Generate the quick synthetic gesture set (if missing), train the hardware-preset SRNN "
    "(16x16x2 binary frames -> 128 recurrent ALIF -> 11), evaluate it (accuracy, firing rates, "
    "synaptic operations, energy against a dense RNN), quantize it to integers, simulate the "
    "Amaranth neuron core on the whole test split (compiled with CXXRTL) and compare every spike "
    "and state with the golden model, and build the iCE40 UP5K bitstream; beside the network, the controls that remove time (docs/evaluation.md) and the whole-recording streaming evaluation. Prints one summary table and writes "
    "RUN/report.md (plots embedded) and RUN/report.json. A rerun reuses finished stages. "
    "--quick is the reduced version CI runs (tiny data, 2 epochs, 2 samples in the Python simulator)."
)


def _samples(text: str) -> int | str:
    from gesture_snn.commands.simulate import sample_count

    return "all" if text == "all" else sample_count(text)


def add_arguments(parser) -> None:
    parser.add_argument("--run", type=Path, help="run directory (default: runs/demo, runs/demo-quick with --quick)")
    parser.add_argument("--data", type=Path, help="synthetic data root (default: datasets/synthetic, datasets/synthetic-tiny with --quick)")
    parser.add_argument("--quick", action="store_true", help="reduced run: tiny data, 2 epochs, 2 samples in the Python simulator")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the hardware preset's)")
    parser.add_argument("--samples", type=_samples, help="test samples simulated in the gateware, a number or 'all' (default: all, 2 with --quick)")
    parser.add_argument("--backend", choices=("cxxrtl", "amaranth"),
                        help="gateware simulator: cxxrtl (compiled, needs g++; default) or amaranth (Python; default with --quick)")
    parser.add_argument("--target", default="ice40-up5k", help="bitstream target; 'none' skips the build")
    parser.add_argument("--force", action="store_true", help="run every stage again, even those that finished")


def run(args) -> int:
    from gesture_snn.demo import DemoConfig, run_demo
    from gesture_snn.rundir import REPORT_MD_NAME, REPORT_NAME
    from gesture_snn.spec.errors import UserError

    if args.target != "none":  # refused now, not at stage 5
        from hdl.targets import TARGETS

        if args.target not in TARGETS:
            raise UserError(f"--target: unknown target {args.target!r}; expected one of {', '.join(TARGETS)} or none")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    overrides = {
        key: value
        for key, value in (("run", args.run), ("data", args.data), ("epochs", args.epochs), ("sim_samples", args.samples), ("sim_backend", args.backend))
        if value is not None
    }
    overrides["target"] = None if args.target == "none" else args.target
    cfg = DemoConfig.quick(**overrides) if args.quick else DemoConfig(**overrides)
    run_demo(cfg, force=args.force)
    print(f"\nreport: {cfg.run / REPORT_MD_NAME} (numbers in {cfg.run / REPORT_NAME})")
    print(f"run directory: {cfg.run}")
    return 0
