"""How many intra-op threads a training process gives torch.

On the CPU, torch splits each large enough operation over its intra-op threads (OpenMP). That
pays only while every thread has a core: when another process keeps a core busy, or when
several torchrun ranks share the cores, each parallel region ends waiting for a thread that the
scheduler has paused, and a step that takes microseconds takes milliseconds. On a 2-core
machine with one other busy process, the fused SRNN trained 12 samples/s with torch's default of
2 threads against 321 with one (docs/benchmarks.md).

:func:`choose_threads` therefore gives each process the cores it may use (its CPU affinity),
divided among the processes of a torchrun job on this machine, less the cores that other work
keeps busy (the 1-minute load average), and at least one.
"""

from __future__ import annotations

import math
import os

import torch

__all__ = ["available_cores", "busy_cores", "choose_threads", "default_threads"]


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def busy_cores() -> float:
    """Cores kept busy on this machine: the 1-minute load average, 0 where there is none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def default_threads(*, world_size: int = 1, cores: int | None = None, busy: float | None = None) -> int:
    """The thread count :func:`choose_threads` picks when none is requested.

    ``cores // world_size`` (each of the ``world_size`` processes of a job on this machine gets
    its share), but no more than the cores left free by other work, ``cores - busy`` rounded
    to the nearest whole core, and at least 1. ``busy`` counts this job too while it runs, so
    call this before training starts.
    """
    cores = available_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, not {world_size}")
    share = max(1, cores // world_size)
    free = cores - math.floor(busy + 0.5)
    return max(1, min(share, free))


def choose_threads(requested: int | None = None, *, world_size: int = 1) -> int:
    """Set torch's intra-op threads for this process and return the number.

    ``requested`` (e.g. a ``--threads`` option) wins when given; otherwise
    :func:`default_threads` for a job of ``world_size`` processes on this machine (the torchrun
    ``LOCAL_WORLD_SIZE``, 1 without torchrun).
    """
    if requested is not None:
        if int(requested) != requested or requested < 1:
            raise ValueError(f"threads must be a whole number of at least 1, not {requested!r}")
        threads = int(requested)
    else:
        threads = default_threads(world_size=world_size)
    torch.set_num_threads(threads)
    return threads
