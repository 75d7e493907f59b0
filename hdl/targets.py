"""Build targets: the FPGA of each board, what it offers, and the clock the design must meet.

A :class:`Target` names one ``gesture-snn build --target`` (or the FPGA of one ``--board``): the
nextpnr device and package, the board clock, every resource the fit check compares against
(logic, flip-flops, block RAM, SPRAM, multipliers, I/O), and the defaults of the neuron core on
it (lanes, weight loading). :data:`TARGETS` holds the three bare device targets by name;
:func:`device_target` makes the target of any board's FPGA from :data:`DEVICES` (the resources of
each supported device) and :data:`PACKAGE_IO`. The board side (the amaranth-boards platform, its
UART, LEDs and clock, the top) is :mod:`hdl.boards`.

Numbers are the vendors' data sheets (iCE40 UltraPlus family data sheet FPGA-DS-02008; ECP5
family data sheet FPGA-DS-02012) and agree with the ``available`` counts that nextpnr reports
(except I/O on the LFE5U-85F, where nextpnr counts all 365 pads of the die).
"""

from __future__ import annotations

from dataclasses import dataclass

from gesture_snn.spec.memory import largest_divisor

__all__ = ["RamBlock", "Target", "TARGETS", "target", "DeviceResources", "DEVICES", "PACKAGE_IO",
           "device_target"]


@dataclass(frozen=True)
class RamBlock:
    """One kind of on-chip RAM block: how many the device has and the shapes one block can take.

    ``primitive``: the cell Yosys maps to (e.g. ``SB_RAM40_4K``); ``count``: blocks on the
    device; ``shapes``: the (depth, width) configurations of one block, widths in bits (for an
    ECP5 DP16KD the 9/18/36-bit widths include the parity bits, which the core uses as data);
    ``initialised``: whether the bitstream can set the contents (False for iCE40 SPRAM, which
    then only holds memories written at run time).
    """

    primitive: str
    count: int
    shapes: tuple[tuple[int, int], ...]
    initialised: bool = True

    def __post_init__(self):
        if self.count < 0 or not self.shapes or any(depth < 1 or width < 1 for depth, width in self.shapes):
            raise ValueError(f"{self.primitive}: count must be >= 0 and shapes non-empty positive (depth, width) pairs")

    @property
    def bits(self) -> int:
        """Bits per block (the largest configuration)."""
        return max(depth * width for depth, width in self.shapes)

    def blocks_for(self, depth: int, width: int) -> int:
        """Blocks one memory of ``depth`` words of ``width`` bits takes: the best configuration,
        blocks side by side for the width and stacked for the depth."""
        return min(-(-width // w) * -(-depth // d) for d, w in self.shapes)


@dataclass(frozen=True)
class Target:
    """One build target: device, package, board clock, resources and the core's defaults on it.

    Parameters (keyword-only)
    -------------------------
    name : str
        The ``--target`` name, e.g. ``"ice40-up5k"``.
    family : str
        ``"ice40"`` (Yosys ``synth_ice40``, nextpnr-ice40, icepack) or ``"ecp5"`` (``synth_ecp5``,
        nextpnr-ecp5, ecppack).
    device, package : str
        nextpnr's device flag without dashes (``"up5k"``, ``"25k"``, ``"85k"``) and package.
    part : str
        The part number, for messages and reports.
    board : str
        The board the top is built for (:mod:`hdl.boards`).
    clock_mhz : float
        The board oscillator, which clocks the whole design; the timing constraint.
    luts, flip_flops : int
        LUT4s and flip-flops of the device.
    block_ram : RamBlock
        The block RAMs (iCE40 EBR, ECP5 DP16KD).
    spram : RamBlock or None
        Single-port RAM blocks without bitstream initialisation (iCE40 UltraPlus SPRAM).
    dsp, dsp_bits : int
        Hard multipliers (``SB_MAC16`` 16 x 16, ``MULT18X18D`` 18 x 18) and their operand width.
    io : int
        User I/O pins of the package.
    weight_loading : bool
        The core's weights are written at run time (:class:`hdl.core.NeuronCore` ``weight_loading``):
        needed where they only fit SPRAM.
    max_lanes : int
        Default ``--lanes``: the largest divisor of ``n_rec`` up to this.
    readout_lanes : int or None
        Default ``--readout-lanes`` (None: ``min(lanes, n_out)``).
    """

    name: str
    family: str
    device: str
    package: str
    part: str
    board: str
    clock_mhz: float
    luts: int
    flip_flops: int
    block_ram: RamBlock
    spram: RamBlock | None
    dsp: int
    dsp_bits: int
    io: int
    weight_loading: bool
    max_lanes: int
    readout_lanes: int | None

    def __post_init__(self):
        if self.family not in ("ice40", "ecp5"):
            raise ValueError(f"target {self.name}: family {self.family!r}; expected 'ice40' or 'ecp5'")
        if not self.clock_mhz > 0:
            raise ValueError(f"target {self.name}: clock_mhz must be positive")
        if self.weight_loading and self.spram is None and not self.block_ram.initialised:
            raise ValueError(f"target {self.name}: weight loading needs a writable RAM")

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    def default_lanes(self, n_rec: int) -> int:
        """The largest divisor of ``n_rec`` up to :attr:`max_lanes`."""
        return largest_divisor(n_rec, self.max_lanes)

    def default_readout_lanes(self, lanes: int, n_out: int) -> int:
        return min(lanes if self.readout_lanes is None else self.readout_lanes, n_out)


#: iCE40 EBR (SB_RAM40_4K): 4 Kbit in four aspect ratios.
ICE40_EBR_SHAPES = ((256, 16), (512, 8), (1024, 4), (2048, 2))
#: ECP5 DP16KD: 18 Kbit; 36 bits wide only as a one-read one-write (pseudo dual port) RAM.
ECP5_EBR_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))

TARGETS: dict[str, Target] = {
    # iCEBreaker: 5280 LUT4 / DFF, 30 EBR, 4 x 256 Kbit SPRAM, 8 SB_MAC16, 39 I/O in the SG48.
    # Lanes 8 and one readout lane: the synaptic weights of the 512 -> 128 -> 11 preset fill the
    # four SPRAMs (10240 words of 64 bits), and the narrow readout keeps the EBRs under 30.
    "ice40-up5k": Target(
        name="ice40-up5k", family="ice40", device="up5k", package="sg48", part="iCE40UP5K-SG48",
        board="icebreaker", clock_mhz=12.0, luts=5280, flip_flops=5280,
        block_ram=RamBlock("SB_RAM40_4K", 30, ICE40_EBR_SHAPES),
        spram=RamBlock("SB_SPRAM256KA", 4, ((16384, 16),), initialised=False),
        dsp=8, dsp_bits=16, io=39, weight_loading=True, max_lanes=8, readout_lanes=1,
    ),
    # ULX3S with an LFE5U-25F: 24288 LUT4 / FF, 56 DP16KD, 28 MULT18X18D, 197 I/O in the CABGA381.
    "ecp5-25k": Target(
        name="ecp5-25k", family="ecp5", device="25k", package="CABGA381", part="LFE5U-25F-6BG381C",
        board="ulx3s-25f", clock_mhz=25.0, luts=24288, flip_flops=24288,
        block_ram=RamBlock("DP16KD", 56, ECP5_EBR_SHAPES), spram=None,
        dsp=28, dsp_bits=18, io=197, weight_loading=False, max_lanes=16, readout_lanes=None,
    ),
    # ULX3S with an LFE5U-85F: 83640 LUT4 / FF, 208 DP16KD, 156 MULT18X18D, 205 I/O in the CABGA381.
    "ecp5-85k": Target(
        name="ecp5-85k", family="ecp5", device="85k", package="CABGA381", part="LFE5U-85F-6BG381C",
        board="ulx3s-85f", clock_mhz=25.0, luts=83640, flip_flops=83640,
        block_ram=RamBlock("DP16KD", 208, ECP5_EBR_SHAPES), spram=None,
        dsp=156, dsp_bits=18, io=205, weight_loading=False, max_lanes=32, readout_lanes=None,
    ),
}


def target(name: str) -> Target:
    """The :class:`Target` called ``name``; ValueError listing the known ones otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; expected one of {', '.join(TARGETS)}") from None


@dataclass(frozen=True)
class DeviceResources:
    """What one FPGA die offers (package-independent) and the core's defaults on it."""

    family: str
    luts: int
    block_ram: RamBlock
    spram: RamBlock | None
    dsp: int
    dsp_bits: int
    weight_loading: bool
    max_lanes: int
    readout_lanes: int | None


#: The devices a board may carry, by amaranth's device name. iCE40 UltraPlus family data sheet
#: FPGA-DS-02008 (Table 1.1) and ECP5 / ECP5-5G family data sheet FPGA-DS-02012 (Table 1.1);
#: LFE5UM (SERDES) and LFE5UM5G dies have the logic of the LFE5U of the same size.
DEVICES: dict[str, DeviceResources] = {
    "iCE40UP5K": DeviceResources("ice40", 5280, RamBlock("SB_RAM40_4K", 30, ICE40_EBR_SHAPES),
                                 RamBlock("SB_SPRAM256KA", 4, ((16384, 16),), initialised=False), 8, 16,
                                 weight_loading=True, max_lanes=8, readout_lanes=1),
    "LFE5U-12F": DeviceResources("ecp5", 12288, RamBlock("DP16KD", 32, ECP5_EBR_SHAPES), None, 28, 18,
                                 weight_loading=False, max_lanes=16, readout_lanes=None),
    "LFE5U-25F": DeviceResources("ecp5", 24288, RamBlock("DP16KD", 56, ECP5_EBR_SHAPES), None, 28, 18,
                                 weight_loading=False, max_lanes=16, readout_lanes=None),
    "LFE5U-45F": DeviceResources("ecp5", 43848, RamBlock("DP16KD", 108, ECP5_EBR_SHAPES), None, 72, 18,
                                 weight_loading=False, max_lanes=32, readout_lanes=None),
    "LFE5U-85F": DeviceResources("ecp5", 83640, RamBlock("DP16KD", 208, ECP5_EBR_SHAPES), None, 156, 18,
                                 weight_loading=False, max_lanes=32, readout_lanes=None),
}
for _size in ("25F", "45F", "85F"):
    DEVICES[f"LFE5UM-{_size}"] = DEVICES[f"LFE5UM5G-{_size}"] = DEVICES[f"LFE5U-{_size}"]

#: User I/O per (device size, amaranth package name): the data sheets' pin tables.
PACKAGE_IO: dict[tuple[str, str], int] = {
    ("UP5K", "SG48"): 39, ("UP5K", "UWG30"): 21,
    ("12F", "BG256"): 197, ("25F", "BG256"): 197, ("45F", "BG256"): 197,
    ("12F", "MG285"): 118, ("25F", "MG285"): 118, ("45F", "MG285"): 118, ("85F", "MG285"): 118,
    ("12F", "BG381"): 197, ("25F", "BG381"): 197, ("45F", "BG381"): 203, ("85F", "BG381"): 205,
    ("45F", "BG554"): 245, ("85F", "BG554"): 259, ("45F", "BG756"): 365, ("85F", "BG756"): 365,
}


def device_target(*, name: str, board: str, device: str, package: str, part: str, nextpnr_device: str,
                  clock_mhz: float) -> Target:
    """The :class:`Target` of a board's FPGA: ``device`` / ``package`` as amaranth names them
    (``"LFE5U-25F"``, ``"BG381"``); ValueError for a device not in :data:`DEVICES`."""
    try:
        spec = DEVICES[device]
    except KeyError:
        raise ValueError(f"device {device!r} is not supported; expected one of {', '.join(DEVICES)}") from None
    size = device.rsplit("-", 1)[-1] if spec.family == "ecp5" else "UP5K"
    io = PACKAGE_IO.get((size, package.upper()))
    if io is None:
        raise ValueError(f"no I/O count for {device} in package {package}")
    return Target(name=name, family=spec.family, device=nextpnr_device, package=package, part=part, board=board,
                  clock_mhz=clock_mhz, luts=spec.luts, flip_flops=spec.luts, block_ram=spec.block_ram,
                  spram=spec.spram, dsp=spec.dsp, dsp_bits=spec.dsp_bits, io=io, weight_loading=spec.weight_loading,
                  max_lanes=spec.max_lanes, readout_lanes=spec.readout_lanes)
