"""How the fused SRNN's training step grows: time per batch against T, input density and width.

The model of ``bench_train.py`` (2048 in -> 256 ALIF -> 11, 100 steps, batch 32, 2 % density,
forward + backward + Adam), one factor varied at a time:

- steps T in 50, 100, 200, 400;
- input density 1, 2, 4, 10, 20 % (input events per batch = density x 2048 x T x 32);
- recurrent width 128, 256, 512, 1024.

Each point is the median of ``--repeats`` passes after a warm-up, on one intra-op thread by
default (the least noisy on a shared machine). The exponent ``k`` of ``time ~ x^k`` is the
least-squares slope in log-log; for density, the slope of the input projection alone (forward +
weight gradient of ``spike_linear``) below ``SPARSE_DENSITY_LIMIT`` (5 %, the CSR path) is
given too, the part that should follow the events; above it the product is dense.

Usage::

    python benchmarks/bench_scaling.py [--quick] [--threads 1] [--plot docs/scaling.png] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from gesture_snn.config import ModelConfig
from gesture_snn.model import SRNN
from gesture_snn.synapse import SPARSE_DENSITY_LIMIT, spike_linear

BASE = dict(steps=100, density=0.02, width=256)
N_IN, N_OUT, BATCH = 2048, 11, 32
AXES = {"steps": [50, 100, 200, 400], "density": [0.01, 0.02, 0.04, 0.10, 0.20], "width": [128, 256, 512, 1024]}


def time_point(steps, density, width, repeats):
    """(seconds per training step, seconds of the input projection forward + backward)."""
    torch.manual_seed(0)
    model = SRNN(ModelConfig(n_inputs=N_IN, hidden=(width,), n_outputs=N_OUT, decode="mean"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(BATCH, steps, N_IN, generator=gen) < density).float()
    y = torch.randint(0, N_OUT, (BATCH,), generator=gen)
    w = torch.randn(width, N_IN, requires_grad=True)
    upstream = torch.randn(BATCH, steps, width)
    total, projection = [], []
    for i in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(x), y).backward()
        optimizer.step()
        middle = time.perf_counter()
        spike_linear(x, w).backward(upstream)
        end = time.perf_counter()
        if i:
            total.append(middle - start)
            projection.append(end - middle)
    return statistics.median(total), statistics.median(projection)


def slope(xs, ys):
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    labels = {"steps": "steps T", "density": "input density", "width": "recurrent width"}
    for ax, (axis, points) in zip(axes, results.items()):
        xs = [p["x"] for p in points]
        ax.loglog(xs, [1000 * p["total"] for p in points], "o-", label=f"training step (k={slope(xs, [p['total'] for p in points]):.2f})")
        if axis == "density":
            ys = [1000 * p["projection"] for p in points]
            ax.loglog(xs, ys, "s--", label=f"input projection (k={slope(xs, ys):.2f})")
        ax.set_xlabel(labels[axis])
        ax.set_ylabel("ms per batch of 32")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one timed pass per point, fewer points")
    parser.add_argument("--plot", help="write a log-log plot (PNG) here")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    axes = AXES
    if args.quick:
        args.repeats = 1
        axes = {"steps": [50, 100, 200], "density": [0.01, 0.04, 0.20], "width": [128, 256, 512]}
    print(f"torch {torch.__version__}, {args.threads} thread(s); base point {BASE}, batch {BATCH}; ms per batch, median of {args.repeats}")
    results = {}
    for axis, values in axes.items():
        points = []
        for value in values:
            point = dict(BASE, **{axis: value})
            total, projection = time_point(point["steps"], point["density"], point["width"], args.repeats)
            points.append({"x": value, "total": total, "projection": projection})
            print(f"{axis:>8} {value:>6}: {1000 * total:8.1f} ms per batch (input projection {1000 * projection:.1f} ms)", flush=True)
        results[axis] = points
    exponents = {axis: slope([p["x"] for p in pts], [p["total"] for p in pts]) for axis, pts in results.items()}
    sparse = [p for p in results["density"] if p["x"] < SPARSE_DENSITY_LIMIT]  # the CSR path
    if len(sparse) > 1:
        exponents["density_input_projection_csr"] = slope([p["x"] for p in sparse], [p["projection"] for p in sparse])
    if args.plot:
        plot(results, args.plot)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "exponents": exponents}, f, indent=2)
    print(" ".join(f"exponent_{k}={v:.2f}" for k, v in exponents.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
