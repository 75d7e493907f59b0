"""Training: one process or data-parallel with ``torchrun``, resumable, crash-safe.

:func:`train` runs a :class:`~gesture_snn.config.RunConfig` into a run directory::

    RUNDIR/config.json             the configuration (RunConfig.to_dict)
    RUNDIR/metrics.jsonl           one JSON object per finished epoch
    RUNDIR/checkpoints/last.pt     model, optimiser, scheduler, epoch, config, metrics
    RUNDIR/checkpoints/best.pt     the same for the epoch with the best validation accuracy so far
    RUNDIR/report.json             section "train" (the names are gesture_snn.rundir's)

Model selection never looks at the test users. The training split's users in
``TrainConfig.val_users`` are held out as the validation split (DVS128 Gesture has none); every
epoch is evaluated on them, and the selected epoch is the one with the highest validation
accuracy among the candidates (the QAT epochs when QAT is on), ties going to the lower
validation loss, then to the earlier epoch. ``TrainConfig.patience`` stops early on the same
measure. The test split is evaluated once, after the last epoch: the selected checkpoint (the
``test`` entry of the report, the number to quote) and, separately, the last one
(``test_last``).

Every file is replaced atomically at the end of each epoch, in the order ``last.pt``,
``best.pt`` (when the epoch is the new best), ``metrics.jsonl``, ``report.json``;
``metrics.jsonl`` and the report are rewritten from the checkpoint's metrics, so a run killed at
any moment and resumed (``resume=True``) has each epoch exactly once, and after the resume
``best.pt``, ``last.pt``, ``metrics.jsonl`` and ``report.json`` agree (docs/reliability.md).
Each checkpoint holds the sha256 digest of its content and is verified when it is loaded. The order of the training data is a function of
(seed, epoch) only and nothing else is random, so a resumed run ends with the same parameters
as an uninterrupted one.

Quantization-aware training (``ModelConfig.qat_weight_bits``) is switched on for the last
``TrainConfig.qat_epochs`` epochs (all epochs if None) through :attr:`SRNN.qat_weight_bits`;
only those epochs are candidates for the best checkpoint, so ``best.pt`` always holds a network
trained with the quantized weights. ``TrainConfig.init_from`` starts from another run's weights.

Each epoch's ``metrics.jsonl`` line records the epoch's peak memory (``peak_memory_bytes``, how
it was measured in ``peak_memory_measure``): on CUDA the peak of allocated tensor memory
(``torch.cuda.max_memory_allocated``, reset at the start of the epoch); on the CPU the highest
number of bytes the C heap has handed out and not taken back (glibc ``mallinfo2``: what tensors
and everything else allocated with ``malloc`` occupy), sampled after every training batch and
after the evaluation; without glibc, the highest resident set size (``/proc/self/statm``) at
those points; None if neither can be read.

Data-parallel: launched by ``torchrun`` (environment RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), each process trains on its :class:`DistributedSampler` share of every
global batch (``batch_size / world_size`` samples) through
:class:`~torch.nn.parallel.DistributedDataParallel` (gloo on the CPU, nccl on CUDA); only rank 0
evaluates and writes files.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import time
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gesture_snn import evaluate as evaluation
from gesture_snn.checkpoints import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    load_model,
    resolve_checkpoint,
    resolve_device,
    save_checkpoint,
)
from gesture_snn.config import RunConfig
from gesture_snn.energy import NetworkShape
from gesture_snn.rundir import CHECKPOINT_DIR, CONFIG_NAME, METRICS_NAME, Section, checkpoint_name, checkpoint_path, update_report
from gesture_snn.spec.errors import UserError
from gesture_snn.spec.files import atomic_write, remove_stale_temps
from gesture_snn.stats import accuracy_summary

__all__ = ["Distributed", "random_shift", "split_validation", "train"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel job (``rank 0 of 1`` without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Distributed":
        """Read ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` as ``torchrun`` sets them."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Sum a list of numbers over all processes."""
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()


def _repair_best(run_dir: Path, last_checkpoint: dict, device) -> None:
    """On resume: make ``best.pt`` the epoch ``last.pt`` names as the best.

    ``last.pt`` is written before ``best.pt`` and a new best epoch is always the epoch just
    finished, so a kill between the two leaves a ``last.pt`` whose best epoch is its own epoch:
    ``best.pt`` is rewritten from it. Anything else is damage (UserError).
    """
    named = last_checkpoint["best"]["epoch"]
    if not named:
        return
    best_path = checkpoint_path(run_dir, "best")
    if best_path.exists():
        try:
            held = load_checkpoint(best_path, map_location=device)["epoch"]
        except UserError:
            held = None
        if held == named:
            return
    if named != last_checkpoint["epoch"]:
        raise UserError(f"{best_path} does not hold epoch {named}, the best epoch that {checkpoint_path(run_dir)} "
                        f"names, and it cannot be rebuilt (only the last epoch's state is kept); train again")
    save_checkpoint(best_path, last_checkpoint)


def _load_split(config: RunConfig, *, train: bool, progress: bool):
    from gesture_snn.framing import load_frames

    return load_frames(config.data, train=train, config=config.frames, progress=progress)


def split_validation(train_set, val_users, *, test_users=()):
    """``(fit, validation)``: the training split without and with the users ``val_users``.

    UserError if a validation user is a test user, is not in the training split, or if either
    part would be empty.
    """
    val_users = tuple(int(u) for u in val_users)
    present = sorted(set(int(u) for u in train_set.users))
    overlap = sorted(set(val_users) & set(int(u) for u in test_users))
    if overlap:
        raise UserError(f"val_users {list(val_users)} include test users {overlap}: validation users must be "
                        f"training users, never test users")
    missing = sorted(set(val_users) - set(present))
    if missing:
        raise UserError(f"val_users: users {missing} are not in the training split (its users: {present}); "
                        f"set --val-users to some of them")
    held = np.isin(train_set.users, val_users)
    if held.all():
        raise UserError(f"val_users {list(val_users)} hold out every training user; nothing would be left to train on")
    return train_set.subset(~held), train_set.subset(held)


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    atomic_write(run_dir / METRICS_NAME, lambda f: f.writelines(json.dumps(r) + "\n" for r in history))


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    train_set=None,
    test_set=None,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> dict:
    """Train ``config`` into ``run_dir``; returns the ``train`` section of ``report.json``.

    Parameters
    ----------
    device:
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    resume:
        Continue from ``RUNDIR/checkpoints/last.pt`` (its configuration must equal ``config``
        except for ``train.epochs`` and ``data``). Without it, a directory that already holds a checkpoint is
        refused.
    progress:
        Progress bar and one summary line per epoch (rank 0).
    train_set, test_set:
        :class:`~gesture_snn.framing.FrameSet` s to use instead of loading ``config.data``; the
        validation users (``config.train.val_users``) are taken out of ``train_set``.
    on_epoch_end:
        Called with each epoch's metrics after its files are written.
    """
    from gesture_snn.architectures import build_model
    from gesture_snn.data import CLASSES
    from gesture_snn.framing import make_loader

    run_dir = Path(run_dir)
    dist = Distributed.from_env()
    dev = resolve_device(device, local_rank=dist.local_rank)
    if dist.world_size < 1 or not 0 <= dist.rank < dist.world_size:
        raise UserError(f"invalid RANK {dist.rank} / WORLD_SIZE {dist.world_size} in the environment")
    cfg = config.train
    if cfg.batch_size % dist.world_size:
        raise UserError(
            f"batch size {cfg.batch_size} must be a multiple of the number of processes "
            f"({dist.world_size}): each process gets an equal share of every batch"
        )
    started_group = False
    if dist.enabled and not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        started_group = True
    try:
        last = checkpoint_path(run_dir, "last")
        checkpoint = None
        if resume:
            checkpoint = load_checkpoint(last, map_location=dev)
            saved = RunConfig.from_dict(checkpoint["config"])
            if saved.replace(train={"epochs": cfg.epochs}, data=config.data) != config:
                raise UserError(
                    f"--resume: the configuration differs from the one {run_dir} was trained with "
                    f"(only the number of epochs and the data root may change); see {run_dir / CONFIG_NAME}"
                )
            if dist.is_main:
                _repair_best(run_dir, checkpoint, dev)
        elif last.exists():
            raise UserError(
                f"{run_dir} already holds a training run; pass --resume to continue it or choose "
                f"another --run directory"
            )

        # data (rank 0 builds the frame cache, the others then read it)
        if train_set is None or test_set is None:
            if not dist.is_main:
                dist.barrier()
            if train_set is None:
                train_set = _load_split(config, train=True, progress=progress and dist.is_main)
            if test_set is None:
                test_set = _load_split(config, train=False, progress=progress and dist.is_main)
            if dist.is_main:
                dist.barrier()
        for name, frameset in (("training", train_set), ("test", test_set)):
            if frameset.config != config.frames:
                raise UserError(f"the {name} frames were made with {frameset.config}, the run needs {config.frames}")
            if len(frameset) == 0:
                raise UserError(f"the {name} split is empty")
        fit_set, val_set = split_validation(train_set, cfg.val_users, test_users=test_set.users)
        sampler = torch.utils.data.distributed.DistributedSampler(
            range(len(fit_set)), num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=cfg.seed
        )
        train_loader = make_loader(fit_set, batch_size=cfg.batch_size // dist.world_size, shuffle=False, sampler=sampler)
        val_loader = make_loader(val_set, batch_size=cfg.batch_size, shuffle=False)

        # model, optimiser, schedule
        torch.manual_seed(cfg.seed)
        model = build_model(config.model).to(dev)
        if checkpoint is None and cfg.init_from is not None:
            _load_weights(model, resolve_checkpoint(cfg.init_from), dev)
        optimizer = torch.optim.AdamW(
            [
                {"params": model.weight_parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                {"params": model.time_constant_parameters(), "lr": cfg.lr_tau, "weight_decay": 0.0},
            ]
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cfg.lr_factor)
        history: list[dict] = []
        best = {"epoch": 0, "val_accuracy": -1.0, "val_loss": math.inf}
        stopped_early = None
        if checkpoint is not None:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            history = checkpoint["metrics"]
            best = checkpoint["best"]
            stopped_early = checkpoint.get("stopped_early")
        start_epoch = len(history) if stopped_early is None else cfg.epochs
        trained = torch.nn.parallel.DistributedDataParallel(model) if dist.enabled else model
        shape = NetworkShape.of(config.model)
        memory = _PeakMemory(dev)
        split = _split_record(fit_set, val_set, test_set)

        if dist.is_main:
            for folder in (run_dir, run_dir / CHECKPOINT_DIR):  # temporary files of a killed run
                remove_stale_temps(folder)
            config.save(run_dir / CONFIG_NAME)
            _write_metrics(run_dir, history)  # drops lines of an epoch whose checkpoint never landed
            if checkpoint is not None:  # the report follows last.pt from here on (see docs/reliability.md)
                update_report(run_dir, Section.TRAIN, _report(config, history, best, dist, dev, split, stopped_early))

        for epoch in range(start_epoch, cfg.epochs):
            started = time.perf_counter()
            memory.reset()
            quantized = epoch >= cfg.qat_start()
            model.qat_weight_bits = config.model.qat_weight_bits if quantized else None
            lrs = [group["lr"] for group in optimizer.param_groups]
            sampler.set_epoch(epoch)
            augment = None
            if cfg.shift:
                generator = torch.Generator().manual_seed(_mix(cfg.seed, epoch, dist.rank))
                augment = partial(random_shift, shift=cfg.shift, size=config.frames.size, generator=generator)
            stats = _train_epoch(
                trained,
                model,
                train_loader,
                optimizer,
                augment=augment,
                grad_clip=cfg.grad_clip,
                rate_penalty=cfg.rate_penalty,
                device=dev,
                dist=dist,
                memory=memory,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                progress=progress,
            )
            scheduler.step()
            record = {"epoch": epoch + 1, **stats, "lr": lrs[0], "lr_tau": lrs[1],
                      "qat_weight_bits": model.qat_weight_bits}
            if dist.is_main:
                model.eval()
                result = evaluation.evaluate(evaluation.float_predictor(model, device=dev), val_loader, shape=shape, n_classes=len(CLASSES))
                record.update(val_loss=result.loss, val_accuracy=result.accuracy, val_firing_rates=result.firing_rates)
                record["seconds"] = time.perf_counter() - started
                record.update(peak_memory_bytes=memory.peak(), peak_memory_measure=memory.measure)
                history.append(record)
                if quantized and _better(result.accuracy, result.loss, best):
                    best = {"epoch": epoch + 1, "val_accuracy": result.accuracy, "val_loss": result.loss}
                if cfg.patience is not None and best["epoch"] and epoch + 1 - best["epoch"] >= cfg.patience:
                    stopped_early = epoch + 1
                state = {
                    "format": CHECKPOINT_FORMAT,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "config": config.to_dict(),
                    "metrics": history,
                    "best": best,
                    "stopped_early": stopped_early,
                }
                # last.pt first: a kill before best.pt lands leaves a last.pt naming its own epoch as the best,
                # which --resume copies to best.pt; best.pt is never ahead of last.pt (docs/reliability.md)
                save_checkpoint(last, state)
                if best["epoch"] == epoch + 1:
                    save_checkpoint(checkpoint_path(run_dir, "best"), state)
                _write_metrics(run_dir, history)
                update_report(run_dir, Section.TRAIN, _report(config, history, best, dist, dev, split, stopped_early))
                if progress:
                    _print_epoch(record, cfg.epochs)
            else:
                history.append(record)
            if dist.enabled:  # rank 0 decides about early stopping; the others follow
                stopped_early = int(dist.sum([float(stopped_early or 0) if dist.is_main else 0.0], dev)[0]) or None
            dist.barrier()
            if on_epoch_end is not None:
                on_epoch_end(record)
            if stopped_early is not None:
                break

        # the test split, once, after training: the selected checkpoint and the last one
        report = _report(config, history, best, dist, dev, split, stopped_early)
        if dist.is_main:
            if best["epoch"] == 0:
                raise UserError(f"{run_dir}: no epoch could be selected (no QAT epoch was trained)")
            test_loader = make_loader(test_set, batch_size=cfg.batch_size, shuffle=False)
            # load_model checks each checkpoint against the report: best.pt holds epoch best["epoch"],
            # last.pt epoch len(history)
            selected = evaluation.float_predictor(load_model(run_dir, "best", device=dev)[0], device=dev)
            final = evaluation.float_predictor(load_model(run_dir, "last", device=dev)[0], device=dev)
            for key, which, epoch, predict, frameset, loader in (
                ("val", "best", best["epoch"], selected, val_set, val_loader),
                ("test", "best", best["epoch"], selected, test_set, test_loader),
                ("test_last", "last", len(history), final, test_set, test_loader),
            ):
                result = evaluation.evaluate(predict, loader, shape=shape, n_classes=len(CLASSES))
                report[key] = _test_record(result, frameset, which, epoch, bin_ms=config.frames.bin_ms)
            report["test_accuracy"] = report["test"]["accuracy"]
            report["final_test_accuracy"] = report["test_last"]["accuracy"]
            update_report(run_dir, Section.TRAIN, report)
        dist.barrier()
        return report
    finally:
        if started_group:
            torch.distributed.destroy_process_group()


def _better(accuracy: float, loss: float | None, best: dict) -> bool:
    """Whether an epoch beats ``best``: higher validation accuracy, then lower validation loss."""
    if accuracy != best["val_accuracy"]:
        return accuracy > best["val_accuracy"]
    return loss is not None and loss < best["val_loss"]


def _split_record(fit_set, val_set, test_set) -> dict:
    def users(frameset):
        return sorted(int(u) for u in set(frameset.users.tolist()))

    return {
        "train_users": users(fit_set), "val_users": users(val_set), "test_users": users(test_set),
        "n_train": len(fit_set), "n_val": len(val_set), "n_test": len(test_set),
    }


def _test_record(result, test_set, which: str, epoch: int, *, bin_ms: float) -> dict:
    """One evaluation of a finished run (``val``, ``test``, ``test_last`` in the report)."""
    correct = result.predictions == result.labels
    per_user = {}
    for user in sorted(set(test_set.users.tolist())):
        mask = test_set.users == user
        per_user[str(user)] = float(correct[mask].mean())
    summary = accuracy_summary(correct, test_set.users)
    return {
        "checkpoint": checkpoint_name(which),
        "epoch": epoch,
        "accuracy": result.accuracy,
        "ci95": summary["ci95"],
        "interval": summary["interval"],
        "loss": result.loss,
        "n_samples": result.n_samples,
        "per_user": per_user,
        "firing_rates": result.firing_rates,
        "firing_rates_hz": [r * 1000.0 / bin_ms for r in result.firing_rates],
        "sops_per_sample": result.sops_per_sample,
        "input_density": result.input_density,
        "activity": {"n_steps": result.n_steps, "input_events_per_sample": result.input_events / max(result.n_samples, 1),
                     "spikes_per_sample": [s / max(result.n_samples, 1) for s in result.layer_spikes]},
        "predictions": result.predictions.tolist(),
        "labels": result.labels.tolist(),
        "users": test_set.users.tolist(),
    }


def _load_weights(model, path: Path, device: torch.device) -> None:
    """Start ``model`` from the weights of the checkpoint ``path`` (``TrainConfig.init_from``)."""
    source = load_checkpoint(path, map_location=device)
    try:
        model.load_state_dict(source["model"])
    except RuntimeError as exc:
        raise UserError(
            f"init_from: the network in {path} does not fit this run's model (shape or neuron model differ): "
            f"{str(exc).splitlines()[0]}"
        ) from None


class _PeakMemory:
    """Peak memory of one epoch (see the module docstring): :meth:`reset` at its start,
    :meth:`sample` after each batch, :meth:`peak` in bytes (None where it cannot be measured)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        if self.cuda:
            self.measure, self._read = "cuda_max_memory_allocated", None
        elif _heap_in_use_bytes() is not None:
            self.measure, self._read = "max_heap_in_use_after_batches", _heap_in_use_bytes
        else:
            self.measure, self._read = "max_rss_after_batches", _resident_set_bytes
        self._peak: int | None = None

    def reset(self) -> None:
        self._peak = None
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def sample(self) -> None:
        if not self.cuda:
            now = self._read()
            if now is not None:
                self._peak = now if self._peak is None else max(self._peak, now)

    def peak(self) -> int | None:
        if self.cuda:
            return int(torch.cuda.max_memory_allocated(self.device))
        self.sample()
        return self._peak


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]


@cache
def _mallinfo2():
    """glibc's ``mallinfo2`` (2.33 and later), or None."""
    try:
        function = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return None
    function.restype = _MallInfo2
    return function


def _heap_in_use_bytes() -> int | None:
    """Bytes of the C heap in use now: ``mallinfo2()``'s ``uordblks`` (allocated from the arenas)
    + ``hblkhd`` (allocated with mmap); None without glibc's ``mallinfo2``."""
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return None
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def _resident_set_bytes() -> int | None:
    """This process's resident set size now (Linux ``/proc/self/statm``), None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _mix(*numbers: int) -> int:
    """A 63-bit seed from several integers (SeedSequence mixing)."""
    import numpy as np

    return int(np.random.SeedSequence(list(numbers)).generate_state(1, np.uint64)[0] >> 1)


def random_shift(x: torch.Tensor, *, shift: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Move each sample of ``x`` ``[B, T, 2 * size * size]`` by random integer offsets in
    ``[-shift, shift]`` pixels along x and y, filling with 0 (the augmentation of ``--shift``)."""
    batch, steps, _ = x.shape
    frames = torch.nn.functional.pad(x.reshape(batch, steps, 2, size, size), (shift,) * 4)
    offsets = torch.randint(0, 2 * shift + 1, (batch, 2), generator=generator).tolist()
    moved = torch.stack([frames[i, :, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets)])
    return moved.reshape(batch, steps, -1)


def _train_epoch(
    trained, model, loader, optimizer, *, augment, grad_clip, rate_penalty, device, dist: Distributed, memory: _PeakMemory,
    desc, progress
) -> dict:
    from tqdm.auto import tqdm

    trained.train()
    n_layers = len(model.layers)
    loss_sum = correct = count = 0.0
    spikes = [0.0] * n_layers
    neuron_steps = [0.0] * n_layers
    grad_norm_sum = batches = 0.0
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not (progress and dist.is_main))
    for x, y in bar:
        if augment is not None:
            x = augment(x)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = trained(x)
        loss = model.loss(out, y)
        if rate_penalty and out.spikes:  # firing-rate regularisation: the mean rate over the spiking layers
            loss = loss + rate_penalty * torch.stack([s.mean() for s in out.spikes]).mean()
        if not torch.isfinite(loss):
            raise UserError(f"training diverged: the loss is {float(loss)}; lower --lr or --lr-tau")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else math.inf)
        optimizer.step()
        model.constrain_()
        with torch.no_grad():
            n = len(y)
            loss_sum += float(loss) * n
            correct += float((model.scores(out).argmax(1) == y).sum())
            count += n
            for i, s in enumerate(out.spikes):
                spikes[i] += float(s.sum())
                neuron_steps[i] += s.numel()
            grad_norm_sum += float(grad_norm)
            batches += 1
        memory.sample()
        bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.3f}")
    totals = dist.sum([loss_sum, correct, count, grad_norm_sum, batches, *spikes, *neuron_steps], device)
    loss_sum, correct, count, grad_norm_sum, batches = totals[:5]
    spikes, neuron_steps = totals[5 : 5 + n_layers], totals[5 + n_layers :]
    return {
        "train_loss": loss_sum / count,
        "train_accuracy": correct / count,
        "firing_rates": [s / max(n, 1) for s, n in zip(spikes, neuron_steps)],
        "grad_norm": grad_norm_sum / max(batches, 1),
    }


def _print_epoch(record: dict, epochs: int) -> None:
    from tqdm.auto import tqdm

    rates = "/".join(f"{r:.3f}" for r in record["firing_rates"])
    qat = f"  QAT {record['qat_weight_bits']} bit" if record.get("qat_weight_bits") is not None else ""
    tqdm.write(
        f"epoch {record['epoch']:>3}/{epochs}  train loss {record['train_loss']:.3f} "
        f"acc {100 * record['train_accuracy']:5.1f}%  val loss {record['val_loss']:.3f} "
        f"acc {100 * record['val_accuracy']:5.1f}%  rate {rates}  lr {record['lr']:.2e}{qat}  "
        f"{record['seconds']:.1f} s"
    )


def _report(config: RunConfig, history: list[dict], best: dict, dist: Distributed, device: torch.device,
            split: dict, stopped_early: int | None) -> dict:
    final = history[-1] if history else {}
    best_record = history[best["epoch"] - 1] if best["epoch"] else {}
    cfg = config.train
    candidates = f"epochs {cfg.qat_start() + 1}-{cfg.epochs} (quantization-aware)" if (
        config.model.qat_weight_bits is not None and cfg.qat_start() > 0) else "every epoch"
    return {
        "config": config.to_dict(),
        "epochs": cfg.epochs,
        "epochs_completed": len(history),
        "stopped_early": stopped_early,
        "checkpoint": checkpoint_name("best"),
        "split": split,
        "selection": {
            "metric": "validation accuracy",
            "chosen_epoch": best["epoch"],
            "why": f"highest validation accuracy ({best_record.get('val_accuracy', math.nan):.4f}) among "
                   f"{candidates}; ties to the lower validation loss, then the earlier epoch. The test users were "
                   "not looked at.",
            "candidates": candidates,
            "patience": cfg.patience,
        },
        "best_epoch": best["epoch"],
        "val_accuracy": best_record.get("val_accuracy", math.nan),
        "val_accuracy_per_epoch": [r.get("val_accuracy") for r in history],
        "final_val_accuracy": final.get("val_accuracy", math.nan),
        "final_train_accuracy": final.get("train_accuracy", math.nan),
        "firing_rates": best_record.get("val_firing_rates"),
        "train_seconds": sum(r.get("seconds", 0.0) for r in history),
        "world_size": dist.world_size,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
