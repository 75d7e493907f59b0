"""What the hardware commands (``simulate``, ``build``, ``stream``) read from a run directory.

:meth:`IntegerRun.load` reads ``RUN/integer`` (the integer network of ``gesture-snn quantize``)
and ``RUN/config.json`` and checks that they fit together; :meth:`IntegerRun.test_inputs` frames
the test split with the run's frame settings as the network's input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gesture_snn.config import RunConfig
from gesture_snn.errors import UserError
from gesture_snn.intnet import IntegerNetwork

__all__ = ["IntegerRun"]


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
