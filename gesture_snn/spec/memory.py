"""The memory layout shared by the integer network and the gateware: memory images and lane counts.

:func:`memory_images` packs the parameters of an :class:`~gesture_snn.spec.intnet.IntegerNetwork`
into memory words for the gateware, :func:`weight_memory_words` lists the words of the neuron
core's two weight memories (what a board loads at run time), and :func:`write_memory_images`
writes the images as ``$readmemh`` files.

Lanes: ``lanes`` (L) synaptic accumulators and ``readout_lanes`` (RL) readout accumulators work
in parallel in the neuron core. :func:`check_lanes` is the rule the core imposes (L divides
n_rec, 1 <= RL <= n_out); :func:`default_lanes` and :func:`default_readout_lanes` the defaults
where no board fixes them (the largest divisor of n_rec up to :data:`DEFAULT_MAX_LANES`, and
``min(L, n_out)``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gesture_snn.spec.files import atomic_write, atomic_write_json
from gesture_snn.spec.intnet import FORMAT_NAME, FORMAT_VERSION, IntegerNetwork

__all__ = [
    "MEMORY_MANIFEST_NAME",
    "DEFAULT_MAX_LANES",
    "MemoryImage",
    "memory_images",
    "weight_memory_words",
    "write_memory_images",
    "largest_divisor",
    "default_lanes",
    "default_readout_lanes",
    "check_lanes",
]

MEMORY_MANIFEST_NAME = "memories.json"

#: Default synaptic lane count where no board sets one: the largest divisor of n_rec up to this.
DEFAULT_MAX_LANES = 8


def largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is at most ``limit``: the default lane count of a core
    with ``n`` neurons (lanes must divide the neuron count)."""
    return max(d for d in range(1, min(limit, n) + 1) if n % d == 0)


def default_lanes(n_rec: int, max_lanes: int = DEFAULT_MAX_LANES) -> int:
    """The default ``lanes``: the largest divisor of ``n_rec`` up to ``max_lanes``."""
    return largest_divisor(n_rec, max_lanes)


def default_readout_lanes(lanes: int, n_out: int) -> int:
    """The default ``readout_lanes``: ``min(lanes, n_out)``."""
    return min(lanes, n_out)


def check_lanes(*, n_in: int, n_rec: int, n_out: int, lanes: int, readout_lanes: int) -> None:
    """ValueError unless the neuron core can use these sizes and lane counts: sizes >= 1, ``lanes``
    a divisor of ``n_rec`` (1 .. n_rec), ``readout_lanes`` in 1 .. n_out (need not divide n_out)."""
    for name, value in (("n_in", n_in), ("n_rec", n_rec), ("n_out", n_out)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} = {value!r}; expected a positive integer")
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"lanes = {lanes!r}; expected a positive integer (synaptic adders working in parallel)")
    if lanes > n_rec:
        raise ValueError(f"lanes = {lanes} exceeds n_rec = {n_rec}; each lane holds at least one neuron")
    if n_rec % lanes:
        divisors = [d for d in range(1, n_rec + 1) if n_rec % d == 0]
        raise ValueError(
            f"lanes = {lanes} does not divide n_rec = {n_rec}: every memory word holds one neuron per lane, "
            f"so the last word would hold lanes without neurons; choose one of {divisors}"
        )
    if isinstance(readout_lanes, bool) or not isinstance(readout_lanes, int) or not 1 <= readout_lanes <= n_out:
        raise ValueError(
            f"readout_lanes = {readout_lanes!r}; expected an integer in [1, n_out = {n_out}] "
            "(readout accumulators working in parallel)"
        )


@dataclass(frozen=True)
class MemoryImage:
    """Initial contents of one memory: ``depth`` words of ``width`` bits, each word packing lanes.

    Word ``words[address]`` is an unsigned integer; lane ``l`` occupies bits
    ``[l * lane_bits, (l + 1) * lane_bits)`` (lane 0 in the least significant bits). Signed lanes
    are two's complement in ``lane_bits`` bits. ``layout`` says in words what address and lane
    hold.
    """

    name: str
    lane_bits: int
    lanes: int
    signed: bool
    words: tuple[int, ...]
    layout: str

    @property
    def width(self) -> int:
        return self.lane_bits * self.lanes

    @property
    def depth(self) -> int:
        return len(self.words)

    def lane_values(self, address: int) -> list[int]:
        """The ``lanes`` integers (sign-extended if signed) held by one word."""
        word = self.words[address]
        mask = (1 << self.lane_bits) - 1
        values = []
        for lane in range(self.lanes):
            value = (word >> (lane * self.lane_bits)) & mask
            if self.signed and value >> (self.lane_bits - 1):
                value -= 1 << self.lane_bits
            values.append(value)
        return values

    def hex_lines(self) -> list[str]:
        """``$readmemh`` lines: one word per line, zero-padded hex, address 0 first."""
        digits = max(1, math.ceil(self.width / 4))
        return [f"{word:0{digits}x}" for word in self.words]


def _pack_columns(matrix: np.ndarray, *, lanes: int, lane_bits: int) -> tuple[int, ...]:
    """Pack ``matrix[row, column]``: address ``column * groups + g``, lane ``l`` = row ``g * lanes + l``."""
    rows, columns = matrix.shape
    groups = -(-rows // lanes)
    padded = np.zeros((groups * lanes, columns), dtype=np.int64)
    padded[:rows] = matrix
    mask = (1 << lane_bits) - 1
    words = []
    for column in range(columns):
        for g in range(groups):
            word = 0
            for lane, value in enumerate(padded[g * lanes:(g + 1) * lanes, column].tolist()):
                word |= (value & mask) << (lane * lane_bits)
            words.append(word)
    return tuple(words)


def memory_images(net: IntegerNetwork, *, lanes: int = 1, readout_lanes: int | None = None) -> dict[str, MemoryImage]:
    """Pack the parameters of ``net`` into memory words for the gateware.

    ``lanes`` (P) neurons share a word of the neuron-side memories; neuron ``j`` is in group
    ``g = j // P``, lane ``l = j % P``. Groups = ceil(n_rec / P); missing neurons of the last group
    are zero. ``readout_lanes`` (Q, default n_out) outputs share a word of the readout memories.

    Memories (lane 0 in the least significant bits, signed lanes in two's complement):

    ``w_in``    depth n_in * G, lane_bits = weight_bits, signed. Address ``i * G + g``, lane ``l``
                holds ``w_in[g*P + l, i]``: an input event on input i reads addresses i*G .. i*G+G-1.
    ``w_rec``   depth n_rec * G, same layout: address ``k * G + g``, lane ``l`` holds
                ``w_rec[g*P + l, k]`` (spike of neuron k onto neuron g*P + l).
    ``w_out``   depth n_rec * ceil(n_out / Q), lane_bits = weight_bits, signed. Address
                ``j * ceil(n_out/Q) + h``, lane ``l`` holds ``w_out[h*Q + l, j]``.
    ``alpha``, ``rho``  depth G, lane_bits = decay_bits, unsigned; address g, lane l: neuron g*P + l.
    ``adapt_inc``       depth G, lane_bits = adaptation_bits, unsigned, same addressing.
    ``threshold_base``  depth G, lane_bits = membrane_bits - 1, unsigned, same addressing.
    ``alpha_out``       depth ceil(n_out / Q), lane_bits = decay_bits, unsigned; address h, lane l:
                        output h*Q + l.
    """
    q = net.n_out if readout_lanes is None else readout_lanes
    for name, value, limit in (("lanes", lanes, net.n_rec), ("readout_lanes", q, net.n_out)):
        if not isinstance(value, int) or not 1 <= value <= limit:
            raise ValueError(f"{name} = {value!r}; expected an integer in [1, {limit}]")
    neuron = f"neuron j = g*{lanes} + l"
    output = f"output k = h*{q} + l"
    specs = [
        ("w_in", net.w_in, lanes, net.weight_bits, True,
         f"address i*G + g (G = ceil(n_rec/{lanes}) = {-(-net.n_rec // lanes)}), lane l: w_in[{neuron}, input i]"),
        ("w_rec", net.w_rec, lanes, net.weight_bits, True,
         f"address k*G + g (G = {-(-net.n_rec // lanes)}), lane l: w_rec[{neuron}, pre-synaptic k]"),
        ("w_out", net.w_out, q, net.weight_bits, True,
         f"address j*H + h (H = ceil(n_out/{q}) = {-(-net.n_out // q)}), lane l: w_out[{output}, neuron j]"),
        ("alpha", net.alpha[:, None], lanes, net.decay_bits, False, f"address g, lane l: alpha[{neuron}]"),
        ("rho", net.rho[:, None], lanes, net.decay_bits, False, f"address g, lane l: rho[{neuron}]"),
        ("adapt_inc", net.adapt_inc[:, None], lanes, net.adaptation_bits, False,
         f"address g, lane l: adapt_inc[{neuron}]"),
        ("threshold_base", net.threshold_base[:, None], lanes, net.membrane_bits - 1, False,
         f"address g, lane l: threshold_base[{neuron}]"),
        ("alpha_out", net.alpha_out[:, None], q, net.decay_bits, False, f"address h, lane l: alpha_out[{output}]"),
    ]
    return {
        name: MemoryImage(
            name=name,
            lane_bits=bits,
            lanes=n_lanes,
            signed=signed,
            words=_pack_columns(matrix, lanes=n_lanes, lane_bits=bits),
            layout=layout,
        )
        for name, matrix, n_lanes, bits, signed, layout in specs
    }


def weight_memory_words(net: IntegerNetwork, *, lanes: int, readout_lanes: int) -> tuple[list[int], list[int]]:
    """The contents of the neuron core's two weight memories: (synaptic words, readout words).

    Synaptic memory (memory 0 of the core's weight port and of the board protocol's LOAD_WEIGHT):
    the ``w_in`` image followed by the ``w_rec`` image of :func:`memory_images` at ``lanes``, so
    ``(n_in + n_rec) * ceil(n_rec / lanes)`` words of ``lanes`` weights; address
    ``i * G + g`` (G = ceil(n_rec / lanes)) holds the weights from input ``i``, address
    ``(n_in + k) * G + g`` those from recurrent neuron ``k``, onto neurons ``g * lanes + l``.
    Readout memory (memory 1): the ``w_out`` image at ``readout_lanes``, ``n_rec * ceil(n_out /
    readout_lanes)`` words of ``readout_lanes`` weights. Words are unsigned, lane 0 in the least
    significant bits, each weight two's complement in ``weight_bits``. Refuses lane counts out of
    range as :func:`memory_images` does.
    """
    images = memory_images(net, lanes=lanes, readout_lanes=readout_lanes)
    return list(images["w_in"].words + images["w_rec"].words), list(images["w_out"].words)


def write_memory_images(
    net: IntegerNetwork, directory: str | os.PathLike, *, lanes: int = 1, readout_lanes: int | None = None
) -> dict[str, Path]:
    """Write ``<name>.hex`` (``$readmemh``) for every memory of :func:`memory_images` plus ``memories.json``.

    ``memories.json`` lists per memory its file, width, depth, lanes, lane_bits, signedness and
    layout. Returns ``{name: path of the .hex file}``.
    """
    directory = Path(directory)
    images = memory_images(net, lanes=lanes, readout_lanes=readout_lanes)
    paths = {}
    for name, image in images.items():
        text = "\n".join(image.hex_lines()) + "\n"
        paths[name] = atomic_write(directory / f"{name}.hex", lambda f, text=text: f.write(text))
    atomic_write_json(
        directory / MEMORY_MANIFEST_NAME,
        {
            "format": f"{FORMAT_NAME}-memories",
            "version": FORMAT_VERSION,
            "lanes": lanes,
            "readout_lanes": images["w_out"].lanes,
            "memories": {
                name: {
                    "file": f"{name}.hex",
                    "width": image.width,
                    "depth": image.depth,
                    "lanes": image.lanes,
                    "lane_bits": image.lane_bits,
                    "signed": image.signed,
                    "layout": image.layout,
                }
                for name, image in images.items()
            },
        },
    )
    return paths
