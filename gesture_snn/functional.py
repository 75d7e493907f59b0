"""Pure functions of the multiple-timescale SRNN (Yin, Corradi and Bohté, 2021), dt = 1 step.

One ALIF step, as the authors' ``mem_update_adp`` computes it (github.com/byin-cwi/Efficient-spiking-networks,
``DVS128/srnn_class_cnn_enc.ipynb``; docs/training.md, "The network", states the equations and their source)::

    b_t  = rho * b_{t-1} + (1 - rho) * z_{t-1}              rho   = exp(-1 / tau_adp)
    th_t = b0 + beta * b_t
    v_t  = alpha * v_{t-1} + (1 - alpha) * I_t - th_t * z_{t-1}     alpha = exp(-1 / tau_m)
    z_t  = H(v_t - th_t)

with ``I_t = W_in x_t + W_rec z_{t-1}`` (no bias), and the leaky-integrator readout
``o_t = alpha_o * o_{t-1} + (1 - alpha_o) * W_o z_t``. A plain LIF neuron is the same with
``beta = 0`` (constant threshold ``b0``, no adaptation state).

Two ways to run a layer over time, with the same results:

- the step functions :func:`alif_step`, :func:`lif_step`, :func:`leaky_readout_step`, looped in
  Python under autograd (simple, the reference);
- :func:`alif_recurrence`, one :class:`torch.autograd.Function` that runs the whole sequence
  without autograd and back-propagates through time with a hand-written backward pass, and
  :func:`spike_linear`, the input projection of all time steps at once, which uses the sparsity
  of spike inputs on the CPU. These are what :mod:`gesture_snn.model` uses for speed.

Shapes: step functions take ``[batch, neurons]``; sequence functions are time-major
``[time, batch, neurons]``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import NamedTuple

import torch

__all__ = [
    "ALIFParameters",
    "ALIFState",
    "LIFParameters",
    "LIFState",
    "alif_recurrence",
    "alif_step",
    "heaviside",
    "leaky_integrate",
    "leaky_readout_step",
    "lif_step",
    "multi_gaussian_derivative",
    "multi_gaussian_surrogate",
    "spike_linear",
    "tau_to_decay",
]

# --------------------------------------------------------------------------------------------
# Surrogate gradient

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


# --------------------------------------------------------------------------------------------
# Step functions (the reference)


class ALIFState(NamedTuple):
    """State of ALIF neurons entering a step: membrane ``v``, adaptation ``b`` and the spikes
    ``z`` of the previous step, each ``[batch, neurons]``."""

    v: torch.Tensor
    b: torch.Tensor
    z: torch.Tensor


class ALIFParameters(NamedTuple):
    """``alpha = exp(-1 / tau_m)`` and ``rho = exp(-1 / tau_adp)`` per neuron ``[neurons]``;
    base threshold ``b0`` and adaptation strength ``beta`` (membrane units)."""

    alpha: torch.Tensor
    rho: torch.Tensor
    b0: float = 0.1
    beta: float = 1.84


class LIFState(NamedTuple):
    """State of LIF neurons entering a step: membrane ``v`` and previous spikes ``z``."""

    v: torch.Tensor
    z: torch.Tensor


class LIFParameters(NamedTuple):
    """``alpha = exp(-1 / tau_m)`` per neuron and the constant threshold ``b0``."""

    alpha: torch.Tensor
    b0: float = 0.1


def tau_to_decay(tau: torch.Tensor) -> torch.Tensor:
    """Per-step decay ``exp(-1 / tau)`` of a time constant ``tau`` in steps."""
    return torch.exp(-1.0 / tau)


def alif_step(
    current: torch.Tensor, state: ALIFState, params: ALIFParameters
) -> tuple[torch.Tensor, ALIFState, torch.Tensor]:
    """One ALIF step.

    Parameters
    ----------
    current:
        Input current ``I_t = W_in x_t + W_rec z_{t-1}``, ``[batch, neurons]``.
    state:
        State entering the step (``z`` = spikes of step t-1).
    params:
        Decays and threshold constants.

    Returns ``(z_t, new_state, th_t)``: the spikes, the state for the next step and the
    threshold used in this step.
    """
    b = params.rho * state.b + (1.0 - params.rho) * state.z
    th = params.b0 + params.beta * b
    v = params.alpha * state.v + (1.0 - params.alpha) * current - th * state.z
    z = multi_gaussian_surrogate(v - th)
    return z, ALIFState(v=v, b=b, z=z), th


def lif_step(
    current: torch.Tensor, state: LIFState, params: LIFParameters
) -> tuple[torch.Tensor, LIFState]:
    """One LIF step: :func:`alif_step` with ``beta = 0`` (threshold fixed at ``b0``).

    Returns ``(z_t, new_state)``.
    """
    v = params.alpha * state.v + (1.0 - params.alpha) * current - params.b0 * state.z
    z = multi_gaussian_surrogate(v - params.b0)
    return z, LIFState(v=v, z=z)


def leaky_readout_step(current: torch.Tensor, o: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """One readout step ``o_t = alpha * o_{t-1} + (1 - alpha) * current`` (``current = W_o z_t``)."""
    return alpha * o + (1.0 - alpha) * current


# --------------------------------------------------------------------------------------------
# Whole sequences


def leaky_integrate(current: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """:func:`leaky_readout_step` over a whole sequence, from ``o_0 = 0``, without a loop.

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


#: Below this fraction of non-zero inputs, :func:`spike_linear` on the CPU multiplies through a
#: sparse (CSR) matrix; above it, a dense product is faster.
SPARSE_DENSITY_LIMIT = 0.05
#: ... and only for at least this many outputs: finding the non-zeros costs a pass over ``x``,
#: which a product with few outputs (e.g. the readout) does not repay.
SPARSE_MIN_OUTPUTS = 32


def _coordinates(x2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows, columns (row-major order) and values of the non-zeros of a 2-D tensor."""
    flat = torch.nonzero(x2d.reshape(-1).bool()).squeeze(1)  # on bool: a third faster
    rows = torch.div(flat, x2d.shape[1], rounding_mode="floor")
    return rows, flat - rows * x2d.shape[1], x2d.reshape(-1)[flat]


def _csr(rows, cols, values, shape) -> torch.Tensor:
    """CSR matrix from coordinates sorted by row."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=shape[0]), 0, out=crow[1:])
    with warnings.catch_warnings():  # torch warns that its CSR support in general is beta
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


def _is_sparse_enough(x2d: torch.Tensor) -> bool:
    # a strided sample of rows is enough to choose the faster path
    sample = x2d[:: max(1, x2d.shape[0] // 256)]
    return int(torch.count_nonzero(sample)) < SPARSE_DENSITY_LIMIT * sample.numel()


class _SparseLinear(torch.autograd.Function):
    """``x @ weight.T`` for a mostly-zero 2-D ``x`` through CSR products (CPU): the forward
    and the weight gradient cost time in proportion to the non-zeros of ``x``."""

    @staticmethod
    def forward(ctx, x2d, weight):
        rows, cols, values = _coordinates(x2d)
        ctx.save_for_backward(weight)
        ctx.coordinates = rows, cols, values
        ctx.x_shape = tuple(x2d.shape)
        return _csr(rows, cols, values, ctx.x_shape) @ weight.t()

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            rows, cols, values = ctx.coordinates
            n_rows, n_cols = ctx.x_shape
            # x^T in CSR needs the coordinates sorted by (column, row): sort unique keys, in
            # int32 where they fit (about twice as fast as a stable argsort of the columns)
            key = cols * n_rows + rows
            key, order = torch.sort(key.int() if n_rows * n_cols < 2**31 else key)
            key = key.long()
            cols_t = torch.div(key, n_rows, rounding_mode="floor")
            x_t = _csr(cols_t, key - cols_t * n_rows, values[order], (n_cols, n_rows))
            grad_w = (x_t @ grad).t()
        return grad_x, grad_w


def spike_linear(x: torch.Tensor, weight: torch.Tensor, *, sparse: bool | None = None) -> torch.Tensor:
    """``x @ weight.T`` over all leading dimensions of ``x`` (e.g. ``[T, batch, n_in]``).

    ``sparse=None`` chooses: on the CPU, inputs with under :data:`SPARSE_DENSITY_LIMIT`
    non-zeros (binary DVS frames, hidden spikes) go through a CSR product whose cost is
    proportional to the number of spikes, in the forward and in the weight gradient, when there
    are at least :data:`SPARSE_MIN_OUTPUTS` outputs; otherwise a dense product. Both give the
    same values up to float rounding.
    """
    x2d = x.reshape(-1, x.shape[-1])
    if sparse is None:
        sparse = x.device.type == "cpu" and weight.shape[0] >= SPARSE_MIN_OUTPUTS and _is_sparse_enough(x2d)
    if sparse:
        out = _SparseLinear.apply(x2d, weight)
    else:
        out = x2d @ weight.t()
    return out.reshape(*x.shape[:-1], weight.shape[0])


#: The time loops of :func:`alif_recurrence` run on one thread when a step's recurrent product
#: ``[batch, n] @ [n, n]`` has fewer multiply-adds than this. Such a product takes tens of
#: microseconds; split over several OpenMP threads it gains little on an idle machine, and on
#: a busy one (another process, a second torchrun rank) each of the 2 T products per layer waits
#: at the end of its parallel region for a thread that the scheduler has paused, which costs a
#: time slice (milliseconds) instead of microseconds (docs/benchmarks.md). Products outside the
#: loops (input projection, weight gradients, readout) keep the process's threads.
SERIAL_STEP_LIMIT = 1 << 23


@contextlib.contextmanager
def _serial_if_small(x: torch.Tensor, n: int):
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


class _ALIFRecurrence(torch.autograd.Function):
    """A whole ALIF layer over time: forward loop without autograd, hand-written BPTT backward.

    Inputs: ``u [T, B, N]`` (the input current without the recurrent part, ``W_in x_t``),
    ``w_rec [N, N]`` or None, ``alpha [N]``, ``rho [N]`` or None (LIF), floats ``b0``, ``beta``
    and ``b_init`` (the adaptation state ``b_{-1}`` before step 0; ``v_{-1} = z_{-1} = 0``).
    Outputs: spikes ``z``, membranes ``v`` and thresholds ``th``, all ``[T, B, N]``; only ``z``
    is differentiable.

    Backward, with h_t = dL/dz_t * H'(v_t - th_t) (surrogate) and adjoints dv, db:
        dv_t = h_t + alpha * dv_{t+1}
        db_t = rho * db_{t+1} - beta * (h_t + z_{t-1} * dv_t)
        dL/dz_{t-1} += (1 - rho) * db_t + ((1 - alpha) * dv_t) @ W_rec - th_t * dv_t
    and dL/du_t = (1 - alpha) dv_t, dL/dW_rec = sum_t ((1 - alpha) dv_t)^T z_{t-1},
    dL/dalpha = sum dv_t (v_{t-1} - I_t), dL/drho = sum db_t (b_{t-1} - z_{t-1}); the t = 0 term
    of the last is db_0 * b_init.
    """

    @staticmethod
    def forward(ctx, u, w_rec, alpha, rho, b0, beta, b_init):
        steps, batch, n = u.shape
        adaptive = rho is not None
        z_seq = u.new_empty(steps, batch, n)
        v_seq = u.new_empty(steps, batch, n)
        th_seq = u.new_empty(steps, batch, n) if adaptive else u.new_full((steps, batch, n), b0)
        b_seq = u.new_empty(steps, batch, n) if adaptive else None
        i_seq = u.new_empty(steps, batch, n) if w_rec is not None else u
        # per-step views made once (indexing in the loop costs as much as a small kernel)
        zs, vs, ths, ins, us = (x.unbind(0) for x in (z_seq, v_seq, th_seq, i_seq, u))
        bs = b_seq.unbind(0) if adaptive else None
        z = v = u.new_zeros(batch, n)
        b = u.new_full((batch, n), b_init) if adaptive else None
        base = u.new_full((batch, n), b0)
        one_minus_alpha = 1.0 - alpha
        one_minus_rho = 1.0 - rho if adaptive else None
        w_rec_t = w_rec.t() if w_rec is not None else None
        with _serial_if_small(u, n):
            for t in range(steps):
                th = ths[t]
                if adaptive:
                    b = torch.mul(b, rho, out=bs[t]).addcmul_(one_minus_rho, z)
                    torch.add(base, b, alpha=beta, out=th)
                current = torch.addmm(us[t], z, w_rec_t, out=ins[t]) if w_rec is not None else us[t]
                v = torch.mul(v, alpha, out=vs[t]).addcmul_(one_minus_alpha, current).addcmul_(th, z, value=-1.0)
                z = torch.gt(v, th, out=zs[t])  # H(v - th) as 0.0 / 1.0
        ctx.save_for_backward(z_seq, v_seq, th_seq, b_seq, i_seq, w_rec, alpha, rho)
        ctx.beta = beta
        ctx.b_init = b_init
        ctx.mark_non_differentiable(v_seq, th_seq)
        return z_seq, v_seq, th_seq

    @staticmethod
    def backward(ctx, grad_z, _grad_v, _grad_th):
        z_seq, v_seq, th_seq, b_seq, i_seq, w_rec, alpha, rho = ctx.saved_tensors
        beta = ctx.beta
        adaptive = rho is not None
        steps, batch, n = z_seq.shape
        psi_seq = multi_gaussian_derivative(v_seq - th_seq)
        # h_t = (dL/dz_t from outside + carry) * psi_t; the first part for all steps at once
        h_seq = psi_seq * grad_z if grad_z is not None else torch.zeros_like(psi_seq)
        one_minus_alpha = 1.0 - alpha
        w_scaled = one_minus_alpha[:, None] * w_rec if w_rec is not None else None
        one_minus_rho = 1.0 - rho if adaptive else None
        dv_seq = torch.empty_like(z_seq)
        hs, psis, dvs, ths, zs, vs, ins = (x.unbind(0) for x in (h_seq, psi_seq, dv_seq, th_seq, z_seq, v_seq, i_seq))
        bs = b_seq.unbind(0) if adaptive else None
        dv = db = z_seq.new_zeros(batch, n)
        carry = z_seq.new_zeros(batch, n)  # dL/dz_t through the steps after t
        # per-(sample, neuron) sums of dv_t (v_{t-1} - I_t) and db_t (b_{t-1} - z_{t-1}),
        # accumulated while the step's values are in cache
        sum_alpha = z_seq.new_zeros(batch, n)
        sum_rho = z_seq.new_zeros(batch, n) if adaptive else None
        with _serial_if_small(z_seq, n):
            for t in range(steps - 1, -1, -1):
                h = torch.addcmul(hs[t], carry, psis[t])
                dv = torch.addcmul(h, alpha, dv, out=dvs[t])
                sum_alpha.addcmul_(dv, ins[t], value=-1.0)
                if t == 0:
                    # v_-1 = z_-1 = 0: no carry into step -1, no v_{t-1} term; b_-1 = b_init
                    if adaptive and ctx.b_init != 0.0:
                        db = torch.mul(db, rho).sub_(h, alpha=beta)
                        sum_rho.add_(db, alpha=ctx.b_init)
                    break
                sum_alpha.addcmul_(dv, vs[t - 1])
                carry = torch.mm(dv, w_scaled) if w_scaled is not None else torch.zeros_like(dv)
                carry.addcmul_(ths[t], dv, value=-1.0)
                if adaptive:
                    db = torch.mul(db, rho).sub_(torch.addcmul(h, zs[t - 1], dv), alpha=beta)
                    carry.addcmul_(one_minus_rho, db)
                    sum_rho.addcmul_(db, bs[t - 1]).addcmul_(db, zs[t - 1], value=-1.0)
        grad_alpha = sum_alpha.sum(0)
        grad_rho = sum_rho.sum(0) if adaptive else None
        grad_u = dv_seq.mul_(one_minus_alpha)  # in place: dv_seq is not needed any more
        grad_w = None
        if w_rec is not None and ctx.needs_input_grad[1]:
            grad_w = grad_u[1:].reshape(-1, n).t() @ z_seq[:-1].reshape(-1, n)
        return grad_u, grad_w, grad_alpha, grad_rho, None, None, None


def alif_recurrence(
    u: torch.Tensor,
    *,
    alpha: torch.Tensor,
    rho: torch.Tensor | None,
    w_rec: torch.Tensor | None = None,
    b0: float = 0.1,
    beta: float = 1.84,
    b_init: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a layer of ALIF (or, with ``rho=None``, LIF) neurons over a whole sequence.

    Same values as looping :func:`alif_step` / :func:`lif_step` from the state
    ``v = z = 0``, ``b = b_init`` with
    ``current = u[t] + z_{t-1} @ w_rec.T``, and the same gradients (autograd through that loop),
    but one autograd node for the whole sequence.

    Parameters
    ----------
    u:
        Feed-forward input current ``W_in x_t`` for every step, ``[T, batch, neurons]``.
    alpha, rho:
        Per-neuron decays ``[neurons]``; ``rho=None`` for LIF neurons (no adaptation).
    w_rec:
        Recurrent weights ``[neurons, neurons]`` (row = target), or None for a feed-forward layer.
    b0, beta:
        Base threshold and adaptation strength (membrane units).
    b_init:
        Initial adaptation state ``b_{-1}``, the same for every neuron (the authors' code starts
        at ``b0``; 0 by default). Ignored for LIF neurons.

    Returns ``(z, v, th)``, each ``[T, batch, neurons]``: spikes (differentiable), membranes
    and thresholds (``b0`` for LIF), recorded after each step.
    """
    return _ALIFRecurrence.apply(u, w_rec, alpha, rho, float(b0), float(beta), float(b_init))
