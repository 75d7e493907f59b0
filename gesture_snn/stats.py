"""Accuracy with honest uncertainty: seeds, and a bootstrap over users.

Samples of one user are not independent (same body, same movements, same lighting folders), so
the confidence intervals resample *users*, not samples: each bootstrap replicate draws as many
users as the split has, with replacement, and pools all samples of the drawn users. With several
seeds, every replicate averages the per-sample correctness over the seeds first, so the interval
is that of the seed-mean accuracy over the population of users (docs/evaluation.md).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["BOOTSTRAP_REPLICATES", "accuracy_summary", "bootstrap_users"]

#: Bootstrap replicates of every interval (fixed, with a fixed seed: the same data give the same interval).
BOOTSTRAP_REPLICATES = 2000


def bootstrap_users(
    correct: np.ndarray,
    users: Sequence[int] | np.ndarray,
    *,
    replicates: int = BOOTSTRAP_REPLICATES,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the accuracy under resampling of users.

    ``correct``: ``[N]`` or ``[seeds, N]`` of 0/1 (or booleans), sample ``i`` by user ``users[i]``.
    Returns ``(low, high)`` at ``level`` (two-sided, equal tails).
    """
    correct = np.atleast_2d(np.asarray(correct, dtype=np.float64))
    users = np.asarray(users)
    if correct.shape[1] != len(users):
        raise ValueError(f"correct has {correct.shape[1]} samples but users has {len(users)}")
    if len(users) == 0:
        raise ValueError("no samples to bootstrap")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    per_sample = correct.mean(0)  # the seed mean of each sample
    names, index = np.unique(users, return_inverse=True)
    sums = np.bincount(index, weights=per_sample, minlength=len(names))
    counts = np.bincount(index, minlength=len(names)).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(replicates, len(names)))
    accuracies = sums[draws].sum(1) / counts[draws].sum(1)
    tail = (1 - level) / 2
    low, high = np.quantile(accuracies, [tail, 1 - tail])
    return float(low), float(high)


def accuracy_summary(correct: np.ndarray, users: Sequence[int] | np.ndarray) -> dict:
    """JSON-ready accuracy of one or several seeds.

    ``correct``: ``[N]`` (one seed) or ``[seeds, N]``. Returns ``mean`` (over seeds of each seed's
    accuracy), ``sd`` (over seeds, ddof 1; 0 for one seed), ``per_seed``, ``ci95`` (bootstrap over
    users of the seed-mean accuracy), ``seeds``, ``n_samples``, ``n_users``.
    """
    correct = np.atleast_2d(np.asarray(correct, dtype=np.float64))
    per_seed = correct.mean(1)
    low, high = bootstrap_users(correct, users)
    return {
        "mean": float(per_seed.mean()),
        "sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0,
        "per_seed": per_seed.tolist(),
        "ci95": [low, high],
        "seeds": len(per_seed),
        "n_samples": int(correct.shape[1]),
        "n_users": int(len(np.unique(np.asarray(users)))),
        "interval": "95 % percentile bootstrap over users",
    }
