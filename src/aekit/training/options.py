"""What a training run is asked to do: FitOptions (checked once), the learning-rate schedule, the device."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import torch

from aekit.budget import check_memory
from aekit.errors import ConfigError, check_int, check_number, unknown
from aekit.inference import threads_for_work, torch_threads  # noqa: F401 (torch_threads: the estimators' import)
from aekit.training.precision import PRECISIONS, forward_flops
from aekit.training.summaries import check_log_dir

LR_SCHEDULES = ("constant", "cosine")
WARMUP_FRACTION = 0.05


# The automatic training length: enough epochs for at least MIN_STEPS optimizer steps (at least
# MIN_EPOCHS, at most MAX_AUTO_EPOCHS), and batches small enough that an epoch of a small dataset
# has several steps. A run on 180 images with batch 128 took 2 steps an epoch and ended at the
# mean image. With 3,000 steps the scikit-learn transformer's codes of the digits reach a higher
# linear-probe accuracy than PCA's (0.959 against 0.945, three seeds); with 1,000 they did not (0.935).
MIN_STEPS = 3000
MIN_EPOCHS = 10
MAX_AUTO_EPOCHS = 500
DEFAULT_BATCH_SIZE = 128
FEW_STEPS = 200  # fewer optimizer steps than this in a whole run: a warning names the count


@dataclass
class FitOptions:
    # passes over the training rows (per stage for stacked pretraining: pretrain_epochs);
    # None: enough for MIN_STEPS optimizer steps (resolved when the data are known, then recorded)
    epochs: int | None = None
    batch_size: int | None = None  # examples per optimizer step; None: 128, smaller for small data (>= 8 steps)
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
    # torch threads while training; None: 1 for small models or a busy machine (threads_for)
    n_threads: int | None = None
    # expected fraction of outliers in the training rows: the run's detector flags the scores above
    # their (1 - contamination) quantile (PyOD's rule; detection.py)
    contamination: float = 0.1
    # a folder for TensorBoard event files (training/summaries.py; needs aekit[tensorboard]); None: no logging
    log_dir: str | None = None

    def validate(self) -> FitOptions:
        if self.epochs is not None:
            check_int("epochs", self.epochs, 1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, 1)
        if self.n_threads is not None:
            check_int("n_threads", self.n_threads, 1, 1024)
        check_int("seed", self.seed, 0, 2**63 - 1)
        if self.patience is not None:
            check_int("patience", self.patience, 1)
        check_number("lr", self.lr, 0, low_open=True)
        if self.clip_grad_norm is not None:
            check_number("clip_grad_norm", self.clip_grad_norm, 0, low_open=True)
        check_number("weight_decay", self.weight_decay, 0)
        check_number("val_fraction", self.val_fraction, 0, 1, high_open=True)
        check_number("contamination", self.contamination, 0, 0.5, low_open=True)
        if self.precision not in PRECISIONS:
            raise unknown("precision", self.precision, PRECISIONS)
        if self.lr_schedule not in LR_SCHEDULES:
            raise unknown("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.log_dir is not None:
            check_log_dir(self.log_dir)
        return self


    def resolved(self, n_train: int, gradient_steps: bool = True) -> FitOptions:
        """The options with epochs and batch_size decided for n_train training rows (what gets recorded).
        gradient_steps=False for models fitted by EM (factor analysis, PPCA): an epoch is one exact EM
        iteration over all rows, so the warning about few optimizer steps does not apply."""
        batch = self.batch_size or min(DEFAULT_BATCH_SIZE, max(16, n_train // 8))
        steps_per_epoch = math.ceil(n_train / batch)
        epochs = self.epochs or min(MAX_AUTO_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch)))
        if gradient_steps and epochs * steps_per_epoch < FEW_STEPS:
            warnings.warn(f"only {epochs * steps_per_epoch} optimizer steps ({steps_per_epoch} per epoch: {n_train} "
                          f"examples in batches of {batch}, x {epochs} epochs): the model will be undertrained; "
                          "raise epochs or lower batch_size (or leave both unset)", TrainingWarning, stacklevel=3)
        return replace(self, epochs=epochs, batch_size=batch)


# Tables (the detector's default): batches of 128 at lr 2e-3 and about 10 epochs, but at least 250 and
# at most 1,000 optimizer steps, so that a few hundred rows still get enough steps and a large table does
# not train longer than it gains (README, "Anomaly detection on your tables"). Half the steps of the
# earlier rule (batches of 64 at lr 1e-3, 500 to 2,000 steps) in 0.62 of its time for the same mean AUC
# on the 14 ADBench tables, seeds 0 and 1 (0.8777 both; batch 128 at lr 1e-3: 0.8770).
TABLE_BATCH_SIZE, TABLE_LR = 128, 2e-3
TABLE_EPOCHS, TABLE_MIN_STEPS, TABLE_MAX_STEPS = 10, 250, 1000


def table_fit_length(n_train: int) -> dict:
    """epochs, batch_size and lr for a table of n_train training rows."""
    batch = min(TABLE_BATCH_SIZE, n_train)
    per_epoch = math.ceil(n_train / batch)
    steps = min(TABLE_MAX_STEPS, max(TABLE_MIN_STEPS, TABLE_EPOCHS * per_epoch))
    return {"epochs": math.ceil(steps / per_epoch), "batch_size": batch, "lr": TABLE_LR}


class TrainingWarning(UserWarning):
    """Training will probably not give a good model (too few optimizer steps, say)."""


def threads_for(model, batch_size: int, requested: int | None) -> int:
    """Torch threads for a training run: as requested (at most the cores), else 1 for a small model's step
    (forward and backward: 3 forward passes of the batch), else the cores that are not busy (load average),
    at least 1 (inference.threads_for_work). A second thread on a busy core made small models 30-100x
    slower (benchmarks/threads.py). Sizing the step, it first checks the step's memory (check_step_memory),
    before a batch is drawn."""
    check_step_memory(model, batch_size)
    return threads_for_work(3 * forward_flops(model) * batch_size, requested)


# Adam keeps, per parameter, the weight, its gradient and two moment estimates (Kingma & Ba 2015).
TRAINING_COPIES = 4


def step_memory(config, batch_size: int) -> int:
    """Bytes of one training step, from the shapes (ModelConfig.size): the parameters with their gradients
    and Adam's moments, the buffers, and per example every layer's output kept for the backward pass
    plus the widest gradient being computed; an IWAE objective decodes iwae_samples codes per example."""
    size = config.size()
    draws = config.iwae_samples if config.objective == "iwae" else 1
    per_example = size.activations * draws + size.widest
    return 4 * (TRAINING_COPIES * size.parameters + config.buffer_count + batch_size * per_example)


def check_step_memory(model, batch_size: int) -> None:
    """ConfigError when a training step of batch_size examples would need more than the memory limit,
    naming batch_size: the option to lower (or --max-memory / AEKIT_MAX_MEMORY to raise)."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "size"):
        check_memory(f"a training step of batch_size={batch_size} examples of shape {tuple(config.input_shape)} "
                     f"(a {config.kind!r} model)", step_memory(config, batch_size))


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
