"""One Python function per pipeline stage, each taking a frozen options dataclass (checked when it
is made) and returning a result dataclass; the ``gesture-snn`` commands parse their flags into
these options, call the function and print ``result.lines()``; ``gesture_snn.demo`` calls them
directly. Every stage opens its run directory through :mod:`gesture_snn.rundir`.

    from gesture_snn import stages

    trained = stages.train(stages.TrainOptions(run="runs/x", config=config))
    stages.quantize(stages.QuantizeOptions(run="runs/x"))
    assert stages.simulate(stages.SimulateOptions(run="runs/x", samples=2)).ok

=================================  ==============================  ==========================
function                           options                         result
=================================  ==============================  ==========================
:func:`train`                      :class:`TrainOptions`           :class:`TrainResult`
:func:`evaluate`                   :class:`EvaluateOptions`        :class:`EvaluateResult`
:func:`evaluate_whole_recordings`  :class:`WholeRecordingsOptions` :class:`WholeRecordingsResult`
:func:`controls`                   :class:`ControlsOptions`        :class:`ControlsResult`
:func:`experiment`                 :class:`ExperimentOptions`      :class:`ExperimentResult`
:func:`rate_sweep`                 :class:`RateSweepOptions`       :class:`RateSweepResult`
:func:`quantize`                   :class:`QuantizeOptions`        :class:`QuantizeResult`
:func:`simulate`                   :class:`SimulateOptions`        :class:`SimulateResult`
:func:`build`                      :class:`BuildOptions`           :class:`BuildResult`
:func:`list_boards`                :class:`ListBoardsOptions`      :class:`ListBoardsResult`
:func:`program`                    :class:`ProgramOptions`         :class:`ProgramResult`
:func:`export`                     :class:`ExportOptions`          :class:`ExportResult`
:func:`stream`                     :class:`StreamOptions`          :class:`StreamResult`
=================================  ==============================  ==========================

Stages that print while they run take ``log`` (default ``print``). The heavy libraries (torch,
amaranth) are imported when a stage runs, not when this package is imported.
"""

from gesture_snn.stages.bitstream import (
    BuildOptions,
    BuildResult,
    ListBoardsOptions,
    ListBoardsResult,
    ProgramOptions,
    ProgramResult,
    build,
    list_boards,
    program,
)
from gesture_snn.stages.board import StreamOptions, StreamResult, stream
from gesture_snn.stages.evaluation import (
    EvaluateOptions,
    EvaluateResult,
    WholeRecordingsOptions,
    WholeRecordingsResult,
    evaluate,
    evaluate_whole_recordings,
)
from gesture_snn.stages.experiments import (
    ControlsOptions,
    ControlsResult,
    ExperimentOptions,
    ExperimentResult,
    RateSweepOptions,
    RateSweepResult,
    controls,
    experiment,
    rate_sweep,
)
from gesture_snn.stages.export import ExportOptions, ExportResult, export
from gesture_snn.stages.quantization import QuantizeOptions, QuantizeResult, quantize
from gesture_snn.stages.simulation import SimulateOptions, SimulateResult, simulate
from gesture_snn.stages.training import TrainOptions, TrainResult, train

__all__ = [
    "ExportOptions", "ExportResult", "export",
    "BuildOptions", "BuildResult", "ListBoardsOptions", "ListBoardsResult", "ProgramOptions", "ProgramResult",
    "list_boards", "program", "ControlsOptions", "ControlsResult", "EvaluateOptions", "EvaluateResult",
    "ExperimentOptions", "ExperimentResult", "QuantizeOptions", "QuantizeResult", "RateSweepOptions",
    "RateSweepResult", "SimulateOptions", "SimulateResult", "StreamOptions", "StreamResult", "TrainOptions",
    "TrainResult", "WholeRecordingsOptions", "WholeRecordingsResult", "build", "controls", "evaluate",
    "evaluate_whole_recordings", "experiment", "quantize", "rate_sweep", "simulate", "stream", "train",
]
