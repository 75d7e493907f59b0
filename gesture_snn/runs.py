"""What the stages read from a run directory, checked the same way by every stage.

:func:`check_run_files` checks that ``report.json`` and ``metrics.jsonl`` are readable (before
a stage does its expensive work); :meth:`IntegerRun.load` reads ``RUN/integer`` (the integer
network of ``gesture-snn quantize``, its checksums verified) and ``RUN/config.json`` and checks
that they fit together (binary frames, the frames' inputs = the network's ``n_in``);
:meth:`IntegerRun.hardware` resolves and checks the lanes for a target. ``simulate``, ``build``,
``stream`` and ``evaluate --integer`` go through them. :meth:`IntegerRun.test_inputs` frames the
test split with the run's frame settings as the network's input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gesture_snn.config import RunConfig
from gesture_snn.errors import UserError
from gesture_snn.intnet import IntegerNetwork

__all__ = ["Hardware", "IntegerRun", "check_run_files"]


def check_run_files(run_dir: str | os.PathLike) -> dict:
    """UserError naming the file unless ``RUN/report.json`` (if present) is a JSON object and
    every line of ``RUN/metrics.jsonl`` (if present) is a JSON object; returns the report."""
    import json

    from gesture_snn.rundir import read_report

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return {}  # the stage's own loaders say what to create
    report = read_report(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists():
        try:
            lines = metrics.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise UserError(f"{metrics} is damaged (not UTF-8: {exc}); gesture-snn train --run {run_dir} --resume "
                            "rewrites it from the last checkpoint") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                raise UserError(f"{metrics} line {number} is damaged ({line[:60]!r}); gesture-snn train --run {run_dir} "
                                "--resume rewrites it from the last checkpoint")
    return report


@dataclass(frozen=True)
class Hardware:
    """The lanes a hardware stage uses: ``target`` (a :class:`hdl.targets.Target` or None),
    ``lanes``, ``readout_lanes`` and their :class:`hdl.core.CycleModel`."""

    target: object
    lanes: int
    readout_lanes: int
    cycle_model: object


@dataclass(frozen=True)
class IntegerRun:
    """A run directory's integer network and configuration, checked against each other.

    ``run_dir``: the run directory; ``network``: ``RUN/integer``; ``config``: ``RUN/config.json``.
    Use :meth:`load`.
    """

    run_dir: Path
    network: IntegerNetwork
    config: RunConfig

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "IntegerRun":
        """Load ``run_dir/integer`` and ``run_dir/config.json``.

        Raises :class:`~gesture_snn.errors.UserError` (or the loaders' own errors, which are
        UserErrors) if either is missing or malformed, if the run's frames are not binary (the
        integer network takes one event per active input per step) or if they do not have the
        network's ``n_in`` inputs.
        """
        run_dir = Path(run_dir)
        check_run_files(run_dir)
        network = IntegerNetwork.load(run_dir / "integer")
        config = RunConfig.load(run_dir / "config.json")
        if config.frames.mode != "binary":
            raise UserError(
                f"the run's frames are in {config.frames.mode!r} mode; the integer network takes binary "
                "input (train the hardware network with --frame-mode binary)"
            )
        if config.frames.n_inputs != network.n_in:
            raise UserError(
                f"the run's frames have {config.frames.n_inputs} inputs but {run_dir / 'integer'} has n_in = "
                f"{network.n_in}; quantize the run again"
            )
        return cls(run_dir=run_dir, network=network, config=config)

    def hardware(self, target: str | None = None, *, lanes: int | None = None, readout_lanes: int | None = None,
                 max_lanes: int = 8) -> Hardware:
        """The lanes for ``target`` (a name of :data:`hdl.targets.TARGETS`, or None: no board, up to
        ``max_lanes``): ``lanes`` / ``readout_lanes`` as given or the target's defaults, checked
        against the network (a divisor of n_rec, 1 .. n_out readout lanes). UserError naming
        ``--target`` / ``--lanes`` / ``--readout-lanes`` otherwise."""
        from hdl.core import CycleModel
        from hdl.targets import largest_divisor
        from hdl.targets import target as target_named

        board = None
        if target is not None:
            try:
                board = target_named(target)
            except ValueError as exc:
                raise UserError(f"--target: {exc}") from None
        net = self.network
        if lanes is None:
            lanes = board.default_lanes(net.n_rec) if board else largest_divisor(net.n_rec, max_lanes)
        if readout_lanes is None:
            readout_lanes = board.default_readout_lanes(lanes, net.n_out) if board else min(lanes, net.n_out)
        try:
            cycle_model = CycleModel(n_in=net.n_in, n_rec=net.n_rec, n_out=net.n_out, lanes=lanes,
                                     readout_lanes=readout_lanes)
        except (ValueError, TypeError) as exc:
            raise UserError(f"--lanes / --readout-lanes: {exc}") from None
        return Hardware(target=board, lanes=lanes, readout_lanes=readout_lanes, cycle_model=cycle_model)

    def test_inputs(self, *, data: str | os.PathLike | None = None,
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The test split as the network's input: ``(inputs, labels)``.

        ``inputs`` is ``uint8 [N, T, n_in]`` (0 or 1; T = the run's ``frames.n_steps``), sample
        ``k`` of the split framed with the run's frame settings; ``labels`` is ``int64 [N]``.
        ``data``: the data root (default: the run config's); ``progress``: show a progress bar
        while the split is framed (only on a cache miss).
        """
        from gesture_snn.data import load_frames

        frames = self.config.frames
        frameset = load_frames(data or self.config.data, train=False, config=frames, progress=progress)
        return frameset.frames.reshape(len(frameset), frames.n_steps, self.network.n_in), frameset.labels
