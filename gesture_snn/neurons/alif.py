"""Adaptive leaky integrate-and-fire (ALIF) neurons of the multiple-timescale SRNN, dt = 1 step.

One step, as the authors' ``mem_update_adp`` computes it (Yin, Corradi and Bohté, 2021,
arXiv:2005.11633; docs/training.md, "The network", states the equations and their source)::

    b_t  = rho * b_{t-1} + (1 - rho) * z_{t-1}              rho   = exp(-1 / tau_adp)
    th_t = b0 + beta * b_t
    v_t  = alpha * v_{t-1} + (1 - alpha) * I_t - th_t * z_{t-1}     alpha = exp(-1 / tau_m)
    z_t  = H(v_t - th_t)

with the input current ``I_t`` (in the SRNN ``W_in x_t + W_rec z_{t-1}``, no bias), from
``v_{-1} = z_{-1} = 0`` and ``b_{-1} = b_init``. The integer twin is docs/fixed_point.md.

Two ways to run it, with the same values and gradients: :func:`step` under autograd (the
reference; :class:`Cell` is its module form) and :func:`sequence`, the fused kernel.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from gesture_snn.neurons import INTERFACE
from gesture_snn.neurons.cell import NeuronCell
from gesture_snn.neurons.kernel import MembraneBackward, MembraneForward, serial_if_small
from gesture_snn.neurons.surrogate import multi_gaussian_surrogate

__all__ = list(INTERFACE)

NAME = "alif"
ADAPTIVE = True


class State(NamedTuple):
    """State of ALIF neurons entering a step: membrane ``v``, adaptation ``b`` and the spikes
    ``z`` of the previous step, each ``[batch, neurons]``."""

    v: torch.Tensor
    b: torch.Tensor
    z: torch.Tensor


class Parameters(NamedTuple):
    """``alpha = exp(-1 / tau_m)`` and ``rho = exp(-1 / tau_adp)`` per neuron ``[neurons]``;
    base threshold ``b0`` and adaptation strength ``beta`` (membrane units); the initial
    adaptation state ``b_init`` (``b_{-1}``; the authors' code starts at ``b0``, ours at 0)."""

    alpha: torch.Tensor
    rho: torch.Tensor
    b0: float = 0.1
    beta: float = 1.84
    b_init: float = 0.0


def parameters(*, alpha, rho, b0, beta, b_init=0.0, **_unused) -> Parameters:
    """:class:`Parameters` from a layer's decays and constants."""
    return Parameters(alpha, rho, b0, beta, b_init)


def initial_state(params: Parameters, like: torch.Tensor) -> State:
    """``v = z = 0``, ``b = b_init``, shaped like ``like`` ``[batch, neurons]``."""
    zero = torch.zeros_like(like)
    return State(v=zero, b=torch.full_like(zero, params.b_init), z=zero)


def step(current: torch.Tensor, state: State, params: Parameters) -> tuple[torch.Tensor, State]:
    """One ALIF step: ``current`` ``I_t`` ``[batch, neurons]``, ``state`` entering the step
    (``z`` = spikes of step t-1). Returns ``(z_t, state)``, the state for the next step."""
    b = params.rho * state.b + (1.0 - params.rho) * state.z
    th = params.b0 + params.beta * b
    v = params.alpha * state.v + (1.0 - params.alpha) * current - th * state.z
    z = multi_gaussian_surrogate(v - th)
    return z, State(v=v, b=b, z=z)


def threshold(state: State, params: Parameters) -> torch.Tensor:
    """``th_t = b0 + beta * b_t``: the threshold of the step that produced ``state``."""
    return params.b0 + params.beta * state.b


class Cell(NeuronCell):
    """ALIF cell: ``cell(current_t, state=None) -> (z_t, state)`` with fixed :class:`Parameters`."""

    step = staticmethod(step)
    initial_state = staticmethod(initial_state)


class _Sequence(torch.autograd.Function):
    """A whole ALIF layer over time: forward loop without autograd, hand-written BPTT backward.

    Inputs: ``u [T, B, N]`` (the input current without the recurrent part, ``W_in x_t``),
    ``w_rec [N, N]`` or None, ``alpha [N]``, ``rho [N]``, floats ``b0``, ``beta`` and ``b_init``.
    Outputs: spikes ``z``, membranes ``v`` and thresholds ``th``, all ``[T, B, N]``; only ``z``
    is differentiable.

    Backward: the membrane's adjoints (:mod:`gesture_snn.neurons.kernel`) plus the threshold's,
    with ``db`` the adjoint of ``b``:
        db_t = rho * db_{t+1} - beta * (h_t + z_{t-1} * dv_t)
        dL/dz_{t-1} += (1 - rho) * db_t
    and dL/drho = sum db_t (b_{t-1} - z_{t-1}); the t = 0 term of the last is db_0 * b_init.
    """

    @staticmethod
    def forward(ctx, u, w_rec, alpha, rho, b0, beta, b_init):
        steps, batch, n = u.shape
        membrane = MembraneForward(u, w_rec, alpha)
        th_seq = u.new_empty(steps, batch, n)
        b_seq = u.new_empty(steps, batch, n)
        ths, bs = th_seq.unbind(0), b_seq.unbind(0)
        b = u.new_full((batch, n), b_init)
        base = u.new_full((batch, n), b0)
        one_minus_rho = 1.0 - rho
        with serial_if_small(u, n):
            for t in range(steps):
                b = torch.mul(b, rho, out=bs[t]).addcmul_(one_minus_rho, membrane.z)
                membrane.step(t, torch.add(base, b, alpha=beta, out=ths[t]))
        z_seq, v_seq = membrane.z_seq, membrane.v_seq
        ctx.save_for_backward(z_seq, v_seq, th_seq, b_seq, membrane.i_seq, w_rec, alpha, rho)
        ctx.beta = beta
        ctx.b_init = b_init
        ctx.mark_non_differentiable(v_seq, th_seq)
        return z_seq, v_seq, th_seq

    @staticmethod
    def backward(ctx, grad_z, _grad_v, _grad_th):
        z_seq, v_seq, th_seq, b_seq, i_seq, w_rec, alpha, rho = ctx.saved_tensors
        beta = ctx.beta
        steps, batch, n = z_seq.shape
        membrane = MembraneBackward(grad_z, z_seq, v_seq, th_seq, i_seq, w_rec, alpha)
        one_minus_rho = 1.0 - rho
        zs, bs = z_seq.unbind(0), b_seq.unbind(0)
        db = z_seq.new_zeros(batch, n)
        sum_rho = z_seq.new_zeros(batch, n)  # per-(sample, neuron) sum of db_t (b_{t-1} - z_{t-1})
        with serial_if_small(z_seq, n):
            for t in range(steps - 1, -1, -1):
                h = membrane.step(t)
                if t == 0:
                    # b_-1 = b_init, z_-1 = 0
                    if ctx.b_init != 0.0:
                        db = torch.mul(db, rho).sub_(h, alpha=beta)
                        sum_rho.add_(db, alpha=ctx.b_init)
                    break
                membrane.carry_back(t)
                db = torch.mul(db, rho).sub_(torch.addcmul(h, zs[t - 1], membrane.dv), alpha=beta)
                membrane.carry.addcmul_(one_minus_rho, db)
                sum_rho.addcmul_(db, bs[t - 1]).addcmul_(db, zs[t - 1], value=-1.0)
        grad_u, grad_w, grad_alpha = membrane.gradients(ctx.needs_input_grad[1])
        return grad_u, grad_w, grad_alpha, sum_rho.sum(0), None, None, None


def sequence(
    u: torch.Tensor, params: Parameters, *, w_rec: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a layer of ALIF neurons over a whole sequence as one autograd node.

    Same values as looping :func:`step` from :func:`initial_state` with
    ``current = u[t] + z_{t-1} @ w_rec.T``, and the same gradients (autograd through that loop).

    ``u``: the feed-forward input current ``W_in x_t`` of every step, ``[T, batch, neurons]``;
    ``w_rec``: recurrent weights ``[neurons, neurons]`` (row = target), or None for a
    feed-forward layer. Returns ``(z, v, th)``, each ``[T, batch, neurons]``: spikes
    (differentiable), membranes and thresholds, recorded after each step.
    """
    p = params
    return _Sequence.apply(u, w_rec, p.alpha, p.rho, float(p.b0), float(p.beta), float(p.b_init))
