"""Fake quantization for quantization-aware training (PyTorch, straight-through gradient).

The weight hooks of :mod:`gesture_snn.model` return :func:`fake_quantize_folded` weights when
``qat_weight_bits`` is set: the forward pass then uses the weights the integer network will have
(docs/fixed_point.md, steps 1-2 of the quantizer: fold ``(1 - alpha)`` into each row, scale by
the largest power of two that fits, round half up), with the rounding rule of
:mod:`gesture_snn.spec.fixed_point`, which :mod:`gesture_snn.quantize` uses too. (The quantizer's
step 3 can lower a weight exponent further when a matrix's weights are finer than one membrane
unit; QAT ignores that rare case.) Quantizing fake-quantized weights again gives the same
integers.
"""

from __future__ import annotations

import torch

from gesture_snn.spec.fixed_point import weight_exponent

__all__ = ["fake_quantize", "fake_quantize_folded"]


def fake_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Fake-quantize a float tensor with the quantizer's weight rule, straight-through gradient.

    Forward: ``floor(w * 2^e + 1/2) / 2^e`` with ``e = weight_exponent(max|w|, bits)`` (computed
    from the current values, not differentiated), so every value lies on the grid the integer
    network will use. Backward: identity (the straight-through estimator).
    """
    max_abs = float(w.detach().abs().max()) if w.numel() else 0.0
    e = weight_exponent(max_abs, bits)
    if e is None:
        return w
    scale = 2.0**e
    quantized = torch.floor(w.detach() * scale + 0.5) / scale
    return w + (quantized - w.detach())


def fake_quantize_folded(w: torch.Tensor, alpha: torch.Tensor, bits: int) -> torch.Tensor:
    """``w`` such that ``(1 - alpha) * (w @ x)`` uses the fake-quantized folded weights.

    The float model multiplies currents by ``(1 - alpha_j)`` itself; the integer network folds
    that factor into row j before quantizing. This returns
    ``fake_quantize((1 - alpha)[:, None] * w, bits) / (1 - alpha)[:, None]``: drop-in for
    ``w_in``, ``w_rec`` (with the membrane ``alpha``) and ``w_out`` (with ``alpha_out``) in the
    forward pass. Gradients reach ``w`` (straight through the rounding) and ``alpha``.
    """
    gain = (1.0 - alpha)[:, None]
    return fake_quantize(gain * w, bits) / gain
