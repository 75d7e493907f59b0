"""Typed configuration of a training run: model, optimisation and framing.

A run's configuration is one :class:`RunConfig` (a :class:`ModelConfig`, a :class:`TrainConfig`
and the data's :class:`~gesture_snn.framing.FrameConfig`), saved as ``RUNDIR/config.json`` and read
back with :meth:`RunConfig.from_dict`. A partial JSON file (``--config FILE``) overrides only the
fields it names; :data:`PRESETS` are such partial dictionaries.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gesture_snn import neurons
from gesture_snn.framing import FrameConfig
from gesture_snn.spec.errors import UserError

__all__ = [
    "ARCHITECTURES",
    "ConfigError",
    "DECODES",
    "ModelConfig",
    "NEURONS",
    "PRESETS",
    "RunConfig",
    "SCHEDULES",
    "TrainConfig",
    "read_json",
]

#: Registered neuron types (:data:`gesture_snn.neurons.NAMES`).
NEURONS = tuple(neurons.NAMES)
#: What the run trains: the SRNN, or one of the non-spiking controls and baselines of
#: :mod:`gesture_snn.architectures` (trained with the same protocol).
ARCHITECTURES = ("srnn", "frame_mlp", "gru", "summed_linear")
#: Readout decoding: the last step's readout, the time mean of the readout, or a cross-entropy
#: at every step (predicting from the time mean).
DECODES = ("last", "mean", "per_step")
SCHEDULES = ("cosine", "step", "constant")


class ConfigError(UserError, ValueError):
    """An invalid configuration value (a ValueError that the CLI reports as a user error)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _bounds_ok(bounds) -> bool:
    return len(bounds) == 2 and 1.0 <= bounds[0] < bounds[1]


@dataclass(frozen=True)
class ModelConfig:
    """Shape and neuron model of the SRNN.

    Parameters
    ----------
    n_inputs:
        Inputs per time step (``FrameConfig.n_inputs``: 2 * size * size).
    hidden:
        Sizes of the recurrent spiking layers, input side first (at least one).
    feedforward:
        Size of an optional feed-forward spiking layer between the input and the first recurrent
        layer; 0 = none (the hardware shape).
    n_outputs:
        Readout units (classes).
    neuron:
        A neuron type of :data:`NEURONS`, the registry of :mod:`gesture_snn.neurons`: ``"alif"``
        (adaptive threshold) or ``"lif"`` (constant threshold, ``beta = 0``).
    decode:
        One of :data:`DECODES`.
    b0, beta:
        Base threshold and adaptation strength in membrane units (the authors' DVS code: 0.1 and
        1.84).
    tau_m_init, tau_adp_init, tau_out_init:
        ``(mean, std)`` of the initial membrane, adaptation and readout time constants, in steps.
    tau_m_bounds, tau_adp_bounds:
        ``(min, max)`` of the membrane (also readout) and adaptation time constants, in steps.
    recurrent_gain:
        Gain of the orthogonal initialisation of the recurrent weights.
    qat_weight_bits:
        Quantization-aware training: the forward pass uses the folded weights ``(1 - alpha) W``
        fake-quantized to this many bits with the quantizer's power-of-two scale rule
        (:func:`gesture_snn.qat.fake_quantize_folded`, straight-through gradient), 2..8;
        None = float weights. A trained model keeps it, so its weights are the integer network's.
    b_init:
        Initial adaptation state ``b_{-1}`` of every ALIF neuron (the first threshold is
        ``b0 + beta * rho * b_init``). 0 = ours (the integer model starts at 0); the authors'
        code starts at ``b0`` (the ``paper`` preset). Only the float model supports a non-zero
        value.
    architecture:
        One of :data:`ARCHITECTURES`: ``"srnn"`` (this class's SRNN) or a non-spiking control
        of the same width (``hidden[0]``): ``"frame_mlp"`` (memoryless per-frame MLP, logits
        per step), ``"gru"`` (a GRU), ``"summed_linear"`` (a linear classifier on the
        time-summed input). Only ``"srnn"`` uses the neuron fields and QAT.
    """

    n_inputs: int = 2048
    hidden: tuple[int, ...] = (256,)
    feedforward: int = 0
    n_outputs: int = 11
    neuron: str = "alif"
    decode: str = "mean"
    b0: float = 0.1
    beta: float = 1.84
    tau_m_init: tuple[float, float] = (20.0, 5.0)
    tau_adp_init: tuple[float, float] = (200.0, 50.0)
    tau_out_init: tuple[float, float] = (20.0, 5.0)
    tau_m_bounds: tuple[float, float] = (1.0, 1000.0)
    tau_adp_bounds: tuple[float, float] = (1.0, 4000.0)
    recurrent_gain: float = 1.0
    qat_weight_bits: int | None = None
    b_init: float = 0.0
    architecture: str = "srnn"

    def __post_init__(self):
        for name in ("hidden", "tau_m_init", "tau_adp_init", "tau_out_init", "tau_m_bounds", "tau_adp_bounds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _check(self.n_inputs >= 1, f"n_inputs must be at least 1, not {self.n_inputs}")
        _check(len(self.hidden) >= 1, "hidden must list at least one recurrent layer size")
        _check(all(int(h) == h and h >= 1 for h in self.hidden), f"hidden sizes must be positive integers, not {self.hidden}")
        _check(self.feedforward >= 0, f"feedforward must be 0 (none) or a layer size, not {self.feedforward}")
        _check(self.n_outputs >= 2, f"n_outputs must be at least 2, not {self.n_outputs}")
        _check(self.neuron in NEURONS, f"neuron must be one of {NEURONS}, not {self.neuron!r}")
        _check(self.decode in DECODES, f"decode must be one of {DECODES}, not {self.decode!r}")
        _check(self.b0 > 0, f"b0 (base threshold) must be positive, not {self.b0}")
        _check(self.beta >= 0, f"beta (adaptation strength) must be >= 0, not {self.beta}")
        for name in ("tau_m_bounds", "tau_adp_bounds"):
            _check(_bounds_ok(getattr(self, name)), f"{name} must be (min, max) with 1 <= min < max, not {getattr(self, name)}")
        for name in ("tau_m_init", "tau_adp_init", "tau_out_init"):
            mean, std = getattr(self, name)
            _check(mean > 0 and std >= 0, f"{name} must be (mean > 0, std >= 0) in steps, not {(mean, std)}")
        _check(
            self.qat_weight_bits is None or (isinstance(self.qat_weight_bits, int) and 2 <= self.qat_weight_bits <= 8),
            f"qat_weight_bits must be None (float weights) or 2..8 bits (what the hardware takes), not {self.qat_weight_bits!r}",
        )
        _check(self.b_init >= 0, f"b_init (initial adaptation state) must be >= 0, not {self.b_init}")
        _check(self.architecture in ARCHITECTURES,
               f"architecture must be one of {ARCHITECTURES}, not {self.architecture!r}")
        _check(self.architecture == "srnn" or self.qat_weight_bits is None,
               f"qat_weight_bits is for the SRNN only; architecture {self.architecture!r} has float weights")

    @property
    def adaptive(self) -> bool:
        """Whether the neuron type adapts (imports its module, hence torch)."""
        return neurons.get(self.neuron).ADAPTIVE


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation.

    Parameters
    ----------
    epochs:
        Passes over the training split.
    batch_size:
        Global batch (split across processes in data-parallel training).
    lr:
        AdamW learning rate of the weights.
    lr_tau:
        AdamW learning rate of the time constants (in steps, so larger than ``lr``).
    weight_decay:
        AdamW decoupled weight decay of the weights (never of the time constants).
    schedule:
        ``"cosine"`` (to 0 over ``epochs``), ``"step"`` (times ``step_gamma`` every
        ``step_epochs``) or ``"constant"``; stepped once per epoch.
    grad_clip:
        Maximum global L2 norm of the gradient; 0 disables clipping.
    shift:
        Data augmentation: each training sample is moved by a random whole number of frame
        pixels in ``[-shift, shift]`` along x and y (vacated pixels are 0); 0 = off.
    seed:
        Seeds the initialisation and, with the epoch number, the order of the training data
        and the augmentation.
    qat_epochs:
        With ``ModelConfig.qat_weight_bits`` set: quantization-aware training in the last
        ``qat_epochs`` epochs only (every epoch if it is None or at least ``epochs``); the
        epochs before train the float weights. Needs ``qat_weight_bits``.
    init_from:
        Checkpoint file (or run directory: its ``checkpoints/best.pt``) whose model weights
        start the run instead of the random initialisation, e.g. a float run to fine-tune with
        quantization-aware training. The optimiser and the schedule start fresh.
    val_users:
        Training users held out as the validation split (DVS128 Gesture has none): the model is
        selected on them only; the test users are evaluated once, at the end. Default 20-23.
    patience:
        Early stopping: stop after this many epochs without a better validation accuracy
        (among the epochs that may be selected); None = train every epoch.
    rate_penalty:
        Firing-rate regularisation: ``rate_penalty`` times the mean firing rate (spikes per
        neuron per step, averaged over the spiking layers) is added to the loss; 0 = off.
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    lr_tau: float = 3e-2
    weight_decay: float = 0.0
    schedule: str = "cosine"
    step_epochs: int = 10
    step_gamma: float = 0.5
    grad_clip: float = 1.0
    shift: int = 0
    seed: int = 0
    qat_epochs: int | None = None
    init_from: str | None = None
    val_users: tuple[int, ...] = (20, 21, 22, 23)
    patience: int | None = None
    rate_penalty: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "val_users", tuple(self.val_users))
        _check(self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}")
        _check(self.batch_size >= 1, f"batch_size must be at least 1, not {self.batch_size}")
        _check(self.lr > 0 and self.lr_tau >= 0, f"lr must be > 0 and lr_tau >= 0, not {self.lr} and {self.lr_tau}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, not {self.weight_decay}")
        _check(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, not {self.schedule!r}")
        _check(self.step_epochs >= 1 and 0 < self.step_gamma <= 1, "step schedule needs step_epochs >= 1 and 0 < step_gamma <= 1")
        _check(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), not {self.grad_clip}")
        _check(self.shift >= 0, f"shift (augmentation, pixels) must be >= 0, not {self.shift}")
        _check(self.seed >= 0, f"seed must be >= 0, not {self.seed}")
        _check(self.qat_epochs is None or self.qat_epochs >= 1,
               f"qat_epochs must be None (every epoch) or at least 1, not {self.qat_epochs}")
        _check(len(self.val_users) >= 1,
               "val_users must name at least one training user to hold out for validation (model selection "
               "never looks at the test users)")
        _check(all(isinstance(u, int) and not isinstance(u, bool) and u >= 0 for u in self.val_users),
               f"val_users must be user numbers (integers >= 0), not {list(self.val_users)}")
        _check(len(set(self.val_users)) == len(self.val_users), f"val_users lists a user twice: {list(self.val_users)}")
        _check(self.patience is None or self.patience >= 1, f"patience must be None (off) or at least 1, not {self.patience}")
        _check(self.rate_penalty >= 0 and self.rate_penalty < float("inf"),
               f"rate_penalty must be a finite number >= 0 (0 = off), not {self.rate_penalty}")

    def qat_start(self) -> int:
        """The first (0-based) epoch of quantization-aware training when the model has QAT."""
        return 0 if self.qat_epochs is None else max(self.epochs - self.qat_epochs, 0)

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier for (0-based) ``epoch``."""
        if self.schedule == "cosine":
            import math

            return 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        if self.schedule == "step":
            return self.step_gamma ** (epoch // self.step_epochs)
        return 1.0


_SECTIONS = {"model": ModelConfig, "train": TrainConfig, "frames": FrameConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run (saved as ``RUNDIR/config.json``).

    ``data`` is the data root the run was trained on (informative; ``evaluate`` uses it by
    default). ``model.n_inputs`` must equal ``frames.n_inputs``.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    frames: FrameConfig = field(default_factory=FrameConfig)
    data: str = "datasets/synthetic"

    def __post_init__(self):
        _check(
            self.model.n_inputs == self.frames.n_inputs,
            f"model.n_inputs ({self.model.n_inputs}) must equal the frames' 2 * size * size "
            f"({self.frames.n_inputs})",
        )
        _check(
            self.train.shift < self.frames.size,
            f"train.shift = {self.train.shift} pixels is as wide as the {self.frames.size} x {self.frames.size} frames: "
            f"a shifted sample would be empty; use a shift below {self.frames.size} (typically size / 16 .. size / 8)",
        )
        _check(
            self.train.qat_epochs is None or self.model.qat_weight_bits is not None,
            f"train.qat_epochs = {self.train.qat_epochs} needs quantization-aware training "
            "(model.qat_weight_bits, --qat BITS)",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: "RunConfig | None" = None) -> "RunConfig":
        """A config with the fields of ``data`` (possibly partial) over ``base`` (default: all
        defaults). ``model.n_inputs`` follows the frames unless ``data`` sets it."""
        base = base or cls()
        unknown = set(data) - set(_SECTIONS) - {"data"}
        _check(not unknown, f"unknown config sections {sorted(unknown)}; expected {sorted(_SECTIONS)} and 'data'")
        sections = {}
        for name, kind in _SECTIONS.items():
            given = data.get(name, {})
            _check(isinstance(given, dict), f"config section {name!r} must be an object")
            names = {f.name for f in dataclasses.fields(kind)}
            unknown = set(given) - names
            _check(not unknown, f"unknown {name} fields {sorted(unknown)}; known: {sorted(names)}")
            types = {f.name: f.type for f in dataclasses.fields(kind)}
            given = {key: _typed(f"{name}.{key}", types[key], value) for key, value in given.items()}
            try:
                sections[name] = dataclasses.replace(getattr(base, name), **given)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"config section {name!r}: {exc}") from exc
        if "n_inputs" not in data.get("model", {}):
            sections["model"] = dataclasses.replace(sections["model"], n_inputs=sections["frames"].n_inputs)
        root = data.get("data", base.data)
        _check(isinstance(root, (str, os.PathLike)), f'"data" must be a path (a string), got {root!r}')
        return cls(**sections, data=str(root))

    def replace(self, **sections: Any) -> "RunConfig":
        """A copy with some fields changed, e.g. ``replace(train={"epochs": 5}, data="DIR")``."""
        return RunConfig.from_dict(sections, base=self)

    def save(self, path: str | os.PathLike) -> None:
        from gesture_snn.spec.files import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RunConfig":
        return cls.from_dict(read_json(path, what="config file"))


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})" if not isinstance(value, (int, float)) or isinstance(value, bool) \
        else repr(value)


def _typed(name: str, annotation: str, value: Any) -> Any:
    """``value`` checked against a field's annotation (``int``, ``float``, ``str``, ``X | None``,
    ``tuple[int, ...]``, ``tuple[float, float]``); ConfigError naming the field otherwise.
    Booleans are not numbers here, floats must be finite, an int is accepted for a float."""
    annotation = str(annotation).replace(" ", "")
    if annotation.endswith("|None"):
        return None if value is None else _typed(name, annotation[:-5], value)
    if annotation.startswith("tuple["):
        inner = annotation[6:-1].split(",")
        _check(isinstance(value, (list, tuple)) and not isinstance(value, str),
               f'"{name}" must be a list, got {_describe(value)}')
        if inner[-1] == "...":
            return tuple(_typed(f"{name}[{i}]", inner[0], v) for i, v in enumerate(value))
        _check(len(value) == len(inner), f'"{name}" must be a list of {len(inner)} numbers, got {list(value)!r}')
        return tuple(_typed(f"{name}[{i}]", kind, v) for i, (kind, v) in enumerate(zip(inner, value)))
    if annotation == "int":
        import numbers

        _check(isinstance(value, numbers.Integral) and not isinstance(value, bool),
               f'"{name}" must be an integer, got {_describe(value)}')
        return int(value)
    if annotation == "float":
        import math
        import numbers

        _check(isinstance(value, numbers.Real) and not isinstance(value, bool),
               f'"{name}" must be a number, got {_describe(value)}')
        _check(math.isfinite(value), f'"{name}" must be a finite number, got {value!r}')
        return float(value) if not isinstance(value, numbers.Integral) else value
    if annotation == "str":
        _check(isinstance(value, str), f'"{name}" must be a string, got {_describe(value)}')
        return value
    return value


def read_json(path: str | os.PathLike, *, what: str) -> Any:
    """The JSON content of ``path``; a :class:`UserError` that starts with ``what`` if the file is
    missing or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a JSON file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text ({exc}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON ({exc})") from None


#: Named starting points (partial configs); flags and ``--config`` override them.
#: ``hardware``: what the integer model and the FPGA run: 16 x 16 x 2 binary input -> 128
#: recurrent ALIF -> 11, loss at every step (the integer model's time-mean decision), tuned on
#: the quick synthetic set to train in under a minute on 2 CPU cores (docs/training.md); its
#: last 10 epochs are quantization-aware at 8 bits, so that ``gesture-snn quantize`` gives the
#: trained weights; its firing-rate penalty 4 is what ``gesture-snn rate-sweep`` chose on the
#: validation users (docs/evaluation.md). Frames need 2 events per pixel and bin (docs/data.md).
#: ``default``: 32 x 32 x 2 input -> 256 recurrent ALIF -> 11, the same recipe.
_RECIPE = {
    "model": {"neuron": "alif", "decode": "per_step", "feedforward": 0, "tau_m_init": [5.0, 2.0], "tau_out_init": [5.0, 2.0]},
    "train": {"epochs": 30, "batch_size": 16, "lr": 1e-2, "lr_tau": 3e-2, "weight_decay": 1e-2, "schedule": "cosine"},
}
PRESETS: dict[str, dict[str, Any]] = {
    "hardware": {
        "frames": {"size": 16, "bin_ms": 10.0, "window_ms": 1600.0, "mode": "binary", "threshold": 2},
        "model": {**_RECIPE["model"], "hidden": [128], "qat_weight_bits": 8},
        "train": {**_RECIPE["train"], "shift": 1, "qat_epochs": 10, "rate_penalty": 4.0},
    },
    "default": {
        "frames": {"size": 32, "bin_ms": 10.0, "window_ms": 1600.0, "mode": "binary", "threshold": 2},
        "model": {**_RECIPE["model"], "hidden": [256]},
        "train": {**_RECIPE["train"], "shift": 2},
    },
    # The authors' settings (byin-cwi/Efficient-spiking-networks, DVS128/srnn_class_cnn_enc.ipynb)
    # on the hardware shape: adaptation starting at b_j0 = 0.1, tau_m ~ N(20, 5), tau_adp ~
    # N(25, 5), readout tau ~ N(10, 2), Adam 1e-3 (time constants 2e-3), no clipping, loss at
    # the last frame. docs/training.md lists every difference from their code.
    "paper": {
        "frames": {"size": 16, "bin_ms": 10.0, "window_ms": 1600.0, "mode": "binary", "threshold": 2},
        "model": {"neuron": "alif", "decode": "last", "feedforward": 0, "hidden": [128], "b_init": 0.1,
                  "tau_m_init": [20.0, 5.0], "tau_adp_init": [25.0, 5.0], "tau_out_init": [10.0, 2.0]},
        "train": {"epochs": 30, "batch_size": 16, "lr": 1e-3, "lr_tau": 2e-3, "weight_decay": 0.0,
                  "schedule": "cosine", "grad_clip": 0.0, "shift": 0},
    },
}
