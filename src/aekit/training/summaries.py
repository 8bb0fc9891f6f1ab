"""TensorBoard summaries of a training run (fit's `log_dir`): every loss term of every epoch as the
History records it, the learning rate, and for image data a grid of reconstructions of fixed examples.

Tags are History's columns with the first underscore a slash (`train_kl` -> `train/kl`,
`val_total` -> `val/total`); a pretraining stage of a stacked model prefixes its name
(`layer1/train/total`). Steps are global epochs (History's row numbers over all stages), so a
resumed run logging to the same folder continues the same curves. tensorboard (the optional extra
aekit[tensorboard]) is imported only when a log_dir is given; only rank 0 opens a writer (fit).
"""

from __future__ import annotations

import contextlib
import os

import torch

from aekit.data.validation import take
from aekit.errors import ConfigError
from aekit.inference import apply

IMAGES = 8  # fixed examples drawn: the first validation rows, else the first training rows
IMAGE_GRIDS = 5  # grids per stage: every max(1, epochs // IMAGE_GRIDS) epochs, and at the stage's last epoch


def summary_writer():
    """torch's SummaryWriter class; a ConfigError naming the extra when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError(f"log_dir needs the tensorboard package, which is not installed ({e}): "
                          "pip install aekit[tensorboard] (or train without log_dir: --log-dir none)") from None
    return SummaryWriter


def check_log_dir(log_dir) -> None:
    """A ConfigError unless log_dir is a usable folder path and tensorboard can be imported."""
    if not isinstance(log_dir, str) or not log_dir.strip():
        raise ConfigError(f"log_dir must be a folder path (str), got {log_dir!r}")
    if os.path.exists(log_dir) and not os.path.isdir(log_dir):
        raise ConfigError(f"log_dir={log_dir!r} is a file, not a folder")
    summary_writer()


def draws(epoch: int, epochs: int, done: bool) -> bool:
    """Whether epoch `epoch` of a stage of `epochs` epochs logs an image grid."""
    return done or epoch % max(1, epochs // IMAGE_GRIDS) == 0


def fixed_examples(data, input_shape: tuple) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """The examples whose reconstructions are drawn (and their labels for a conditional model), on the CPU;
    None unless the inputs are images (C, H, W). `data`: the run's TrainingData."""
    if len(input_shape) != 3:
        return None
    source, rows, labels = ((data.val_data, data.val_rows, data.val_labels) if len(data.val_rows)
                            else (data.data, data.train_rows, data.labels))
    rows = rows[:IMAGES]
    return take(source, rows).cpu(), None if labels is None else labels[rows].cpu()


def image_grid(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """(C, 2H + 3, nW + n + 1) in [0, 1]: the examples above their reconstructions, one-pixel white borders.
    Inputs outside [0, 1] are mapped by the examples' range; more than 3 channels show the first."""
    x, x_hat = x.float().cpu(), x_hat.float().cpu()
    if x.shape[1] not in (1, 3):
        x, x_hat = x[:, :1], x_hat[:, :1]
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        x, x_hat = ((t - low) / max(high - low, 1e-12) for t in (x, x_hat))
    n, c, h, w = x.shape
    grid = torch.ones(c, 2 * h + 3, n * (w + 1) + 1)
    for i in range(n):
        left = 1 + i * (w + 1)
        grid[:, 1:1 + h, left:left + w] = x[i]
        grid[:, 2 + h:2 + 2 * h, left:left + w] = x_hat[i]
    return grid.clamp(0, 1)


class Summaries:
    """One SummaryWriter for a training segment; `epoch` after every committed epoch."""

    def __init__(self, log_dir: str, first_step: int, examples=None):
        # purge_step: TensorBoard hides events of this folder at steps >= first_step written before
        # (a run restarted from scratch, or epochs logged after the last committed one).
        self.writer = summary_writer()(log_dir, purge_step=first_step)
        self.examples = examples

    def epoch(self, row: dict, step: int, lr: float | None = None, model=None, prefix: str = "") -> None:
        """Log History row `row` at global epoch `step`; with `model`, the reconstruction grid too."""
        for key, value in row.items():
            if key.startswith(("train_", "val_")):
                self.writer.add_scalar(prefix + key.replace("_", "/", 1), value, step)
        if lr is not None:
            self.writer.add_scalar(prefix + "lr", lr, step)
        self.writer.add_scalar(prefix + "seconds", row["seconds"], step)
        if model is not None and self.examples is not None:
            x, labels = self.examples
            x_hat = apply(model, x, lambda m, b, y=None: m(b, y), labels=labels, numpy=False)
            self.writer.add_image("reconstructions", image_grid(x, x_hat), step)
        self.writer.flush()  # TensorBoard shows each epoch as it ends

    def close(self) -> None:
        self.writer.close()


@contextlib.contextmanager
def opened(log_dir: str | None, first_step: int, examples=None):
    """Summaries writing to log_dir (None: no summaries, None yielded), closed however the block ends."""
    if log_dir is None:
        yield None
        return
    summaries = Summaries(log_dir, first_step, examples)
    try:
        yield summaries
    finally:
        summaries.close()
