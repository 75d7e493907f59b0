"""``gesture-snn stream``: run test samples on a board over its serial port and compare with the golden model."""

from __future__ import annotations

from gesture_snn.commands._options import with_cache_dir

HELP = "stream test samples to a board over UART and check its spikes and classes against the golden model"

DESCRIPTION = (
    "Open the board's serial port, bring the board to a known state and identify its bitstream "
    "(which must have been built from RUN/integer: sizes and a fingerprint of every parameter are "
    "checked), send the weights if the bitstream loads them at run time (the iCE40 UP5K build), "
    "then stream the input events of each chosen test sample step by step, framed with the run's "
    "frame settings, and read back the spikes of every step and the class. Prints them, compares "
    "them with the golden model (exit status 1 on any difference) and writes the 'stream' section "
    "of RUN/report.json. The byte protocol and the boards are described in docs/boards.md."
)


def add_arguments(parser) -> None:
    from gesture_snn.commands._options import add_cache_dir

    add_cache_dir(parser)
    from gesture_snn.stream import DEFAULT_BAUD

    parser.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB1 or COM5")
    parser.add_argument("--run", metavar="RUNDIR", required=True, help="run directory with integer/ and config.json")
    parser.add_argument("--sample", type=int, nargs="+", required=True, metavar="K",
                        help="index (or indices) of the test sample(s) to stream")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="baud rate the bitstream was built with")
    parser.add_argument("--data", metavar="DIR", default=None, help="data root (default: the run config's)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="longest silence from the board while a reply is due")
    parser.add_argument("--no-load", dest="load", action="store_false",
                        help="do not send the weights (a board that already holds this run's weights)")
    parser.add_argument("--quiet", action="store_true", help="print one line per sample instead of every step's spikes")


@with_cache_dir
def run(args) -> int:
    import time

    import numpy as np

    from gesture_snn.errors import UserError
    from gesture_snn.golden import run_golden
    from gesture_snn.rundir import update_report
    from gesture_snn.runs import IntegerRun
    from gesture_snn.stream import BoardLink, open_serial

    from gesture_snn.commands._options import check_number

    check_number("--timeout", args.timeout, positive=True)
    if args.baud < 1:
        raise UserError(f"--baud must be a positive number of bits per second, got {args.baud}")
    run = IntegerRun.load(args.run)
    run_dir, network = run.run_dir, run.network
    inputs, labels = run.test_inputs(data=args.data)
    bad = [k for k in args.sample if not 0 <= k < len(labels)]
    if bad:
        raise UserError(f"--sample {bad[0]} is not a test sample; the test split has {len(labels)} "
                        f"(0 .. {len(labels) - 1})")
    x = inputs[args.sample]
    golden = run_golden(network, x)

    port = open_serial(args.port, baud=args.baud)
    try:
        link = BoardLink(port, timeout_s=args.timeout)
        info = link.reset()
        info.check_network(network)
        print(f"board: {info.n_in} -> {info.n_rec} -> {info.n_out}, {info.lanes} lanes, {info.readout_lanes} readout "
              f"lanes, weights {'loaded at run time' if info.weight_loading else 'in the bitstream'}, "
              f"fingerprint {info.fingerprint:08x}")
        load_seconds = None
        if info.weight_loading and args.load:
            started = time.perf_counter()
            link.load_weights(network, progress=not args.quiet)
            load_seconds = time.perf_counter() - started
        samples = []
        for row, k in enumerate(args.sample):
            started = time.perf_counter()
            result = link.run_sample(x[row])
            seconds = time.perf_counter() - started
            expected = golden.z[row].astype(np.uint8)
            steps_differ = np.flatnonzero((result.spikes != expected).any(axis=1))
            label = int(labels[k])
            if not args.quiet:
                for t, spikes in enumerate(result.spikes):
                    marker = "" if (spikes == expected[t]).all() else (
                        f"   MISMATCH: golden {' '.join(map(str, np.flatnonzero(expected[t]))) or '-'}")
                    print(f"  sample {k} step {t:3d}: {' '.join(map(str, np.flatnonzero(spikes))) or '-'}{marker}")
            golden_class = int(golden.prediction[row])
            match = steps_differ.size == 0 and result.prediction == golden_class
            print(f"sample {k} (label {label}): class {result.prediction}, golden model {golden_class}, "
                  f"spikes match in {x.shape[1] - steps_differ.size} of {x.shape[1]} steps "
                  f"({'ok' if match else 'MISMATCH'}; {seconds:.2f} s)")
            samples.append({
                "sample": k, "label": label, "prediction": result.prediction, "golden_prediction": golden_class,
                "spikes": int(result.spikes.sum()), "steps_mismatched": int(steps_differ.size),
                "first_mismatched_step": int(steps_differ[0]) if steps_differ.size else None,
                "seconds": round(seconds, 3),
            })
        errors = link.identify().errors
    finally:
        port.close()

    mismatches = sum(s["steps_mismatched"] > 0 or s["prediction"] != s["golden_prediction"] for s in samples)
    update_report(run_dir, "stream", {
        "port": args.port,
        "baud": args.baud,
        "weight_loading": info.weight_loading,
        "weights_sent": load_seconds is not None,
        "weight_load_seconds": None if load_seconds is None else round(load_seconds, 3),
        "samples": samples,
        "mismatches": mismatches,
        "link_errors": [flag.name for flag in type(errors) if flag in errors],
    })
    if errors:
        print(f"warning: the board saw link errors: {errors!r}")
    return 1 if mismatches else 0
