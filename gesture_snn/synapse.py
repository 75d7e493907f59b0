"""Synapses: the weighted sum ``W x`` of a layer's inputs (spikes or event counts) for all time
steps at once, using the sparsity of spike inputs on the CPU.

:func:`spike_linear` is the input projection ``u_t = W_in x_t`` of every spiking layer
(docs/training.md, "Speed: how a layer runs") and the readout's ``W_o z_t``.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["SPARSE_DENSITY_LIMIT", "SPARSE_MIN_OUTPUTS", "spike_linear"]

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
