"""Checkpoints of a training run: written with the digest of their content, verified when read.

:func:`save_checkpoint` writes a checkpoint atomically with the sha256 digest of its content inside
it; :func:`load_checkpoint` reads one and refuses it (a UserError naming the file) if it is
damaged; :func:`load_model` rebuilds the trained model of a run directory from its ``best`` or
``last`` checkpoint, checked against the epoch the run's report names. Training
(:mod:`gesture_snn.train`) writes them, evaluation (:mod:`gesture_snn.evaluate`) and every later
stage read them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gesture_snn.config import RunConfig
from gesture_snn.rundir import REPORT_NAME, Section, checkpoint_path, read_report
from gesture_snn.spec.errors import UserError
from gesture_snn.spec.files import atomic_write_bytes

__all__ = ["CHECKPOINT_FORMAT", "check_against_report", "load_checkpoint", "load_model", "resolve_checkpoint",
           "resolve_device", "save_checkpoint"]

CHECKPOINT_FORMAT = 2  # 2: with the sha256 digest of the content


def resolve_device(name: str, *, local_rank: int = 0) -> torch.device:
    """``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"`` -> a :class:`torch.device`."""
    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _digest(obj) -> str:
    """sha256 of a checkpoint's content: every tensor's dtype, shape and bytes and every other
    value, walked in a fixed order (so it does not depend on torch's file layout or on
    ``map_location``)."""
    import hashlib

    h = hashlib.sha256()

    def walk(value):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous().reshape(-1)
            h.update(f"T{t.dtype}{tuple(value.shape)}:".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            h.update(f"D{len(value)}:".encode())
            for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
                h.update(f"{type(key).__name__}:{key!r}=".encode())
                walk(value[key])
        elif isinstance(value, (list, tuple)):
            h.update(f"{type(value).__name__[0]}{len(value)}:".encode())
            for item in value:
                walk(item)
        else:
            h.update(f"{type(value).__name__}:{value!r};".encode())

    walk(obj)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, obj) -> None:
    """Write a checkpoint atomically with ``sha256``, the digest of its content, inside it."""
    import io

    buffer = io.BytesIO()
    torch.save({**obj, "sha256": _digest(obj)}, buffer)
    atomic_write_bytes(path, buffer.getvalue(), hint="the checkpoint is written at the end of every epoch")


def _non_finite(checkpoint: dict) -> str | None:
    """The name of the first model parameter or optimiser state that is NaN or infinite, or None."""
    for name, value in (checkpoint.get("model") or {}).items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return f"model parameter {name}"
    for index, state in ((checkpoint.get("optimizer") or {}).get("state") or {}).items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
                return f"optimiser state {name} of parameter {index}"
    return None


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict:
    """Read and verify a checkpoint written by :func:`train`.

    UserError naming the file if it is missing, unreadable, not a gesture-snn checkpoint, if its
    content does not match the sha256 digest stored inside it (the file was damaged after it was
    written) or if a parameter is not finite. A checkpoint of format 1 (before digests) is only
    checked for finite parameters.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist; train first (gesture-snn train --run ...)")
    damaged = ("; it cannot be used: restore it, or delete the run's checkpoints and train again "
               "(a damaged last.pt cannot be resumed)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise UserError(f"checkpoint {path} is unreadable (damaged or truncated: {str(exc).splitlines()[0][:200]})"
                        f"{damaged}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") not in (1, CHECKPOINT_FORMAT):
        raise UserError(f"{path} is not a gesture-snn checkpoint (format {CHECKPOINT_FORMAT})")
    if checkpoint["format"] >= 2:
        stored = checkpoint.pop("sha256", None)
        if stored is None or _digest(checkpoint) != stored:
            raise UserError(f"checkpoint {path} is damaged: its content does not match the sha256 digest stored in "
                            f"it{damaged}")
    bad = _non_finite(checkpoint)
    if bad is not None:
        raise UserError(f"checkpoint {path} is damaged: {bad} is not finite (NaN or infinite){damaged}")
    return checkpoint


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/best.pt``."""
    path = Path(path)
    return checkpoint_path(path, "best") if path.is_dir() else path


def check_against_report(run_dir: str | os.PathLike, which: str, checkpoint: dict) -> None:
    """UserError unless the ``which`` checkpoint is the one ``report.json`` names: ``best.pt``
    holds the report's ``best_epoch``, ``last.pt`` its ``epochs_completed`` (a run interrupted
    between its writes; ``train --resume`` repairs it). No report, no check."""
    section = read_report(run_dir).get(Section.TRAIN)
    if not isinstance(section, dict):
        return
    named = section.get("best_epoch" if which == "best" else "epochs_completed")
    if named is not None and checkpoint.get("epoch") != named:
        raise UserError(
            f"{checkpoint_path(run_dir, which)} holds epoch {checkpoint.get('epoch')} but {Path(run_dir) / REPORT_NAME} "
            f"names epoch {named} as the {'selected' if which == 'best' else 'last'} one: the training run was "
            f"interrupted between its writes; finish it with gesture-snn train --run {run_dir} --resume"
        )


def load_model(run_dir: str | os.PathLike, which: str = "best", *, device="cpu"):
    """The trained model of a run directory: ``(model in eval mode, RunConfig)`` (an
    :class:`~gesture_snn.model.SRNN` or, for a control run, its architecture).

    The checkpoint is verified (:func:`load_checkpoint`) and must be the one the run's report
    names (:func:`check_against_report`)."""
    from gesture_snn.architectures import build_model

    checkpoint = load_checkpoint(checkpoint_path(run_dir, which), map_location=device)
    check_against_report(run_dir, which, checkpoint)
    config = RunConfig.from_dict(checkpoint["config"])
    model = build_model(config.model).to(device)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return model, config
