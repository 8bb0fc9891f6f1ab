"""What a training run is asked to do: FitOptions (checked once), the learning-rate schedule, the device."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError, check_int, check_number, unknown
from .precision import PRECISIONS

LR_SCHEDULES = ("constant", "cosine")
WARMUP_FRACTION = 0.05


@dataclass
class FitOptions:
    epochs: int = 10  # passes over the training rows (per stage for stacked pretraining: pretrain_epochs)
    batch_size: int = 128  # examples per optimizer step
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # validation split, shuffling, corruption noise and VAE sampling
    val_fraction: float = 0.1  # held out when x_val is not given (0 = no validation)
    patience: int | None = None  # early stopping: epochs without validation improvement; restores the best weights
    clip_grad_norm: float | None = None  # clip the global gradient norm to this value
    weight_decay: float = 0.0  # Adam's L2 weight decay
    # "auto": bf16 autocast where the device multiplies bf16 fast and the model is big enough
    # to gain (precision.resolve); "fp32"; "bf16"; "fp16" (CUDA only, with loss scaling).
    precision: str = "auto"
    # "constant", or "cosine": linear warm-up over the first 5% of steps, then cosine decay
    # to zero (Loshchilov & Hutter, SGDR, 2017); lets a larger lr and batch train fast and end smooth.
    lr_schedule: str = "constant"

    def validate(self) -> FitOptions:
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("seed", self.seed, 0, 2**63 - 1)
        if self.patience is not None:
            check_int("patience", self.patience, 1)
        check_number("lr", self.lr, 0, low_open=True)
        if self.clip_grad_norm is not None:
            check_number("clip_grad_norm", self.clip_grad_norm, 0, low_open=True)
        check_number("weight_decay", self.weight_decay, 0)
        check_number("val_fraction", self.val_fraction, 0, 1, high_open=True)
        if self.precision not in PRECISIONS:
            raise unknown("precision", self.precision, PRECISIONS)
        if self.lr_schedule not in LR_SCHEDULES:
            raise unknown("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        return self


def learning_rate(opts: FitOptions, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based) of a stage of `total_steps` steps."""
    if opts.lr_schedule == "constant":
        return opts.lr
    warmup = max(1, round(WARMUP_FRACTION * total_steps))
    if step < warmup:
        return opts.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return opts.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def resolve_device(device) -> torch.device:
    """A torch.device from 'auto'/None (best available), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device={device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for, but no CUDA device is available")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError("device='mps' was asked for, but MPS is not available")
    return dev


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
