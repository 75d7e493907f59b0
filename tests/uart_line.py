"""Test helpers: the far end of a serial line in ``amaranth.sim``, bit by bit.

:func:`drive_bytes` sends bytes on a receiver's ``rx`` as 8N1 frames (optionally with a
stretched or shrunk bit period, or a bad stop bit); :class:`LineMonitor` decodes the frames a
transmitter puts on ``tx``. Both work in clock cycles of the ``sync`` domain (``ctx.tick()``).
"""

from __future__ import annotations


def frame_bits(byte: int, *, stop: int = 1) -> list[int]:
    """The 8N1 line levels of one byte: start bit, data bits least significant first, stop bit."""
    return [0] + [(byte >> k) & 1 for k in range(8)] + [stop]


async def drive_bytes(ctx, line, data, *, divisor: int, scale: float = 1.0, stop: int = 1) -> None:
    """Put ``data`` on ``line``, each bit ``divisor * scale`` cycles long (rounded per edge, no drift)."""
    for byte in data:
        bits = frame_bits(byte, stop=stop)
        edges = [round(k * divisor * scale) for k in range(len(bits) + 1)]
        for k, bit in enumerate(bits):
            ctx.set(line, bit)
            await ctx.tick().repeat(edges[k + 1] - edges[k])
    ctx.set(line, 1)


class LineMonitor:
    """Decodes 8N1 frames from a transmit line into :attr:`received` (a bytearray).

    Run :meth:`process` as a background testbench. Each bit is sampled in its middle; a frame
    whose stop bit is not 1 fails the test.
    """

    def __init__(self, line, *, divisor: int):
        self.line = line
        self.divisor = divisor
        self.received = bytearray()

    async def process(self, ctx) -> None:
        while True:
            await ctx.negedge(self.line)
            await ctx.tick().repeat(self.divisor // 2)
            assert ctx.get(self.line) == 0, "start bit shorter than half a bit"
            byte = 0
            for k in range(8):
                await ctx.tick().repeat(self.divisor)
                byte |= ctx.get(self.line) << k
            await ctx.tick().repeat(self.divisor)
            assert ctx.get(self.line) == 1, f"frame of 0x{byte:02x} has no stop bit"
            self.received.append(byte)
