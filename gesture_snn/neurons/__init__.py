"""Neuron models of the SRNN, one module per type, Norse-style, and the registry of their names.

Every neuron module (:mod:`~gesture_snn.neurons.alif`, :mod:`~gesture_snn.neurons.lif`) holds
the same parts, so that :class:`gesture_snn.model.SRNN` can run any of them:

``NAME``, ``ADAPTIVE``
    The registry name, and whether the type has an adaptation state (the integer network's
    ``adaptive`` flag; :meth:`~gesture_snn.model.SRNN.hardware_parameters`).
``Parameters``, ``State``
    NamedTuples: the constants of a layer of neurons, and the state entering a step (``State.v``
    the membrane, ``State.z`` the spikes of the previous step), each ``[batch, neurons]``.
``parameters(alpha=, rho=, b0=, beta=, b_init=)``
    ``Parameters`` from a layer's decays and constants (a type ignores what it does not use).
``initial_state(params, like)``
    The state before step 0, shaped like ``like`` ``[batch, neurons]``.
``step(current, state, params) -> (z, state)``
    One step under autograd (the reference).
``threshold(state, params)``
    The threshold that the step which produced ``state`` compared the membrane with.
``sequence(u, params, *, w_rec=None) -> (z, v, th)``
    The fused kernel: a whole time-major sequence as one autograd node with a hand-written
    backward pass (same values and gradients as looping ``step``).
``Cell``
    ``cell(input_current_t, state=None) -> (z_t, state)``, an :class:`torch.nn.Module`.

The equations and their source (Yin, Corradi and Bohté, 2021, arXiv:2005.11633) are in each
module's docstring and in docs/training.md ("The network").

Adding a neuron type: write ``gesture_snn/neurons/<name>.py`` with the parts above (the shared
pieces are :mod:`~gesture_snn.neurons.surrogate` and :mod:`~gesture_snn.neurons.kernel`), add
its name to :data:`NAMES`, and test it against autograd through its ``step`` (tests/software/test_model.py
shows how). This package's ``__init__`` does not import torch: the configuration validates
names with :data:`NAMES` alone, and :func:`get` imports a module when it is asked for.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["INTERFACE", "NAMES", "get"]

#: What every neuron module defines (described above); its ``__all__``.
INTERFACE = ("NAME", "ADAPTIVE", "Parameters", "State", "parameters", "initial_state", "step", "threshold", "sequence",
             "Cell")

#: Registered neuron types: the name (``ModelConfig.neuron``, ``--neuron``) -> a one-line summary.
#: The module of a name is ``gesture_snn.neurons.<name>``.
NAMES: dict[str, str] = {
    "alif": "adaptive leaky integrate-and-fire (threshold b0 + beta * b)",
    "lif": "leaky integrate-and-fire (constant threshold b0)",
}


def get(name: str) -> ModuleType:
    """The module of the neuron type ``name``; ValueError naming the choices for an unknown one."""
    if name not in NAMES:
        raise ValueError(f"unknown neuron type {name!r}; choose one of {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")
