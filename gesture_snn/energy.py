"""Energy accounting: operation counts and energy estimates of the SRNN, its baselines and the gateware.

Everything here is a pure function of per-sample activity counts (:class:`Activity`) and the
network's :class:`NetworkShape`; every function returns a JSON-ready dict
in which each figure comes with its constants and their sources. ``docs/energy.md`` gives every
formula, the choices and a worked example. Sections (keys of :func:`energy_report`):

- ``seed_paper``: synaptic operations at 0.9 pJ per addition against a dense RNN's MACs at 4.6 pJ,
  the accounting of Yin, Corradi and Bohte 2021 (arXiv:2103.12593), kept for comparison.
- ``neurobench``: footprint, connection sparsity, activation sparsity, synaptic operations
  (Dense, Effective_MACs, Effective_ACs) and membrane updates, with the definitions of the
  ``neurobench`` package 2.3.0 (Yik et al., arXiv:2304.04640), computed from the counts.
- ``fair_dense``: the SNN against a non-spiking RNN of the same shape in 32-bit float, binary-input
  products counted as additions and neuron-state updates counted on both sides.
- ``integer``: the same comparison at the deployed integer widths, with memory reads.
- ``gru``: a GRU baseline's operations (when its shape is given).
- ``gateware``: memory words read and written, adder and multiplier operations and cycles of
  the neuron core (``hdl/core.py``) per sample and per step.

Energies per operation are the 45 nm figures of M. Horowitz, "Computing's energy problem (and
what we can do about it)", ISSCC 2014: ASIC estimates, not FPGA measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from gesture_snn.spec.intnet import WIDTH_DEFAULTS, complete_widths
from gesture_snn.spec.memory import DEFAULT_MAX_LANES, check_lanes

__all__ = [
    "NetworkShape",
    "Activity",
    "GRUShape",
    "HOROWITZ_2014",
    "add_energy_pj",
    "connection_sparsity",
    "energy_report",
    "fair_dense",
    "footprint_bytes",
    "gateware",
    "gru_baseline",
    "integer_costs",
    "markdown_table",
    "membrane_updates",
    "mult_energy_pj",
    "neurobench",
    "read_energy_pj",
    "seed_paper",
    "srnn_weights",
]


@dataclass(frozen=True)
class NetworkShape:
    """Layer sizes and connectivity, for operation counts.

    ``layers``: sizes of the spiking layers, input side first; ``recurrent``: whether each has
    recurrent synapses.
    """

    n_inputs: int
    layers: tuple[int, ...]
    recurrent: tuple[bool, ...]
    n_outputs: int

    @classmethod
    def of(cls, config) -> "NetworkShape":
        """The shape of a :class:`~gesture_snn.config.ModelConfig`."""
        ff = (config.feedforward,) if config.feedforward else ()
        return cls(
            n_inputs=config.n_inputs,
            layers=ff + tuple(config.hidden),
            recurrent=(False,) * len(ff) + (True,) * len(config.hidden),
            n_outputs=config.n_outputs,
        )

    @property
    def input_fanout(self) -> int:
        return self.layers[0]

    @property
    def layer_fanouts(self) -> tuple[int, ...]:
        """Synapses driven by one spike of each layer (recurrent + next layer or readout)."""
        following = self.layers[1:] + (self.n_outputs,)
        return tuple(n * rec + nxt for n, rec, nxt in zip(self.layers, self.recurrent, following))

    @property
    def synapses(self) -> int:
        """All synapses (weights) of the network."""
        return self.n_inputs * self.input_fanout + sum(n * f for n, f in zip(self.layers, self.layer_fanouts))

HOROWITZ = "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, 45 nm"
SEED_PAPER = "B. Yin, F. Corradi, S. M. Bohte, 'Accurate and efficient time-domain classification with adaptive spiking recurrent neural networks', Nature Machine Intelligence 2021 (arXiv:2103.12593)"
NEUROBENCH = "J. Yik et al., 'NeuroBench: a framework for benchmarking neuromorphic computing algorithms and systems' (arXiv:2304.04640); PyPI neurobench 2.3.0, neurobench/metrics"

#: Energy per operation and per 64-bit SRAM read, pJ (Horowitz, ISSCC 2014, 45 nm).
HOROWITZ_2014 = {
    "add": {8: 0.03, 32: 0.1},  # integer add, by width in bits
    "mult": {8: 0.2, 32: 3.1},  # integer multiply, by operand width in bits
    "fp32_add": 0.9,
    "fp32_mult": 3.7,
    "sram_read_64bit": {8 * 1024: 10.0, 32 * 1024: 20.0, 1024 * 1024: 100.0},  # by memory size in bytes
}

RULES = ("interpolate", "round_up")


# --------------------------------------------------------------------------------------------
# Inputs


def _count(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r}; expected a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} = {value!r}; expected a finite count >= 0")
    return value


@dataclass(frozen=True)
class Activity:
    """Mean activity of one sample (all counts are per sample, averaged over a data set).

    ``n_steps``: time steps T. ``input_events``: input events (non-zero input entries; for binary
    frames one per active input per step). ``spikes``: spikes per spiking layer, input side first.
    ``final_step_spikes``: spikes of the last step, per layer (they drive no recurrent synapses);
    None when unknown, and recurrent counts then include them (an upper bound by at most
    ``n_l`` events). ``membrane_updates``: NeuroBench membrane updates per layer
    (:func:`membrane_updates`), None when no membrane trace was recorded (the section then
    reports the bound ``n_l * T``). ``binary_inputs``: the inputs are 0/1 frames (False: event
    counts, and ``input_events`` is the sum of the counts).
    """

    n_steps: int
    input_events: float
    spikes: tuple[float, ...]
    final_step_spikes: tuple[float, ...] | None = None
    membrane_updates: tuple[float, ...] | None = None
    binary_inputs: bool = True

    def __post_init__(self):
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, (int, np.integer)) or self.n_steps < 1:
            raise ValueError(f"n_steps = {self.n_steps!r}; expected an integer >= 1")
        object.__setattr__(self, "n_steps", int(self.n_steps))
        object.__setattr__(self, "input_events", _count("input_events", self.input_events))
        for name in ("spikes", "final_step_spikes", "membrane_updates"):
            value = getattr(self, name)
            if value is None and name != "spikes":
                continue
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise ValueError(f"{name} = {value!r}; expected one count per spiking layer")
            counts = tuple(_count(f"{name}[{i}]", v) for i, v in enumerate(value))
            if not counts:
                raise ValueError(f"{name} is empty; expected one count per spiking layer")
            object.__setattr__(self, name, counts)
        for name in ("final_step_spikes", "membrane_updates"):
            value = getattr(self, name)
            if value is not None and len(value) != len(self.spikes):
                raise ValueError(f"{name} has {len(value)} layers but spikes has {len(self.spikes)}")
        if self.final_step_spikes is not None:
            for i, (last, total) in enumerate(zip(self.final_step_spikes, self.spikes)):
                if last > total:
                    raise ValueError(f"final_step_spikes[{i}] = {last} exceeds spikes[{i}] = {total}")

    @classmethod
    def from_evaluation(cls, evaluation, *, binary_inputs: bool = True) -> "Activity":
        """Per-sample means of an :class:`~gesture_snn.evaluate.Evaluation` (its totals over the set)."""
        n = evaluation.n_samples
        if n < 1:
            raise ValueError("the evaluation has no samples; activity per sample is undefined")
        return cls(n_steps=evaluation.n_steps, input_events=evaluation.input_events / n,
                   spikes=tuple(s / n for s in evaluation.layer_spikes), binary_inputs=binary_inputs)

    @classmethod
    def from_arrays(cls, x, spikes: Sequence, *, membranes: Sequence | None = None) -> "Activity":
        """From recorded tensors or arrays: inputs ``x [B, T, n_in]``, ``spikes`` one ``[B, T, n_l]``
        per layer, optionally the membranes ``[B, T, n_l]`` per layer (NeuroBench membrane updates)."""
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[0] < 1:
            raise ValueError(f"x has shape {x.shape}; expected [batch >= 1, T, n_in]")
        b, t = x.shape[:2]
        z = [np.asarray(s) for s in spikes]
        for i, s in enumerate(z):
            if s.ndim != 3 or s.shape[:2] != (b, t):
                raise ValueError(f"spikes[{i}] has shape {s.shape}; expected [{b}, {t}, n]")
        mem = None
        if membranes is not None:
            mem = tuple(membrane_updates(np.asarray(v)) for v in membranes)
        binary = bool(np.all((x == 0) | (x == 1)))
        return cls(n_steps=t, input_events=float(np.abs(x).sum() if not binary else (x != 0).sum()) / b,
                   spikes=tuple(float(s.sum()) / b for s in z),
                   final_step_spikes=tuple(float(s[:, -1].sum()) / b for s in z),
                   membrane_updates=mem, binary_inputs=binary)


@dataclass(frozen=True)
class GRUShape:
    """A GRU baseline: ``n_inputs -> GRU(hidden) -> Linear(n_outputs)`` over ``n_steps`` steps.

    ``readout_every_step``: the readout is computed at every step (mean decoding) or only at the
    last one. ``bias``: the GRU has PyTorch's ``b_ih`` and ``b_hh``.
    """

    n_inputs: int
    hidden: int
    n_outputs: int
    n_steps: int
    readout_every_step: bool = True
    bias: bool = True

    def __post_init__(self):
        for name in ("n_inputs", "hidden", "n_outputs", "n_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"GRUShape.{name} = {value!r}; expected an integer >= 1")


def _check(activity: Activity, shape: NetworkShape) -> None:
    if not isinstance(activity, Activity):
        raise ValueError(f"activity must be an Activity, not {type(activity).__name__}")
    if len(activity.spikes) != len(shape.layers):
        raise ValueError(f"activity has spike counts for {len(activity.spikes)} layers but the network shape "
                         f"has {len(shape.layers)} spiking layers {shape.layers}")
    if len(shape.recurrent) != len(shape.layers):
        raise ValueError(f"shape.recurrent has {len(shape.recurrent)} flags for {len(shape.layers)} layers")
    t = activity.n_steps
    if activity.binary_inputs and activity.input_events > t * shape.n_inputs * (1 + 1e-9):
        raise ValueError(f"input_events = {activity.input_events} exceeds n_steps * n_inputs = {t * shape.n_inputs} "
                         "for binary inputs")
    for i, (s, n) in enumerate(zip(activity.spikes, shape.layers)):
        if s > t * n * (1 + 1e-9):
            raise ValueError(f"spikes[{i}] = {s} exceeds n_steps * layer size = {t} * {n}")
        if activity.final_step_spikes is not None and activity.final_step_spikes[i] > n * (1 + 1e-9):
            raise ValueError(f"final_step_spikes[{i}] = {activity.final_step_spikes[i]} exceeds layer size {n}")


def _connections(activity: Activity, shape: NetworkShape) -> list[dict]:
    """Every weight matrix: its name, events per sample on it, fan-out, pre and post sizes."""
    layers, last = shape.layers, activity.final_step_spikes
    out = [dict(name="input", events=activity.input_events, n_pre=shape.n_inputs, n_post=layers[0])]
    following = layers[1:] + (shape.n_outputs,)
    for i, (n, rec, nxt) in enumerate(zip(layers, shape.recurrent, following)):
        if rec:
            replayed = activity.spikes[i] - (last[i] if last is not None else 0.0)
            out.append(dict(name=f"recurrent_{i}", events=replayed, n_pre=n, n_post=n))
        name = f"layer_{i}_to_{i + 1}" if i + 1 < len(layers) else "readout"
        out.append(dict(name=name, events=activity.spikes[i], n_pre=n, n_post=nxt))
    for c in out:
        c["synaptic_ops"] = c["events"] * c["n_post"]
        c["dense_ops"] = activity.n_steps * c["n_pre"] * c["n_post"]
    return out


def _const(value, unit: str, source: str) -> dict:
    return {"value": value, "unit": unit, "source": source}


# --------------------------------------------------------------------------------------------
# Energy per operation and per read


def _loglog(table: Mapping[float, float], x: float, floor: bool = True) -> float:
    """Piecewise log-log interpolation through ``table``, extrapolated along the end segments;
    with ``floor`` below the first point the first value."""
    xs = sorted(table)
    if floor and x <= xs[0]:
        return table[xs[0]]
    if x in table:
        return table[x]
    i = max(1, min(len(xs) - 1, int(np.searchsorted(xs, x))))
    x0, x1 = xs[i - 1], xs[i]
    slope = math.log(table[x1] / table[x0]) / math.log(x1 / x0)
    return table[x0] * (x / x0) ** slope


def _round_up(table: Mapping[float, float], x: float) -> float:
    xs = sorted(table)
    for key in xs:
        if x <= key:
            return table[key]
    return table[xs[-1]] * x / xs[-1]  # beyond the table: linear in x


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"rule = {rule!r}; expected one of {RULES}")


def add_energy_pj(bits: int, rule: str = "interpolate") -> float:
    """Energy of one integer addition (or comparison) of ``bits`` bits: Horowitz's 8- and 32-bit
    figures, log-log interpolated (``"interpolate"``, the default; 8 bits or fewer cost the 8-bit
    figure) or rounded up to the next tabulated width (``"round_up"``)."""
    _check_rule(rule)
    if bits < 1:
        raise ValueError(f"bits = {bits}; expected >= 1")
    table = HOROWITZ_2014["add"]
    return _loglog(table, bits) if rule == "interpolate" else _round_up(table, bits)


def mult_energy_pj(bits_a: int, bits_b: int, rule: str = "interpolate") -> float:
    """Energy of one ``bits_a x bits_b`` integer multiplication. ``"interpolate"``: log-log in the
    product of the widths between Horowitz's 8 x 8 (0.2 pJ) and 32 x 32 (3.1 pJ) figures (a
    multiplier's array grows with the product); ``"round_up"``: the figure of the next tabulated
    width at or above the wider operand."""
    _check_rule(rule)
    if bits_a < 1 or bits_b < 1:
        raise ValueError(f"multiplier widths {bits_a} x {bits_b}; expected >= 1")
    table = HOROWITZ_2014["mult"]
    if rule == "round_up":
        return _round_up(table, max(bits_a, bits_b))
    return _loglog({b * b: e for b, e in table.items()}, bits_a * bits_b)


def read_energy_pj(bits: float, memory_bytes: float, rule: str = "interpolate") -> float:
    """Energy of reading ``bits`` bits from an SRAM of ``memory_bytes`` bytes: ``bits / 64`` times
    the 64-bit read energy of that size (a 64-bit word holds eight 8-bit weights). The 64-bit
    figure: log-log interpolated between 8 KB (10 pJ), 32 KB (20 pJ) and 1 MB (100 pJ), 10 pJ at
    8 KB or less (``"interpolate"``), or that of the next tabulated size (``"round_up"``)."""
    _check_rule(rule)
    if bits < 0 or memory_bytes <= 0:
        raise ValueError(f"read of {bits} bits from {memory_bytes} bytes; expected bits >= 0 and a positive size")
    table = HOROWITZ_2014["sram_read_64bit"]
    per_64 = _loglog(table, memory_bytes) if rule == "interpolate" else _round_up(table, memory_bytes)
    return bits / 64 * per_64


def _signed_bits(bound: int) -> int:
    return int(bound).bit_length() + 1


# --------------------------------------------------------------------------------------------
# (a) the seed paper's accounting

AC_PJ, MAC_PJ = 0.9, 4.6


def seed_paper(activity: Activity, shape: NetworkShape) -> dict:
    """Today's ``evaluate`` numbers: every input event and spike times its fan-out (all spikes,
    including the recurrent fan-out of the last step) at 0.9 pJ per addition, against a dense
    RNN of the same shape doing every synapse at every step at 4.6 pJ per MAC. Neuron updates are
    not counted."""
    _check(activity, shape)
    sops = activity.input_events * shape.input_fanout + sum(s * f for s, f in zip(activity.spikes, shape.layer_fanouts))
    macs = float(activity.n_steps * shape.synapses)
    return {
        "label": "seed paper's accounting (synaptic operations only)",
        "source": SEED_PAPER,
        "constants": {"ac_pj": _const(AC_PJ, "pJ per addition", HOROWITZ + ", 32-bit float add (0.9 pJ)"),
                      "mac_pj": _const(MAC_PJ, "pJ per MAC", HOROWITZ + ", 32-bit float mult + add (3.7 + 0.9 pJ)")},
        "snn": {"operations": {"ac": sops}, "energy_pj": sops * AC_PJ},
        "dense_rnn": {"operations": {"mac": macs}, "energy_pj": macs * MAC_PJ},
        "ratio": (macs * MAC_PJ) / (sops * AC_PJ) if sops else None,
    }


# --------------------------------------------------------------------------------------------
# (b) NeuroBench


def membrane_updates(v) -> float:
    """NeuroBench's membrane updates (``MembraneUpdates``, per sample) from a membrane trace
    ``v [B, T, n]``: every neuron counts at the first step, then at each step where its membrane
    differs from the step before; the mean over the batch."""
    v = np.asarray(v)
    if v.ndim != 3 or v.shape[0] < 1 or v.shape[1] < 1:
        raise ValueError(f"membrane trace has shape {v.shape}; expected [batch >= 1, T >= 1, n]")
    b, _, n = v.shape
    return float(b * n + np.count_nonzero(v[:, 1:] != v[:, :-1])) / b


def footprint_bytes(model) -> int:
    """NeuroBench's ``Footprint``: bytes of every parameter and buffer of a torch module."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(params + sum(b.numel() * b.element_size() for b in model.buffers()))


def srnn_weights(model) -> list[np.ndarray]:
    """The weight matrices of a :class:`~gesture_snn.model.SRNN` as its forward pass uses them
    (folded and fake-quantized under QAT), for :func:`connection_sparsity`."""
    import torch

    with torch.no_grad():
        out = []
        for layer in model.layers:
            out.append(layer.input_weight())
            rec = layer.recurrent_weight()
            if rec is not None:
                out.append(rec)
        out.append(model.readout.weight_matrix())
        return [w.detach().cpu().numpy() for w in out]


def connection_sparsity(weights: Sequence) -> float:
    """NeuroBench's ``ConnectionSparsity``: zero weights over all weights of the connection layers
    (biases not counted for linear layers), rounded to 4 decimals as NeuroBench does."""
    arrays = [np.asarray(w) for w in weights]
    total = sum(a.size for a in arrays)
    if total == 0:
        raise ValueError("no weights given; connection sparsity is undefined")
    return round(sum(int(np.count_nonzero(a == 0)) for a in arrays) / total, 4)


def neurobench(activity: Activity, shape: NetworkShape, *, footprint: int | None = None,
               sparsity: float | None = None, adaptive: bool = True) -> dict:
    """NeuroBench's metrics from the counts, for the SRNN as a stepwise network of ``nn.Linear``
    connections (input, recurrent, next layer / readout) and spiking neurons.

    ``Dense``: every connection's ``n_pre * n_post`` at every step. ``Effective_ACs``: binary
    inputs and spikes times the fan-out (NeuroBench counts a connection as ACs when its input is
    0/±1, so the binary input layer counts as ACs; event-count inputs as MACs); recurrent
    connections see ``z_{t-1}``, so last-step spikes drive none. Effective counts assume no zero
    weight (NeuroBench skips them; the float SRNN has none, ``connection_sparsity`` tells).
    ``footprint``: bytes (:func:`footprint_bytes` of the model), or the float32 parameters of the
    shape (weights plus the per-neuron time constants) when None. ``sparsity``:
    :func:`connection_sparsity`, 0.0 for dense float weights when None.
    """
    _check(activity, shape)
    conns = _connections(activity, shape)
    dense = sum(c["dense_ops"] for c in conns)
    input_ops = conns[0]["synaptic_ops"]
    spike_ops = sum(c["synaptic_ops"] for c in conns[1:])
    macs = 0.0 if activity.binary_inputs else input_ops
    acs = spike_ops + (input_ops if activity.binary_inputs else 0.0)
    neurons = sum(shape.layers)
    total_outputs = activity.n_steps * neurons
    if footprint is None:
        taus = neurons * (2 if adaptive else 1) + shape.n_outputs
        footprint_value, footprint_note = 4 * (shape.synapses + taus), "float32 weights and per-neuron time constants of the shape"
    else:
        footprint_value, footprint_note = int(footprint), "measured on the model (parameters + buffers)"
    if activity.membrane_updates is not None:
        mem, mem_note = sum(activity.membrane_updates), "measured from the membrane trace"
    else:
        mem, mem_note = float(total_outputs), "upper bound n * T (every membrane decays at every step); no trace recorded"
    return {
        "label": "NeuroBench metrics",
        "source": NEUROBENCH,
        "footprint_bytes": footprint_value,
        "footprint_note": footprint_note,
        "connection_sparsity": 0.0 if sparsity is None else float(sparsity),
        "activation_sparsity": 1.0 - sum(activity.spikes) / total_outputs,
        "synaptic_operations": {"Dense": float(dense), "Effective_MACs": float(macs), "Effective_ACs": float(acs)},
        "membrane_updates": float(mem),
        "membrane_updates_note": mem_note,
        "per_connection": {c["name"]: {"dense": float(c["dense_ops"]), "effective": float(c["synaptic_ops"])} for c in conns},
    }


# --------------------------------------------------------------------------------------------
# (c) a fair dense baseline, 32-bit float


def _fp32_energy(ops: Mapping[str, float]) -> dict:
    e = {k: v * (HOROWITZ_2014["fp32_mult"] if k.endswith("mult") else HOROWITZ_2014["fp32_add"]) for k, v in ops.items()}
    e["total"] = sum(e.values())
    return e


def _snn_neuron_ops(activity: Activity, shape: NetworkShape, adaptive: bool) -> dict:
    """Neuron-state operations of the SNN per sample, as the integer spec does them."""
    t, neurons, spikes = activity.n_steps, sum(shape.layers), sum(activity.spikes)
    return {
        "neuron_mult": t * neurons * (2 if adaptive else 1),  # alpha*v (and rho*a)
        "neuron_add": t * neurons * (2 if adaptive else 1) + 2 * spikes,  # v + I, b0 + a; per spike a + c, v - th
        "neuron_compare": t * neurons,  # v > th
        "readout_mult": t * shape.n_outputs,  # alpha_o * o
        "readout_add": t * shape.n_outputs,  # o + W_o z
    }


def fair_dense(activity: Activity, shape: NetworkShape, *, adaptive: bool = True) -> dict:
    """The SNN against a non-spiking leaky ReLU RNN of the same shape (``h = alpha*h + W x + U r``,
    ``r = relu(h)``, the same leaky readout), both in 32-bit float. Synaptic products with a
    binary operand are additions: the SNN's input events and spikes, and the dense network's
    binary input frames (all ``n_in * n_1`` per step: a dense machine does not skip zeros).
    The dense network's other products are MACs. Neuron updates on both sides, per neuron per
    step: SNN (ALIF) 2 multiplies (decays of v and a), 2 additions (synaptic input, threshold
    b0 + a) and a comparison, plus 2 additions per spike (adaptation increment, reset); dense:
    1 multiply (leak), 1 addition, 1 comparison (ReLU); readout on both: 1 multiply, 1 addition
    per output per step. A comparison costs an addition."""
    _check(activity, shape)
    conns = _connections(activity, shape)
    t = activity.n_steps
    snn = {"synaptic_add": sum(c["synaptic_ops"] for c in conns)}
    snn.update(_snn_neuron_ops(activity, shape, adaptive))
    dense_input, other = conns[0]["dense_ops"], sum(c["dense_ops"] for c in conns[1:])
    if activity.binary_inputs:  # products with a 0/1 input are additions
        dense = {"synaptic_add": dense_input, "synaptic_mac_mult": other, "synaptic_mac_add": other}
    else:
        dense = {"synaptic_mac_mult": dense_input + other, "synaptic_mac_add": dense_input + other}
    neurons = sum(shape.layers)
    dense.update({"neuron_mult": t * neurons, "neuron_add": t * neurons, "neuron_compare": t * neurons,
                  "readout_mult": t * shape.n_outputs, "readout_add": t * shape.n_outputs})
    e_snn, e_dense = _fp32_energy(snn), _fp32_energy(dense)
    return {
        "label": "fair dense baseline (32-bit float; binary-input products as additions; neuron updates on both sides)",
        "source": HOROWITZ,
        "constants": {"fp32_add_pj": _const(0.9, "pJ", HOROWITZ), "fp32_mult_pj": _const(3.7, "pJ", HOROWITZ),
                      "compare": _const("= one addition", "", "this project's rule (a comparator is a subtractor)")},
        "snn": {"operations": {k: float(v) for k, v in snn.items()}, "energy_pj": e_snn},
        "dense_rnn": {"operations": {k: float(v) for k, v in dense.items()}, "energy_pj": e_dense},
        "ratio": e_dense["total"] / e_snn["total"],
    }


# --------------------------------------------------------------------------------------------
# (d) integer costs at the deployed widths, with memory reads


def _int_energy(ops: Mapping[str, tuple[float, str, tuple[int, ...]]], rule: str) -> tuple[dict, dict]:
    """``ops``: name -> (count, "add" | "mult", widths); returns counts and energies (pJ)."""
    counts, energy = {}, {}
    for name, (count, kind, widths) in ops.items():
        unit = add_energy_pj(widths[0], rule) if kind == "add" else mult_energy_pj(*widths, rule=rule)
        counts[name] = {"count": float(count), "kind": kind, "bits": list(widths), "pj_each": unit}
        energy[name] = float(count) * unit
    return counts, energy


def integer_costs(activity: Activity, shape: NetworkShape, *, weight_bits: int = WIDTH_DEFAULTS["weight_bits"],
                  state_bits: int = WIDTH_DEFAULTS["membrane_bits"], decay_bits: int = WIDTH_DEFAULTS["decay_bits"],
                  readout_bits: int = WIDTH_DEFAULTS["readout_bits"], score_bits: int = WIDTH_DEFAULTS["score_bits"],
                  shift_bits: int = 0, adaptive: bool = True,
                  rule: str = "interpolate") -> dict:
    """The SNN and the dense leaky ReLU RNN of :func:`fair_dense` at integer widths, with SRAM reads.

    SNN (the integer spec, ``docs/fixed_point.md``): synaptic additions at the accumulator width
    (the bits of the exact sum of one layer's fan-in at ``weight_bits``, weights shifted left by
    ``shift_bits``), decays ``state_bits x decay_bits``, neuron additions at ``state_bits + 1``,
    readout at ``readout_bits``, the score (mean decoding) at ``score_bits``. Dense: activations
    of ``state_bits`` (ReLU outputs), products ``weight_bits x state_bits`` accumulated at the
    bits of the exact sum; binary inputs are additions. Memory: every synaptic operation reads
    its ``weight_bits`` weight from one SRAM holding all weights; every neuron reads and writes its
    state and reads its parameters once per step from an SRAM holding those of all neurons
    (writes cost as reads); energy :func:`read_energy_pj`.
    """
    _check(activity, shape)
    _check_rule(rule)
    for name, value in (("weight_bits", weight_bits), ("state_bits", state_bits), ("decay_bits", decay_bits),
                        ("readout_bits", readout_bits), ("score_bits", score_bits)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} = {value!r}; expected an integer >= 1")
    if shift_bits < 0:
        raise ValueError(f"shift_bits = {shift_bits}; expected >= 0")
    conns = _connections(activity, shape)
    t, wmax, amax = activity.n_steps, (1 << (weight_bits - 1)) - 1, (1 << (state_bits - 1)) - 1
    neurons, spikes, n_out = sum(shape.layers), sum(activity.spikes), shape.n_outputs
    fan_in = [shape.n_inputs + (shape.layers[0] if shape.recurrent[0] else 0)]
    fan_in += [p + (n if r else 0) for p, n, r in zip(shape.layers, shape.layers[1:], shape.recurrent[1:])]
    snn_acc = max(_signed_bits((f * wmax) << shift_bits) for f in fan_in)
    ro_acc = _signed_bits(shape.layers[-1] * wmax)
    dense_acc = max(_signed_bits(shape.n_inputs * wmax + (shape.layers[0] if shape.recurrent[0] else 0) * wmax * amax),
                    *(_signed_bits(f * wmax * amax) for f in fan_in[1:]), _signed_bits(shape.layers[-1] * wmax * amax))
    syn_snn = sum(c["synaptic_ops"] for c in conns[:-1])
    d = decay_bits
    snn_ops = {
        "synaptic_add": (syn_snn, "add", (snn_acc,)),
        "readout_synaptic_add": (conns[-1]["synaptic_ops"], "add", (ro_acc,)),
        "neuron_decay_mult": (t * neurons * (2 if adaptive else 1), "mult", (state_bits, d)),
        "neuron_decay_round_add": (t * neurons * (2 if adaptive else 1), "add", (state_bits + d,)),
        "neuron_add": (t * neurons * (2 if adaptive else 1) + 2 * spikes, "add", (state_bits + 1,)),
        "neuron_compare": (t * neurons, "add", (state_bits + 1,)),
        "readout_decay_mult": (t * n_out, "mult", (readout_bits, d)),
        "readout_decay_round_add": (t * n_out, "add", (readout_bits + d,)),
        "readout_add": (t * n_out, "add", (readout_bits,)),
        "score_add": (t * n_out, "add", (score_bits,)),
    }
    binary = activity.binary_inputs
    dense_in, dense_other = conns[0]["dense_ops"], sum(c["dense_ops"] for c in conns[1:])
    dense_ops = {
        "synaptic_add": (dense_in + dense_other, "add", (dense_acc,)),
        "synaptic_mult": (dense_other + (0 if binary else dense_in), "mult", (weight_bits, state_bits)),
        "neuron_decay_mult": (t * neurons, "mult", (state_bits, d)),
        "neuron_decay_round_add": (t * neurons, "add", (state_bits + d,)),
        "neuron_add": (t * neurons, "add", (state_bits + 1,)),
        "neuron_compare": (t * neurons, "add", (state_bits,)),
        **{k: v for k, v in snn_ops.items() if k.startswith(("readout_decay", "readout_add", "score"))},
    }
    weight_bytes = shape.synapses * weight_bits / 8
    state_word = 2 * state_bits + 1 if adaptive else state_bits + 1  # v, a, z
    param_word = 2 * d + 2 * state_bits - 1 if adaptive else d + state_bits - 1  # alpha, rho, c, b0
    neuron_bytes = neurons * (state_word + param_word) / 8
    ro_word, ro_bytes = readout_bits + score_bits, n_out * (readout_bits + score_bits + d) / 8

    def memory(weight_reads: float, state_word_bits: int, param_word_bits: int, mem_bytes: float) -> dict:
        reads = {
            "weight_read_bits": (weight_reads * weight_bits, weight_bytes),
            "neuron_state_read_write_bits": (2 * t * neurons * state_word_bits, mem_bytes),
            "neuron_parameter_read_bits": (t * neurons * param_word_bits, mem_bytes),
            "readout_state_read_write_bits": (2 * t * n_out * ro_word, ro_bytes),
            "readout_parameter_read_bits": (t * n_out * d, ro_bytes),
        }
        return ({k: {"bits": float(b), "words_64": float(b) / 64, "memory_bytes": float(m),
                     "pj_per_64bit": read_energy_pj(64, m, rule)} for k, (b, m) in reads.items()},
                {k: read_energy_pj(b, m, rule) for k, (b, m) in reads.items()})

    s_counts, s_energy = _int_energy(snn_ops, rule)
    s_mem, s_mem_e = memory(sum(c["synaptic_ops"] for c in conns), state_word, param_word, neuron_bytes)
    d_counts, d_energy = _int_energy(dense_ops, rule)
    dense_state, dense_param = state_bits, d
    d_mem, d_mem_e = memory(float(sum(c["dense_ops"] for c in conns)), dense_state, dense_param,
                            neurons * (dense_state + dense_param) / 8)

    def side(counts, energy, mem, mem_e):
        ops_total, mem_total = sum(energy.values()), sum(mem_e.values())
        return {"operations": counts, "memory": mem,
                "energy_pj": {"operations": ops_total, "memory": mem_total, "total": ops_total + mem_total}}

    snn, dense = side(s_counts, s_energy, s_mem, s_mem_e), side(d_counts, d_energy, d_mem, d_mem_e)
    return {
        "label": f"integer costs at {weight_bits}-bit weights, {state_bits}-bit state, with SRAM reads",
        "source": HOROWITZ,
        "constants": {
            "int_add_pj": _const({f"{k}-bit": v for k, v in HOROWITZ_2014["add"].items()}, "pJ", HOROWITZ),
            "int_mult_pj": _const({f"{k}-bit": v for k, v in HOROWITZ_2014["mult"].items()}, "pJ", HOROWITZ),
            "sram_read_64bit_pj": _const({f"{k // 1024} KB": v for k, v in HOROWITZ_2014["sram_read_64bit"].items()},
                                         "pJ per 64-bit read, by memory size", HOROWITZ),
            "width_rule": _const(rule, "", "this project's rule (docs/energy.md): 'interpolate' = log-log between the "
                                 "table's points, 'round_up' = the next tabulated width or size"),
            "read_rule": _const("bits / 64 of a 64-bit read", "", "this project's rule (docs/energy.md)"),
        },
        "widths": {"weight_bits": weight_bits, "state_bits": state_bits, "decay_bits": d, "readout_bits": readout_bits,
                   "score_bits": score_bits, "snn_acc_bits": snn_acc, "readout_acc_bits": ro_acc,
                   "dense_acc_bits": dense_acc},
        "snn": snn,
        "dense_rnn": dense,
        "ratio": dense["energy_pj"]["total"] / snn["energy_pj"]["total"],
        "ratio_operations_only": dense["energy_pj"]["operations"] / snn["energy_pj"]["operations"],
    }


# --------------------------------------------------------------------------------------------
# (e) a GRU baseline


def gru_baseline(gru: GRUShape, *, binary_inputs: bool = True, weight_bits: int = WIDTH_DEFAULTS["weight_bits"],
                 state_bits: int = WIDTH_DEFAULTS["membrane_bits"], rule: str = "interpolate") -> dict:
    """Operations and energy per sample of ``n_in -> GRU(h) -> Linear(n_out)`` (PyTorch's GRU:
    ``r = s(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise, ``n = tanh(W_in x + b_in +
    r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``).

    Per step: input products ``3 h n_in`` (additions for binary inputs, MACs otherwise),
    recurrent MACs ``3 h^2``, bias additions ``6 h`` (with biases), gate sums ``3 h`` (ih + hh
    for r, z; ih + r * hh for n), elementwise ``3 h`` multiplies (``r * hh_n``, ``(1-z) * n``,
    ``z * h``) and ``2 h`` additions (``1 - z``, the final sum), ``3 h`` nonlinearities (2 sigmoid,
    1 tanh; each costed as one multiply and one addition, a piecewise-linear approximation);
    readout ``n_out h`` MACs at every step (or the last only). ``neurobench_dense`` is what
    NeuroBench's ``SynapticOperations`` reports as Dense for a ``GRUCell`` plus ``Linear``
    stepped T times: ``T (3 h (n_in + h) + 3 h) + readout``. Energies: 32-bit float and integer
    (``weight_bits`` weights, ``state_bits`` activations, accumulation at 32 bits)."""
    if not isinstance(gru, GRUShape):
        raise ValueError(f"gru must be a GRUShape, not {type(gru).__name__}")
    _check_rule(rule)
    t, h, n_in, n_out = gru.n_steps, gru.hidden, gru.n_inputs, gru.n_outputs
    readout_steps = t if gru.readout_every_step else 1
    in_products = t * 3 * h * n_in
    ops = {
        "input_add": in_products if binary_inputs else 0,
        "input_mac": 0 if binary_inputs else in_products,
        "recurrent_mac": t * 3 * h * h,
        "bias_add": t * 6 * h if gru.bias else 0,
        "gate_add": t * 3 * h,
        "elementwise_mult": t * 3 * h,
        "elementwise_add": t * 2 * h,
        "nonlinearity": t * 3 * h,
        "readout_mac": readout_steps * n_out * h,
        "readout_bias_add": readout_steps * n_out if gru.bias else 0,
    }
    adds = ops["input_add"] + ops["bias_add"] + ops["gate_add"] + ops["elementwise_add"] + ops["readout_bias_add"] + ops["nonlinearity"]
    mults = ops["elementwise_mult"] + ops["nonlinearity"]
    macs = ops["input_mac"] + ops["recurrent_mac"] + ops["readout_mac"]
    fp32 = adds * 0.9 + mults * 3.7 + macs * (0.9 + 3.7)
    int_e = (adds * add_energy_pj(32, rule) + mults * mult_energy_pj(state_bits, state_bits, rule)
             + macs * (mult_energy_pj(weight_bits, state_bits, rule) + add_energy_pj(32, rule)))
    params = 3 * h * (n_in + h) + (6 * h if gru.bias else 0) + n_out * h + (n_out if gru.bias else 0)
    read_bits = (in_products + t * 3 * h * h + readout_steps * n_out * h) * weight_bits
    mem_pj = read_energy_pj(read_bits, params * weight_bits / 8, rule)
    return {
        "label": f"GRU baseline {n_in} -> GRU({h}) -> {n_out}, T = {t}",
        "source": HOROWITZ + "; GRU equations: PyTorch torch.nn.GRU",
        "shape": {"n_inputs": n_in, "hidden": h, "n_outputs": n_out, "n_steps": t,
                  "readout_every_step": gru.readout_every_step, "bias": gru.bias, "binary_inputs": binary_inputs},
        "parameters": params,
        "operations": {k: float(v) for k, v in ops.items()},
        "macs": float(macs),
        "neurobench_dense": float(t * (3 * h * (n_in + h) + 3 * h) + readout_steps * n_out * h),
        "energy_pj": {"fp32": fp32, "integer_operations": int_e, "integer_weight_reads": mem_pj,
                      "integer_total": int_e + mem_pj},
        "constants": {"fp32_add_pj": _const(0.9, "pJ", HOROWITZ), "fp32_mult_pj": _const(3.7, "pJ", HOROWITZ),
                      "nonlinearity": _const("1 multiply + 1 addition", "", "this project's rule (docs/energy.md)")},
    }


# --------------------------------------------------------------------------------------------
# (f) the gateware


STEP_OVERHEAD_CYCLES = 20  # hdl.core.STEP_OVERHEAD_CYCLES (a test checks it)


def gateware(activity: Activity, shape: NetworkShape, *, lanes: int = DEFAULT_MAX_LANES,
             readout_lanes: int | None = None, shift_bits: int = 0, rule: str = "interpolate", **widths) -> dict:
    """Memory words read and written, adder and multiplier operations and clock cycles of the
    neuron core (``hdl/core.py``, ``docs/hardware.md``) per sample and per step, from the counts.

    Per input event and per replayed spike (E + P): ``n_rec / L`` words of ``synapses.weights``
    (``L * B`` bits) read, as many ``synapses.sums`` words (``L * A`` bits) read and written,
    ``n_rec`` additions. Per step: the flush reads and clears every sums word; every neuron's
    ``{v, a, z}`` is read and written and its four parameters read; the ALIF pipeline does 2
    multiplies (``VW x D``, ``AW x D``), 2 rounding additions, 4 additions (adaptation increment,
    membrane input, threshold, reset, computed whether or not the neuron spiked), 3 saturation
    comparisons and the spike comparison; the spike list is written once per spike and read at
    the replay and the readout. Per spike (S): ``ceil(n_out / RL)`` ``readout_synapses.weights``
    words (``RL * B`` bits) and sums words, ``RL * ceil(n_out/RL)`` additions (padding lanes add
    zeros). Per output per step: ``{o, s}`` read and written, ``alpha_out`` read, 1 multiply
    (``OW x D``), rounding, input and score additions, 4 saturation comparisons and the argmax
    comparison. P = spikes of the previous step: all spikes but the last step's.
    """
    _check(activity, shape)
    _check_rule(rule)
    if len(shape.layers) != 1 or not shape.recurrent[0]:
        raise ValueError(f"the gateware runs one recurrent layer; this shape has layers {shape.layers} "
                         f"(recurrent {shape.recurrent})")
    w = complete_widths(widths)
    n_in, n_rec, n_out = shape.n_inputs, shape.layers[0], shape.n_outputs
    rl = min(lanes, n_out) if readout_lanes is None else readout_lanes
    check_lanes(n_in=n_in, n_rec=n_rec, n_out=n_out, lanes=lanes, readout_lanes=rl)  # as the core checks them
    blocks, rblocks = n_rec // lanes, -(-n_out // rl)
    b, d, vw, aw, ow, sw = (w[k] for k in ("weight_bits", "decay_bits", "membrane_bits", "adaptation_bits",
                                           "readout_bits", "score_bits"))
    wmax = (1 << (b - 1)) - 1
    acc = _signed_bits(((n_in * wmax) << shift_bits) + ((n_rec * wmax) << shift_bits))
    racc = _signed_bits(n_rec * wmax)
    t, e, s = activity.n_steps, activity.input_events, activity.spikes[0]
    p = s - (activity.final_step_spikes[0] if activity.final_step_spikes is not None else 0.0)
    cycles = (e + p) * blocks + s * rblocks + t * (n_rec + n_out + STEP_OVERHEAD_CYCLES) + 1
    idx_bits = max(1, math.ceil(math.log2(n_rec)))
    state_bits_neuron, param_bits = vw + aw + 1, 2 * d + aw + (vw - 1)
    mems = {  # name: (words read, words written, bits per word, memory bytes)
        "synapses.weights": ((e + p) * blocks, 0.0, lanes * b, (n_in + n_rec) * blocks * lanes * b / 8),
        "synapses.sums": ((e + p) * blocks + t * blocks, (e + p) * blocks + t * blocks, lanes * acc, blocks * lanes * acc / 8),
        "neurons.state": (t * n_rec, t * n_rec, state_bits_neuron, n_rec * state_bits_neuron / 8),
        "neurons.parameters": (t * n_rec, 0.0, param_bits, n_rec * param_bits / 8),
        "spikes.indices": (p + s, s, idx_bits, n_rec * idx_bits / 8),
        "readout_synapses.weights": (s * rblocks, 0.0, rl * b, n_rec * rblocks * rl * b / 8),
        "readout_synapses.sums": (s * rblocks + t * rblocks, s * rblocks + t * rblocks, rl * racc, rblocks * rl * racc / 8),
        "readout.state": (t * n_out, t * n_out, ow + sw, n_out * (ow + sw) / 8),
        "readout.alpha_out": (t * n_out, 0.0, d, n_out * d / 8),
    }
    memory, mem_pj = {}, 0.0
    for name, (reads, writes, bits, size) in mems.items():
        energy = read_energy_pj((reads + writes) * bits, size, rule)
        memory[name] = {"words_read": float(reads), "words_written": float(writes), "bits_per_word": bits,
                        "memory_bytes": float(size), "energy_pj": energy}
        mem_pj += energy
    thb = max(aw, vw - 1) + 1
    ops = {
        "synaptic_add": ((e + p) * n_rec, "add", (acc,)),
        "alif_decay_mult_v": (t * n_rec, "mult", (vw, d)),
        "alif_decay_mult_a": (t * n_rec, "mult", (aw, d)),
        "alif_round_add": (2 * t * n_rec, "add", (vw + d,)),
        "alif_add": (4 * t * n_rec, "add", (max(vw, acc) + 2,)),
        "alif_compare": (4 * t * n_rec, "add", (thb + 1,)),
        "readout_synaptic_add": (s * rblocks * rl, "add", (racc,)),
        "readout_decay_mult": (t * n_out, "mult", (ow, d)),
        "readout_round_add": (t * n_out, "add", (ow + d,)),
        "readout_add": (2 * t * n_out, "add", (sw,)),
        "readout_compare": (5 * t * n_out, "add", (sw,)),
    }
    counts, energy = _int_energy(ops, rule)
    ops_pj = sum(energy.values())
    per_step = lambda x: x / t  # noqa: E731
    return {
        "label": f"gateware (hdl/core.py) at L = {lanes}, RL = {rl}",
        "source": "docs/hardware.md cycle model and memories; energies " + HOROWITZ,
        "lanes": lanes, "readout_lanes": rl,
        "widths": {**w, "acc_bits": acc, "readout_acc_bits": racc},
        "cycles_per_sample": float(cycles),
        "cycles_per_step": per_step(cycles),
        "memory": memory,
        "memory_words_per_step": {k: per_step(v["words_read"] + v["words_written"]) for k, v in memory.items()},
        "operations": counts,
        "adder_operations_per_step": per_step(sum(c["count"] for c in counts.values() if c["kind"] == "add")),
        "multiplier_operations_per_step": per_step(sum(c["count"] for c in counts.values() if c["kind"] == "mult")),
        "energy_pj": {"operations": ops_pj, "memory": mem_pj, "total": ops_pj + mem_pj},
        "constants": {"width_rule": _const(rule, "", "this project's rule (docs/energy.md)"),
                      "read_rule": _const("bits / 64 of a 64-bit read at the memory's size; a write costs as a read",
                                          "", "this project's rule (docs/energy.md)")},
        "note": "ASIC-equivalent (45 nm) figures of the core's activity, not an FPGA power measurement",
    }


# --------------------------------------------------------------------------------------------
# everything side by side


def energy_report(activity: Activity, shape: NetworkShape, *, weight_bits: int = WIDTH_DEFAULTS["weight_bits"],
                  state_bits: int = WIDTH_DEFAULTS["membrane_bits"], gru: GRUShape | None = None,
                  lanes: int | None = DEFAULT_MAX_LANES, readout_lanes: int | None = None,
                  footprint: int | None = None, sparsity: float | None = None, adaptive: bool = True,
                  rule: str = "interpolate") -> dict:
    """All sections side by side (JSON-ready). ``gru``: the trained GRU baseline's shape;
    ``lanes`` None, or a shape the gateware cannot run, leaves the gateware section out (with
    the reason under ``gateware_skipped``)."""
    _check(activity, shape)
    report = {
        "activity": {"n_steps": activity.n_steps, "input_events_per_sample": activity.input_events,
                     "spikes_per_sample": list(activity.spikes),
                     "input_density": activity.input_events / (activity.n_steps * shape.n_inputs),
                     "firing_rates": [s / (activity.n_steps * n) for s, n in zip(activity.spikes, shape.layers)]},
        "shape": {"n_inputs": shape.n_inputs, "layers": list(shape.layers), "recurrent": list(shape.recurrent),
                  "n_outputs": shape.n_outputs},
        "seed_paper": seed_paper(activity, shape),
        "neurobench": neurobench(activity, shape, footprint=footprint, sparsity=sparsity, adaptive=adaptive),
        "fair_dense": fair_dense(activity, shape, adaptive=adaptive),
        "integer": integer_costs(activity, shape, weight_bits=weight_bits, state_bits=state_bits, adaptive=adaptive,
                                 rule=rule),
    }
    if gru is not None:
        g = gru_baseline(gru, binary_inputs=activity.binary_inputs, weight_bits=weight_bits, state_bits=state_bits,
                         rule=rule)
        g["ratio_fp32_vs_snn_fair"] = g["energy_pj"]["fp32"] / report["fair_dense"]["snn"]["energy_pj"]["total"]
        g["ratio_integer_vs_snn_integer"] = g["energy_pj"]["integer_total"] / report["integer"]["snn"]["energy_pj"]["total"]
        report["gru"] = g
    if lanes is not None:
        try:
            report["gateware"] = gateware(activity, shape, lanes=lanes, readout_lanes=readout_lanes, rule=rule,
                                          weight_bits=weight_bits, membrane_bits=state_bits, adaptation_bits=state_bits)
        except ValueError as exc:
            report["gateware_skipped"] = str(exc)
    return report


def _fmt(x: float) -> str:
    x = float(x)
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def _pj(x: float) -> str:
    x = float(x)
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3g} uJ"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.3g} nJ"
    return f"{x:.3g} pJ"


def markdown_table(report: dict) -> str:
    """One markdown table of :func:`energy_report`'s figures per sample: accounting, SNN operations
    and energy, baseline operations and energy, ratio, source."""
    rows = ["| accounting | SNN operations | SNN energy | baseline | baseline operations | baseline energy | ratio | constants (source) |",
            "|---|---|---|---|---|---|---|---|"]
    sp = report["seed_paper"]
    rows.append(f"| seed paper (Yin et al. 2021) | {_fmt(sp['snn']['operations']['ac'])} AC | {_pj(sp['snn']['energy_pj'])} "
                f"| dense RNN | {_fmt(sp['dense_rnn']['operations']['mac'])} MAC | {_pj(sp['dense_rnn']['energy_pj'])} "
                f"| {sp['ratio']:.3g} x | 0.9 pJ/AC, 4.6 pJ/MAC (Horowitz 2014) |")
    fd = report["fair_dense"]
    ops = lambda d: _fmt(sum(d["operations"].values()))  # noqa: E731
    rows.append(f"| fair dense, fp32 | {ops(fd['snn'])} ops | {_pj(fd['snn']['energy_pj']['total'])} | leaky ReLU RNN, same shape "
                f"| {ops(fd['dense_rnn'])} ops | {_pj(fd['dense_rnn']['energy_pj']['total'])} | {fd['ratio']:.3g} x "
                "| fp32 add 0.9, mult 3.7 pJ (Horowitz 2014) |")
    it = report["integer"]
    iops = lambda d: _fmt(sum(o["count"] for o in d["operations"].values()))  # noqa: E731
    wd = it["widths"]
    rows.append(f"| integer {wd['weight_bits']}-bit weights / {wd['state_bits']}-bit state, with SRAM reads "
                f"| {iops(it['snn'])} ops | {_pj(it['snn']['energy_pj']['total'])} | same RNN, integer "
                f"| {iops(it['dense_rnn'])} ops | {_pj(it['dense_rnn']['energy_pj']['total'])} | {it['ratio']:.3g} x "
                f"| int add 0.03/0.1, mult 0.2/3.1 pJ, 64-bit SRAM read 10/20/100 pJ (Horowitz 2014; rule {it['constants']['width_rule']['value']}) |")
    if "gru" in report:
        g = report["gru"]
        rows.append(f"| GRU baseline, fp32 | (fair dense SNN) | {_pj(fd['snn']['energy_pj']['total'])} | {g['label']} "
                    f"| {_fmt(g['macs'])} MAC + {_fmt(sum(v for k, v in g['operations'].items() if not k.endswith('mac')))} other "
                    f"| {_pj(g['energy_pj']['fp32'])} | {g['ratio_fp32_vs_snn_fair']:.3g} x | fp32 (Horowitz 2014) |")
        rows.append(f"| GRU baseline, integer | (integer SNN) | {_pj(it['snn']['energy_pj']['total'])} | {g['label']} "
                    f"| {_fmt(g['macs'])} MAC | {_pj(g['energy_pj']['integer_total'])} | {g['ratio_integer_vs_snn_integer']:.3g} x "
                    "| integer + weight reads (Horowitz 2014) |")
    nb = report["neurobench"]
    so = nb["synaptic_operations"]
    rows.append(f"| NeuroBench (Yik et al.) | {_fmt(so['Effective_ACs'])} eff. ACs, {_fmt(so['Effective_MACs'])} eff. MACs | - "
                f"| Dense | {_fmt(so['Dense'])} | - | - | footprint {_fmt(nb['footprint_bytes'])}B, connection sparsity "
                f"{nb['connection_sparsity']:.3g}, activation sparsity {nb['activation_sparsity']:.3g}, membrane updates "
                f"{_fmt(nb['membrane_updates'])} |")
    if "gateware" in report:
        gw = report["gateware"]
        words = sum(gw["memory_words_per_step"].values())
        rows.append(f"| gateware, per step ({gw['label'].split('at ')[-1]}) | {_fmt(gw['adder_operations_per_step'])} adds, "
                    f"{_fmt(gw['multiplier_operations_per_step'])} mults, {_fmt(words)} memory words | "
                    f"{_pj(gw['energy_pj']['total'] / report['activity']['n_steps'])} | - | {_fmt(gw['cycles_per_step'])} cycles | - | - "
                    "| Horowitz 2014, ASIC-equivalent |")
    return "\n".join(rows) + "\n"
