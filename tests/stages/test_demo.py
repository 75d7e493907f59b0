"""The reduced end-to-end demo (`gesture-snn demo --quick`): every stage runs, the bitstream is
built, the report holds the numbers, the gateware was bit-exact, and a rerun reuses the finished
stages."""

from __future__ import annotations

import json

import pytest

from gesture_snn.cli import main


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    run, data = base / "run", base / "data"
    argv = ["demo", "--quick", "--run", str(run), "--data", str(data)]  # also builds the UP5K bitstream
    assert main(argv) == 0
    return run, data, argv


def test_quick_demo_report_has_every_number(quick_demo):
    run, _, _ = quick_demo
    report = json.loads((run / "report.json").read_text())
    train, quant, sim = report["train"], report["quantize"], report["simulate"]
    assert 0.0 <= train["test_accuracy"] <= 1.0
    assert train["sops_per_sample"] > 0 and train["dense_macs_per_sample"] > train["sops_per_sample"]
    assert train["energy_ratio"] == pytest.approx(
        4.6 * train["dense_macs_per_sample"] / (0.9 * train["sops_per_sample"]), rel=1e-6
    )
    assert 0.0 <= quant["int_test_accuracy"] <= 1.0 and 0.0 <= quant["prediction_agreement"] <= 1.0
    assert sim["mismatches"] == 0 and sim["samples"] == 2 and sim["steps"] > 0
    assert sim["cycles_per_step_max"] >= sim["cycles_per_step_mean"] > 0
    build = report["build"]["ice40-up5k"]
    assert build["timing_met"] and build["fmax_mhz"] >= 2 * build["clock_mhz"]
    assert build["luts"]["used"] <= build["luts"]["available"] and build["spram"]["used"] <= 4
    assert build["realtime_factor_at_10ms_bins"] >= 10
    assert build["cycles_per_step_measured"]["mean"] == pytest.approx(sim["cycles_per_step_mean"])
    assert (sim["lanes"], sim["readout_lanes"]) == (build["lanes"], build["readout_lanes"])
    assert (run / build["bitstream"]).stat().st_size > 0
    assert set(report["demo"]["stage_seconds"]) == {"synth", "train", "evaluate", "controls", "quantize", "streaming",
                                                    "simulate", "build"}
    assert report["streaming"]["integer"]["n_recordings"] == report["quantize"]["n_test"]
    assert {"network", "reversed", "frame_mlp"} <= set(report["controls"])


def test_quick_demo_writes_readable_report(quick_demo):
    run, _, _ = quick_demo
    markdown = (run / "report.md").read_text()
    assert "bit-exact with golden model | yes" in markdown
    for plot in (run / "plots").glob("*.png"):
        assert f"(plots/{plot.name})" in markdown
    assert list((run / "plots").glob("*.png")), "evaluate wrote no plots"


def test_quick_demo_rerun_reuses_finished_stages(quick_demo, capsys):
    run, _, argv = quick_demo
    before = (run / "integer" / "manifest.json").stat().st_mtime_ns
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("done earlier, reused") == 8
    report = json.loads((run / "report.json").read_text())
    assert len(report["demo"]["reused_stages"]) == 8
    assert "(reused from an earlier run)" in (run / "report.md").read_text()
    assert (run / "integer" / "manifest.json").stat().st_mtime_ns == before
    assert out.rstrip().splitlines()[-1] == f"run directory: {run}"
