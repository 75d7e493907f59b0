"""Small building blocks shared by the units: the spec's decay and saturation, index shapes, ROMs."""

from __future__ import annotations

from typing import Iterable

from amaranth import Mux, unsigned
from amaranth.hdl import Shape, Value
from amaranth.lib import memory
from amaranth.utils import ceil_log2

__all__ = ["decay", "saturate", "index_shape", "rom"]


def decay(product: Value, decay_bits: int) -> Value:
    """``(product + 2^(D-1)) >> D`` for ``product = q * x``: round to nearest, ties towards +infinity.

    ``>>`` is arithmetic on a signed ``product`` (floor), as docs/fixed_point.md requires.
    """
    return (product + (1 << (decay_bits - 1))) >> decay_bits


def saturate(value: Value, shape: Shape) -> Value:
    """Clamp ``value`` to the range of ``shape``: ``signed(n)`` is sat_n, ``unsigned(n)`` is usat_n.

    The result has exactly ``shape``.
    """
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
    clamped = Mux(value > hi, hi, Mux(value < lo, lo, value))
    return clamped[:shape.width].as_signed() if shape.signed else clamped[:shape.width]


def index_shape(count: int) -> Shape:
    """Unsigned shape holding ``0 .. count - 1`` (at least one bit)."""
    return unsigned(max(1, ceil_log2(count)))


def rom(values: Iterable[int], bits: int) -> memory.Memory:
    """A memory of unsigned ``bits``-bit words initialised with ``values``, to be read only."""
    values = [int(value) for value in values]
    return memory.Memory(shape=unsigned(bits), depth=len(values), init=values)
