"""The spike function of every neuron type: Heaviside forward, multi-Gaussian surrogate backward.

The surrogate derivative is the one of the multiple-timescale SRNN's code (Yin, Corradi and
Bohté, 2021, arXiv:2005.11633; docs/training.md, "Surrogate gradient")::

    dH/dx ~ 0.5 * [1.15 G(x; 0, 0.5) - 0.15 G(x; 0.5, 3) - 0.15 G(x; -0.5, 3)],   x = v - th

with ``G(x; mu, sigma)`` the normal density.
"""

from __future__ import annotations

import math

import torch

__all__ = ["heaviside", "multi_gaussian_derivative", "multi_gaussian_surrogate"]

#: Multi-Gaussian surrogate of the authors' code: ``lens`` (sigma of the central Gaussian),
#: ``scale`` (the side Gaussians are ``scale`` times wider), ``hight`` and ``gamma``.
SURROGATE_SIGMA = 0.5
SURROGATE_SCALE = 6.0
SURROGATE_HEIGHT = 0.15
SURROGATE_GAMMA = 0.5


def multi_gaussian_derivative(x: torch.Tensor) -> torch.Tensor:
    """The surrogate derivative ``dH/dx`` of the spike function at ``x = v - th``::

        0.5 * [1.15 G(x; 0, 0.5) - 0.15 G(x; 0.5, 3) - 0.15 G(x; -0.5, 3)]

    with ``G(x; mu, sigma)`` the normal density (peak 0.439 at 0, small negative side lobes).
    Written with in-place operations: on large tensors its cost is the number of passes.
    """
    s = SURROGATE_SIGMA
    wide = SURROGATE_SCALE * s
    c0 = SURROGATE_GAMMA * (1.0 + SURROGATE_HEIGHT) / (math.sqrt(2.0 * math.pi) * s)
    c1 = SURROGATE_GAMMA * SURROGATE_HEIGHT / (math.sqrt(2.0 * math.pi) * wide)
    centre = x.square().mul_(-0.5 / s**2).exp_().mul_(c0)
    right = torch.sub(x, s).square_().mul_(-0.5 / wide**2).exp_()
    left = torch.add(x, s).square_().mul_(-0.5 / wide**2).exp_()
    return centre.sub_(right.add_(left), alpha=c1)


class _MultiGaussianSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * multi_gaussian_derivative(x)


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """``H(x)``: 1.0 where ``x > 0`` (strictly), else 0.0, in the dtype of ``x``."""
    return (x > 0).to(x.dtype)


def multi_gaussian_surrogate(x: torch.Tensor) -> torch.Tensor:
    """Spike function: :func:`heaviside` forward, :func:`multi_gaussian_derivative` backward."""
    return _MultiGaussianSpike.apply(x)
