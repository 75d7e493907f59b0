"""Options shared by several stages (not a command itself): ``--cache-dir`` and flag checks."""

from __future__ import annotations

import functools
import math


def add_cache_dir(parser) -> None:
    """``--cache-dir DIR``: where the frame cache goes (default DATA/frame_cache); for read-only data roots."""
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="frame cache directory (default: DATA/frame_cache); for a read-only or full data root")


def with_cache_dir(run):
    """Run a stage with its ``--cache-dir`` in effect for every frame load (gesture_snn.data.cache_dir_override)."""

    @functools.wraps(run)
    def wrapped(args) -> int:
        from gesture_snn.data import cache_dir_override

        with cache_dir_override(getattr(args, "cache_dir", None)):
            return run(args)

    return wrapped


def check_number(flag: str, value, *, minimum=None, positive: bool = False) -> None:
    """UserError naming ``flag`` unless ``value`` (if given) is a finite number >= minimum (> 0 if positive)."""
    from gesture_snn.errors import UserError

    if value is None:
        return
    if not math.isfinite(value):
        raise UserError(f"{flag} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise UserError(f"{flag} must be positive, got {value!r}")
    if minimum is not None and value < minimum:
        raise UserError(f"{flag} must be at least {minimum}, got {value!r}")
