"""What the fused sequence kernels of every neuron type share: the membrane's part of the
forward loop and of the hand-written backward pass through time, and the thread handling of
their time loops.

Every neuron type integrates and fires the same way, given its threshold ``th_t``
(docs/training.md, "The network"; Yin, Corradi and Bohté, 2021, arXiv:2005.11633)::

    I_t = u_t + W_rec z_{t-1}                          (u_t = W_in x_t)
    v_t = alpha * v_{t-1} + (1 - alpha) * I_t - th_t * z_{t-1}
    z_t = H(v_t - th_t)

from ``v_{-1} = z_{-1} = 0``. Its adjoints, with ``h_t = dL/dz_t * H'(v_t - th_t)`` (the
surrogate) and ``dv_{T} = 0``::

    dv_t         = h_t + alpha * dv_{t+1}
    dL/dz_{t-1} += ((1 - alpha) * dv_t) @ W_rec - th_t * dv_t
    dL/du_t      = (1 - alpha) dv_t,   dL/dW_rec = sum_t ((1 - alpha) dv_t)^T z_{t-1},
    dL/dalpha    = sum_t dv_t (v_{t-1} - I_t)

A neuron module's kernel computes ``th_t`` (and its own state) around :class:`MembraneForward`
and adds the adjoints of its threshold around :class:`MembraneBackward`.
"""

from __future__ import annotations

import contextlib

import torch

from gesture_snn.neurons.surrogate import multi_gaussian_derivative

__all__ = ["SERIAL_STEP_LIMIT", "MembraneBackward", "MembraneForward", "serial_if_small"]

#: The time loops of the fused kernels run on one thread when a step's recurrent product
#: ``[batch, n] @ [n, n]`` has fewer multiply-adds than this. Such a product takes tens of
#: microseconds; split over several OpenMP threads it gains little on an idle machine, and on
#: a busy one (another process, a second torchrun rank) each of the 2 T products per layer waits
#: at the end of its parallel region for a thread that the scheduler has paused, which costs a
#: time slice (milliseconds) instead of microseconds (docs/benchmarks.md). Products outside the
#: loops (input projection, weight gradients, readout) keep the process's threads.
SERIAL_STEP_LIMIT = 1 << 23


@contextlib.contextmanager
def serial_if_small(x: torch.Tensor, n: int):
    """Run the block with one intra-op thread if ``x`` ``[T, batch, n]`` is on the CPU and
    its per-step product is under :data:`SERIAL_STEP_LIMIT` multiply-adds."""
    threads = torch.get_num_threads()
    if threads == 1 or x.device.type != "cpu" or x.shape[1] * n * n >= SERIAL_STEP_LIMIT:
        yield
        return
    torch.set_num_threads(1)  # a fraction of a microsecond; MKL's setting is per thread
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class MembraneForward:
    """The membrane of a fused forward loop: call :meth:`step` for t = 0, 1, ... with the
    step's threshold; ``z`` and ``v`` are the latest spikes and membranes (``z`` before the
    call: ``z_{t-1}``), and ``z_seq``, ``v_seq``, ``i_seq`` (the currents ``I_t``; ``u``
    itself without ``w_rec``) the preallocated ``[T, B, N]`` records, written in place."""

    def __init__(self, u: torch.Tensor, w_rec: torch.Tensor | None, alpha: torch.Tensor):
        steps, batch, n = u.shape
        self.z_seq = u.new_empty(steps, batch, n)
        self.v_seq = u.new_empty(steps, batch, n)
        self.i_seq = u.new_empty(steps, batch, n) if w_rec is not None else u
        # per-step views made once (indexing in the loop costs as much as a small kernel)
        self._zs, self._vs, self._ins, self._us = (x.unbind(0) for x in (self.z_seq, self.v_seq, self.i_seq, u))
        self._alpha, self._one_minus_alpha = alpha, 1.0 - alpha
        self._w_rec_t = w_rec.t() if w_rec is not None else None
        self.z = self.v = u.new_zeros(batch, n)

    def step(self, t: int, th: torch.Tensor) -> None:
        """Step ``t`` with threshold ``th`` ``[B, N]``."""
        if self._w_rec_t is not None:
            current = torch.addmm(self._us[t], self.z, self._w_rec_t, out=self._ins[t])
        else:
            current = self._us[t]
        v = torch.mul(self.v, self._alpha, out=self._vs[t])
        self.v = v.addcmul_(self._one_minus_alpha, current).addcmul_(th, self.z, value=-1.0)
        self.z = torch.gt(self.v, th, out=self._zs[t])  # H(v - th) as 0.0 / 1.0


class MembraneBackward:
    """The membrane's adjoints in a fused backward loop, from the records of
    :class:`MembraneForward` and the thresholds ``th_seq``: for t = T-1 down to 0 call
    :meth:`step` (returns ``h_t``; ``dv`` is then ``dv_t``), then, for t >= 1,
    :meth:`carry_back` (``carry`` becomes dL/dz_{t-1} through the membrane, to which the neuron
    type adds its threshold's part); finally :meth:`gradients`."""

    def __init__(self, grad_z, z_seq, v_seq, th_seq, i_seq, w_rec, alpha):
        batch, n = z_seq.shape[1:]
        psi_seq = multi_gaussian_derivative(v_seq - th_seq)
        # h_t = (dL/dz_t from outside + carry) * psi_t; the first part for all steps at once
        h_seq = psi_seq * grad_z if grad_z is not None else torch.zeros_like(psi_seq)
        self._alpha, self._one_minus_alpha = alpha, 1.0 - alpha
        self._w_rec, self._z_seq = w_rec, z_seq
        self._w_scaled = self._one_minus_alpha[:, None] * w_rec if w_rec is not None else None
        self._dv_seq = torch.empty_like(z_seq)
        self._hs, self._psis, self._dvs, self._ths, self._vs, self._ins = (
            x.unbind(0) for x in (h_seq, psi_seq, self._dv_seq, th_seq, v_seq, i_seq)
        )
        self.dv = z_seq.new_zeros(batch, n)
        self.carry = z_seq.new_zeros(batch, n)  # dL/dz_t through the steps after t
        # per-(sample, neuron) sums of dv_t (v_{t-1} - I_t), accumulated while the step's values
        # are in cache
        self._sum_alpha = z_seq.new_zeros(batch, n)

    def step(self, t: int) -> torch.Tensor:
        """``dv_t`` from ``h_t``; returns ``h_t``."""
        h = torch.addcmul(self._hs[t], self.carry, self._psis[t])
        self.dv = torch.addcmul(h, self._alpha, self.dv, out=self._dvs[t])
        self._sum_alpha.addcmul_(self.dv, self._ins[t], value=-1.0)
        return h

    def carry_back(self, t: int) -> None:
        """``carry`` = dL/dz_{t-1} through the membrane of step ``t`` >= 1 (v_-1 = z_-1 = 0:
        nothing to carry into step -1)."""
        self._sum_alpha.addcmul_(self.dv, self._vs[t - 1])
        carry = torch.mm(self.dv, self._w_scaled) if self._w_scaled is not None else torch.zeros_like(self.dv)
        self.carry = carry.addcmul_(self._ths[t], self.dv, value=-1.0)

    def gradients(self, needs_w_rec: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(dL/du, dL/dW_rec or None, dL/dalpha)`` once the loop has reached t = 0."""
        grad_alpha = self._sum_alpha.sum(0)
        grad_u = self._dv_seq.mul_(self._one_minus_alpha)  # in place: dv_seq is not needed any more
        grad_w = None
        if self._w_rec is not None and needs_w_rec:
            n = grad_u.shape[-1]
            grad_w = grad_u[1:].reshape(-1, n).t() @ self._z_seq[:-1].reshape(-1, n)
        return grad_u, grad_w, grad_alpha
