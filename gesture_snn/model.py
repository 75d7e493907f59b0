"""The multiple-timescale SRNN as :class:`torch.nn.Module` s around the neuron models of :mod:`gesture_snn.neurons`.

    input x_t  ->  [feed-forward spiking layer]  ->  recurrent spiking layer(s)  ->  leaky readout

The neuron type (``ModelConfig.neuron``: ``"alif"``, ``"lif"``) is looked up in the registry of
:mod:`gesture_snn.neurons`; a spiking layer runs that module's ``sequence`` kernel or ``step``
function. The equations, with their source (Yin, Corradi and Bohté, 2021, arXiv:2005.11633),
are in docs/training.md ("The network") and in the neuron modules.

Every layer keeps per-neuron time constants (``tau_m``, and ``tau_adp`` for adaptive neurons;
readout ``tau``) as learned parameters, in steps. They are clamped into ``[tau_min, tau_max]``
wherever decays are computed (so any parameter value gives valid decays in (0, 1)), and the
trainer projects the parameters back into that range after every optimiser step
(:meth:`SRNN.constrain_`), so that a time constant pushed past a bound keeps receiving gradients.
Layers have no biases.

Weights and decays are read through methods (:meth:`SpikingLayer.input_weight`,
:meth:`RecurrentSpikingLayer.recurrent_weight`, :meth:`SpikingLayer.decays`,
:meth:`LeakyReadout.weight_matrix`, :meth:`LeakyReadout.decay`). The weight hooks are the one
place that applies quantization-aware training: with ``qat_weight_bits`` set (per layer, or for
the whole network through :attr:`SRNN.qat_weight_bits`) they return the weights whose folded form
``(1 - alpha) W`` is fake-quantized with the quantizer's scale rule
(:func:`gesture_snn.qat.fake_quantize_folded`, straight-through gradient), so everything
that reads the weights (the forward pass, :meth:`SRNN.hardware_parameters`, hence
``gesture-snn quantize``) sees the integer network's weights.

Two implementations of the same equations (``implementation=``): ``"fused"`` (default) runs each
layer as one autograd node with a hand-written backward pass through time (the neuron module's
``sequence``) and projects the inputs of all steps at once (sparse on the CPU); ``"stepwise"``
loops the step functions under autograd, the slow reference. A third way runs a trained network
bin by bin on a live stream: :meth:`SRNN.initial_state` and :meth:`SRNN.step` (the same values
as ``forward`` on the whole sequence).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from gesture_snn import neurons
from gesture_snn.config import DECODES, ModelConfig
from gesture_snn.neurons.readout import leaky_integrate, leaky_readout_step, tau_to_decay
from gesture_snn.qat import fake_quantize_folded
from gesture_snn.synapse import spike_linear

__all__ = [
    "IMPLEMENTATIONS",
    "LayerRecord",
    "LeakyReadout",
    "RecurrentSpikingLayer",
    "SRNN",
    "SRNNOutput",
    "SRNNState",
    "SpikingLayer",
    "decode_scores",
    "readout_loss",
]

IMPLEMENTATIONS = ("fused", "stepwise")


class LayerRecord(NamedTuple):
    """What a spiking layer did, each ``[batch, T, neurons]``: spikes ``z``, membranes ``v`` after
    the step (after the reset term) and the thresholds ``th`` used in the step."""

    z: torch.Tensor
    v: torch.Tensor
    th: torch.Tensor


class SRNNOutput(NamedTuple):
    """``readout``: ``[batch, T, n_out]`` leaky-integrator values ``o_t``; ``spikes``: one
    ``[batch, T, n]`` tensor per spiking layer, input side first; ``records``: one
    :class:`LayerRecord` per spiking layer when the forward was asked to ``record``, else None."""

    readout: torch.Tensor
    spikes: tuple[torch.Tensor, ...]
    records: tuple[LayerRecord, ...] | None = None


class SRNNState(NamedTuple):
    """The state of an :class:`SRNN` between two :meth:`SRNN.step` calls: one neuron state per
    spiking layer (its neuron module's ``State``, input side first) and the readout ``o``
    ``[batch, n_out]``."""

    layers: tuple
    readout: torch.Tensor


def _check_qat_bits(bits: int | None) -> int | None:
    if bits is not None and not (isinstance(bits, int) and 2 <= bits <= 16):
        raise ValueError(f"qat_weight_bits must be None (float weights) or 2..16 bits, not {bits!r}")
    return bits


def _as_used(weight: torch.Tensor, decay: torch.Tensor, qat_weight_bits: int | None) -> torch.Tensor:
    """``weight`` as the forward uses it: itself, or with ``(1 - decay) * weight`` fake-quantized
    to ``qat_weight_bits`` (quantization-aware training)."""
    if qat_weight_bits is None:
        return weight
    return fake_quantize_folded(weight, decay, qat_weight_bits)


def _normal_taus(n: int, mean_std: tuple[float, float], bounds: tuple[float, float]) -> nn.Parameter:
    mean, std = mean_std
    return nn.Parameter(torch.empty(n).normal_(mean, std).clamp_(*bounds))


class SpikingLayer(nn.Module):
    """A feed-forward layer of spiking neurons of one registered type (:mod:`gesture_snn.neurons`).

    Parameters (all keyword-only)
    -----------------------------
    input_size, size:
        Inputs and neurons.
    neuron:
        The neuron type's registry name: ``"alif"`` (threshold ``b0 + beta * b``) or ``"lif"``
        (threshold ``b0``; no ``tau_adp``).
    b0, beta:
        Base threshold and adaptation strength, in membrane units (not learned).
    tau_m, tau_adp:
        Initial time constants in steps, drawn per neuron from ``N(mean, std)``.
    tau_m_bounds, tau_adp_bounds:
        Valid ``(min, max)`` of each time constant, in steps; min >= 1.
    qat_weight_bits:
        None: float weights; 2..16: quantization-aware training, the folded weights
        ``(1 - alpha) W`` fake-quantized to this many bits (an attribute that may be changed).
    b_init:
        Initial adaptation state ``b_{-1}`` (0: ours; the authors' code starts at ``b0``).
    """

    def __init__(
        self,
        *,
        input_size: int,
        size: int,
        neuron: str = "alif",
        b0: float = 0.1,
        beta: float = 1.84,
        tau_m: tuple[float, float] = (20.0, 5.0),
        tau_adp: tuple[float, float] = (200.0, 50.0),
        tau_m_bounds: tuple[float, float] = (1.0, 1000.0),
        tau_adp_bounds: tuple[float, float] = (1.0, 4000.0),
        qat_weight_bits: int | None = None,
        b_init: float = 0.0,
    ):
        super().__init__()
        neurons.get(neuron)  # an unknown name fails here
        self.neuron_type = neuron
        if input_size < 1 or size < 1:
            raise ValueError(f"input_size and size must be at least 1, not {input_size} and {size}")
        for name, (lo, hi) in (("tau_m_bounds", tau_m_bounds), ("tau_adp_bounds", tau_adp_bounds)):
            if not 1.0 <= lo < hi:
                raise ValueError(f"{name} must be (min, max) with 1 <= min < max, not {(lo, hi)}")
        if b0 <= 0:
            raise ValueError(f"b0 (base threshold) must be positive, not {b0}")
        adaptive = self.adaptive
        self.input_size, self.size = input_size, size
        self.b0, self.beta = float(b0), float(beta) if adaptive else 0.0
        if b_init < 0:
            raise ValueError(f"b_init (initial adaptation state) must be >= 0, not {b_init}")
        self.b_init = float(b_init) if adaptive else 0.0
        self.tau_m_bounds, self.tau_adp_bounds = tuple(tau_m_bounds), tuple(tau_adp_bounds)
        self.weight = nn.Parameter(torch.empty(size, input_size))
        nn.init.xavier_uniform_(self.weight)
        self.tau_m = _normal_taus(size, tau_m, self.tau_m_bounds)
        self.tau_adp = _normal_taus(size, tau_adp, self.tau_adp_bounds) if adaptive else None
        self.qat_weight_bits = _check_qat_bits(qat_weight_bits)

    @property
    def neuron(self):
        """The neuron module of :attr:`neuron_type` (e.g. :mod:`gesture_snn.neurons.alif`)."""
        return neurons.get(self.neuron_type)

    @property
    def adaptive(self) -> bool:
        """Whether the neurons adapt (a threshold ``b0 + beta * b`` and a learned ``tau_adp``)."""
        return self.neuron.ADAPTIVE

    def extra_repr(self) -> str:
        qat = f", qat_weight_bits={self.qat_weight_bits}" if self.qat_weight_bits is not None else ""
        return f"{self.input_size} -> {self.size} {self.neuron.NAME.upper()}, b0={self.b0}, beta={self.beta}{qat}"

    def input_weight(self) -> torch.Tensor:
        """``W_in`` ``[size, input_size]`` as the forward uses it."""
        return _as_used(self.weight, self.decays()[0], self.qat_weight_bits)

    def recurrent_weight(self) -> torch.Tensor | None:
        """``W_rec`` ``[size, size]``, or None for a feed-forward layer."""
        return None

    def decays(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(alpha, rho)`` per neuron from the clamped time constants; ``rho`` None without adaptation."""
        alpha = tau_to_decay(self.tau_m.clamp(*self.tau_m_bounds))
        rho = tau_to_decay(self.tau_adp.clamp(*self.tau_adp_bounds)) if self.adaptive else None
        return alpha, rho

    def neuron_parameters(self):
        """The neuron module's ``Parameters`` of this layer (decays from the clamped time constants)."""
        alpha, rho = self.decays()
        return self.neuron.parameters(alpha=alpha, rho=rho, b0=self.b0, beta=self.beta, b_init=self.b_init)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project the time constants into their bounds (after an optimiser step)."""
        self.tau_m.clamp_(*self.tau_m_bounds)
        if self.adaptive:
            self.tau_adp.clamp_(*self.tau_adp_bounds)

    def forward(self, x: torch.Tensor, *, implementation: str = "fused") -> LayerRecord:
        """Run over ``x`` ``[batch, T, input_size]`` from the initial state; returns ``(z, v, th)``,
        each ``[batch, T, size]``."""
        w_in, w_rec = self.input_weight(), self.recurrent_weight()
        params = self.neuron_parameters()
        if implementation == "fused":
            # project every step at once (on the batch-major input: no copy of x), then run
            # the recurrence time-major
            u = spike_linear(x, w_in).transpose(0, 1).contiguous()
            z, v, th = self.neuron.sequence(u, params, w_rec=w_rec)
            return LayerRecord(z.transpose(0, 1), v.transpose(0, 1), th.transpose(0, 1))
        state = self.initial_state(x.shape[0], like=x)
        z_seq, v_seq, th_seq = [], [], []
        for x_t in x.unbind(1):
            z, state = self._step(x_t, state, w_in, w_rec, params)
            z_seq.append(z)
            v_seq.append(state.v)
            th_seq.append(self.neuron.threshold(state, params))
        return LayerRecord(torch.stack(z_seq, 1), torch.stack(v_seq, 1), torch.stack(th_seq, 1))

    def initial_state(self, batch: int, *, like: torch.Tensor | None = None):
        """The neuron module's state before step 0 for ``batch`` samples (dtype and device of
        ``like``, else of the weights)."""
        like = self.weight if like is None else like
        return self.neuron.initial_state(self.neuron_parameters(), like.new_zeros(batch, self.size))

    def step(self, x_t: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        """One step: inputs ``x_t`` ``[batch, input_size]`` and the state entering the step ->
        ``(z_t, state)``."""
        return self._step(x_t, state, self.input_weight(), self.recurrent_weight(), self.neuron_parameters())

    def _step(self, x_t, state, w_in, w_rec, params):
        current = x_t @ w_in.t()
        if w_rec is not None:
            current = current + state.z @ w_rec.t()
        return self.neuron.step(current, state, params)


class RecurrentSpikingLayer(SpikingLayer):
    """:class:`SpikingLayer` with all-to-all recurrent weights: ``I_t = W_in x_t + W_rec z_{t-1}``.

    ``W_rec`` starts orthogonal (gain ``recurrent_gain``), as in the authors' code.
    """

    def __init__(self, *, recurrent_gain: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.recurrent = nn.Parameter(torch.empty(self.size, self.size))
        nn.init.orthogonal_(self.recurrent, gain=recurrent_gain)

    def recurrent_weight(self) -> torch.Tensor:
        return _as_used(self.recurrent, self.decays()[0], self.qat_weight_bits)


class LeakyReadout(nn.Module):
    """Non-spiking leaky integrators: ``o_t = alpha_o * o_{t-1} + (1 - alpha_o) * W_o z_t``
    (:mod:`gesture_snn.neurons.readout`), with a learned per-output ``tau`` (steps) clamped into
    ``tau_bounds``; ``qat_weight_bits`` as for :class:`SpikingLayer` (the folded
    ``(1 - alpha_o) W_o`` is fake-quantized)."""

    def __init__(
        self,
        *,
        input_size: int,
        size: int,
        tau: tuple[float, float] = (20.0, 5.0),
        tau_bounds: tuple[float, float] = (1.0, 1000.0),
        qat_weight_bits: int | None = None,
    ):
        super().__init__()
        if not 1.0 <= tau_bounds[0] < tau_bounds[1]:
            raise ValueError(f"tau_bounds must be (min, max) with 1 <= min < max, not {tau_bounds}")
        self.input_size, self.size, self.tau_bounds = input_size, size, tuple(tau_bounds)
        self.weight = nn.Parameter(torch.empty(size, input_size))
        nn.init.xavier_uniform_(self.weight)
        self.tau = _normal_taus(size, tau, self.tau_bounds)
        self.qat_weight_bits = _check_qat_bits(qat_weight_bits)

    def extra_repr(self) -> str:
        qat = f", qat_weight_bits={self.qat_weight_bits}" if self.qat_weight_bits is not None else ""
        return f"{self.input_size} -> {self.size} leaky integrators{qat}"

    def weight_matrix(self) -> torch.Tensor:
        """``W_o`` ``[size, input_size]`` as the forward uses it."""
        return _as_used(self.weight, self.decay(), self.qat_weight_bits)

    def decay(self) -> torch.Tensor:
        """``alpha_o`` per output."""
        return tau_to_decay(self.tau.clamp(*self.tau_bounds))

    @torch.no_grad()
    def constrain_(self) -> None:
        self.tau.clamp_(*self.tau_bounds)

    def forward(self, z: torch.Tensor, *, implementation: str = "fused") -> torch.Tensor:
        """Spikes ``[batch, T, input_size]`` -> readout ``[batch, T, size]``."""
        alpha = self.decay()
        current = spike_linear(z, self.weight_matrix())
        if implementation == "fused":
            return leaky_integrate(current.transpose(0, 1), alpha).transpose(0, 1)
        o = current.new_zeros(current.shape[0], self.size)
        out = []
        for c in current.unbind(1):
            o = leaky_readout_step(c, o, alpha)
            out.append(o)
        return torch.stack(out, 1)

    def step(self, z_t: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """One step: spikes ``z_t`` ``[batch, input_size]`` and ``o_{t-1}`` -> ``o_t``."""
        return leaky_readout_step(spike_linear(z_t, self.weight_matrix()), o, self.decay())


def decode_scores(readout: torch.Tensor, decode: str) -> torch.Tensor:
    """Class scores ``[batch, n_out]`` from a readout ``[batch, T, n_out]``: the last step for
    ``"last"``, the time mean for ``"mean"`` and ``"per_step"``."""
    if decode == "last":
        return readout[:, -1]
    if decode in ("mean", "per_step"):
        return readout.mean(1)
    raise ValueError(f"decode must be one of {DECODES}, not {decode!r}")


def readout_loss(readout: torch.Tensor, target: torch.Tensor, decode: str) -> torch.Tensor:
    """Cross-entropy (mean over the batch): on :func:`decode_scores` for ``"last"`` and
    ``"mean"``; for ``"per_step"`` the mean over steps of the cross-entropy at every step."""
    if decode == "per_step":
        steps = readout.shape[1]
        return nn.functional.cross_entropy(readout.reshape(-1, readout.shape[-1]), target.repeat_interleave(steps))
    return nn.functional.cross_entropy(decode_scores(readout, decode), target)


class SRNN(nn.Module):
    """The spiking recurrent network of a :class:`~gesture_snn.config.ModelConfig`.

    ``forward(x)`` takes ``x`` float ``[batch, T, n_inputs]`` (binary spikes or event counts, as
    :func:`gesture_snn.framing.make_loader` yields) and returns an :class:`SRNNOutput`; the state
    starts at zero for every sample. :meth:`initial_state` and :meth:`step` run the same network
    one step (one time bin) at a time, for a live stream.
    """

    def __init__(self, config: ModelConfig, *, implementation: str = "fused"):
        super().__init__()
        self.config = config
        self.implementation = implementation
        neuron = dict(
            neuron=config.neuron,
            b0=config.b0,
            beta=config.beta,
            tau_m=config.tau_m_init,
            tau_adp=config.tau_adp_init,
            tau_m_bounds=config.tau_m_bounds,
            tau_adp_bounds=config.tau_adp_bounds,
            b_init=config.b_init,
        )
        layers: list[SpikingLayer] = []
        size = config.n_inputs
        if config.feedforward:
            layers.append(SpikingLayer(input_size=size, size=config.feedforward, **neuron))
            size = config.feedforward
        for hidden in config.hidden:
            layers.append(RecurrentSpikingLayer(input_size=size, size=hidden, recurrent_gain=config.recurrent_gain, **neuron))
            size = hidden
        self.layers = nn.ModuleList(layers)
        self.readout = LeakyReadout(
            input_size=size, size=config.n_outputs, tau=config.tau_out_init, tau_bounds=config.tau_m_bounds
        )
        self.qat_weight_bits = config.qat_weight_bits

    @property
    def qat_weight_bits(self) -> int | None:
        """Weight bits of quantization-aware training (None: float weights), for every layer and
        the readout; starts at ``config.qat_weight_bits``. The trainer switches it on for the
        final ``qat_epochs``."""
        return self.readout.qat_weight_bits

    @qat_weight_bits.setter
    def qat_weight_bits(self, bits: int | None) -> None:
        bits = _check_qat_bits(bits)
        for module in (*self.layers, self.readout):
            module.qat_weight_bits = bits

    @property
    def implementation(self) -> str:
        return self._implementation

    @implementation.setter
    def implementation(self, value: str) -> None:
        if value not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, not {value!r}")
        self._implementation = value

    def forward(self, x: torch.Tensor, *, record: bool = False) -> SRNNOutput:
        if x.dim() != 3 or x.shape[-1] != self.config.n_inputs:
            raise ValueError(
                f"SRNN expects input [batch, T, {self.config.n_inputs}], got {tuple(x.shape)}"
            )
        records = []
        h = x
        for layer in self.layers:
            records.append(layer(h, implementation=self.implementation))
            h = records[-1].z
        readout = self.readout(h, implementation=self.implementation)
        return SRNNOutput(readout, tuple(r.z for r in records), tuple(records) if record else None)

    def initial_state(self, batch: int = 1) -> SRNNState:
        """The state before the first :meth:`step`: every layer's initial state, readout 0."""
        w = self.readout.weight
        return SRNNState(
            tuple(layer.initial_state(batch) for layer in self.layers), w.new_zeros(batch, self.config.n_outputs)
        )

    def step(self, x_t: torch.Tensor, state: SRNNState | None = None) -> tuple[torch.Tensor, SRNNState]:
        """One step (one time bin) of the network: inputs ``x_t`` ``[batch, n_inputs]`` and the
        state after the previous step (None: :meth:`initial_state`) -> ``(o_t, state)``, the
        readout ``[batch, n_out]`` and the state for the next step.

        Stepping along ``x[:, t]`` for t = 0 .. T-1 gives the spikes and readout of
        ``forward(x)`` at every step. Wrap it in :func:`torch.no_grad` on a live stream.
        """
        if x_t.dim() != 2 or x_t.shape[-1] != self.config.n_inputs:
            raise ValueError(f"SRNN.step expects input [batch, {self.config.n_inputs}], got {tuple(x_t.shape)}")
        if state is None:
            state = self.initial_state(x_t.shape[0])
        h, layer_states = x_t, []
        for layer, layer_state in zip(self.layers, state.layers):
            h, layer_state = layer.step(h, layer_state)
            layer_states.append(layer_state)
        o = self.readout.step(h, state.readout)
        return o, SRNNState(tuple(layer_states), o)

    def scores(self, output: SRNNOutput) -> torch.Tensor:
        """Class scores ``[batch, n_out]`` per the configured decoding."""
        return decode_scores(output.readout, self.config.decode)

    def loss(self, output: SRNNOutput, target: torch.Tensor) -> torch.Tensor:
        """Training loss per the configured decoding (:func:`readout_loss`)."""
        return readout_loss(output.readout, target, self.config.decode)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project every time constant into its bounds; call after each optimiser step."""
        for layer in self.layers:
            layer.constrain_()
        self.readout.constrain_()

    def time_constant_parameters(self) -> list[nn.Parameter]:
        """The ``tau`` parameters (their own learning rate, no weight decay)."""
        taus = [p for layer in self.layers for p in (layer.tau_m, layer.tau_adp) if p is not None]
        return taus + [self.readout.tau]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not a time constant."""
        taus = {id(p) for p in self.time_constant_parameters()}
        return [p for p in self.parameters() if id(p) not in taus]

    def time_constants(self) -> dict[str, np.ndarray]:
        """The effective (clamped) time constants in steps, by layer: ``layer{i}.tau_m``,
        ``layer{i}.tau_adp``, ``readout.tau``."""
        out = {}
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                out[f"layer{i}.tau_m"] = layer.tau_m.clamp(*layer.tau_m_bounds).cpu().double().numpy()
                if layer.adaptive:
                    out[f"layer{i}.tau_adp"] = layer.tau_adp.clamp(*layer.tau_adp_bounds).cpu().double().numpy()
            out["readout.tau"] = self.readout.tau.clamp(*self.readout.tau_bounds).cpu().double().numpy()
        return out

    def hardware_parameters(self) -> dict:
        """Float parameters of the hardware shape in ``docs/fixed_point.md`` notation, before
        folding and quantisation (numpy float64).

        Only for one recurrent layer fed directly by the input (no feed-forward layer); raises
        ValueError otherwise. ``rho`` is all zeros and ``beta`` 0 for LIF neurons.
        """
        problems = []
        if self.config.feedforward:
            problems.append(f"a feed-forward layer of {self.config.feedforward} neurons")
        if len(self.config.hidden) != 1:
            problems.append(f"{len(self.config.hidden)} recurrent layers")
        if self.config.b_init:
            problems.append(f"an initial adaptation state b_init = {self.config.b_init} (the integer model starts at 0)")
        if problems:
            raise ValueError(
                "the hardware supports exactly one recurrent ALIF layer fed by the input, from a zero state; this "
                f"model has {' and '.join(problems)}"
            )
        layer = self.layers[0]
        with torch.no_grad():
            alpha, rho = layer.decays()

            def array(t):
                return t.detach().cpu().double().numpy().copy()

            return {
                "w_in": array(layer.input_weight()),
                "w_rec": array(layer.recurrent_weight()),
                "w_out": array(self.readout.weight_matrix()),
                "alpha": array(alpha),
                "rho": array(rho) if rho is not None else np.zeros(layer.size),
                "alpha_out": array(self.readout.decay()),
                "b0": float(layer.b0),
                "beta": float(layer.beta),
                "decode": "last" if self.config.decode == "last" else "mean",
                "adaptive": bool(layer.adaptive),
            }
