# amaranth: UnusedElaboratable=no
"""``gesture-snn export``: the neuron core alone as Verilog with the documented ports, its $readmemh images and
README, and the exported Verilog simulated in the compiled simulator, bit for bit against the golden model."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import pytest

from gesture_snn import cli
from gesture_snn.golden import run_golden
from gesture_snn.spec.intnet import IntegerNetwork
from gesture_snn.spec.memory import memory_images, weight_memory_words
from hdl.export import PORT_NAMES, header_ports

LANES, READOUT_LANES = 4, 2
NAME = "gesture_snn_core"

needs_compiler = pytest.mark.skipif(shutil.which(os.environ.get("CXX") or "g++") is None,
                                    reason="needs a C++ compiler")


def expected_ports(net: IntegerNetwork, *, weight_loading: bool = False) -> dict[str, tuple[str, int]]:
    """The documented ports (docs/ip_core.md): name -> (direction, width)."""
    depths = [len(words) for words in weight_memory_words(net, lanes=LANES, readout_lanes=READOUT_LANES)]
    index_in = max(1, (net.n_in - 1).bit_length())
    index_out = max(1, (max(net.n_rec, net.n_out) - 1).bit_length())
    ports = {"clk": ("input", 1), "rst": ("input", 1), "in_valid": ("input", 1), "in_ready": ("output", 1),
             "in_kind": ("input", 2), "in_index": ("input", index_in), "out_valid": ("output", 1),
             "out_ready": ("input", 1), "out_kind": ("output", 2), "out_index": ("output", index_out)}
    if weight_loading:
        ports.update({"weight_write_valid": ("input", 1), "weight_write_ready": ("output", 1),
                      "weight_write_memory": ("input", 1),
                      "weight_write_addr": ("input", max(1, (max(depths) - 1).bit_length())),
                      "weight_write_data": ("input", max(LANES, READOUT_LANES) * net.weight_bits)})
    return ports


def export(run_dir, out, *extra) -> int:
    return cli.main(["export", "--run", str(run_dir), "--lanes", str(LANES), "--readout-lanes", str(READOUT_LANES),
                     "--out", str(out), *extra])


@pytest.fixture
def exported(integer_run_dir, tmp_path, capsys):
    out = tmp_path / "ip"
    assert export(integer_run_dir, out) == 0, capsys.readouterr()
    assert f"module {NAME}" in capsys.readouterr().out
    return integer_run_dir, out


def test_the_exported_module_has_exactly_the_documented_ports(exported):
    run_dir, out = exported
    net = IntegerNetwork.load(run_dir / "integer")
    verilog = (out / f"{NAME}.v").read_text()
    header = re.search(rf"^module {NAME}\((?P<ports>[^)]*)\);$", verilog, re.MULTILINE)
    assert header is not None
    names = [port.strip() for port in header["ports"].split(",")]
    assert sorted(names) == sorted(expected_ports(net))
    assert all(re.fullmatch(r"[a-z_]+", name) for name in names)  # no tool-generated suffixes ($24, __)
    assert header_ports(verilog, NAME) == expected_ports(net)
    readme = (out / "README.md").read_text()
    for name, (direction, width) in expected_ports(net).items():
        assert f"| `{name}` | {direction} | {width} |" in readme
    for section in ("## Clock and reset", "## Stream protocol", "## Cycles per step", "synchronous", "active high"):
        assert section in readme
    manifest = json.loads((out / "memories.json").read_text())
    assert [port["name"] for port in manifest["ports"]] == [name for name in PORT_NAMES if name in names]


def test_the_memories_are_read_from_the_spec_images(exported):
    run_dir, out = exported
    net = IntegerNetwork.load(run_dir / "integer")
    verilog = (out / f"{NAME}.v").read_text()
    loads = dict((file, memory) for file, memory in
                 re.findall(r'initial \$readmemh\("(\w+\.hex)", (\w+), 0, \d+\);', verilog))
    assert loads == {"synapse_weights.hex": "weights", "readout_weights.hex": "weights", "alpha.hex": "alpha",
                     "rho.hex": "rho", "adapt_inc.hex": "adapt_inc", "threshold_base.hex": "threshold_base",
                     "alpha_out.hex": "alpha_out"}
    synapse, readout = weight_memory_words(net, lanes=LANES, readout_lanes=READOUT_LANES)
    assert [int(line, 16) for line in (out / "synapse_weights.hex").read_text().split()] == synapse
    assert [int(line, 16) for line in (out / "readout_weights.hex").read_text().split()] == readout
    one_per_word = memory_images(net, lanes=1, readout_lanes=1)  # the parameter memories hold one value per word
    for name in ("alpha", "rho", "adapt_inc", "threshold_base", "alpha_out"):
        assert (out / f"{name}.hex").read_text().split() == one_per_word[name].hex_lines(), name


@needs_compiler
def test_the_exported_verilog_simulates_like_the_golden_model(exported, tmp_path):
    from hdl.cxxrtl import CxxrtlSimulator

    run_dir, out = exported
    net = IntegerNetwork.load(run_dir / "integer")
    x = np.random.default_rng(3).random((4, 6, net.n_in)) < np.array([0.0, 0.1, 0.4, 1.0])[:, None, None]
    simulator = CxxrtlSimulator(net, lanes=LANES, readout_lanes=READOUT_LANES, cache_dir=tmp_path / "cache",
                                verilog=out / f"{NAME}.v")
    result = simulator.check_against_golden(x, run_golden)
    assert result.mismatch is None, str(result.mismatch)
    assert result.golden.z.sum() > 0
    cycles = simulator.core.cycle_model
    first = result.traces[1]
    assert first.cycles[0] == cycles.step_cycles(input_events=int(x[1, 0].sum()), previous_spikes=0,
                                                 spikes=int(first.spikes[0].sum()))

    # The images are replaceable: another w_in in synapse_weights.hex, the same Verilog.
    w_in = net.w_in.copy()
    w_in[:, :4] = -w_in[:, :4]
    changed = dataclasses.replace(net, w_in=w_in)
    words = weight_memory_words(changed, lanes=LANES, readout_lanes=READOUT_LANES)[0]
    digits = len((out / "synapse_weights.hex").read_text().split()[0])
    (out / "synapse_weights.hex").write_text("".join(f"{word:0{digits}x}\n" for word in words))
    replaced = CxxrtlSimulator(changed, lanes=LANES, readout_lanes=READOUT_LANES, cache_dir=tmp_path / "cache",
                               verilog=out / f"{NAME}.v")
    assert replaced.key != simulator.key
    result = replaced.check_against_golden(x, run_golden)
    assert result.mismatch is None, str(result.mismatch)


def test_weight_loading_export_has_the_write_port_and_no_weight_images(integer_run_dir, tmp_path, capsys):
    out = tmp_path / "ip"
    assert export(integer_run_dir, out, "--weight-loading", "--name", "snn") == 0, capsys.readouterr()
    net = IntegerNetwork.load(integer_run_dir / "integer")
    verilog = (out / "snn.v").read_text()
    assert header_ports(verilog, "snn") == expected_ports(net, weight_loading=True)
    assert not (out / "synapse_weights.hex").exists() and (out / "alpha.hex").exists()
    assert "synapse_weights.hex" not in verilog


def test_export_refuses_bad_arguments(integer_run_dir, tmp_path, capsys):
    assert export(integer_run_dir, tmp_path / "a", "--name", "1core") == 2
    assert "--name must be a plain Verilog identifier" in capsys.readouterr().err
    assert cli.main(["export", "--run", str(integer_run_dir), "--lanes", "3", "--out", str(tmp_path / "b")]) == 2
    assert "does not divide n_rec = 8" in capsys.readouterr().err
    assert cli.main(["export", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2
