"""The ``gesture-snn`` command line: one entry point, one sub-command per pipeline stage.

Each sub-command lives in ``gesture_snn.commands.<name>`` and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports (torch, amaranth) happen inside
``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gesture_snn.spec.errors import UserError

# Order is the pipeline order; it is also the order of `gesture-snn --help`.
COMMANDS = ("synthetic", "fetch", "train", "evaluate", "controls", "experiment", "rate-sweep", "quantize", "simulate",
            "build", "program", "export", "stream", "demo")
#: Old command name -> new one: still accepted for one release, with a deprecation message on stderr.
DEPRECATED_COMMANDS = {"synth": "synthetic"}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` only where X says something: not for flags, not for None."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool) or "%(default)" in (action.help or ""):
            return action.help
        if "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gesture-snn",
        description=(
            "Event-camera gesture recognition with adaptive spiking recurrent networks: "
            "DVS128 Gesture (or the built-in synthetic set) -> frames -> SRNN training -> integer "
            "network -> Amaranth neuron array -> FPGA bitstream. Each stage writes into a run "
            "directory with a machine-readable report.json."
        ),
        epilog="Run `gesture-snn COMMAND --help` for the options of one stage.",
    )
    from gesture_snn import __version__

    parser.add_argument("--version", action="version", version=f"gesture-snn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"gesture_snn.commands.{name.replace('-', '_')}")
        sp = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    for old, new in DEPRECATED_COMMANDS.items():
        module = importlib.import_module(f"gesture_snn.commands.{new.replace('-', '_')}")
        sp = sub.add_parser(
            old,
            help=f"deprecated name of '{new}' ({deprecation_message(old, new)})",
            description=f"{deprecation_message(old, new)}. {getattr(module, 'DESCRIPTION', module.HELP)}",
            formatter_class=_HelpFormatter,
        )
        module.add_arguments(sp)
        sp.set_defaults(_run=_deprecated(old, new, module.run))
    return parser


def deprecation_message(old: str, new: str) -> str:
    return f"'{old}' is deprecated, use '{new}'; it will be removed in the next release"


def _deprecated(old: str, new: str, run):
    def run_with_notice(args) -> int:
        print(f"gesture-snn: {deprecation_message(old, new)}", file=sys.stderr)
        return run(args)

    return run_with_notice


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"gesture-snn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
