"""The integer network: parameters of docs/fixed_point.md, their widths, validation and on-disk format.

An :class:`IntegerNetwork` holds every integer the chip needs: weights with (1 - alpha) folded in,
decays as ``decay_bits`` fixed-point multipliers, thresholds and adaptation increments in membrane
units, and the widths of every state variable. It checks all of them on construction, so a network
that exists is one the golden model (:mod:`gesture_snn.golden`) and the gateware can run.
:data:`WIDTH_DEFAULTS` are the deployed widths (the one place they are written), and
:func:`check_binary_input` is the input contract both sides share.

On disk an integer network is a directory (format ``gesture-snn-integer-network``, version 1)::

    manifest.json     format, version, shapes, widths, shifts, scales, decode, and per array its
                      file, dtype, shape and sha256
    w_in.npy w_rec.npy w_out.npy alpha.npy rho.npy adapt_inc.npy threshold_base.npy alpha_out.npy

:meth:`IntegerNetwork.load` checks the format name and version, every shape, dtype and checksum,
and every value range, and names the file, index and value of the first thing that is wrong.

The memory images of the gateware are in :mod:`gesture_snn.spec.memory`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from gesture_snn.spec.errors import UserError
from gesture_snn.spec.files import atomic_write, atomic_write_json

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WIDTH_LIMITS",
    "WIDTH_DEFAULTS",
    "complete_widths",
    "SHIFT_LIMITS",
    "EXP_LIMITS",
    "DECODE_MODES",
    "IntegerNetwork",
    "IntegerNetworkFormatError",
    "check_binary_input",
    "random_network",
]

FORMAT_NAME = "gesture-snn-integer-network"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"

DECODE_MODES = ("last", "mean")

# Supported range (inclusive) of every width, in bits; see docs/fixed_point.md "Widths".
# The upper bounds keep every intermediate of the golden model inside int64.
WIDTH_LIMITS: Mapping[str, tuple[int, int]] = {
    "weight_bits": (2, 16),
    "decay_bits": (1, 16),
    "membrane_bits": (2, 32),
    "adaptation_bits": (1, 32),
    "readout_bits": (2, 40),
    "score_bits": (2, 56),
}
#: The deployed widths, in bits: the defaults of :class:`IntegerNetwork`, of the quantizer and of
#: ``gesture-snn quantize`` (the one place they are written).
WIDTH_DEFAULTS: Mapping[str, int] = {
    "weight_bits": 8,
    "decay_bits": 12,
    "membrane_bits": 16,
    "adaptation_bits": 16,
    "readout_bits": 24,
    "score_bits": 32,
}
SHIFT_LIMITS = (0, 15)
EXP_LIMITS = (-64, 64)

# Array fields: (name, shape in terms of n_in / n_rec / n_out).
_ARRAY_SHAPES = {
    "w_in": ("n_rec", "n_in"),
    "w_rec": ("n_rec", "n_rec"),
    "w_out": ("n_out", "n_rec"),
    "alpha": ("n_rec",),
    "rho": ("n_rec",),
    "adapt_inc": ("n_rec",),
    "threshold_base": ("n_rec",),
    "alpha_out": ("n_out",),
}
_SCALAR_FIELDS = ("shift_in", "shift_rec", "membrane_exp", "readout_exp") + tuple(WIDTH_LIMITS)


class IntegerNetworkFormatError(UserError, ValueError):
    """An integer-network directory that cannot be read: wrong format, version, shape, checksum or value."""


@dataclass(frozen=True, kw_only=True, eq=False)
class IntegerNetwork:
    """One recurrent ALIF layer with a leaky readout, in integers (docs/fixed_point.md).

    All arrays are stored as read-only int64 copies. Units: weights, thresholds and adaptation
    are integers of the fixed-point formats described in the spec; ``membrane_exp`` (e_v) and
    ``readout_exp`` (e_o) give the float value of one membrane / readout unit (2^-e) and are
    used only to read values back as floats.

    Parameters
    ----------
    w_in : int array [n_rec, n_in]
        Input weights, ``weight_bits`` signed symmetric.
    w_rec : int array [n_rec, n_rec]
        Recurrent weights, row = post-synaptic neuron, column = pre-synaptic neuron.
    w_out : int array [n_out, n_rec]
        Readout weights.
    shift_in, shift_rec : int, 0..15
        Left shift of every input / recurrent weight addition.
    alpha, rho : int array [n_rec]
        Membrane and adaptation decays, unsigned ``decay_bits``.
    adapt_inc : int array [n_rec]
        Threshold increase per spike, unsigned ``adaptation_bits``.
    threshold_base : int array [n_rec]
        Base threshold, ``[0, 2^(membrane_bits-1) - 1]``.
    alpha_out : int array [n_out]
        Readout decays, unsigned ``decay_bits``.
    decode : "last" or "mean"
        Class decision rule.
    """

    w_in: np.ndarray
    w_rec: np.ndarray
    w_out: np.ndarray
    shift_in: int = 0
    shift_rec: int = 0
    alpha: np.ndarray
    rho: np.ndarray
    adapt_inc: np.ndarray
    threshold_base: np.ndarray
    alpha_out: np.ndarray
    decode: str = "last"
    weight_bits: int = WIDTH_DEFAULTS["weight_bits"]
    decay_bits: int = WIDTH_DEFAULTS["decay_bits"]
    membrane_bits: int = WIDTH_DEFAULTS["membrane_bits"]
    adaptation_bits: int = WIDTH_DEFAULTS["adaptation_bits"]
    readout_bits: int = WIDTH_DEFAULTS["readout_bits"]
    score_bits: int = WIDTH_DEFAULTS["score_bits"]
    membrane_exp: int = 0
    readout_exp: int = 0

    def __post_init__(self):
        for name in _ARRAY_SHAPES:
            object.__setattr__(self, name, _as_int_array(name, getattr(self, name)))
        for name in _SCALAR_FIELDS:
            object.__setattr__(self, name, _as_int(name, getattr(self, name)))
        self.validate()

    # --- derived quantities -------------------------------------------------------------------

    @property
    def n_in(self) -> int:
        return self.w_in.shape[1]

    @property
    def n_rec(self) -> int:
        return self.w_in.shape[0]

    @property
    def n_out(self) -> int:
        return self.w_out.shape[0]

    @property
    def weight_max(self) -> int:
        """Largest weight magnitude, ``2^(weight_bits-1) - 1`` (weights are symmetric)."""
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def acc_bits(self) -> int:
        """Signed width of the exact synaptic accumulator (spec step 3)."""
        bound = ((self.n_in * self.weight_max) << self.shift_in) + ((self.n_rec * self.weight_max) << self.shift_rec)
        return bound.bit_length() + 1

    @property
    def threshold_bits(self) -> int:
        """Unsigned width of ``th = threshold_base + a`` (spec step 2)."""
        return max(self.adaptation_bits, self.membrane_bits - 1) + 1

    def range_of(self, name: str) -> tuple[int, int]:
        """Inclusive range ``(lo, hi)`` of a parameter array or a state variable ("v", "a", "th", "o", "s", "acc")."""
        sym = lambda bits: (-((1 << (bits - 1)) - 1), (1 << (bits - 1)) - 1)  # noqa: E731
        signed = lambda bits: (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)  # noqa: E731
        unsigned = lambda bits: (0, (1 << bits) - 1)  # noqa: E731
        ranges = {
            "w_in": sym(self.weight_bits),
            "w_rec": sym(self.weight_bits),
            "w_out": sym(self.weight_bits),
            "alpha": unsigned(self.decay_bits),
            "rho": unsigned(self.decay_bits),
            "alpha_out": unsigned(self.decay_bits),
            "adapt_inc": unsigned(self.adaptation_bits),
            "threshold_base": unsigned(self.membrane_bits - 1),
            "v": signed(self.membrane_bits),
            "a": unsigned(self.adaptation_bits),
            "th": unsigned(self.threshold_bits),
            "o": signed(self.readout_bits),
            "s": signed(self.score_bits),
            "acc": signed(self.acc_bits),
        }
        try:
            return ranges[name]
        except KeyError:
            raise KeyError(f"no range for {name!r}; known: {', '.join(ranges)}") from None

    # --- validation ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise ValueError naming the first parameter that breaks docs/fixed_point.md."""
        for name, (lo, hi) in WIDTH_LIMITS.items():
            _check_scalar(name, getattr(self, name), lo, hi, "bits")
        if self.score_bits < self.readout_bits:
            raise ValueError(
                f"score_bits = {self.score_bits} is smaller than readout_bits = {self.readout_bits}; "
                "the score must hold every readout value"
            )
        for name in ("shift_in", "shift_rec"):
            _check_scalar(name, getattr(self, name), *SHIFT_LIMITS, "")
        for name in ("membrane_exp", "readout_exp"):
            _check_scalar(name, getattr(self, name), *EXP_LIMITS, "")
        if self.decode not in DECODE_MODES:
            raise ValueError(f"decode = {self.decode!r}; expected one of {', '.join(map(repr, DECODE_MODES))}")

        for name in ("w_in", "w_out"):
            if getattr(self, name).ndim != 2:
                raise ValueError(f"{name} must be 2-D; got shape {getattr(self, name).shape}")
        dims = {"n_in": self.w_in.shape[1], "n_rec": self.w_in.shape[0], "n_out": self.w_out.shape[0]}
        for dim, size in dims.items():
            if size < 1:
                raise ValueError(f"{dim} = {size}; the network needs at least one of each (from w_in / w_out shapes)")
        for name, symbolic in _ARRAY_SHAPES.items():
            expected = tuple(dims[d] for d in symbolic)
            actual = getattr(self, name).shape
            if actual != expected:
                raise ValueError(
                    f"{name} has shape {actual}; expected {_shape_text(symbolic)} = {expected} "
                    f"(n_in = {dims['n_in']}, n_rec = {dims['n_rec']} from w_in, n_out = {dims['n_out']} from w_out)"
                )
        for name in _ARRAY_SHAPES:
            _check_range(name, getattr(self, name), *self.range_of(name), self._range_description(name))

    def _range_description(self, name: str) -> str:
        if name.startswith("w_"):
            return f"{self.weight_bits}-bit symmetric weight range"
        if name in ("alpha", "rho", "alpha_out"):
            return f"unsigned {self.decay_bits}-bit decay range"
        if name == "adapt_inc":
            return f"unsigned {self.adaptation_bits}-bit adaptation range"
        return f"threshold range [0, 2^(membrane_bits-1) - 1] for membrane_bits = {self.membrane_bits}"

    # --- comparison and copies ----------------------------------------------------------------

    def __eq__(self, other):
        if not isinstance(other, IntegerNetwork):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            if f.name in _ARRAY_SHAPES
            else getattr(self, f.name) == getattr(other, f.name)
            for f in dataclasses.fields(self)
        )

    __hash__ = None

    def replace(self, **changes) -> "IntegerNetwork":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def parameters(self) -> dict:
        """Every field as a plain dict (arrays as the stored int64 arrays)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    # --- on-disk format -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the network as a directory (see the module docstring); returns the directory.

        Every file is written atomically and the manifest last, so an interrupted save leaves a
        directory that :meth:`load` rejects (checksum) or the previous complete network.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name in _ARRAY_SHAPES:
            array = getattr(self, name)
            lo, hi = self.range_of(name)
            data = _npy_bytes(array.astype(_storage_dtype(lo, hi)))
            atomic_write(path / f"{name}.npy", lambda f, data=data: f.write(data), binary=True)
            arrays[name] = {
                "file": f"{name}.npy",
                "dtype": str(np.dtype(_storage_dtype(lo, hi))),
                "shape": list(array.shape),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "shape": {"n_in": self.n_in, "n_rec": self.n_rec, "n_out": self.n_out},
            "widths": {name: getattr(self, name) for name in WIDTH_LIMITS},
            "shifts": {"shift_in": self.shift_in, "shift_rec": self.shift_rec},
            "scales": {"membrane_exp": self.membrane_exp, "readout_exp": self.readout_exp},
            "decode": self.decode,
            "arrays": arrays,
        }
        atomic_write_json(path / MANIFEST_NAME, manifest)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "IntegerNetwork":
        """Read a directory written by :meth:`save`; raise IntegerNetworkFormatError naming what is wrong."""
        path = Path(path)
        manifest_path = path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise IntegerNetworkFormatError(
                f"{manifest_path} does not exist; {path} is not an integer network "
                "(create one with `gesture-snn quantize --run RUNDIR`)"
            )
        try:
            manifest = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IntegerNetworkFormatError(f"{manifest_path} is not valid JSON: {exc}") from None

        def section(key, kind=dict):
            if key not in manifest:
                raise IntegerNetworkFormatError(f"{manifest_path} has no {key!r} entry")
            value = manifest[key]
            if not isinstance(value, kind):
                raise IntegerNetworkFormatError(f"{manifest_path}: {key!r} must be a {kind.__name__}; got {value!r}")
            return value

        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            found = manifest.get("format") if isinstance(manifest, dict) else manifest
            raise IntegerNetworkFormatError(f"{manifest_path}: format is {found!r}; expected {FORMAT_NAME!r}")
        version = section("version", int)
        if version != FORMAT_VERSION:
            newer = "newer than this gesture-snn reads; upgrade gesture-snn" if version > FORMAT_VERSION else "unknown"
            raise IntegerNetworkFormatError(
                f"{manifest_path}: format version {version} is {newer} (this gesture-snn reads version {FORMAT_VERSION})"
            )
        shape = section("shape")
        fields = {}
        for group in ("widths", "shifts", "scales"):
            for key, value in section(group).items():
                if key not in _SCALAR_FIELDS:
                    raise IntegerNetworkFormatError(f"{manifest_path}: unknown entry {group}.{key}")
                if not isinstance(value, int) or isinstance(value, bool):
                    raise IntegerNetworkFormatError(f"{manifest_path}: {group}.{key} must be an integer; got {value!r}")
                fields[key] = value
        missing = [name for name in _SCALAR_FIELDS if name not in fields]
        if missing:
            raise IntegerNetworkFormatError(f"{manifest_path}: missing entries {', '.join(missing)}")
        fields["decode"] = section("decode", str)

        entries = section("arrays")
        for name, symbolic in _ARRAY_SHAPES.items():
            if name not in entries:
                raise IntegerNetworkFormatError(f"{manifest_path}: no entry for array {name!r}")
            entry = entries[name]
            if not isinstance(entry, dict):
                raise IntegerNetworkFormatError(f"{manifest_path}: arrays.{name} must be an object; got {entry!r}")
            try:
                expected_shape = [shape[d] for d in symbolic]
            except KeyError as exc:
                raise IntegerNetworkFormatError(f"{manifest_path}: shape has no {exc.args[0]!r}") from None
            if entry.get("shape") != expected_shape:
                raise IntegerNetworkFormatError(
                    f"{manifest_path}: array {name} is declared with shape {entry.get('shape')}; "
                    f"the network shape {shape} requires {expected_shape}"
                )
            file = path / str(entry.get("file", ""))
            if not file.is_file() or file.parent.resolve() != path.resolve():
                raise IntegerNetworkFormatError(f"{path}: array file {entry.get('file')!r} for {name} is missing")
            data = file.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != entry.get("sha256"):
                raise IntegerNetworkFormatError(
                    f"{file}: sha256 {digest} does not match the manifest ({entry.get('sha256')}); "
                    "the file was changed or only partly written: export the network again"
                )
            try:
                array = np.load(io.BytesIO(data), allow_pickle=False)
            except ValueError as exc:
                raise IntegerNetworkFormatError(f"{file}: not a readable .npy array: {exc}") from None
            if str(array.dtype) != entry.get("dtype") or list(array.shape) != expected_shape:
                raise IntegerNetworkFormatError(
                    f"{file}: holds {array.dtype} {list(array.shape)}; manifest says {entry.get('dtype')} {expected_shape}"
                )
            if not np.issubdtype(array.dtype, np.integer):
                raise IntegerNetworkFormatError(f"{file}: dtype {array.dtype} is not an integer type")
            fields[name] = array
        try:
            return cls(**fields)
        except ValueError as exc:
            raise IntegerNetworkFormatError(f"{path}: {exc}") from None


def complete_widths(widths: Mapping[str, int]) -> dict[str, int]:
    """``widths`` (some of the names of :data:`WIDTH_DEFAULTS`) completed with the defaults;
    ValueError naming any unknown width."""
    unknown = set(widths) - set(WIDTH_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown width(s) {sorted(unknown)}; expected some of {sorted(WIDTH_DEFAULTS)}")
    return {**WIDTH_DEFAULTS, **widths}


# ------------------------------------------------------------------------------------------------
# The input contract


def check_binary_input(x, n_in: int) -> np.ndarray:
    """Return ``x`` as a bool array [B, T, n_in]; ValueError if it has another shape or a non-0/1 value."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != n_in:
        raise ValueError(f"input must have shape [B, T, n_in = {n_in}]; got {x.shape}")
    if x.shape[1] < 1:
        raise ValueError("input has no time steps (T = 0)")
    if x.dtype == bool:
        return x
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"input must be numeric 0/1 values; got dtype {x.dtype}")
    bad = np.argwhere((x != 0) & (x != 1))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"input x[{', '.join(map(str, index))}] = {x[index].item()!r} is not binary; the integer model takes "
            "one event per active input per step (train with --frame-mode binary)"
        )
    return x.astype(bool)


# ------------------------------------------------------------------------------------------------
# Random networks for tests


def random_network(
    rng: np.random.Generator,
    n_in: int,
    n_rec: int,
    n_out: int,
    *,
    shift_in: int | None = None,
    shift_rec: int | None = None,
    decode: str | None = None,
    extreme: float = 0.2,
    **widths: int,
) -> IntegerNetwork:
    """A random valid network for tests, biased towards corners: saturation, ties, zero thresholds.

    ``widths``: any of the widths of :data:`WIDTH_DEFAULTS` (``weight_bits=4``, ...), the others
    take their defaults.

    Each weight is, with probability ``extreme``, one of -wmax, 0, +wmax, otherwise uniform over
    the symmetric range; decays likewise favour 0, 2^(D-1) and 2^D - 1; thresholds are small
    (often 0) so that neurons spike; shifts default to random values that make the membrane
    saturate for narrow ``membrane_bits``. Some readout rows are duplicated so that class ties
    happen.
    """

    def pick(lo, hi, corners, size):
        values = rng.integers(lo, hi + 1, size=size)
        corner = rng.random(size) < extreme
        values[corner] = rng.choice(np.asarray(corners), size=int(corner.sum()))
        return values

    widths = complete_widths(widths)
    weight_bits, decay_bits, membrane_bits, adaptation_bits = (
        widths[name] for name in ("weight_bits", "decay_bits", "membrane_bits", "adaptation_bits"))
    wmax = (1 << (weight_bits - 1)) - 1
    dmax = (1 << decay_bits) - 1
    vmax = (1 << (membrane_bits - 1)) - 1
    amax = (1 << adaptation_bits) - 1
    weights = lambda shape: pick(-wmax, wmax, [-wmax, 0, wmax], shape)  # noqa: E731
    decays = lambda n: pick(0, dmax, [0, 1 << (decay_bits - 1), dmax], n)  # noqa: E731
    w_out = weights((n_out, n_rec))
    if n_out > 1 and rng.random() < 0.5:
        w_out[rng.integers(n_out)] = w_out[rng.integers(n_out)]
    shift_hi = max(0, min(SHIFT_LIMITS[1], membrane_bits - weight_bits + 1))
    return IntegerNetwork(
        w_in=weights((n_rec, n_in)),
        w_rec=weights((n_rec, n_rec)),
        w_out=w_out,
        shift_in=int(rng.integers(0, shift_hi + 1)) if shift_in is None else shift_in,
        shift_rec=int(rng.integers(0, shift_hi + 1)) if shift_rec is None else shift_rec,
        alpha=decays(n_rec),
        rho=decays(n_rec),
        adapt_inc=pick(0, min(amax, 4 * (wmax + 1)), [0, amax], n_rec),
        threshold_base=pick(0, min(vmax, 2 * (wmax + 1)), [0, vmax], n_rec),
        alpha_out=decays(n_out),
        decode=decode if decode is not None else str(rng.choice(DECODE_MODES)),
        **widths,
    )


# ------------------------------------------------------------------------------------------------
# Helpers


def _as_int_array(name: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise ValueError(
            f"{name} must hold integers; got dtype {array.dtype} (quantize float parameters with "
            "gesture_snn.quantize first)"
        )
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds {array.max()}, which is outside every supported range")
    array = array.astype(np.int64, copy=True)
    array.setflags(write=False)
    return array


def _as_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    return int(value)


def _check_scalar(name: str, value: int, lo: int, hi: int, unit: str) -> None:
    if not lo <= value <= hi:
        unit = f" {unit}" if unit else ""
        raise ValueError(f"{name} = {value}{unit} is outside the supported range [{lo}, {hi}]")


def _check_range(name: str, array: np.ndarray, lo: int, hi: int, description: str) -> None:
    bad = np.argwhere((array < lo) | (array > hi))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        where = ", ".join(map(str, index))
        raise ValueError(
            f"{name}[{where}] = {int(array[index])} is outside the {description} [{lo}, {hi}]"
            + (f" ({len(bad)} values out of range)" if len(bad) > 1 else "")
        )


def _shape_text(symbolic: tuple[str, ...]) -> str:
    return "(" + ", ".join(symbolic) + ("," if len(symbolic) == 1 else "") + ")"


def _storage_dtype(lo: int, hi: int) -> type:
    """The smallest numpy integer type holding [lo, hi], unsigned for non-negative ranges."""
    candidates = (np.uint8, np.uint16, np.uint32, np.uint64) if lo >= 0 else (np.int8, np.int16, np.int32, np.int64)
    for dtype in candidates:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    raise ValueError(f"no integer dtype holds [{lo}, {hi}]")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()
