"""Where the fused SRNN's training step spends its time, phase by phase, idle and loaded.

The model of ``bench_train.py`` (2048 in -> 256 ALIF -> 11 leaky readout, 100 steps, batch 32)
taken apart into the pieces ``gesture_snn.model.SRNN`` chains, each timed forward + backward:

- ``input``: the input projection ``spike_linear(x, W_in)`` (CSR below 5 % density) and its
  weight gradient;
- ``recurrence``: ``neurons.alif.sequence`` (forward loop, hand-written BPTT), with its time loops on
  one thread (``serial``, the default) or on all threads (``threaded``: the behaviour before);
- ``readout``: ``spike_linear(z, W_out)``, ``leaky_integrate``, the cross-entropy, backward;
- ``adam``: the optimiser step over all parameters.

Usage::

    python benchmarks/profile_train.py [--density 0.02] [--repeats 7] [--threads 1 2]

Prints one row per (condition, threads, loop) with the median milliseconds of each phase over
``--repeats`` passes (after a warm-up), the phases taking turns.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import BATCH, N_IN, N_OUT, N_REC, STEPS, competing_process, inputs  # noqa: E402

from gesture_snn.neurons import alif, kernel  # noqa: E402
from gesture_snn.config import ModelConfig  # noqa: E402
from gesture_snn.model import SRNN  # noqa: E402
from gesture_snn.neurons.readout import leaky_integrate  # noqa: E402
from gesture_snn.synapse import spike_linear  # noqa: E402

PHASES = ("input", "recurrence", "readout", "adam")


def phase_times(model, x, y, optimizer):
    layer, readout = model.layers[0], model.readout
    times = {}

    start = time.perf_counter()
    w_in = layer.input_weight()
    u = spike_linear(x, w_in).transpose(0, 1).contiguous()
    u_leaf = u.detach().requires_grad_()
    times["input"] = time.perf_counter() - start

    start = time.perf_counter()
    z, _, _ = alif.sequence(u_leaf, layer.neuron_parameters(), w_rec=layer.recurrent_weight())
    z_leaf = z.detach().requires_grad_()
    times["recurrence"] = time.perf_counter() - start

    start = time.perf_counter()
    current = spike_linear(z_leaf.transpose(0, 1), readout.weight_matrix())
    out = leaky_integrate(current.transpose(0, 1), readout.decay())
    loss = torch.nn.functional.cross_entropy(out.mean(0), y)
    loss.backward()
    times["readout"] = time.perf_counter() - start

    start = time.perf_counter()
    z.backward(z_leaf.grad)
    times["recurrence"] += time.perf_counter() - start

    start = time.perf_counter()
    u.backward(u_leaf.grad)
    times["input"] += time.perf_counter() - start

    start = time.perf_counter()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    times["adam"] = time.perf_counter() - start
    return times


def profile(density, repeats, serial):
    torch.manual_seed(0)
    model = SRNN(ModelConfig(n_inputs=N_IN, hidden=(N_REC,), n_outputs=N_OUT, decode="mean"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = inputs(density, "cpu")
    limit = kernel.SERIAL_STEP_LIMIT
    kernel.SERIAL_STEP_LIMIT = limit if serial else 0
    try:
        phase_times(model, x, y, optimizer)
        runs = [phase_times(model, x, y, optimizer) for _ in range(repeats)]
    finally:
        kernel.SERIAL_STEP_LIMIT = limit
    return {p: 1000 * statistics.median(r[p] for r in runs) for p in PHASES} | {
        "total": 1000 * statistics.median(sum(r.values()) for r in runs)
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--density", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {len(os.sched_getaffinity(0))} usable cores, density {args.density:.0%}, "
          f"{STEPS} steps, batch {BATCH}; ms per training step, median of {args.repeats}")
    print("| condition | threads | time loops | " + " | ".join(PHASES) + " | total |")
    print("|---|---|---|" + "---|" * (len(PHASES) + 1))
    for condition in ("idle", "loaded"):
        for threads in args.threads:
            torch.set_num_threads(threads)
            with competing_process(300) if condition == "loaded" else contextlib.nullcontext():
                for serial in (True, False) if threads > 1 else (True,):
                    row = profile(args.density, args.repeats, serial)
                    cells = " | ".join(f"{row[p]:.1f}" for p in (*PHASES, "total"))
                    print(f"| {condition} | {threads} | {'one thread' if serial or threads == 1 else 'all threads'} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
