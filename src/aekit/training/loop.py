"""The stage loop: shuffled index batches over one in-memory tensor (or a memmap), validation,
early stopping, gradient clipping, the NaN guard, and a checkpoint after every epoch.

A run is a plan of stages (`plan`): one, or the stacked autoencoder's greedy
layers then fine-tuning. `Trainer.run` trains each stage's epochs with
`train_epoch` and `evaluate_loss`, and writes the run folder after every epoch
(state.commit_epoch) so that resume continues exactly.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from aekit.data.validation import row_batches, take
from aekit.errors import CheckpointError, TrainingError
from aekit.inference import evaluating
from aekit.models.stacked import greedy_layers
from aekit.runs.run import History
from aekit.training import distributed
from aekit.training.divergence import check_epoch
from aekit.training.options import FitOptions, learning_rate
from aekit.training.precision import autocast as precision_autocast
from aekit.training.state import TrainingState, commit_epoch
from aekit.training.summaries import Summaries, draws

_RESIDENT_BYTES = 1 << 30  # training data up to this size are moved to the GPU once


@dataclass
class Stage:
    """One optimisation phase: `model` (sharing parameters with the main model) trained on `features(data)`."""

    name: str
    model: torch.nn.Module
    epochs: int
    features: Callable | None = None  # maps the main input rows to this stage's input (stacked layers)
    em: bool = False  # one EM iteration per epoch (em_epoch) instead of gradient steps: factor analysis, PPCA


def plan(model, epochs: int) -> list[Stage]:
    """The stages of a run: greedy layer-wise pretraining when the configuration asks for it
    (pretrain_epochs > 0), then training (or fine-tuning) the whole model for `epochs`."""
    stages = []
    if model.config.pretrain_epochs > 0:
        stages = [Stage(layer.name, layer.model, model.config.pretrain_epochs, layer.features)
                  for layer in greedy_layers(model)]
    return stages + [Stage("finetune" if stages else "train", model, epochs, em=hasattr(model, "em_statistics"))]


@dataclass
class TrainingData:
    """The training rows and the validation rows (of the same data or of x_val), and their class labels
    (int64, one per row of data / val_data) for a conditional model."""

    data: object  # float32 tensor or memmap, (N, *input_shape)
    train_rows: torch.Tensor
    val_data: object
    val_rows: torch.Tensor
    labels: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None

    def resident(self, device: torch.device) -> TrainingData:
        """On an accelerator, data that fit comfortably stay there: no host-to-device copy per batch."""
        data = self.data
        if device.type == "cpu" or not isinstance(data, torch.Tensor) or data.numel() * data.element_size() > _RESIDENT_BYTES:
            return self
        val = data.to(device) if self.val_data is data else self.val_data
        on = lambda t: None if t is None else t.to(device)  # noqa: E731
        return TrainingData(data.to(device), self.train_rows.to(device), val, self.val_rows.to(device),
                            on(self.labels), on(self.val_labels))

    def for_stage(self, stage: Stage, device: torch.device) -> TrainingData:
        """Stacked layers train on the codes of the frozen layers below, computed once."""
        if stage.features is None:
            return self
        train = _features_of(self.data, self.train_rows, stage.features, device)
        if not len(self.val_rows):
            return TrainingData(train, torch.arange(len(train)), None, self.val_rows)
        val = _features_of(self.val_data, self.val_rows, stage.features, device)
        return TrainingData(train, torch.arange(len(train)), val, torch.arange(len(val)))


def _features_of(data, rows, features, device) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([features(batch.to(device)) for batch in row_batches(data, 4096, rows)])


def split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows, validation rows), a seeded random split."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = 0 if fraction == 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))
    return perm[n_val:], perm[:n_val]


def evaluate_loss(model, data, rows=None, batch_size: int = 1024, labels: torch.Tensor | None = None) -> dict[str, float]:
    """Mean loss terms over data[rows] in eval mode (no corruption), plus mse_per_feature.
    `labels`: a conditional model's class of every row of data."""
    rows = torch.arange(data.shape[0]) if rows is None else rows
    sums: dict[str, torch.Tensor] = {}
    with evaluating(model):
        for start, xb in zip(range(0, len(rows), batch_size), row_batches(data, batch_size, rows)):
            xb = xb.to(model.device)
            yb = None if labels is None else labels[rows[start:start + batch_size]].to(model.device)
            terms = model.loss(xb, yb)
            terms.tensors["mse_per_feature"] = (model(xb, yb) - xb).pow(2).mean()
            for k, v in terms.tensors.items():
                sums[k] = sums.get(k, 0) + v * len(xb)
    return {k: float(v) / len(rows) for k, v in sums.items()}


class Objective(torch.nn.Module):
    """model.loss as a forward pass, so that DistributedDataParallel sees and synchronises it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, labels=None, epoch=None):
        terms = self.model.loss(x, labels, epoch=epoch)
        return terms.total, terms.tensors


@dataclass
class Step:
    """What one optimizer step needs besides the batch: built once per stage."""

    objective: torch.nn.Module  # Objective, in DDP when distributed
    optimizer: torch.optim.Optimizer
    autocast: Callable  # () -> the precision's autocast context
    scaler: object | None  # fp16 gradient scaler (CUDA only)
    dist: distributed.Context
    total_steps: int  # optimizer steps of the whole stage (the lr schedule's length)
    steps_per_epoch: int  # the model's schedules (KL warm-up) count epochs: step / steps_per_epoch


def train_epoch(model, data: TrainingData, step: Step, opts: FitOptions, generator, bar, first_step: int) -> dict:
    """One pass over the training rows in shuffled batches; the mean of every loss term."""
    model.train()
    sums: dict[str, torch.Tensor] = {}
    params = [p for p in model.parameters() if p.requires_grad]
    dev, rows = model.device, data.train_rows
    for i, idx in enumerate(torch.randperm(len(rows), generator=generator).split(opts.batch_size)):
        mine, weight = step.dist.shard(idx)
        xb = take(data.data, rows[mine]).to(dev, non_blocking=True)
        yb = None if data.labels is None else data.labels[rows[mine]].to(dev, non_blocking=True)
        for group in step.optimizer.param_groups:
            group["lr"] = learning_rate(opts, first_step + i, step.total_steps)
        with step.autocast():
            total, terms = step.objective(xb, yb, (first_step + i) / step.steps_per_epoch)
        loss = total if weight == 1.0 else total * weight
        step.optimizer.zero_grad(set_to_none=True)
        # inputs=params: no gradient for the batch itself (the contractive penalty makes it require grad).
        (loss if step.scaler is None else step.scaler.scale(loss)).backward(inputs=params)
        if step.scaler is not None:
            step.scaler.unscale_(step.optimizer)
        if opts.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, opts.clip_grad_norm)
        if step.scaler is not None:
            step.scaler.step(step.optimizer)
            step.scaler.update()
        else:
            step.optimizer.step()
        rows_here = len(mine) if weight else 0
        for k, v in terms.items():  # accumulate on device: no host sync per step
            sums[k] = sums.get(k, 0) + v.float() * rows_here
        bar.update(1)
    names = list(sums)
    totals = step.dist.sum(torch.stack([sums[k] for k in names]))  # one all-reduce per epoch
    return {k: float(v) / len(rows) for k, v in zip(names, totals.tolist())}


def em_epoch(model, data: TrainingData, dist: distributed.Context, batch_size: int, bar) -> dict:
    """One EM iteration over the training rows (factor analysis, PPCA): the E-step's sufficient statistics
    summed batch by batch (and over ranks), then the M-step (model.em_statistics, model.em_update). Returns
    the mean loss terms at the parameters the epoch started from."""
    model.train()
    sums: dict[str, torch.Tensor] = {}
    stats: dict[str, torch.Tensor] = {}
    rows = data.train_rows[dist.rank::dist.world] if dist.enabled else data.train_rows
    with torch.no_grad():
        for xb in row_batches(data.data, batch_size, rows):
            xb = xb.to(model.device)
            for k, v in model.em_statistics(xb).items():
                stats[k] = stats.get(k, 0) + v
            for k, v in model.loss(xb).tensors.items():
                sums[k] = sums.get(k, 0) + v.double() * len(xb)
            bar.update(1)
        names, shapes = list(stats), [stats[k].shape for k in stats]
        flat = dist.sum(torch.cat([stats[k].reshape(-1) for k in names]))  # one all-reduce
        model.em_update(dict(zip(names, (part.reshape(shape) for part, shape in
                                         zip(flat.split([math.prod(shape) for shape in shapes]), shapes)))))
    totals = dist.sum(torch.stack([sums[k] for k in sums]))
    return {k: float(v) / len(data.train_rows) for k, v in zip(sums, totals.tolist())}


def make_optimizer(model, opts: FitOptions) -> torch.optim.Optimizer:
    """Adam, fused into one kernel per step where this PyTorch supports it (CPU since 2.4, CUDA), else foreach."""
    try:
        return torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay, foreach=True)


def _restore_optimizer(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a saved optimizer state, refusing one whose tensors do not fit the parameters
    (load_state_dict itself checks only the number of parameters)."""
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"the run's optimizer state does not fit this model ({e})") from None
    for param, slots in optimizer.state.items():
        for name, value in slots.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                raise CheckpointError(f"the run's optimizer state does not fit this model: its {name!r} has shape "
                                      f"{tuple(value.shape)} for a parameter of shape {tuple(param.shape)}")


def _grad_scaler(dev):
    """Loss scaling for fp16 autocast (its range is too narrow for small gradients)."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(dev.type)
    return torch.cuda.amp.GradScaler()


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class EarlyStopping:
    """Stop after `patience` epochs without a better validation total; keep the best weights."""

    patience: int | None
    best_val: float = math.inf
    bad_epochs: int = 0
    best: dict | None = None

    def update(self, val_total: float, model) -> bool:
        """Record an epoch's validation total; True when training should stop."""
        if val_total < self.best_val:
            self.best_val, self.bad_epochs, self.best = val_total, 0, _snapshot(model)
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


class Trainer:
    """Runs the stages of one fit: the shared data, options, random generator, device and run folder."""

    def __init__(self, model, data: TrainingData, opts: FitOptions, shuffle: torch.Generator, device, dist,
                 precision: str, callback: Callable | None, folder, history: History, verbose: int,
                 summaries: Summaries | None = None):
        self.model, self.data, self.opts, self.shuffle, self.device = model, data, opts, shuffle, device
        self.dist, self.precision, self.callback = dist, precision, callback
        self.folder, self.history, self.verbose = folder, history, verbose
        self.summaries = summaries  # TensorBoard (fit's log_dir), on rank 0
        self.last_state: TrainingState | None = None  # of the last epoch trained here
        self.kept: tuple[str, int] | None = None  # (stage, epoch) the model's last finite weights are from

    def run(self, stages: list[Stage], state: TrainingState | None) -> None:
        """Every stage in turn; a resumed run skips the stages (and epochs) it has finished. A non-finite
        loss or weight raises divergence.Diverged with the last finite epoch's weights in the model."""
        self.kept = (state.stage, state.epoch) if state is not None else None
        for index, stage in enumerate(stages):
            resumed = state is not None and state.stage_index == index
            if state is not None and (index < state.stage_index or (resumed and state.is_finished(stage.epochs))):
                continue
            if self.run_stage(stage, index, state if resumed else None):
                break  # the callback asked to stop

    def run_stage(self, stage: Stage, index: int, state: TrainingState | None) -> bool:
        """Train one stage from its first (or the resumed) epoch; True when the callback asked to stop."""
        optimizer = make_optimizer(stage.model, self.opts)
        stopping, first_epoch = EarlyStopping(self.opts.patience), 1
        if state is not None:
            _restore_optimizer(optimizer, state.optimizer)
            first_epoch = state.epoch + 1
            best = {k: v.to(self.device) for k, v in state.best.items()} if state.best else None
            stopping = EarlyStopping(self.opts.patience, state.best_val, state.bad_epochs, best)
        data = self.data.for_stage(stage, self.device)
        steps = math.ceil(len(data.train_rows) / self.opts.batch_size)
        step = Step(distributed.wrap(Objective(stage.model), self.dist, self.device), optimizer,
                    lambda: precision_autocast(self.device, self.precision),
                    _grad_scaler(self.device) if self.precision == "fp16" else None, self.dist, steps * stage.epochs,
                    steps)
        last_good, stop_run = _snapshot(self.model), False
        with self._progress(steps * (stage.epochs - first_epoch + 1), stage.name) as bar:
            for epoch in range(first_epoch, stage.epochs + 1):
                row = self._epoch(stage, index, epoch, data, step, steps, bar, last_good)
                stop_run = bool(self.callback(row, self.model)) if self.callback is not None else False
                done, stopped_early = epoch == stage.epochs or stop_run, False
                if "val_total" in row and self.opts.patience is not None:
                    stopped_early = stopping.update(row["val_total"], self.model)
                    done = done or stopped_early
                    if done and stopping.best is not None:
                        self.model.load_state_dict(stopping.best)  # early stopping keeps the best validation weights
                last_good = _snapshot(self.model)
                self.last_state = TrainingState(index, stage.name, epoch, done, stopped_early, stopping.best_val,
                                                stopping.bad_epochs, list(self.history), optimizer.state_dict(),
                                                self._rng_states(), stopping.best)
                if self.folder is not None:
                    commit_epoch(self.folder, self.model, self.history, self.last_state)
                self.kept = (stage.name, epoch)
                if self.summaries is not None:  # after the commit: the log never runs ahead of the run folder
                    self._summarise(stage, epoch, done, row, optimizer)
                if done:
                    break
        return stop_run

    def _epoch(self, stage, index, epoch, data, step, steps, bar, last_good) -> dict:
        """Train and validate one epoch; its History row (appended). A non-finite loss term, weight or optimizer
        state restores last_good and raises divergence.Diverged."""
        t0 = time.perf_counter()
        if self.dist.enabled:
            # Each rank its own noise stream (corruption, VAE sampling), reproducible per epoch
            # whatever the number of processes a resumed run has.
            torch.manual_seed(hash((self.opts.seed, index, epoch, self.dist.rank)) % 2**63)
        if stage.em:
            train = em_epoch(stage.model, data, self.dist, self.opts.batch_size, bar)
        else:
            train = train_epoch(stage.model, data, step, self.opts, self.shuffle, bar, (epoch - 1) * steps)
        val = evaluate_loss(stage.model, data.val_data, data.val_rows, labels=data.val_labels) if len(data.val_rows) else {}
        seconds = time.perf_counter() - t0
        try:
            check_epoch(self.model, step.optimizer, {"train": train, "validation": val}, stage.name, epoch,
                        self.kept, self.opts.lr)
        except TrainingError:
            self.model.load_state_dict(last_good)  # nothing of this epoch is kept, in memory or on disk
            raise
        row = {"stage": stage.name, "epoch": epoch, "seconds": round(seconds, 4)}
        row.update({f"train_{k}": v for k, v in train.items()})
        row.update({f"val_{k}": v for k, v in val.items()})
        self.history.append(row)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k.endswith("total")})
        return row

    def _summarise(self, stage: Stage, epoch: int, done: bool, row: dict, optimizer) -> None:
        """The epoch's History row (and the learning rate of its last step) at its global epoch; the whole
        model's stage draws its reconstructions every few epochs (summaries.draws)."""
        whole = stage.model is self.model
        self.summaries.epoch(row, len(self.history), None if stage.em else optimizer.param_groups[0]["lr"],
                             self.model if whole and draws(epoch, stage.epochs, done) else None,
                             "" if whole else f"{stage.name}/")

    def _rng_states(self) -> dict[str, torch.Tensor]:
        states = {"torch": torch.get_rng_state(), "shuffle": self.shuffle.get_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        return states

    def _progress(self, total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="batch", leave=True,
                    disable=not self.verbose or not sys.stderr.isatty())
