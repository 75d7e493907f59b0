"""The Python API of the stages (gesture_snn.stages): the README's example runs as written, the
options are checked when they are made, and every stage that reads the integer network (build
included) opens the run with the same consistency checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gesture_snn import stages
from gesture_snn.config import RunConfig
from gesture_snn.rundir import IntegerRun, Section, quantized, read_report, simulated, training_finished
from gesture_snn.spec.errors import UserError
from gesture_snn.spec.intnet import random_network

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The Python block of the README's "Command line" section."""
    text = README.read_text()
    section = text[text.index("## Command line"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes datasets/ and runs/ below the current directory
    exec(compile(readme_example(), str(README), "exec"), {})
    assert read_report("runs/api")[Section.BUILD]["ice40-up5k"]["bitstream"]


def test_the_readme_example_up_to_the_build(tmp_path, monkeypatch):
    """The example without its bitstream build (the slow test above builds it)."""
    monkeypatch.chdir(tmp_path)
    code = readme_example()
    code = code[:code.index("built = stages.build")]
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    run = Path("runs/api")
    assert training_finished(run) and quantized(run) and simulated(run, backend="amaranth", samples=2)
    assert namespace["simulated"].section["lanes"] == 8 and namespace["quantized"].network.n_in == 32
    assert namespace["trained"].lines()[0].startswith("selected epoch 1")
    # evaluation of the integer network and the whole recordings go through the same API
    integer = stages.evaluate(stages.EvaluateOptions(run=run, integer=True, plots=False, progress=False))
    assert integer.summary["n_samples"] == read_report(run)[Section.QUANTIZE]["n_test"]
    whole = stages.evaluate_whole_recordings(stages.WholeRecordingsOptions(run=run, limit=2, progress=False))
    assert whole.section["integer"]["n_recordings"] == 2


@pytest.mark.parametrize("make, message", [
    (lambda: stages.QuantizeOptions(run="r", batch_size=0), "--batch-size must be at least 1"),
    (lambda: stages.QuantizeOptions(run="r", weight_bits=9), "--weight-bits 9"),
    (lambda: stages.QuantizeOptions(run="r", membrane_headroom=float("nan")), "--membrane-headroom"),
    (lambda: stages.SimulateOptions(run="r", target="ice41"), "--target: unknown target 'ice41'"),
    (lambda: stages.ExportOptions(run="r", out="o", name="a b"), "--name must be a plain Verilog identifier"),
    (lambda: stages.SimulateOptions(run="r", samples=0), "--samples"),
    (lambda: stages.BuildOptions(run="r", target="ice40-up5k", seed=-1), "--seed must be a non-negative"),
    (lambda: stages.BuildOptions(run="r", target="ice41"), "unknown target"),
    (lambda: stages.StreamOptions(port="p", run="r", samples=(0,), timeout=0), "--timeout must be positive"),
    (lambda: stages.EvaluateOptions(run="r", raster_sample=-1), "--raster-sample"),
    (lambda: stages.EvaluateOptions(run="r", checkpoint="first"), "--checkpoint"),
    (lambda: stages.WholeRecordingsOptions(run="r", limit=0), "--limit must be at least 1"),
    (lambda: stages.TrainOptions(run="r"), "give a configuration"),
    (lambda: stages.ControlsOptions(run="r", controls=("nothing",)), "unknown controls"),
    (lambda: stages.ExperimentOptions(config=RunConfig(), out="o", threads=0), "--threads"),
])
def test_options_are_checked_when_made(make, message):
    with pytest.raises(UserError, match=re.escape(message)):
        make()


def test_options_are_frozen_keyword_only_and_take_paths():
    options = stages.BuildOptions(run="runs/x", target="ice40-up5k")
    assert options.run == Path("runs/x")
    with pytest.raises(Exception):
        options.seed = 2
    with pytest.raises(TypeError):
        stages.BuildOptions("runs/x", "ice40-up5k")


@pytest.fixture
def mismatched_run(tmp_path):
    """A run whose frames (4 x 4 x 2 = 32 inputs) do not fit its integer network (n_in = 8)."""
    run = tmp_path / "run"
    run.mkdir()
    RunConfig().replace(frames={"size": 4, "mode": "binary"}).save(run / "config.json")
    random_network(np.random.default_rng(0), 8, 4, 3, shift_in=1, shift_rec=1).save(run / "integer")
    return run


@pytest.mark.parametrize("call", [
    lambda run: stages.build(stages.BuildOptions(run=run, target="ice40-up5k")),
    lambda run: stages.simulate(stages.SimulateOptions(run=run, progress=False)),
    lambda run: stages.export(stages.ExportOptions(run=run, out=run / "ip")),
    lambda run: stages.stream(stages.StreamOptions(port="/dev/null", run=run, samples=(0,))),
    lambda run: IntegerRun.load(run),
])
def test_every_hardware_stage_opens_the_run_with_the_same_checks(mismatched_run, call):
    with pytest.raises(UserError, match=r"32 inputs but .* has n_in = 8; quantize the run again"):
        call(mismatched_run)
    assert not (mismatched_run / "build").exists()


def test_build_checks_the_report_before_building(mismatched_run):
    (mismatched_run / "report.json").write_text("{not json")
    with pytest.raises(UserError, match="report.json is damaged"):
        stages.build(stages.BuildOptions(run=mismatched_run, target="ice40-up5k"))
