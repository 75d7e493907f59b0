"""What the stages share: option checks with the names of their flags, the frame-cache override,
CPU threads, and the lanes of a hardware stage (the one stage-layer helper that needs ``hdl``)."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

from gesture_snn.spec.errors import UserError

#: Where a stage reports what it does while it runs (the command line prints it).
Log = Callable[[str], None]


def flag(name: str) -> str:
    """The command-line flag of an option field: ``raster_sample`` -> ``--raster-sample``."""
    return f"--{name.replace('_', '-')}"


def check_number(name: str, value, *, minimum=None, positive: bool = False) -> None:
    """UserError naming the option unless ``value`` (if given) is a finite number >= minimum (> 0 if positive)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{flag(name)} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise UserError(f"{flag(name)} must be positive, got {value!r}")
    if minimum is not None and value < minimum:
        raise UserError(f"{flag(name)} must be at least {minimum}, got {value!r}")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UserError(f"{flag(name)} must be one of {', '.join(map(str, choices))}, not {value!r}")


def as_paths(options, *names: str) -> None:
    """Turn the given fields of a frozen options dataclass into Paths (None stays None)."""
    for name in names:
        value = getattr(options, name)
        if value is not None and not isinstance(value, Path):
            object.__setattr__(options, name, Path(value))


def as_tuple(options, name: str) -> None:
    value = getattr(options, name)
    if value is not None and not isinstance(value, tuple):
        object.__setattr__(options, name, tuple(value))


def option_dict(options) -> dict:
    """The fields of an options dataclass as a dict (Paths stay Paths)."""
    return {f.name: getattr(options, f.name) for f in fields(options)}


@contextlib.contextmanager
def frame_cache(cache_dir):
    """The frame cache directory in effect for every frame load of a stage (None: DATA/frame_cache)."""
    from gesture_snn.framing import cache_dir_override

    with cache_dir_override(None if cache_dir is None else os.fspath(cache_dir)):
        yield


def check_threads(threads: int | None) -> None:
    """UserError unless ``threads`` is None or at least 1."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, not {threads}")


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` or :func:`gesture_snn.threads.choose_threads`'s rule."""
    from gesture_snn.threads import choose_threads

    check_threads(threads)
    return choose_threads(threads, world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def target_named(name: str):
    """The :class:`hdl.targets.Target` called ``name``; UserError ``--target: ...`` if there is none."""
    from hdl.targets import target

    try:
        return target(name)
    except ValueError as exc:
        raise UserError(f"--target: {exc}") from None


def check_target(target: str | None) -> None:
    """UserError ``--target: ...`` unless ``target`` (if given) is a name of :data:`hdl.targets.TARGETS`."""
    if target is not None:
        target_named(target)


@dataclass(frozen=True)
class StageResult:
    """What a stage returns: the run directory and the report section it wrote; :meth:`lines` is
    the summary the command line prints."""

    run: Path
    section: dict

    def lines(self) -> list[str]:
        return []


@dataclass(frozen=True)
class Hardware:
    """The lanes a hardware stage uses: ``target`` (a :class:`hdl.targets.Target` or None),
    ``lanes``, ``readout_lanes`` and their :class:`hdl.core.CycleModel`."""

    target: object
    lanes: int
    readout_lanes: int
    cycle_model: object


def resolve_hardware(network, target: str | None = None, *, lanes: int | None = None,
                     readout_lanes: int | None = None, max_lanes: int | None = None) -> Hardware:
    """The lanes for ``target`` (a name of :data:`hdl.targets.TARGETS` or an :class:`hdl.targets.Target`, or None: no board, up to
    ``max_lanes``, default :data:`gesture_snn.spec.memory.DEFAULT_MAX_LANES`): ``lanes`` / ``readout_lanes`` as given or the target's defaults, checked
    against ``network`` (a divisor of n_rec, 1 .. n_out readout lanes). UserError naming
    ``--target`` / ``--lanes`` / ``--readout-lanes`` otherwise."""
    from hdl.core import CycleModel

    from gesture_snn.spec.memory import DEFAULT_MAX_LANES, default_lanes, default_readout_lanes

    # None, a name, or an hdl.targets.Target (a --board's FPGA)
    board = target_named(target) if isinstance(target, str) else target
    if lanes is None:
        lanes = board.default_lanes(network.n_rec) if board else default_lanes(network.n_rec, max_lanes or DEFAULT_MAX_LANES)
    if readout_lanes is None:
        readout_lanes = (board.default_readout_lanes(lanes, network.n_out) if board
                         else default_readout_lanes(lanes, network.n_out))
    try:
        cycle_model = CycleModel(n_in=network.n_in, n_rec=network.n_rec, n_out=network.n_out, lanes=lanes,
                                 readout_lanes=readout_lanes)
    except (ValueError, TypeError) as exc:
        raise UserError(f"--lanes / --readout-lanes: {exc}") from None
    return Hardware(target=board, lanes=lanes, readout_lanes=readout_lanes, cycle_model=cycle_model)
