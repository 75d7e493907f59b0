"""The whole pipeline in one command: synthetic data -> training -> integer network -> gateware -> bitstream.

:func:`run_demo` runs the stages of :data:`STAGES` in order by calling the stage functions of
:mod:`gesture_snn.stages` (the same functions the ``gesture-snn`` commands call), and logs each
one with the command line that does the same by hand. Every stage writes into one run
directory; a rerun reuses the stages that finished (it asks :mod:`gesture_snn.rundir`) and, once
one stage has to run, runs every stage after it again, because each stage consumes what the
previous one wrote.

At the end it prints one summary table, writes ``RUN/report.md`` (the table, the stage times and
the plots) and records the stage times in the ``demo`` section of ``RUN/report.json``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gesture_snn import stages
from gesture_snn.rundir import (
    PLOTS_DIR,
    REPORT_MD_NAME,
    plot_name,
    Section,
    built,
    checkpoint_path,
    controls_finished,
    evaluated,
    quantized,
    read_report,
    simulated,
    streamed,
    training_finished,
    update_report,
)
from gesture_snn.spec.errors import UserError
from gesture_snn.spec.files import atomic_write

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
    """One pipeline stage: ``run(cfg, log)`` runs it (False: it failed, e.g. a gateware mismatch),
    ``finished(cfg)`` says whether its result is already in the run, and ``command(cfg)`` is the
    ``gesture-snn`` command line that does the same (shown in the log)."""

    name: str
    title: str
    command: Callable[[DemoConfig], str]
    run: Callable[[DemoConfig, Callable[[str], None]], bool]
    finished: Callable[[DemoConfig], bool]


def _logged(result, log) -> bool:
    """Log a stage result's summary lines; whether the stage succeeded."""
    for line in result.lines():
        log(line)
    return getattr(result, "ok", True)


def _synthetic(cfg: DemoConfig, log) -> bool:
    from gesture_snn.synthetic import generate

    log(str(generate(cfg.data, size=cfg.synth_size)))
    return True


def _synthetic_finished(cfg: DemoConfig) -> bool:
    from gesture_snn.synthetic import MANIFEST_NAME

    return (cfg.data / "DVSGesture" / MANIFEST_NAME).exists()


def _train_config(cfg: DemoConfig):
    from gesture_snn.config import PRESETS, RunConfig

    config = RunConfig.from_dict(PRESETS["hardware"])
    changes = {"epochs": cfg.epochs} if cfg.epochs is not None else {}
    config = config.replace(train=changes, data=str(cfg.data))
    return config if cfg.window_ms is None else config.replace(frames={"window_ms": cfg.window_ms})


def _train(cfg: DemoConfig, log) -> bool:
    resume = checkpoint_path(cfg.run, "last").exists()
    return _logged(stages.train(stages.TrainOptions(run=cfg.run, config=_train_config(cfg), resume=resume)), log)


def _train_command(cfg: DemoConfig) -> str:
    line = f"train --preset hardware --data {cfg.data} --run {cfg.run}"
    if cfg.epochs is not None:
        line += f" --epochs {cfg.epochs}"
    if cfg.window_ms is not None:
        line += f" --window-ms {cfg.window_ms}"
    return line + (" --resume" if checkpoint_path(cfg.run, "last").exists() else "")


def _sim_samples(cfg: DemoConfig) -> int | None:
    """The test samples to simulate (None: all)."""
    return None if cfg.sim_samples == "all" else cfg.sim_samples


def _simulate_options(cfg: DemoConfig):
    return stages.SimulateOptions(run=cfg.run, samples=_sim_samples(cfg), backend=cfg.sim_backend, target=cfg.target)


def _simulate_command(cfg: DemoConfig) -> str:
    line = f"simulate --run {cfg.run} --samples {cfg.sim_samples} --backend {cfg.sim_backend}"
    return line + (f" --target {cfg.target}" if cfg.target else "")


STAGES: tuple[Stage, ...] = (
    Stage("synth", "synthetic data", lambda c: f"synthetic --out {c.data} --size {c.synth_size}", _synthetic,
          _synthetic_finished),
    Stage("train", "training", _train_command, _train, lambda c: training_finished(c.run, epochs=c.epochs)),
    Stage("evaluate", "evaluation", lambda c: f"evaluate --run {c.run}",
          lambda c, log: _logged(stages.evaluate(stages.EvaluateOptions(run=c.run)), log),
          lambda c: evaluated(c.run)),
    Stage("controls", "controls that remove time", lambda c: f"controls --run {c.run} --controls {' '.join(c.controls)}",
          lambda c, log: _logged(stages.controls(stages.ControlsOptions(run=c.run, controls=c.controls), log=log), log),
          lambda c: controls_finished(c.run, c.controls)),
    Stage("quantize", "quantization", lambda c: f"quantize --run {c.run}",
          lambda c, log: _logged(stages.quantize(stages.QuantizeOptions(run=c.run), log=log), log),
          lambda c: quantized(c.run)),
    Stage("streaming", "whole-recording streaming (float and integer)",
          lambda c: f"evaluate --run {c.run} --whole-recordings",
          lambda c, log: _logged(stages.evaluate_whole_recordings(stages.WholeRecordingsOptions(run=c.run)), log),
          lambda c: streamed(c.run)),
    Stage("simulate", "gateware simulation", _simulate_command,
          lambda c, log: _logged(stages.simulate(_simulate_options(c), log=log), log),
          lambda c: simulated(c.run, backend=c.sim_backend, samples=_sim_samples(c))),
    Stage("build", "bitstream", lambda c: f"build --run {c.run} --target {c.target}",
          lambda c, log: _logged(stages.build(stages.BuildOptions(run=c.run, target=c.target), log=log), log),
          lambda c: built(c.run, c.target)),
)


def run_demo(cfg: DemoConfig, *, force: bool = False, log: Callable[[str], None] = print) -> dict:
    """Run (or reuse) every stage, then write the summary. Returns the final report."""
    chosen = [s for s in STAGES if s.name != "build" or cfg.target]
    previous = read_report(cfg.run).get(Section.DEMO, {}).get("stage_seconds", {})
    seconds: dict[str, float] = {}
    reused: list[str] = []
    rerun_rest = force
    for number, stage in enumerate(chosen, 1):
        header = f"[{number}/{len(chosen)}] {stage.title}"
        if not rerun_rest and stage.finished(cfg):
            log(f"{header}: done earlier, reused")
            seconds[stage.name] = previous.get(stage.name, 0.0)
            reused.append(stage.name)
            continue
        rerun_rest = True
        log(f"{header}: gesture-snn {stage.command(cfg)}")
        start = time.perf_counter()
        ok = stage.run(cfg, log)
        seconds[stage.name] = round(time.perf_counter() - start, 1)
        if not ok:
            raise UserError(f"stage '{stage.name}' failed (exit status 1); fix it and rerun: finished stages are reused")
        log(f"{header}: {seconds[stage.name]:.1f} s")

    update_report(
        cfg.run,
        Section.DEMO,
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
    atomic_write(cfg.run / REPORT_MD_NAME, lambda f: f.write(markdown))
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
    sim = report.get(Section.SIMULATE, {})
    build = _get(report, Section.BUILD, target or "", default={}) or {}
    train = report.get(Section.TRAIN, {})
    test = train.get("test", {})
    rows = [
        ("selected epoch (validation users)", f"{train.get('best_epoch')} of {train.get('epochs_completed')}, "
                                              f"val accuracy {_pct(train.get('val_accuracy'))}"),
        ("float test accuracy (1 seed, 95 % CI over users)",
         f"{_pct(test.get('accuracy'))} [{_interval(test.get('ci95'))}]"),
        ("integer test accuracy", _pct(_get(report, Section.QUANTIZE, "int_test_accuracy"))),
        ("float/integer prediction agreement", _pct(_get(report, Section.QUANTIZE, "prediction_agreement"))),
    ]
    for name, entry in report.get(Section.CONTROLS, {}).items():
        if isinstance(entry, dict) and name != "network":
            rows.append((f"control: {entry['label']}", f"{_pct(entry['accuracy'])} [{_interval(entry['ci95'])}], "
                                                       f"cw/ccw pair {_pct(entry['within_pair_accuracy'])}"))
    for kind in ("float", "integer"):
        stream = _get(report, Section.STREAMING, kind)
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
        link = build.get("link")
        if link:
            best = link["encodings"]["best"]
            rows.append((
                f"real-time factor end to end over the UART at {link['baud']} baud (mean / slowest recording)",
                f"{best['end_to_end_realtime_factor_mean']:.1f} x / {best['end_to_end_realtime_factor_worst']:.1f} x",
            ))
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
    demo = report.get(Section.DEMO, {})
    lines += ["", "## Stage times", "", "| stage | seconds |", "|---|---|"]
    reused = set(demo.get("reused_stages", []))
    lines += [
        f"| {name} | {sec}{' (reused from an earlier run)' if name in reused else ''} |"
        for name, sec in demo.get("stage_seconds", {}).items()
    ]
    lines += [f"| total | {demo.get('total_seconds')} |"]
    plots = sorted((run / PLOTS_DIR).glob("*.png")) if (run / PLOTS_DIR).exists() else []
    if plots:
        lines += ["", "## Plots", ""]
        for plot in plots:
            lines += [f"### {plot.stem.replace('_', ' ')}", "", f"![{plot.stem}]({plot_name(plot.name)})", ""]
    lines += ["", "All numbers come from `report.json` beside this file; see the README for what each stage does.", ""]
    return "\n".join(lines)
