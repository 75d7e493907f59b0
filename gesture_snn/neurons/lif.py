"""Leaky integrate-and-fire (LIF) neurons: the ALIF neuron of :mod:`gesture_snn.neurons.alif`
with ``beta = 0``, a constant threshold ``b0`` and no adaptation state, dt = 1 step.

One step (Yin, Corradi and Bohté, 2021, arXiv:2005.11633, with the adaptation removed;
docs/training.md, "The network")::

    v_t = alpha * v_{t-1} + (1 - alpha) * I_t - b0 * z_{t-1}      alpha = exp(-1 / tau_m)
    z_t = H(v_t - b0)

from ``v_{-1} = z_{-1} = 0``. The integer twin is docs/fixed_point.md with ``adaptive = 0``.

:func:`sequence` (the fused kernel) and :func:`step` (under autograd; :class:`Cell` as a module)
give the same values and gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from gesture_snn.neurons import INTERFACE
from gesture_snn.neurons.cell import NeuronCell
from gesture_snn.neurons.kernel import MembraneBackward, MembraneForward, serial_if_small
from gesture_snn.neurons.surrogate import multi_gaussian_surrogate

__all__ = list(INTERFACE)

NAME = "lif"
ADAPTIVE = False


class State(NamedTuple):
    """State of LIF neurons entering a step: membrane ``v`` and previous spikes ``z``."""

    v: torch.Tensor
    z: torch.Tensor


class Parameters(NamedTuple):
    """``alpha = exp(-1 / tau_m)`` per neuron and the constant threshold ``b0``."""

    alpha: torch.Tensor
    b0: float = 0.1


def parameters(*, alpha, b0, **_unused) -> Parameters:
    """:class:`Parameters` from a layer's decays and constants (no ``rho``, ``beta``, ``b_init``)."""
    return Parameters(alpha, b0)


def initial_state(params: Parameters, like: torch.Tensor) -> State:
    """``v = z = 0``, shaped like ``like`` ``[batch, neurons]``."""
    zero = torch.zeros_like(like)
    return State(v=zero, z=zero)


def step(current: torch.Tensor, state: State, params: Parameters) -> tuple[torch.Tensor, State]:
    """One LIF step: ``current`` ``I_t`` ``[batch, neurons]``, ``state`` entering the step.
    Returns ``(z_t, state)``, the state for the next step."""
    v = params.alpha * state.v + (1.0 - params.alpha) * current - params.b0 * state.z
    z = multi_gaussian_surrogate(v - params.b0)
    return z, State(v=v, z=z)


def threshold(state: State, params: Parameters) -> torch.Tensor:
    """The constant threshold ``b0``, shaped like ``state.v``."""
    return torch.full_like(state.v, params.b0)


class Cell(NeuronCell):
    """LIF cell: ``cell(current_t, state=None) -> (z_t, state)`` with fixed :class:`Parameters`."""

    step = staticmethod(step)
    initial_state = staticmethod(initial_state)


class _Sequence(torch.autograd.Function):
    """A whole LIF layer over time: forward loop without autograd, hand-written BPTT backward
    (the membrane's adjoints of :mod:`gesture_snn.neurons.kernel`; the threshold is constant).

    Inputs: ``u [T, B, N]``, ``w_rec [N, N]`` or None, ``alpha [N]``, the float ``b0``.
    Outputs: spikes ``z``, membranes ``v`` and thresholds ``th`` (all ``b0``), ``[T, B, N]``;
    only ``z`` is differentiable.
    """

    @staticmethod
    def forward(ctx, u, w_rec, alpha, b0):
        membrane = MembraneForward(u, w_rec, alpha)
        th_seq = u.new_full(u.shape, b0)
        with serial_if_small(u, u.shape[2]):
            for t, th in enumerate(th_seq.unbind(0)):
                membrane.step(t, th)
        ctx.save_for_backward(membrane.z_seq, membrane.v_seq, th_seq, membrane.i_seq, w_rec, alpha)
        ctx.mark_non_differentiable(membrane.v_seq, th_seq)
        return membrane.z_seq, membrane.v_seq, th_seq

    @staticmethod
    def backward(ctx, grad_z, _grad_v, _grad_th):
        z_seq, v_seq, th_seq, i_seq, w_rec, alpha = ctx.saved_tensors
        membrane = MembraneBackward(grad_z, z_seq, v_seq, th_seq, i_seq, w_rec, alpha)
        with serial_if_small(z_seq, z_seq.shape[2]):
            for t in range(z_seq.shape[0] - 1, 0, -1):
                membrane.step(t)
                membrane.carry_back(t)
            membrane.step(0)
        grad_u, grad_w, grad_alpha = membrane.gradients(ctx.needs_input_grad[1])
        return grad_u, grad_w, grad_alpha, None


def sequence(
    u: torch.Tensor, params: Parameters, *, w_rec: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a layer of LIF neurons over a whole sequence as one autograd node: same values and
    gradients as looping :func:`step` from :func:`initial_state` with
    ``current = u[t] + z_{t-1} @ w_rec.T``. Arguments and result as :func:`gesture_snn.neurons.alif.sequence`
    (the thresholds ``th`` are all ``b0``)."""
    return _Sequence.apply(u, w_rec, params.alpha, float(params.b0))
