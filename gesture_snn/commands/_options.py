"""Options shared by several commands (not a command itself): ``--cache-dir``."""

from __future__ import annotations


def add_cache_dir(parser) -> None:
    """``--cache-dir DIR``: where the frame cache goes (default DATA/frame_cache); for read-only data roots."""
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="frame cache directory (default: DATA/frame_cache); for a read-only or full data root")
