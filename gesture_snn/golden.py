"""The golden integer model: docs/fixed_point.md in numpy, vectorised over a batch.

:func:`run_golden` runs an :class:`~gesture_snn.spec.intnet.IntegerNetwork` on binary input frames and
returns every state value at every step; the gateware is checked against it bit for bit, and a
deliberately simple scalar twin (``tests/reference_scalar.py``) checks it. :func:`predict` runs
large sets in batches and keeps only the classes and saturation counts.

All arithmetic is exact integer arithmetic in int64 (the widths allowed by
:data:`~gesture_snn.spec.intnet.WIDTH_LIMITS` keep every intermediate far inside int64). The synaptic
sums (step 3, and the readout sum of step 6) are matrix products of 0/1 matrices with weight
matrices; they are done in float32 or float64 BLAS only when every partial sum is an integer of
magnitude below 2^24 or 2^53, where those formats are exact, and in int64 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from gesture_snn.spec.intnet import IntegerNetwork, check_binary_input

__all__ = ["STATE_VARIABLES", "SATURATING_VARIABLES", "GoldenTrace", "run_golden", "predict"]

# Trace fields in spec order, and the variables whose update can saturate (steps 1, 4, 6, 7).
STATE_VARIABLES = ("a", "th", "v", "z", "o", "s")
SATURATING_VARIABLES = ("a", "v", "o", "s")


@dataclass(frozen=True, eq=False)
class GoldenTrace:
    """Every value of every step of a batch run (B samples, T steps).

    ``a``, ``th``, ``v`` [B, T, n_rec]: adaptation, threshold and membrane after steps 1, 2 and 4
    of step t; ``z`` [B, T, n_rec] uint8: spikes of step t (step 5); ``o`` [B, T, n_out]: readout
    after step 6; ``s`` [B, T, n_out]: score after step 7. ``prediction`` [B]: the class, argmax of
    the last score with ties to the lowest index. ``saturation``: number of saturation events per
    variable ("a", "v", "o", "s"), summed over the batch.
    Integer arrays use int32 where the declared width fits, int64 otherwise.
    """

    a: np.ndarray
    th: np.ndarray
    v: np.ndarray
    z: np.ndarray
    o: np.ndarray
    s: np.ndarray
    prediction: np.ndarray
    saturation: Mapping[str, int]

    @property
    def scores(self) -> np.ndarray:
        """The score after the last step, [B, n_out]; ``prediction`` is its argmax."""
        return self.s[:, -1]


def run_golden(net: IntegerNetwork, x) -> GoldenTrace:
    """Run ``net`` on binary inputs ``x`` [B, T, n_in] (bool or 0/1 numbers) from the all-zero state."""
    return _simulate(net, check_binary_input(x, net.n_in), record=True)


def predict(net: IntegerNetwork, x, *, batch_size: int = 256) -> tuple[np.ndarray, dict[str, int]]:
    """Classes [N] and total saturation events per variable for inputs ``x`` [N, T, n_in], in batches.

    Same result as ``run_golden`` (``prediction``, ``saturation``) without keeping the traces, so
    whole data sets fit in memory.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}; expected >= 1")
    x = np.asarray(x)
    predictions = []
    saturation = dict.fromkeys(SATURATING_VARIABLES, 0)
    for start in range(0, max(len(x), 1), batch_size):
        trace = _simulate(net, check_binary_input(x[start:start + batch_size], net.n_in), record=False)
        predictions.append(trace.prediction)
        for key, count in trace.saturation.items():
            saturation[key] += count
    return np.concatenate(predictions), saturation


def _simulate(net: IntegerNetwork, x: np.ndarray, *, record: bool) -> GoldenTrace:
    batch, steps, _ = x.shape
    d = net.decay_bits
    half = np.int64(1 << (d - 1))

    def decay(value, q):  # spec: (q * x + 2^(D-1)) >> D, arithmetic shift = floor
        return (q * value + half) >> d

    ranges = {name: net.range_of(name) for name in ("a", "v", "o", "s")}
    saturation = dict.fromkeys(SATURATING_VARIABLES, 0)

    def saturate(name, value):
        lo, hi = ranges[name]
        saturation[name] += int(np.count_nonzero(value < lo) + np.count_nonzero(value > hi))
        return np.clip(value, lo, hi)

    alpha, rho, alpha_out = net.alpha, net.rho, net.alpha_out
    adapt_inc, threshold_base = net.adapt_inc, net.threshold_base
    # Input current of every step at once (step 3, first term): [B, T, n_rec].
    input_current = _BinaryMatmul(net.w_in.T)(x.reshape(batch * steps, net.n_in))
    input_current = (input_current << net.shift_in).reshape(batch, steps, net.n_rec)
    recurrent_sum, readout_sum = _BinaryMatmul(net.w_rec.T), _BinaryMatmul(net.w_out.T)

    a = np.zeros((batch, net.n_rec), np.int64)
    v = np.zeros((batch, net.n_rec), np.int64)
    z = np.zeros((batch, net.n_rec), bool)
    o = np.zeros((batch, net.n_out), np.int64)
    s = np.zeros((batch, net.n_out), np.int64)
    kept_steps = steps if record else 1
    trace = {
        name: np.zeros((batch, kept_steps, width), _trace_dtype(net, name))
        for name, width in (("a", net.n_rec), ("th", net.n_rec), ("v", net.n_rec), ("z", net.n_rec),
                            ("o", net.n_out), ("s", net.n_out))
    }

    for t in range(steps):
        a = saturate("a", decay(a, rho) + z * adapt_inc)                    # 1. adaptation
        th = threshold_base + a                                             # 2. threshold
        acc = input_current[:, t] + (recurrent_sum(z) << net.shift_rec)     # 3. accumulation
        v = saturate("v", decay(v, alpha) + acc - z * th)                   # 4. membrane
        z = v > th                                                          # 5. spike
        o = saturate("o", decay(o, alpha_out) + readout_sum(z))             # 6. readout
        s = saturate("s", s + o) if net.decode == "mean" else o             # 7. score
        k = t if record else 0
        for name, value in (("a", a), ("th", th), ("v", v), ("z", z), ("o", o), ("s", s)):
            trace[name][:, k] = value

    return GoldenTrace(
        **trace,
        prediction=np.argmax(s, axis=1),  # first maximum: ties go to the lowest class index
        saturation=saturation,
    )


class _BinaryMatmul:
    """Exact ``spikes @ weights`` for 0/1 ``spikes`` [N, K] and integer ``weights`` [K, M], as int64.

    Every partial sum is bounded by K * max|w|; float32 / float64 represent all integers below
    2^24 / 2^53 exactly, so BLAS is used whenever the bound allows it.
    """

    def __init__(self, weights: np.ndarray):
        bound = weights.shape[0] * int(np.abs(weights).max(initial=0))
        self.dtype = np.float32 if bound < 1 << 24 else np.float64 if bound < 1 << 53 else np.int64
        self.weights = weights.astype(self.dtype)

    def __call__(self, spikes: np.ndarray) -> np.ndarray:
        product = spikes.astype(self.dtype) @ self.weights
        return product if self.dtype is np.int64 else product.astype(np.int64)


def _trace_dtype(net: IntegerNetwork, name: str) -> type:
    if name == "z":
        return np.uint8
    lo, hi = net.range_of(name)
    info = np.iinfo(np.int32)
    return np.int32 if info.min <= lo and hi <= info.max else np.int64
