"""Training speed, side by side: forward + backward samples per second of one recurrent spiking layer.

Measures, in one process on the same machine and the same random input spikes:

- ``srnn``: this project's SRNN (``gesture_snn.model.SRNN``, fused recurrence + sparse input
  projection);
- ``naive``: the same equations as a per-step PyTorch loop under autograd (``SRNN`` with
  ``implementation="stepwise"``);
- ``norse``: Norse's ``LSNNRecurrent`` (adaptive LIF, recurrent) + a linear readout;
- ``snntorch``: snnTorch's ``RLeaky`` (recurrent LIF, all-to-all) after a linear input layer,
  stepped in Python as its documentation does, + a linear readout.

Every model sees 2048 inputs, 256 recurrent neurons, 11 outputs, 100 steps, batch 32, and a
cross-entropy loss on the time mean of the readout. The peers are optional: install them into a
separate environment so that torch stays at the project's version (``make bench-train`` does
this: Norse declares torchvision, which would pull a multi-GB CUDA torch, so they go in with
``pip install --no-deps norse snntorch nir nirtorch``).

Usage::

    python benchmarks/bench_train.py [--density 0.02 0.10] [--repeats 5] [--json FILE]

The last line reads ``speedup_vs_naive=X speedup_vs_best_peer=Y`` for the first density.
Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn

N_IN, N_REC, N_OUT, STEPS, BATCH = 2048, 256, 11, 100, 32


def project_model(implementation: str) -> nn.Module:
    from gesture_snn.config import ModelConfig
    from gesture_snn.model import SRNN

    model = SRNN(ModelConfig(n_inputs=N_IN, hidden=(N_REC,), n_outputs=N_OUT, decode="mean"), implementation=implementation)

    def loss(x, y):
        out = model(x)
        return model.loss(out, y)

    return model, loss


def norse_model():
    import norse.torch as norse

    lsnn = norse.LSNNRecurrent(N_IN, N_REC)
    readout = nn.Linear(N_REC, N_OUT)
    model = nn.ModuleList([lsnn, readout])

    def loss(x, y):
        z, _ = lsnn(x.transpose(0, 1))  # time-major [T, B, N]
        return nn.functional.cross_entropy(readout(z).mean(0), y)

    return model, loss


def snntorch_model():
    import snntorch

    fc = nn.Linear(N_IN, N_REC)
    rleaky = snntorch.RLeaky(beta=0.95, linear_features=N_REC, all_to_all=True)
    readout = nn.Linear(N_REC, N_OUT)
    model = nn.ModuleList([fc, rleaky, readout])

    def loss(x, y):
        spk, mem = rleaky.init_rleaky()
        total = 0
        for t in range(x.shape[1]):
            spk, mem = rleaky(fc(x[:, t]), spk, mem)
            total = total + readout(spk)
        return nn.functional.cross_entropy(total / x.shape[1], y)

    return model, loss


MODELS = {
    "srnn": lambda: project_model("fused"),
    "naive": lambda: project_model("stepwise"),
    "norse": norse_model,
    "snntorch": snntorch_model,
}


def time_model(build, x, y, *, repeats: int) -> float:
    """Median seconds of one forward + backward + optimizer step over ``repeats`` (after one warm-up)."""
    torch.manual_seed(0)
    model, loss_fn = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(x, y)
        loss.backward()
        optimizer.step()
        if i:  # the first pass is the warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--density", type=float, nargs="+", default=[0.02, 0.10], help="input spike densities")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per model (median reported)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    available = {}
    for name in args.models:
        try:
            build = MODELS[name]
            build()
            available[name] = build
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); see the module docstring to install the peers")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
        f"{N_IN} in -> {N_REC} rec -> {N_OUT} out, {STEPS} steps, batch {BATCH}, forward + backward + Adam step"
    )
    results = {}
    for density in args.density:
        gen = torch.Generator().manual_seed(1)
        x = (torch.rand(BATCH, STEPS, N_IN, generator=gen) < density).float()
        y = torch.randint(0, N_OUT, (BATCH,), generator=gen)
        row = {}
        for name, build in available.items():
            seconds = time_model(build, x, y, repeats=args.repeats)
            row[name] = BATCH / seconds
            print(f"density {density:.2f}  {name:<9} {row[name]:8.1f} samples/s  ({seconds * 1000:.0f} ms per batch)")
        results[f"{density:.2f}"] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    first = results[f"{args.density[0]:.2f}"]
    peers = [first[p] for p in ("norse", "snntorch") if p in first]
    speedup_naive = first["srnn"] / first["naive"] if "naive" in first and "srnn" in first else float("nan")
    speedup_peer = first["srnn"] / max(peers) if peers and "srnn" in first else float("nan")
    print(f"speedup_vs_naive={speedup_naive:.2f} speedup_vs_best_peer={speedup_peer:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
