"""``gesture-snn simulate``: a run directory in, the comparison and the report section out."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from gesture_snn import cli
from gesture_snn.config import RunConfig

from framesets import INTEGER_RUN_FRAMES as FRAMES


@pytest.fixture
def run_dir(integer_run_dir):
    return integer_run_dir


def test_simulate_matches_and_reports(run_dir, tmp_path, capsys):
    vcd = tmp_path / "wave.vcd"
    status = cli.main(["simulate", "--run", str(run_dir), "--samples", "2", "--lanes", "4", "--vcd", str(vcd),
                       "--no-progress"])
    assert status == 0, capsys.readouterr()
    assert "every spike and state matches" in capsys.readouterr().out
    report = json.loads((run_dir / "report.json").read_text())["simulate"]
    assert report["backend"] == "amaranth"
    assert (report["samples"], report["steps"], report["mismatches"], report["lanes"]) == (2, 10, 0, 4)
    assert report["cycles_per_step_mean"] <= report["cycles_per_step_max"] <= report["cycles_per_step_worst_case"]
    assert "neurons" in vcd.read_text()[:100_000]


def test_simulate_stops_at_the_first_mismatch(run_dir, monkeypatch, capsys):
    import gesture_snn.golden as golden

    real = golden.run_golden

    def tampered(net, x):
        trace = real(net, x)
        z = trace.z.copy()
        z[1, 2, 3] ^= 1
        return dataclasses.replace(trace, z=z)

    monkeypatch.setattr(golden, "run_golden", tampered)
    status = cli.main(["simulate", "--run", str(run_dir), "--samples", "3", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 1
    assert "sample 1, step 2, neuron 3, z: expected" in out
    report = json.loads((run_dir / "report.json").read_text())["simulate"]
    assert (report["samples"], report["mismatches"]) == (2, 1)  # stopped after the second sample


def test_simulate_refuses_bad_arguments(run_dir, capsys):
    assert cli.main(["simulate", "--run", str(run_dir), "--lanes", "3", "--no-progress"]) == 2
    assert "does not divide n_rec = 8" in capsys.readouterr().err
    assert cli.main(["simulate", "--run", str(run_dir / "missing"), "--no-progress"]) == 2
    assert "integer network" in capsys.readouterr().err


@pytest.mark.parametrize("frames, message", [
    ({**FRAMES, "mode": "count"}, "the run's frames are in 'count' mode; the integer network takes binary input"),
    ({**FRAMES, "size": 8}, "the run's frames have 128 inputs but .* has n_in = 32; quantize the run again"),
])
def test_simulate_refuses_frames_the_integer_network_does_not_take(run_dir, frames, message, capsys):
    data = RunConfig.load(run_dir / "config.json").data
    RunConfig.from_dict({"frames": frames, "model": {"hidden": [8]}, "data": data}).save(run_dir / "config.json")
    assert cli.main(["simulate", "--run", str(run_dir), "--no-progress"]) == 2
    assert re.search(message, capsys.readouterr().err)
