"""The whole pipeline in one command: synthetic data -> training -> integer network -> gateware -> bitstream.

:func:`run_demo` runs the stages of :data:`STAGES` in order through the same command-line entry
point a user would type (``gesture-snn synth``, ``train``, ``evaluate``, ``quantize``,
``simulate``, ``build``), so the demo exercises exactly the user-facing code. Every stage writes
into one run directory; a rerun reuses the stages that finished (it asks ``report.json`` and the
files on disk) and, once one stage has to run, runs every stage after it again, because each
stage consumes what the previous one wrote.

At the end it prints one summary table, writes ``RUN/report.md`` (the table, the stage times and
the plots) and records the stage times in the ``demo`` section of ``RUN/report.json``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gesture_snn.errors import UserError
from gesture_snn.rundir import atomic_write, read_report, update_report

__all__ = ["DemoConfig", "STAGES", "run_demo", "summary_rows", "render_report_md"]


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs.

    data: data root of the synthetic set (generated there if missing).
    run: the run directory every stage writes into.
    synth_size: ``quick`` (the default set) or ``tiny`` (0.3 s recordings, for ``--quick``).
    window_ms: frame window; ``None`` keeps the hardware preset's.
    epochs: training epochs; ``None`` keeps the hardware preset's.
    sim_samples: test samples simulated in the gateware and compared with the golden model
        (``"all"``: the whole test split).
    sim_backend: ``cxxrtl`` (compiled with g++; the whole test split in seconds) or ``amaranth``
        (the Python simulator, about 30 s per 160-step sample).
    target: FPGA target of the bitstream, or ``None`` to skip the build.
    controls: the controls run on the trained network (docs/evaluation.md); the trained LIF and
        GRU comparisons, 2.5 minutes more, are left to ``gesture-snn experiment``.
    """

    data: Path = Path("datasets/synthetic")
    run: Path = Path("runs/demo")
    synth_size: str = "quick"
    window_ms: float | None = None
    epochs: int | None = None
    sim_samples: int | str = "all"
    sim_backend: str = "cxxrtl"
    target: str | None = "ice40-up5k"
    controls: tuple[str, ...] = ("reversed", "shuffled", "no_adaptation", "no_recurrence", "frame_mlp",
                                 "summed_linear")  # the LIF and GRU runs: gesture-snn experiment

    @classmethod
    def quick(cls, **overrides) -> "DemoConfig":
        """The reduced end-to-end run CI uses: tiny data, two epochs, two simulated samples."""
        base = dict(
            data=Path("datasets/synthetic-tiny"),
            run=Path("runs/demo-quick"),
            synth_size="tiny",
            window_ms=300.0,
            epochs=2,
            sim_samples=2,
            sim_backend="amaranth",
            controls=("reversed", "shuffled", "no_adaptation", "no_recurrence", "frame_mlp"),
        )
        base.update(overrides)
        return cls(**base)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: the ``gesture-snn`` arguments that run it and how to tell it finished."""

    name: str
    title: str
    argv: Callable[[DemoConfig], list[str]]
    finished: Callable[[DemoConfig, dict], bool]


def _train_argv(cfg: DemoConfig) -> list[str]:
    argv = ["train", "--preset", "hardware", "--data", str(cfg.data), "--run", str(cfg.run)]
    if cfg.epochs is not None:
        argv += ["--epochs", str(cfg.epochs)]
    if cfg.window_ms is not None:
        argv += ["--window-ms", str(cfg.window_ms)]
    if (cfg.run / "checkpoints" / "last.pt").exists():
        argv.append("--resume")
    return argv


def _train_finished(cfg: DemoConfig, report: dict) -> bool:
    train = report.get("train", {})
    return bool(train) and train.get("epochs_completed") == train.get("epochs") and (
        cfg.epochs is None or train.get("epochs") == cfg.epochs
    )


def _controls_finished(cfg: DemoConfig, report: dict) -> bool:
    return set(cfg.controls) <= set(report.get("controls", {}))


def _simulate_finished(cfg: DemoConfig, report: dict) -> bool:
    sim = report.get("simulate", {})
    wanted = report.get("quantize", {}).get("n_test", -1) if cfg.sim_samples == "all" else cfg.sim_samples
    return sim.get("backend") == cfg.sim_backend and sim.get("samples", 0) >= wanted and sim.get("mismatches") == 0


def _simulate_argv(cfg: DemoConfig) -> list[str]:
    argv = ["simulate", "--run", str(cfg.run), "--samples", str(cfg.sim_samples), "--backend", cfg.sim_backend]
    return argv + (["--target", cfg.target] if cfg.target else [])


def _build_finished(cfg: DemoConfig, report: dict) -> bool:
    build = report.get("build", {}).get(cfg.target or "", {})
    return bool(build.get("bitstream")) and (cfg.run / build["bitstream"]).exists()


STAGES: tuple[Stage, ...] = (
    Stage(
        "synth",
        "synthetic data",
        lambda c: ["synth", "--out", str(c.data), "--size", c.synth_size],
        lambda c, r: (c.data / "DVSGesture" / "synth_manifest.json").exists(),
    ),
    Stage("train", "training", _train_argv, _train_finished),
    Stage(
        "evaluate",
        "evaluation",
        lambda c: ["evaluate", "--run", str(c.run)],
        lambda c, r: "energy_ratio" in r.get("train", {}),
    ),
    Stage(
        "controls",
        "controls that remove time",
        lambda c: ["controls", "--run", str(c.run), "--controls", *c.controls],
        _controls_finished,
    ),
    Stage(
        "quantize",
        "quantization",
        lambda c: ["quantize", "--run", str(c.run)],
        lambda c, r: "int_test_accuracy" in r.get("quantize", {}),
    ),
    Stage(
        "streaming",
        "whole-recording streaming (float and integer)",
        lambda c: ["evaluate", "--run", str(c.run), "--whole-recordings"],
        lambda c, r: "integer" in r.get("streaming", {}),
    ),
    Stage(
        "simulate",
        "gateware simulation",
        _simulate_argv,
        _simulate_finished,
    ),
    Stage(
        "build",
        "bitstream",
        lambda c: ["build", "--run", str(c.run), "--target", str(c.target)],
        _build_finished,
    ),
)


def run_demo(cfg: DemoConfig, *, force: bool = False, log: Callable[[str], None] = print) -> dict:
    """Run (or reuse) every stage, then write the summary. Returns the final report."""
    from gesture_snn.cli import main as cli_main

    stages = [s for s in STAGES if s.name != "build" or cfg.target]
    previous = read_report(cfg.run).get("demo", {}).get("stage_seconds", {})
    seconds: dict[str, float] = {}
    reused: list[str] = []
    rerun_rest = force
    for number, stage in enumerate(stages, 1):
        report = read_report(cfg.run)
        header = f"[{number}/{len(stages)}] {stage.title}"
        if not rerun_rest and stage.finished(cfg, report):
            log(f"{header}: done earlier, reused")
            seconds[stage.name] = previous.get(stage.name, 0.0)
            reused.append(stage.name)
            continue
        rerun_rest = True
        argv = stage.argv(cfg)
        log(f"{header}: gesture-snn {' '.join(argv)}")
        start = time.perf_counter()
        status = cli_main(argv)
        seconds[stage.name] = round(time.perf_counter() - start, 1)
        if status != 0:
            raise UserError(f"stage '{stage.name}' failed (exit status {status}); fix it and rerun: finished stages are reused")
        log(f"{header}: {seconds[stage.name]:.1f} s")

    update_report(
        cfg.run,
        "demo",
        {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()},
            "stage_seconds": seconds,
            "reused_stages": reused,
            "total_seconds": round(sum(seconds.values()), 1),
        },
    )
    report = read_report(cfg.run)
    rows = summary_rows(report, target=cfg.target)
    log("")
    log(_format_table(rows))
    markdown = render_report_md(report, rows, cfg.run)
    atomic_write(cfg.run / "report.md", lambda f: f.write(markdown))
    return report


def _get(report: dict, *path, default=None):
    node = report
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def summary_rows(report: dict, *, target: str | None) -> list[tuple[str, str]]:
    """The demo's summary as (quantity, value) rows, read from ``report.json``."""
    sim = report.get("simulate", {})
    build = _get(report, "build", target or "", default={}) or {}
    train = report.get("train", {})
    test = train.get("test", {})
    rows = [
        ("selected epoch (validation users)", f"{train.get('best_epoch')} of {train.get('epochs_completed')}, "
                                              f"val accuracy {_pct(train.get('val_accuracy'))}"),
        ("float test accuracy (1 seed, 95 % CI over users)",
         f"{_pct(test.get('accuracy'))} [{_interval(test.get('ci95'))}]"),
        ("integer test accuracy", _pct(_get(report, "quantize", "int_test_accuracy"))),
        ("float/integer prediction agreement", _pct(_get(report, "quantize", "prediction_agreement"))),
    ]
    for name, entry in report.get("controls", {}).items():
        if isinstance(entry, dict) and name != "network":
            rows.append((f"control: {entry['label']}", f"{_pct(entry['accuracy'])} [{_interval(entry['ci95'])}], "
                                                       f"cw/ccw pair {_pct(entry['within_pair_accuracy'])}"))
    for kind in ("float", "integer"):
        stream = _get(report, "streaming", kind)
        if stream:
            stable = stream["time_to_stable_ms"]["median"]
            rows.append((f"whole recordings, {kind}: accuracy at the end / median time to a stable decision",
                         f"{_pct(stream['end']['mean'])} / {'n/a' if stable is None else f'{stable:.0f} ms'}"))
    if sim:
        exact = "yes" if sim.get("mismatches") == 0 else "NO"
        rows.append(("gateware bit-exact with golden model", f"{exact} ({sim.get('samples')} samples, {sim.get('steps')} steps)"))
        rows.append(("cycles per time step (mean / max)", f"{sim.get('cycles_per_step_mean', 0):.0f} / {sim.get('cycles_per_step_max', 0)}"))
    if build:
        rows += [
            (f"{target} LUTs", _used(build.get("luts"))),
            (f"{target} block RAM / SPRAM / DSP", " / ".join(_used(build.get(k)) for k in ("block_ram", "spram", "dsp"))),
            (f"{target} Fmax (clock)", f"{build.get('fmax_mhz', 0):.1f} MHz ({build.get('clock_mhz')} MHz)"),
            (
                "real-time factor, worst case (run's bins / 10 ms bins)",
                f"{build.get('realtime_factor', 0):.1f} x / {build.get('realtime_factor_at_10ms_bins', 0):.1f} x",
            ),
            ("latency per gesture", f"{build.get('latency_ms_per_gesture', 0):.0f} ms"),
        ]
    if "sops_per_sample" in train:
        rows += [
            ("synaptic operations per sample", f"{train['sops_per_sample']:.3g}"),
            ("dense RNN MACs per sample", f"{train['dense_macs_per_sample']:.3g}"),
            ("energy ratio, the seed paper's accounting (dense RNN MACs / SOPs)", "n/a" if train["energy_ratio"] is None else f"{train['energy_ratio']:.1f} x"),
        ]
    energy = train.get("energy") or {}
    if "fair_dense" in energy:
        rows.append(("energy ratio, fair dense RNN (binary inputs as additions, neuron updates on both sides)",
                     f"{energy['fair_dense']['ratio']:.1f} x"))
        rows.append(("energy ratio, integer widths with memory reads", f"{energy['integer']['ratio']:.1f} x"))
    return rows


def _interval(ci) -> str:
    return "n/a" if not ci else f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f} %"


def _used(resource) -> str:
    if isinstance(resource, dict):
        return f"{resource.get('used')}/{resource.get('available')}"
    return str(resource)


def _format_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    return "\n".join([line] + [f"{k:<{width}}   {v}" for k, v in rows] + [line])


def render_report_md(report: dict, rows: list[tuple[str, str]], run: Path) -> str:
    """``report.md``: the summary table, stage times and every plot of the run, embedded."""
    lines = ["# gesture-snn demo report", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    demo = report.get("demo", {})
    lines += ["", "## Stage times", "", "| stage | seconds |", "|---|---|"]
    reused = set(demo.get("reused_stages", []))
    lines += [
        f"| {name} | {sec}{' (reused from an earlier run)' if name in reused else ''} |"
        for name, sec in demo.get("stage_seconds", {}).items()
    ]
    lines += [f"| total | {demo.get('total_seconds')} |"]
    plots = sorted((run / "plots").glob("*.png")) if (run / "plots").exists() else []
    if plots:
        lines += ["", "## Plots", ""]
        for plot in plots:
            lines += [f"### {plot.stem.replace('_', ' ')}", "", f"![{plot.stem}](plots/{plot.name})", ""]
    lines += ["", "All numbers come from `report.json` beside this file; see the README for what each stage does.", ""]
    return "\n".join(lines)
