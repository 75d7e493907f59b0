"""Training speed, side by side: forward + backward + Adam samples per second of one recurrent spiking layer.

Measures, in one run on the same machine and the same random input spikes:

- ``srnn``: this project's SRNN (``gesture_snn.model.SRNN``, fused recurrence + sparse input
  projection);
- ``naive``: the same equations as a per-step PyTorch loop under autograd (``SRNN`` with
  ``implementation="stepwise"``);
- ``norse``: Norse's ``LSNNRecurrent`` (adaptive LIF, recurrent) + a linear readout;
- ``snntorch``: snnTorch's ``RLeaky`` (recurrent LIF, all-to-all) after a linear input layer,
  stepped in Python as its documentation does, + a linear readout;
- ``srnn-threaded`` (only when asked for with ``--models``): ``srnn`` with its time loops on all
  intra-op threads (``gesture_snn.neurons.kernel.SERIAL_STEP_LIMIT = 0``), the behaviour before
  the fix for oversubscription.

Every model sees 2048 inputs, 256 recurrent neurons, 11 outputs, 100 steps, batch 32, and a
cross-entropy loss on the time mean of the readout. The conditions:

- ``idle``: nothing started by the benchmark runs beside it;
- ``loaded``: one CPU-bound process (a Python busy loop, started by the benchmark, stopped
  when the condition ends and at most after ``--load-limit`` seconds) competes for the cores,
  as on a laptop with another job running;
- ``torchrun``: a 2-process ``torchrun --standalone`` on this machine with the gloo backend;
  each rank trains on its own batch of 32 and the gradients are averaged with one flat
  all-reduce per step (what DDP does, in one bucket). The rate is that of the job, 2 x 32
  samples per step.

each with 1 and 2 intra-op threads (per process). The models take turns pass by pass, so a
change in the machine's load hits all of them alike; the rate is the median of ``--repeats``
passes after a warm-up, with the spread (lowest to highest) of those passes.

The peers are optional: install them into a separate environment so that torch stays at the
project's version (``make bench-train`` does this: Norse declares torchvision, which would pull
a multi-GB CUDA torch, so they go in with ``pip install --no-deps norse snntorch nir nirtorch``).

Usage::

    python benchmarks/bench_train.py [--quick] [--density 0.02 0.10] [--threads 1 2]
        [--conditions idle loaded torchrun] [--device cpu|cuda] [--json FILE]

On ``--device cuda`` the conditions are ``idle`` and ``loaded`` (the competing process loads
the CPU that launches the kernels) and threads do not apply. The last line reads
``speedup_vs_best_peer_idle=X speedup_vs_best_peer_loaded=Y``: this SRNN's rate over the
fastest peer's in the same condition, threads and density, at the first density, the lowest
over the thread counts (idle) and over the thread counts and the loaded conditions (``loaded``,
``torchrun``). Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

N_IN, N_REC, N_OUT, STEPS, BATCH = 2048, 256, 11, 100, 32
PEERS = ("norse", "snntorch")


def project_model(implementation: str, device="cpu"):
    from gesture_snn.config import ModelConfig
    from gesture_snn.model import SRNN

    model = SRNN(ModelConfig(n_inputs=N_IN, hidden=(N_REC,), n_outputs=N_OUT, decode="mean"), implementation=implementation)
    model.to(device)

    def loss(x, y):
        return model.loss(model(x), y)

    return model, loss


def threaded_project_model(device="cpu"):
    model, loss = project_model("fused", device)
    loss.serial_step_limit = 0  # Trainer.step sets kernel.SERIAL_STEP_LIMIT around the pass
    return model, loss


def norse_model(device="cpu"):
    import norse.torch as norse

    lsnn = norse.LSNNRecurrent(N_IN, N_REC)
    readout = nn.Linear(N_REC, N_OUT)
    model = nn.ModuleList([lsnn, readout]).to(device)

    def loss(x, y):
        z, _ = lsnn(x.transpose(0, 1))  # time-major [T, B, N]
        return nn.functional.cross_entropy(readout(z).mean(0), y)

    return model, loss


def snntorch_model(device="cpu"):
    import snntorch

    fc = nn.Linear(N_IN, N_REC)
    rleaky = snntorch.RLeaky(beta=0.95, linear_features=N_REC, all_to_all=True)
    readout = nn.Linear(N_REC, N_OUT)
    model = nn.ModuleList([fc, rleaky, readout]).to(device)

    def loss(x, y):
        spk, mem = rleaky.init_rleaky()
        total = 0
        for t in range(x.shape[1]):
            spk, mem = rleaky(fc(x[:, t]), spk, mem)
            total = total + readout(spk)
        return nn.functional.cross_entropy(total / x.shape[1], y)

    return model, loss


MODELS = {
    "srnn": lambda device: project_model("fused", device),
    "naive": lambda device: project_model("stepwise", device),
    "norse": norse_model,
    "snntorch": snntorch_model,
    "srnn-threaded": threaded_project_model,
}
DEFAULT_MODELS = ("srnn", "norse", "snntorch")


class Trainer:
    """One model, its Adam optimiser and (under torchrun) the gradient all-reduce."""

    def __init__(self, name, device, distributed):
        torch.manual_seed(0)
        self.model, self.loss_fn = MODELS[name](device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=1e-3)
        self.serial_step_limit = getattr(self.loss_fn, "serial_step_limit", None)
        self.distributed = distributed
        self.device = torch.device(device)
        self.times = []

    def step(self, x, y) -> float:
        from gesture_snn.neurons import kernel

        limit = kernel.SERIAL_STEP_LIMIT
        if self.serial_step_limit is not None:
            kernel.SERIAL_STEP_LIMIT = self.serial_step_limit  # forward and backward
        try:
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            self.optimizer.zero_grad(set_to_none=True)
            self.loss_fn(x, y).backward()
            if self.distributed:
                import torch.distributed as dist
                from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

                grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
                flat = _flatten_dense_tensors(grads)
                dist.all_reduce(flat)
                flat /= dist.get_world_size()
                for p, g in zip(self.params, _unflatten_dense_tensors(flat, grads)):
                    p.grad = g
            self.optimizer.step()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - start
        finally:
            kernel.SERIAL_STEP_LIMIT = limit


def inputs(density, device, rank=0):
    gen = torch.Generator().manual_seed(1 + rank)
    x = (torch.rand(BATCH, STEPS, N_IN, generator=gen) < density).float()
    y = torch.randint(0, N_OUT, (BATCH,), generator=gen)
    return x.to(device), y.to(device)


def measure(names, densities, *, repeats, device="cpu", distributed=False, rank=0):
    """{density: {model: [seconds per pass]}}, the models taking turns pass by pass."""
    results = {}
    for density in densities:
        x, y = inputs(density, device, rank)
        trainers = {name: Trainer(name, device, distributed) for name in names}
        for trainer in trainers.values():
            trainer.step(x, y)  # warm-up
        for _ in range(repeats):
            for trainer in trainers.values():
                trainer.times.append(trainer.step(x, y))
        results[f"{density:.2f}"] = {name: t.times for name, t in trainers.items()}
    return results


@contextlib.contextmanager
def competing_process(limit_s: float):
    """One CPU-bound Python process for the duration of the block (at most ``limit_s`` s)."""
    spin = subprocess.Popen(
        [sys.executable, "-c", f"import time\nend = time.time() + {float(limit_s)}\nwhile time.time() < end: pass"]
    )
    try:
        time.sleep(0.2)  # let it start spinning
        yield
    finally:
        spin.kill()
        spin.wait()


def run_torchrun(names, densities, *, threads, repeats, timeout_s):
    """The same measurement in a 2-process gloo torchrun on this machine; rank 0's passes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.json")
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            os.path.abspath(__file__), "--worker", out, "--threads", str(threads), "--repeats", str(repeats),
            "--models", *names, "--density", *map(str, densities),
        ]  # fmt: skip
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"torchrun failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        with open(out) as f:
            return json.load(f)


def worker(args) -> int:
    """One torchrun rank: measure, rank 0 writes its passes to ``args.worker``."""
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        torch.set_num_threads(args.threads[0])
        rank = dist.get_rank()
        results = measure(args.models, args.density, repeats=args.repeats, distributed=True, rank=rank)
        if rank == 0:
            with open(args.worker, "w") as f:
                json.dump(results, f)
    finally:
        dist.destroy_process_group()
    return 0


def summarise(times, samples_per_pass):
    rates = sorted(samples_per_pass / t for t in times)
    return {"median": statistics.median(rates), "low": rates[0], "high": rates[-1], "ms": 1000 * statistics.median(times)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--density", type=float, nargs="+", default=[0.02, 0.10], help="input spike densities")
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per model and cell (median reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op threads per process")
    parser.add_argument("--conditions", nargs="+", default=["idle", "loaded", "torchrun"], choices=["idle", "loaded", "torchrun"])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="3 passes per cell, 2 %% density only")
    parser.add_argument("--load-limit", type=float, default=300.0, help="longest life of the competing process, s")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one torchrun rank
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    # a terminated benchmark still stops its competing process (the finally blocks run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.repeats, args.density = 3, args.density[:1]
    if args.device == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device")
        args.threads = [torch.get_num_threads()]
        args.conditions = [c for c in args.conditions if c != "torchrun"]

    names = []
    for name in args.models:
        try:
            MODELS[name](args.device)
            names.append(name)
        except ImportError as exc:
            print(f"{name}: not installed ({exc.name}); see the module docstring to install the peers")
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else (platform.processor() or platform.machine())
    print(
        f"torch {torch.__version__}, {args.device} ({device_name}), {len(os.sched_getaffinity(0))} usable cores, "
        f"{time.strftime('%Y-%m-%d')}; {N_IN} in -> {N_REC} rec -> {N_OUT} out, {STEPS} steps, batch {BATCH}, "
        f"forward + backward + Adam step; median of {args.repeats} passes (lowest-highest)"
    )
    results = {}  # (condition, threads, density) -> model -> summary
    speedups = {}
    header = ["condition", "threads", "density", *names, "vs best peer"]
    lines = [header, ["---"] * len(header)]
    for condition in args.conditions:
        for threads in args.threads:
            started = time.perf_counter()
            if condition == "torchrun":
                timeout = max(300.0, 120.0 * args.repeats * len(args.density))
                raw = run_torchrun(names, args.density, threads=threads, repeats=args.repeats, timeout_s=timeout)
                per_pass = 2 * BATCH
            else:
                torch.set_num_threads(threads)
                with competing_process(args.load_limit) if condition == "loaded" else contextlib.nullcontext():
                    raw = measure(names, args.density, repeats=args.repeats, device=args.device)
                per_pass = BATCH
            for density, times in raw.items():
                row = {name: summarise(t, per_pass) for name, t in times.items()}
                results[(condition, threads, density)] = row
                peers = [row[p]["median"] for p in PEERS if p in row]
                speedup = row["srnn"]["median"] / max(peers) if peers and "srnn" in row else float("nan")
                speedups[(condition, threads, density)] = speedup
                cells = [f"{row[n]['median']:.0f} ({row[n]['low']:.0f}-{row[n]['high']:.0f})" for n in names]
                lines.append([condition, str(threads), f"{float(density):.0%}", *cells, f"{speedup:.2f}x"])
                print(f"  {' '.join(lines[-1])}", file=sys.stderr, flush=True)
            print(f"  {condition}, {threads} thread(s): {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    print("samples/s, median (lowest-highest):")
    for line in lines:
        print("| " + " | ".join(line) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({" ".join(map(str, k)): v for k, v in results.items()}, f, indent=2)
    first = f"{args.density[0]:.2f}"
    idle = [s for (c, _, d), s in speedups.items() if c == "idle" and d == first]
    loaded = [s for (c, _, d), s in speedups.items() if c != "idle" and d == first]
    print(
        f"speedup_vs_best_peer_idle={min(idle) if idle else float('nan'):.2f} "
        f"speedup_vs_best_peer_loaded={min(loaded) if loaded else float('nan'):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
