"""The rounding rule of the integer network's weights, shared by the quantizer
(:mod:`gesture_snn.quantize`) and quantization-aware training (:mod:`gesture_snn.qat`).

docs/fixed_point.md: a folded weight matrix ``W`` gets the power-of-two scale ``2^e`` with ``e``
the largest integer for which every weight rounds into range,
``round(max|W| * 2^e) <= wmax = 2^(weight_bits-1) - 1`` (:func:`weight_exponent`), and
``W * 2^e`` is rounded half up, ``floor(x + 1/2)`` (:func:`round_half_up`, the rounding of the
spec's ``decay``).
"""

from __future__ import annotations

import math

import numpy as np

from gesture_snn.spec.intnet import EXP_LIMITS

__all__ = ["round_half_up", "weight_exponent"]


def round_half_up(x: np.ndarray) -> np.ndarray:
    """``floor(x + 1/2)`` as int64: round to nearest, ties towards +infinity."""
    return np.floor(np.asarray(x, np.float64) + 0.5).astype(np.int64)


def weight_exponent(max_abs: float, weight_bits: int) -> int | None:
    """Largest ``e`` with ``round(max_abs * 2^e) <= wmax = 2^(weight_bits-1) - 1`` (round half
    up: ``max_abs * 2^e < wmax + 1/2``); None for an all-zero matrix.

    Rounding first makes the rule robust to float noise: weights that already lie on a grid
    ``k * 2^-e`` (fake-quantized by QAT, then folded again in another precision) keep ``e`` even
    when the largest, ``wmax * 2^-e``, comes back a few ulps too large.
    Clamped to the exponent range of :class:`~gesture_snn.spec.intnet.IntegerNetwork` scales.
    """
    if max_abs == 0:
        return None
    wmax = (1 << (weight_bits - 1)) - 1
    e = math.floor(math.log2(wmax / max_abs))
    # guard against log2 rounding at exact powers of two
    while max_abs * 2.0**e >= wmax + 0.5:
        e -= 1
    while max_abs * 2.0 ** (e + 1) < wmax + 0.5:
        e += 1
    return int(min(max(e, EXP_LIMITS[0]), EXP_LIMITS[1]))
