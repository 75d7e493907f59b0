"""Hand-made inputs shared by several test modules (importable: the fault-injection tests also
load them in a child process).

``random_frameset``: binary frames whose class shows in which quarter of the frame is active, the
tiny training runs' data. ``INTEGER_RUN_FRAMES``: the frame settings of conftest's
``integer_run_dir``.
"""

from __future__ import annotations

import numpy as np

from gesture_snn.framing import FrameConfig, FrameSet

#: 4 x 4 x 2 binary frames, 10 steps of 20 ms: 32 inputs.
TINY_FRAMES = FrameConfig(size=4, bin_ms=20.0, window_ms=200.0)

#: 4 x 4 x 2 binary frames, 5 steps of 20 ms: 32 inputs, as a run config's "frames" section.
INTEGER_RUN_FRAMES = {"size": 4, "bin_ms": 20.0, "window_ms": 100.0, "mode": "binary"}


def random_frameset(n: int, seed: int, config: FrameConfig = TINY_FRAMES, users=(1, 2, 3, 4)) -> FrameSet:
    """``n`` samples of binary frames whose class shows in which quarter of the frame is active;
    samples go to ``users`` in turn (the tiny runs hold out user 4 for validation)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 11, n)
    frames = (rng.random((n, *config.frame_shape)) < 0.1).astype(np.uint8)
    for i, label in enumerate(labels):
        frames[i, :, label % 2, (label // 2) % 2 * 2, label % 4] = 1
    return FrameSet(
        frames=frames, labels=labels.astype(np.int64), files=[f"f{i}.npy" for i in range(n)],
        users=np.asarray(users, np.int64)[np.arange(n) % len(users)], config=config,
    )
