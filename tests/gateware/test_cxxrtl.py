# amaranth: UnusedElaboratable=no
"""The compiled (CXXRTL) simulation: bit-exact with the golden model and the Amaranth simulation, its build cache, the command.

The fast tests compile two designs (a few seconds each): the corner network below and the same
network with one weight changed (the cache test).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gesture_snn import cli
from gesture_snn.config import RunConfig
from gesture_snn.golden import run_golden
from gesture_snn.spec.intnet import random_network
from hdl import sim
from hdl.core import OutputKind
from hdl.cxxrtl import CxxrtlSimulator, _input_items

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX") or "g++") is None, reason="needs a C++ compiler")

#: Narrow neuron widths so that v and a saturate; a 96-bit readout word (o: 40 bits, s: 56 bits) so
#: that reading the state memories crosses 32-bit chunk boundaries and sign-extends wide fields.
WIDTHS = dict(weight_bits=6, decay_bits=8, membrane_bits=7, adaptation_bits=5, readout_bits=40, score_bits=56)
N_IN, N_REC, N_OUT = 32, 8, 11  # 4 x 4 x 2 frames, as in the command test
LANES, READOUT_LANES = 4, 2
FRAMES = {"size": 4, "bin_ms": 20.0, "window_ms": 100.0, "mode": "binary"}


def corner_network():
    """A corner-biased random network (seed 7: v and a saturate, two readout rows are equal)."""
    return random_network(np.random.default_rng(7), N_IN, N_REC, N_OUT, **WIDTHS)


def corner_inputs(seed: int = 100) -> np.ndarray:
    """Six samples of seven steps, from no input at all to every input in every step."""
    activity = np.array([0, 0.05, 0.2, 0.5, 0.9, 1.0])[:, None, None]
    return np.random.default_rng(seed).random((6, 7, N_IN)) < activity


def assert_same_traces(actual, expected):
    assert len(actual) == len(expected)
    for compiled, reference in zip(actual, expected):
        for field in ("a", "v", "z", "spikes", "o", "s", "cycles"):
            np.testing.assert_array_equal(getattr(compiled, field), getattr(reference, field), err_msg=field)
        assert compiled.prediction == reference.prediction


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cxxrtl-cache")


@pytest.fixture(scope="module")
def simulator(cache_dir):
    return CxxrtlSimulator(corner_network(), lanes=LANES, readout_lanes=READOUT_LANES, cache_dir=cache_dir)


def test_bit_exact_with_golden_model_and_amaranth_simulation(simulator):
    x = corner_inputs()
    result = simulator.check_against_golden(x, run_golden)
    assert result.mismatch is None, str(result.mismatch)
    assert len(result.traces) == len(x)
    saturation = result.golden.saturation
    assert saturation["v"] > 0 and saturation["a"] > 0  # the corners are exercised
    assert (result.golden.s[:, -1] < 0).any()  # negative wide scores: sign extension across chunks
    assert_same_traces(result.traces, sim.simulate(simulator.network, x, lanes=LANES, readout_lanes=READOUT_LANES))


@settings(max_examples=25, deadline=None)
@given(x=st.integers(1, 3).flatmap(lambda samples: st.integers(1, 5).flatmap(
    lambda steps: arrays(np.bool_, (samples, steps, N_IN)))))
def test_bit_exact_on_any_input(simulator, x):
    result = simulator.check_against_golden(x, run_golden)
    assert result.mismatch is None, str(result.mismatch)


def test_settling_before_each_edge_gives_the_same_traces(simulator):
    x = corner_inputs(seed=3)
    fast, settled = simulator.run(x), simulator.run(x, settle=True)
    assert not simulator.delta_cycles  # the core has no combinational feedback: one evaluation per cycle
    assert_same_traces(fast.traces, settled.traces)
    assert fast.cycles == settled.cycles == sum(int(trace.cycles.sum()) for trace in fast.traces)
    assert fast.seconds > 0 and fast.cpu_seconds >= 0


def test_progress_is_reported_per_sample(simulator):
    seen = []
    simulator.run(corner_inputs(), on_sample=seen.append)
    assert seen == list(range(6))


def test_first_mismatch_is_located(simulator):
    def tampered(net, x):
        trace = run_golden(net, x)
        s = trace.s.copy()
        s[2, 4, 5] += 1
        return dataclasses.replace(trace, s=s)

    result = simulator.check_against_golden(corner_inputs(), tampered)
    assert result.mismatch == sim.Mismatch(2, 4, "s", 5, int(result.golden.s[2, 4, 5]), int(result.golden.s[2, 4, 5]) - 1)
    assert len(result.traces) == 3  # up to and including the mismatching sample, as the Python harness


def test_input_stream_encoding():
    x = np.zeros((2, 2, 5), bool)
    x[0, 0, [1, 4]] = True
    x[1, 1, 0] = True
    # kind in bits 0-1 (EVENT 0, END_OF_STEP 1, END_OF_SAMPLE 2), index above
    assert _input_items(x, 2).tolist() == [1 << 2, 4 << 2, 1, 2, 1, 0 << 2, 2]


def test_cache_reuses_an_unchanged_design_and_rebuilds_a_changed_one(simulator, cache_dir):
    again = CxxrtlSimulator(corner_network(), lanes=LANES, readout_lanes=READOUT_LANES, cache_dir=cache_dir)
    assert again.cached and again.key == simulator.key and again.executable == simulator.executable

    net = corner_network()
    w_in = net.w_in.copy()
    w_in[3, 5] = -w_in[3, 5] if w_in[3, 5] else 1
    changed = dataclasses.replace(net, w_in=w_in)
    rebuilt = CxxrtlSimulator(changed, lanes=LANES, readout_lanes=READOUT_LANES, cache_dir=cache_dir)
    assert not rebuilt.cached and rebuilt.key != simulator.key and rebuilt.executable.is_file()
    assert sorted(path.name for path in cache_dir.iterdir()) == sorted([simulator.key, rebuilt.key])
    result = rebuilt.check_against_golden(corner_inputs(), run_golden)
    assert result.mismatch is None, str(result.mismatch)


@pytest.fixture
def run_dir(tmp_path, tiny_dvs_root, simulator, cache_dir):
    """A run directory (4 x 4 x 2 binary frames of the tiny root) with the corner network, whose
    compiled simulator is already in its cache (a copy of the module's: the key is the content)."""
    run = tmp_path / "run"
    run.mkdir()
    RunConfig.from_dict({"frames": FRAMES, "model": {"hidden": [N_REC]}, "data": str(tiny_dvs_root)}).save(
        run / "config.json")
    simulator.network.save(run / "integer")
    shutil.copytree(cache_dir / simulator.key, run / "build" / "cxxrtl" / simulator.key)
    return run


def test_simulate_command_runs_all_samples(run_dir, capsys):
    status = cli.main(["simulate", "--run", str(run_dir), "--backend", "cxxrtl", "--samples", "all",
                       "--lanes", str(LANES), "--readout-lanes", str(READOUT_LANES), "--no-progress"])
    assert status == 0, capsys.readouterr()
    assert "every spike and state matches" in capsys.readouterr().out
    report = json.loads((run_dir / "report.json").read_text())["simulate"]
    assert (report["backend"], report["samples"], report["steps"], report["mismatches"]) == ("cxxrtl", 110, 550, 0)
    assert report["build_cached"] is True
    assert report["cycles_per_step_mean"] <= report["cycles_per_step_max"] <= report["cycles_per_step_worst_case"]


def test_simulate_command_refuses_bad_arguments(run_dir, capsys):
    for samples in ("0", "some"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["simulate", "--run", str(run_dir), "--samples", samples, "--no-progress"])
        assert exit_info.value.code == 2
        assert "expected a positive number of samples or 'all'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("sizes, widths, lanes", [
    ((512, 128, 11), {}, 8),  # the hardware preset with random_network's default widths
    ((20, 12, 3), dict(membrane_bits=32, adaptation_bits=32, readout_bits=12, score_bits=14), 3),  # 65-bit neuron word
])
def test_bit_exact_large_and_wide(tmp_path, sizes, widths, lanes):
    net = random_network(np.random.default_rng(11), *sizes, **widths)
    x = np.random.default_rng(12).random((4, 12, sizes[0])) < np.array([0.02, 0.1, 0.3, 1.0])[:, None, None]
    simulator = CxxrtlSimulator(net, lanes=lanes, cache_dir=tmp_path)
    result = simulator.check_against_golden(x, run_golden)
    assert result.mismatch is None, str(result.mismatch)
    short = x[1:2, :3]  # the Python simulator runs about 10^4 cycles per second
    assert_same_traces(simulator.run(short).traces, sim.simulate(net, short, lanes=lanes))


# --- waveforms ----------------------------------------------------------------------------------


def vcd_output_transfers(path, scope: str) -> list[tuple[int, int]]:
    """The items taken on the core's output stream in a VCD: ``(rising clock edge, payload)`` for every
    edge where ``outputs__valid`` and ``outputs__ready`` were both high just before it (module ``scope``,
    e.g. ``top``, or ``bench.top`` in the Amaranth simulation's VCD)."""
    wanted = {f"{scope}.{name}": name for name in ("clk", "outputs__valid", "outputs__ready", "outputs__payload")}
    ids, scopes, values = {}, [], {}
    transfers, edges, pending = [], 0, {}

    def close_time_step():
        nonlocal edges
        if values.get("clk") == 0 and pending.get("clk") == 1:
            if values.get("outputs__valid") and values.get("outputs__ready"):
                transfers.append((edges, values["outputs__payload"]))
            edges += 1
        values.update(pending)
        pending.clear()

    with open(path) as f:
        for line in f:
            word = line.split()
            if not word:
                continue
            if word[0] == "$scope":
                scopes.append(word[2])
            elif word[0] == "$upscope":
                scopes.pop()
            elif word[0] == "$var":
                name = ".".join(scopes + [word[4]])
                if name in wanted:
                    ids.setdefault(word[3], wanted[name])
            elif word[0].startswith("#"):
                close_time_step()
            elif word[0][0] in "01" and word[0][1:] in ids:
                pending[ids[word[0][1:]]] = int(word[0][0])
            elif word[0][0] == "b" and len(word) == 2 and word[1] in ids:
                pending[ids[word[1]]] = int(word[0][1:].replace("x", "0"), 2)
    close_time_step()
    assert set(ids.values()) == set(wanted.values()), f"{path} lacks some of {sorted(wanted)}"
    return transfers


def test_compiled_vcd_has_the_core_and_agrees_with_the_amaranth_vcd(tmp_path):
    net = corner_network()
    x = corner_inputs(seed=5)[2:5, :4]  # three samples of four steps, some spikes
    simulator = CxxrtlSimulator(net, lanes=LANES, readout_lanes=READOUT_LANES, cache_dir=tmp_path / "cache",
                                waveforms=True)
    compiled = tmp_path / "compiled.vcd"
    result = simulator.check_against_golden(x, run_golden, vcd_path=compiled)
    assert result.mismatch is None, str(result.mismatch)
    python = tmp_path / "amaranth.vcd"
    sim.simulate(net, x, lanes=LANES, readout_lanes=READOUT_LANES, vcd_path=python)

    text = compiled.read_text()
    header = text[:text.index("$enddefinitions")]
    for name in ("clk", "rst", "inputs__valid", "inputs__ready", "outputs__payload", "first"):
        assert f" {name} $end" in header
    for unit in ("neurons", "readout", "synapses", "readout_synapses", "spikes"):
        assert f"$scope module {unit} $end" in header
    assert " state[0] " in header and " weights[0] " not in header  # small memories yes, weights no

    kind_bits = simulator.core.outputs.payload.shape()["index"].offset
    ours, theirs = vcd_output_transfers(compiled, "top"), vcd_output_transfers(python, "bench.top")
    assert [payload for _, payload in ours] == [payload for _, payload in theirs]  # every spike, step end, class
    assert np.diff([edge for edge, _ in ours]).tolist() == np.diff([edge for edge, _ in theirs]).tolist()
    kinds = [payload & ((1 << kind_bits) - 1) for _, payload in ours]
    assert kinds.count(OutputKind.END_OF_STEP.value) == x.shape[0] * x.shape[1]
    assert kinds.count(OutputKind.CLASS.value) == x.shape[0]
    spikes = [payload >> kind_bits for payload, kind in zip((p for _, p in ours), kinds)
              if kind == OutputKind.SPIKE.value]
    assert len(spikes) == int(result.golden.z.sum()) > 0
    # the time axis: a rising edge every 1 / CLOCK_HZ, in picoseconds
    times = [int(line[1:]) for line in text.splitlines() if line.startswith("#")]
    assert times[:3] == [0, round(1e12 / sim.CLOCK_HZ / 2), 2 * round(1e12 / sim.CLOCK_HZ / 2)]


def test_a_simulator_without_waveforms_refuses_a_vcd(simulator, tmp_path):
    with pytest.raises(ValueError, match="waveforms=True"):
        simulator.run(corner_inputs()[:1], vcd_path=tmp_path / "w.vcd")


def test_simulate_command_writes_a_vcd_with_the_compiled_backend(run_dir, tmp_path, capsys):
    vcd = tmp_path / "wave.vcd"
    status = cli.main(["simulate", "--run", str(run_dir), "--backend", "cxxrtl", "--samples", "2", "--vcd", str(vcd),
                       "--lanes", str(LANES), "--readout-lanes", str(READOUT_LANES), "--no-progress"])
    assert status == 0, capsys.readouterr()
    assert "every spike and state matches" in capsys.readouterr().out
    report = json.loads((run_dir / "report.json").read_text())["simulate"]
    assert (report["backend"], report["samples"], report["vcd_bytes"]) == ("cxxrtl", 2, vcd.stat().st_size)
    ends = [payload & 3 for _, payload in vcd_output_transfers(vcd, "top")].count(OutputKind.END_OF_STEP.value)
    assert ends == report["steps"]
