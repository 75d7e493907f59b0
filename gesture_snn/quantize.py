"""Float SRNN parameters -> :class:`~gesture_snn.spec.intnet.IntegerNetwork` (docs/fixed_point.md).

:func:`quantize_network` takes the float parameters of ``SRNN.hardware_parameters()`` (one
recurrent ALIF layer, weights before folding) and

1. folds ``(1 - alpha_j)`` into row j of ``w_in`` and ``w_rec`` and ``(1 - alpha_out_k)`` into
   row k of ``w_out``;
2. gives each folded matrix a power-of-two scale ``2^e`` with ``e`` the largest integer for which
   every weight rounds into range, ``round(max|W| * 2^e) <= wmax = 2^(weight_bits-1) - 1``
   (:func:`~gesture_snn.spec.fixed_point.weight_exponent`), and rounds ``W * 2^e`` half up
   (``floor(x + 1/2)``, the rounding of the spec's ``decay``);
3. picks the membrane exponent ``e_v``: the largest one for which the highest threshold
   ``(b0 + beta) * 2^e_v`` times ``membrane_headroom`` still fits the membrane, and not more than
   15 above the input/recurrent weight exponents (``shift_in``, ``shift_rec`` <= 15); a weight
   exponent above ``e_v`` is lowered to ``e_v`` (shift 0);
4. rounds decays to ``decay_bits`` (``round(alpha * 2^D)``), the base threshold to membrane units
   and the adaptation increment to ``c_j = round(beta * (1 - rho_j) * 2^e_v)``.

Anything that does not fit its declared width is refused with a :class:`QuantizationError` that
names the parameter, its value and the width; saturation of *states* is not refused here but
counted by the golden model.

Quantization-aware training uses :func:`gesture_snn.qat.fake_quantize_folded` (PyTorch,
straight-through gradient), which applies the weight rule of steps 1-2 (the rounding of
:mod:`gesture_snn.spec.fixed_point`) to the float weights in the forward pass. (Step 3 can
lower a weight exponent further when a matrix's weights are finer than one membrane unit; QAT
ignores that rare case.) Quantizing fake-quantized weights again gives the same integers, so a
QAT model's hooks may return fake-quantized weights to ``hardware_parameters()``.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.fixed_point import round_half_up, weight_exponent
from gesture_snn.spec.intnet import EXP_LIMITS, SHIFT_LIMITS, WIDTH_DEFAULTS, WIDTH_LIMITS, IntegerNetwork

__all__ = [
    "DEFAULT_MEMBRANE_HEADROOM",
    "QuantizationError",
    "quantize_network",
]

#: The membrane range holds this many times the highest threshold (b0 + beta), so that the
#: membrane has room above threshold and below zero (after resets and inhibition).
DEFAULT_MEMBRANE_HEADROOM = 4.0

_REQUIRED = ("w_in", "w_rec", "w_out", "alpha", "rho", "alpha_out", "b0", "beta", "decode")


class QuantizationError(UserError, ValueError):
    """Float parameters that cannot become the integer network of docs/fixed_point.md."""


def quantize_network(
    params: Mapping,
    *,
    weight_bits: int = WIDTH_DEFAULTS["weight_bits"],
    decay_bits: int = WIDTH_DEFAULTS["decay_bits"],
    membrane_bits: int = WIDTH_DEFAULTS["membrane_bits"],
    adaptation_bits: int = WIDTH_DEFAULTS["adaptation_bits"],
    readout_bits: int = WIDTH_DEFAULTS["readout_bits"],
    score_bits: int = WIDTH_DEFAULTS["score_bits"],
    membrane_headroom: float = DEFAULT_MEMBRANE_HEADROOM,
) -> IntegerNetwork:
    """Quantize float SRNN parameters (``SRNN.hardware_parameters()``) to an :class:`IntegerNetwork`.

    ``params``: ``w_in [n_rec, n_in]``, ``w_rec [n_rec, n_rec]``, ``w_out [n_out, n_rec]``,
    ``alpha``, ``rho [n_rec]``, ``alpha_out [n_out]`` (per-step decays in [0, 1)), ``b0`` and
    ``beta`` (membrane units; scalars or per neuron), ``decode`` ("last"/"mean") and optionally
    ``adaptive`` (False: no adaptation, ``adapt_inc = 0``). Widths in bits as in
    docs/fixed_point.md; ``membrane_headroom`` (>= 1): how many times the highest threshold the
    membrane range must hold. Raises :class:`QuantizationError` for anything that does not fit.
    """
    missing = [key for key in _REQUIRED if key not in params]
    if missing:
        raise QuantizationError(f"float parameters lack {', '.join(missing)} (expected SRNN.hardware_parameters())")
    widths = dict(weight_bits=weight_bits, decay_bits=decay_bits, membrane_bits=membrane_bits,
                  adaptation_bits=adaptation_bits, readout_bits=readout_bits, score_bits=score_bits)
    for name, value in widths.items():
        lo, hi = WIDTH_LIMITS[name]
        if not (isinstance(value, int) and lo <= value <= hi):
            raise QuantizationError(f"{name} = {value!r} is outside the supported range [{lo}, {hi}] bits")
    if not membrane_headroom >= 1:
        raise QuantizationError(f"membrane_headroom = {membrane_headroom}; expected >= 1")
    w_in, w_rec, w_out = (_float_array(params, name, ndim=2) for name in ("w_in", "w_rec", "w_out"))
    n_rec, n_in = w_in.shape
    n_out = w_out.shape[0]
    expected = {"w_rec": (n_rec, n_rec), "w_out": (n_out, n_rec), "alpha": (n_rec,), "rho": (n_rec,),
                "alpha_out": (n_out,)}
    arrays = {"w_rec": w_rec, "w_out": w_out}
    for name in ("alpha", "rho", "alpha_out"):
        arrays[name] = _float_array(params, name, ndim=1)
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise QuantizationError(f"{name} has shape {arrays[name].shape}; expected {shape} (n_rec = {n_rec} and "
                                    f"n_in = {n_in} from w_in, n_out = {n_out} from w_out)")
    alpha, rho, alpha_out = arrays["alpha"], arrays["rho"], arrays["alpha_out"]
    adaptive = bool(params.get("adaptive", True))
    b0 = _per_neuron(params, "b0", n_rec)
    beta = _per_neuron(params, "beta", n_rec) if adaptive else np.zeros(n_rec)
    for name, values in (("alpha", alpha), ("rho", rho), ("alpha_out", alpha_out)):
        bad = np.flatnonzero((values < 0) | (values >= 1))
        if len(bad):
            raise QuantizationError(f"{name}[{bad[0]}] = {float(values[bad[0]])} is not a decay in [0, 1)")
    for name, values in (("b0", b0), ("beta", beta)):
        if (values < 0).any():
            raise QuantizationError(f"{name} = {float(values.min())} is negative; thresholds must be >= 0")

    folded_in = (1.0 - alpha)[:, None] * w_in
    folded_rec = (1.0 - alpha)[:, None] * w_rec
    folded_out = (1.0 - alpha_out)[:, None] * w_out
    e_in = weight_exponent(float(np.abs(folded_in).max()), weight_bits)
    e_rec = weight_exponent(float(np.abs(folded_rec).max()), weight_bits)
    e_out = weight_exponent(float(np.abs(folded_out).max()), weight_bits)

    vmax = (1 << (membrane_bits - 1)) - 1
    highest_threshold = float((b0 + beta).max())
    weight_exps = [e for e in (e_in, e_rec) if e is not None]
    if highest_threshold > 0:
        e_v = math.floor(math.log2(vmax / (membrane_headroom * highest_threshold)))
    else:
        e_v = max(weight_exps, default=0)
    if weight_exps:
        e_v = min(e_v, min(weight_exps) + SHIFT_LIMITS[1])
    e_v = min(max(e_v, EXP_LIMITS[0]), EXP_LIMITS[1])
    e_in = e_v if e_in is None else min(e_in, e_v)
    e_rec = e_v if e_rec is None else min(e_rec, e_v)
    e_out = 0 if e_out is None else e_out

    decays = {name: _quantize_decay(name, values, decay_bits) for name, values in
              (("alpha", alpha), ("rho", rho), ("alpha_out", alpha_out))}
    threshold_base = _fit_unsigned("threshold_base", "b0", b0 * 2.0**e_v, membrane_bits - 1, "membrane_bits - 1",
                                   membrane_bits)
    adapt_inc = _fit_unsigned("adapt_inc", "beta * (1 - rho)", beta * (1.0 - rho) * 2.0**e_v, adaptation_bits,
                              "adaptation_bits", adaptation_bits)
    decode = params["decode"]
    if decode not in ("last", "mean"):
        raise QuantizationError(f"decode = {decode!r}; the integer network supports 'last' and 'mean'")
    return IntegerNetwork(
        w_in=round_half_up(folded_in * 2.0**e_in),
        w_rec=round_half_up(folded_rec * 2.0**e_rec),
        w_out=round_half_up(folded_out * 2.0**e_out),
        shift_in=e_v - e_in,
        shift_rec=e_v - e_rec,
        alpha=decays["alpha"],
        rho=decays["rho"],
        adapt_inc=adapt_inc,
        threshold_base=threshold_base,
        alpha_out=decays["alpha_out"],
        decode=decode,
        **widths,
        membrane_exp=e_v,
        readout_exp=e_out,
    )


def _float_array(params: Mapping, name: str, *, ndim: int) -> np.ndarray:
    array = np.asarray(params[name], dtype=np.float64)
    if array.ndim != ndim:
        raise QuantizationError(f"{name} must be {ndim}-D; got shape {array.shape}")
    if not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise QuantizationError(f"{name}[{', '.join(map(str, index))}] = {float(array[index])} is not finite")
    return array


def _per_neuron(params: Mapping, name: str, n: int) -> np.ndarray:
    values = np.asarray(params[name], dtype=np.float64)
    if values.ndim > 1 or (values.ndim == 1 and values.shape != (n,)):
        raise QuantizationError(f"{name} must be a scalar or have shape ({n},); got shape {values.shape}")
    if not np.isfinite(values).all():
        raise QuantizationError(f"{name} is not finite")
    return np.broadcast_to(values, (n,)).astype(np.float64)


def _quantize_decay(name: str, values: np.ndarray, decay_bits: int) -> np.ndarray:
    q = round_half_up(values * 2.0**decay_bits)
    too_big = np.flatnonzero(q > (1 << decay_bits) - 1)
    if len(too_big):
        j = int(too_big[0])
        tau = -1.0 / math.log(values[j]) if values[j] > 0 else 0.0
        raise QuantizationError(
            f"{name}[{j}] = {values[j]:.6f} (tau = {tau:.1f} steps) rounds to {q[j]} = 2^{decay_bits}, outside the "
            f"unsigned {decay_bits}-bit decay range [0, {(1 << decay_bits) - 1}]; use more decay bits or a shorter "
            f"time constant ({len(too_big)} {name} values affected)"
        )
    return q


def _fit_unsigned(name: str, source: str, scaled: np.ndarray, bits: int, width_name: str, width: int) -> np.ndarray:
    q = round_half_up(scaled)
    too_big = np.flatnonzero(q > (1 << bits) - 1)
    if len(too_big):
        j = int(too_big[0])
        raise QuantizationError(
            f"{name}[{j}] = {q[j]} (from {source}) does not fit the unsigned {bits}-bit range "
            f"[0, {(1 << bits) - 1}] ({width_name}, {width} bits); widen it"
        )
    return q
