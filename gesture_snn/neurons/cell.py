"""The per-step cell that every neuron type offers: ``cell(input_current_t, state=None) -> (z_t, state)``.

As a Norse cell, it holds fixed :class:`NamedTuple` parameters (not learned, and not moved by
``.to()``); the state is passed in and returned, so a caller can run a layer step by step along
a live stream. A neuron module defines its cell by naming its ``step`` and ``initial_state``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
from torch import nn

__all__ = ["NeuronCell"]


class NeuronCell(nn.Module):
    """One step of a layer of neurons; subclasses set ``step`` and ``initial_state`` of their type.

    ``forward(current, state=None)``: ``current`` the input current ``I_t`` ``[batch, neurons]``;
    ``state=None`` starts from the type's initial state. Returns ``(z_t, state)``.
    """

    step: Callable[[torch.Tensor, Any, Any], tuple[torch.Tensor, Any]]
    initial_state: Callable[[Any, torch.Tensor], Any]

    def __init__(self, params: NamedTuple):
        super().__init__()
        self.params = params

    def forward(self, current: torch.Tensor, state=None):
        if state is None:
            state = type(self).initial_state(self.params, current)
        return type(self).step(current, state, self.params)
