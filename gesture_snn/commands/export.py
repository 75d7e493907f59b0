"""``gesture-snn export``: the run's neuron core alone as a Verilog IP block with documented ports."""

from __future__ import annotations

HELP = "export the neuron core alone as Verilog with stable, documented ports, its $readmemh images and a README"

DESCRIPTION = (
    "Load RUN/integer and write the neuron core (hdl.core.NeuronCore) without a board around it into "
    "OUT: NAME.v (module NAME with the ports clk, rst, in_valid, in_ready, in_kind, in_index, out_valid, "
    "out_ready, out_kind, out_index, and weight_write_* with --weight-loading), one $readmemh .hex "
    "image per initialised memory (weights and neuron / readout parameters; the Verilog reads them by "
    "file name), memories.json and a README.md with the ports, clock and reset, the stream protocol and "
    "the cycle formula. Writes nothing into the run. See docs/ip_core.md."
)


def add_arguments(parser) -> None:
    from gesture_snn.spec.memory import DEFAULT_MAX_LANES

    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory with integer/ and config.json")
    parser.add_argument("--out", metavar="DIR", required=True, help="folder to write the Verilog, images and README into")
    parser.add_argument("--lanes", type=int, default=None,
                        help=f"parallel synaptic lanes, a divisor of n_rec (default: the largest divisor up to {DEFAULT_MAX_LANES})")
    parser.add_argument("--readout-lanes", type=int, default=None,
                        help="parallel readout lanes, 1 .. n_out (default: min(lanes, n_out))")
    parser.add_argument("--name", default="gesture_snn_core", help="Verilog module name")
    parser.add_argument("--weight-loading", action="store_true",
                        help="weight memories without initial contents, written through the weight_write_* ports")


def run(args) -> int:
    from gesture_snn.stages import ExportOptions, export

    options = ExportOptions(run=args.run, out=args.out, lanes=args.lanes, readout_lanes=args.readout_lanes,
                            name=args.name, weight_loading=args.weight_loading)
    result = export(options, log=lambda line: print(line, flush=True))
    for line in result.lines():
        print(line)
    return 0
