"""What a run can train: the SRNN, and the non-spiking controls it is compared with.

:func:`build_model` turns a :class:`~gesture_snn.config.ModelConfig` into a module by its
``architecture``. Every module has the interface the trainer and the evaluation use:
``forward(x [B, T, n_in]) -> SRNNOutput`` (``readout`` ``[B, T', n_out]``, ``spikes`` one tensor
per spiking layer, none for the controls), ``scores(output)``, ``loss(output, y)``,
``constrain_()``, ``weight_parameters()``, ``time_constant_parameters()`` and the attribute
``qat_weight_bits``.

The controls, each of width ``hidden[0]`` (the SRNN's number of recurrent neurons):

- ``frame_mlp``: a memoryless per-frame MLP ``n_in -> hidden -> n_out`` (ReLU) applied to every
  frame on its own; decoded like the SRNN (``decode``: logits averaged over time, or the last
  frame's). It sees the same frames but cannot combine them in order: if the SRNN beats it, the
  SRNN uses time.
- ``gru``: a GRU of ``hidden`` units with a linear readout at every step, decoded like the SRNN:
  the accuracy-matched non-spiking recurrent baseline of the energy comparison.
- ``summed_linear``: a linear classifier on the input summed over all steps (one count image per
  sample): no time at all.
"""

from __future__ import annotations

import torch
from torch import nn

from gesture_snn.config import ARCHITECTURES, ModelConfig
from gesture_snn.model import SRNN, SRNNOutput, decode_scores, readout_loss

__all__ = ["FrameMLP", "GRUClassifier", "SummedLinear", "build_model"]


class _Control(nn.Module):
    """Shared plumbing of the non-spiking controls: float weights only, no time constants."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList()  # no spiking layers

    @property
    def qat_weight_bits(self) -> None:
        return None

    @qat_weight_bits.setter
    def qat_weight_bits(self, bits) -> None:
        if bits is not None:
            raise ValueError(f"the {self.config.architecture} control has float weights only (qat_weight_bits={bits})")

    def scores(self, output: SRNNOutput) -> torch.Tensor:
        return decode_scores(output.readout, self.config.decode)

    def loss(self, output: SRNNOutput, target: torch.Tensor) -> torch.Tensor:
        return readout_loss(output.readout, target, self.config.decode)

    def constrain_(self) -> None:
        pass

    def time_constant_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.config.n_inputs:
            raise ValueError(f"{type(self).__name__} expects input [batch, T, {self.config.n_inputs}], got {tuple(x.shape)}")


class FrameMLP(_Control):
    """Memoryless per-frame MLP ``n_in -> hidden[0] -> n_out`` (ReLU): logits for every frame on its own."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.net = nn.Sequential(
            nn.Linear(config.n_inputs, config.hidden[0]), nn.ReLU(), nn.Linear(config.hidden[0], config.n_outputs)
        )

    def forward(self, x: torch.Tensor) -> SRNNOutput:
        self._check(x)
        return SRNNOutput(self.net(x), ())


class GRUClassifier(_Control):
    """A one-layer GRU of ``hidden[0]`` units with a linear readout at every step."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.gru = nn.GRU(config.n_inputs, config.hidden[0], batch_first=True)
        self.readout = nn.Linear(config.hidden[0], config.n_outputs)

    def forward(self, x: torch.Tensor) -> SRNNOutput:
        self._check(x)
        h, _ = self.gru(x)
        return SRNNOutput(self.readout(h), ())


class SummedLinear(_Control):
    """A linear classifier on the input summed over time (the readout has one step)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.linear = nn.Linear(config.n_inputs, config.n_outputs)

    def forward(self, x: torch.Tensor) -> SRNNOutput:
        self._check(x)
        # the mean over steps: the summed counts scaled by 1/T, so the scale does not depend on T
        return SRNNOutput(self.linear(x.mean(1, keepdim=True)), ())


_BUILDERS = {"srnn": SRNN, "frame_mlp": FrameMLP, "gru": GRUClassifier, "summed_linear": SummedLinear}
assert set(_BUILDERS) == set(ARCHITECTURES)


def build_model(config: ModelConfig) -> nn.Module:
    """The module of ``config.architecture`` (``"srnn"``: :class:`~gesture_snn.model.SRNN`)."""
    return _BUILDERS[config.architecture](config)
