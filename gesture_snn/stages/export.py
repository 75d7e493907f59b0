"""The ``export`` stage: the run's neuron core alone as a Verilog IP block with documented ports (docs/ip_core.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gesture_snn.spec.errors import UserError
from gesture_snn.stages._common import Log, StageResult, as_paths, resolve_hardware

__all__ = ["ExportOptions", "ExportResult", "export"]


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """What :func:`export` does: ``run`` (with ``integer/`` and ``config.json``), ``out`` (the folder
    to write), ``lanes`` / ``readout_lanes`` (None: the defaults of ``simulate`` without a target),
    ``name`` (the Verilog module name) and ``weight_loading`` (weights written through the
    ``weight_write_*`` ports instead of initialised from ``.hex`` files)."""

    run: Path
    out: Path
    lanes: int | None = None
    readout_lanes: int | None = None
    name: str = "gesture_snn_core"
    weight_loading: bool = False

    def __post_init__(self):
        import re

        as_paths(self, "run", "out")
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise UserError(f"--name must be a plain Verilog identifier (letters, digits, _), not {self.name!r}")


@dataclass(frozen=True)
class ExportResult(StageResult):
    """The files written (``files``: role -> path) and ``section``: module, lanes, ports, memories,
    worst-case cycles per step. Nothing is written into the run's report."""

    files: dict

    def lines(self) -> list[str]:
        section = self.section
        return [
            f"module {section['module']} ({section['lanes']} lanes, {section['readout_lanes']} readout lanes; "
            f"worst-case step {section['cycles_per_step_worst_case']} cycles): {self.files['verilog']}",
            "ports: " + ", ".join(f"{p['name']}[{p['width']}]" if p['width'] > 1 else p['name']
                                  for p in section["ports"]),
            f"{len(section['memories'])} $readmemh images, memories.json and README.md in {self.files['readme'].parent}",
        ]


def export(options: ExportOptions, *, log: Log = print) -> ExportResult:
    """Write the run's :class:`hdl.core.NeuronCore` as ``OUT/<name>.v`` (:func:`hdl.export.export_core`), its
    memory images, ``memories.json`` and ``README.md``. The run is opened with the checks of every
    stage (:meth:`gesture_snn.rundir.IntegerRun.load`)."""
    from gesture_snn.rundir import IntegerRun
    from gesture_snn.spec.files import write_errors
    from hdl.export import export_core, write_export

    run = IntegerRun.load(options.run)
    hardware = resolve_hardware(run.network, None, lanes=options.lanes, readout_lanes=options.readout_lanes)
    exported = export_core(run.network, lanes=hardware.lanes, readout_lanes=hardware.readout_lanes,
                           weight_loading=options.weight_loading, name=options.name)
    with write_errors(options.out):  # a full disk or a read-only folder: one message
        files = write_export(exported, options.out, source=str(run.run_dir / "integer"))
    section = {
        "module": exported.name,
        "lanes": hardware.lanes,
        "readout_lanes": hardware.readout_lanes,
        "weight_loading": options.weight_loading,
        "cycles_per_step_worst_case": hardware.cycle_model.worst_case_step_cycles(),
        "ports": [{"name": p.name, "direction": p.direction, "width": p.width} for p in exported.ports],
        "memories": [memory.file for memory in exported.memories],
    }
    return ExportResult(run=run.run_dir, section=section, files=files)
