"""The leaky integrators: the SRNN's non-spiking readout, and the decay of a time constant that
every neuron type and the readout use.

The readout of the multiple-timescale SRNN (Yin, Corradi and Bohté, 2021, arXiv:2005.11633;
docs/training.md, "The network")::

    o_t = alpha_o * o_{t-1} + (1 - alpha_o) * W_o z_t,      alpha_o = exp(-1 / tau)

from ``o_{-1} = 0``: step by step (:func:`leaky_readout_step`) or for a whole sequence at once
(:func:`leaky_integrate`).
"""

from __future__ import annotations

import torch

__all__ = ["leaky_integrate", "leaky_readout_step", "tau_to_decay"]


def tau_to_decay(tau: torch.Tensor) -> torch.Tensor:
    """Per-step decay ``exp(-1 / tau)`` of a time constant ``tau`` in steps."""
    return torch.exp(-1.0 / tau)


def leaky_readout_step(current: torch.Tensor, o: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """One readout step ``o_t = alpha * o_{t-1} + (1 - alpha) * current`` (``current = W_o z_t``)."""
    return alpha * o + (1.0 - alpha) * current


def leaky_integrate(current: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """:func:`leaky_readout_step` over a whole sequence, from ``o_{-1} = 0``, without a loop.

    ``current`` is ``[T, batch, n]``, ``alpha`` ``[n]`` in (0, 1]. Uses the closed form
    ``o_t = sum_{s <= t} (1 - alpha) alpha^(t - s) current_s`` as one product with a
    ``[n, T, T]`` lower-triangular kernel (differentiable in ``alpha``).
    """
    steps = current.shape[0]
    t = torch.arange(steps, device=current.device)
    lag = t[:, None] - t[None, :]
    causal = lag >= 0
    lag = torch.where(causal, lag, 0).to(current.dtype)
    decay = torch.exp(lag * torch.log(alpha)[:, None, None])  # alpha ** lag (pow is slower)
    kernel = torch.where(causal, decay, 0.0) * (1.0 - alpha)[:, None, None]
    return torch.einsum("nts,sbn->tbn", kernel, current)
