"""`fit`: check everything, prepare the run folder, seed, initialise from the data, run the stages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import runs
from ..errors import CheckpointError, DataError
from ..validation import as_array, check_data, check_labels, take
from . import distributed
from .loop import Trainer, TrainingData, evaluate_loss, plan, split
from .options import FitOptions, resolve_device
from .precision import resolve as resolve_precision
from .state import TrainingState

_INIT_ROWS = 10000  # rows the decoder's output bias is initialised from (PCA uses all training rows)


def fit(
    model,
    x,
    x_val=None,
    *,
    y=None,
    y_val=None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    val_fraction: float = 0.1,
    patience: int | None = None,
    clip_grad_norm: float | None = None,
    weight_decay: float = 0.0,
    precision: str = "auto",
    lr_schedule: str = "constant",
    device=None,
    verbose: int = 1,
    command: str | None = None,
    callback: Callable | None = None,
) -> runs.History:
    """Train `model` on x (array, tensor or Dataset of shape (N, *input_shape)).

    Labels are for a conditional model (kind 'cvae') only: `y` (and `y_val` for x_val), one class per
    row, -1 for unknown; a Dataset's integer labels are used when y is not given. Other kinds take none.

    With `out`, writes the run folder (config.json, weights.safetensors,
    training_state.safetensors, history.csv, metrics.json) after every epoch,
    atomically. `resume=True` continues an interrupted run in `out` and ends
    with exactly the weights an uninterrupted run would have. Returns the
    History (one row per epoch of every stage). `command` is recorded in config.json.
    `callback(row, model)` is called after every epoch with its History row; returning
    True stops training there (the run folder is complete, as after the last epoch).

    Started by torchrun (WORLD_SIZE > 1), every process runs this with the same
    arguments: the model trains in DistributedDataParallel, each rank on its slice
    of every global batch of `batch_size` rows, and only rank 0 writes `out`.
    """
    opts = FitOptions(epochs, batch_size, lr, seed, val_fraction, patience, clip_grad_norm, weight_decay,
                      precision, lr_schedule).validate()
    data = _training_data(model.config, x, x_val, opts, y, y_val)
    dist, dev = distributed.context(resolve_device(device))
    folder = Path(out) if out is not None else None
    state = _prepare_folder(folder, model, resume, overwrite) if folder is not None else None
    model.to(dev)
    used_precision = resolve_precision(opts.precision, dev, model)
    writes = folder is not None and dist.main
    dist.barrier()  # every rank has checked the run folder before rank 0 changes it
    history = runs.History(state.history if state else [])
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        shuffle = _seed(opts.seed, state, dev)
        if state is None:
            rows = data.train_rows if model.config.init == "pca" else data.train_rows[:_INIT_ROWS]
            model.initialise_from_data(take(data.data, rows))
            if writes:
                _start_folder(folder, model, opts, x, data, dev, used_precision, dist.world, command)
        trainer = Trainer(model, data.resident(dev), opts, shuffle, dev, dist, used_precision, callback,
                          folder if writes else None, history, verbose if dist.main else 0)
        trainer.run(plan(model, opts.epochs), state)
    if writes:
        runs.write_metrics(folder, _final_metrics(model, trainer.data, time.perf_counter() - started))
    dist.barrier()  # the other ranks return once rank 0 has written the run folder
    model.eval()
    return history


def _training_data(config, x, x_val, opts: FitOptions, y=None, y_val=None) -> TrainingData:
    """x (and x_val) checked against the model; without x_val, a seeded validation split of x.
    With their labels for a conditional model."""
    bce = config.reconstruction == "bce"
    data = as_array(x, "x")
    check_data(data, config.input_shape, "x", unit_range=bce)
    labels = _labels(config, x, y, data.shape[0], "y")
    if x_val is None:
        if y_val is not None:
            raise DataError("y_val was given without x_val: the labels of the validation split come from y")
        train_rows, val_rows = split(data.shape[0], opts.val_fraction, opts.seed)
        return TrainingData(data, train_rows, data, val_rows, labels, labels)
    val_data = as_array(x_val, "x_val")
    check_data(val_data, config.input_shape, "x_val", unit_range=bce)
    val_labels = _labels(config, x_val, y_val, val_data.shape[0], "y_val")
    if (labels is None) != (val_labels is None):
        raise DataError("labels for one of x and x_val only: give y and y_val (or Datasets with labels) together")
    return TrainingData(data, torch.arange(data.shape[0]), val_data, torch.arange(val_data.shape[0]), labels,
                        val_labels)


def _labels(config, x, y, n: int, name: str) -> torch.Tensor | None:
    """The labels a conditional model trains with: y, else a Dataset's integer labels; None for other models
    (which refuse an explicit y: they do not use labels)."""
    if y is None and config.n_classes:
        labels = getattr(x, "y", None)
        if labels is not None and np.issubdtype(np.asarray(labels).dtype, np.integer):
            y = labels
    return None if y is None else check_labels(y, n, config.n_classes, name)


def _prepare_folder(folder: Path, model, resume: bool, overwrite: bool) -> TrainingState | None:
    """Check what `out` holds; for resume, load the run's weights into model and return its state."""
    if resume and (folder / runs.STATE).exists():
        saved = runs.read_config(folder)
        if saved["model"] != json.loads(json.dumps(model.config.to_json())):
            raise CheckpointError(f"{folder} holds a run of a different model configuration; cannot resume it with this model")
        state = TrainingState.load(folder / runs.STATE)
        runs.load_weights(model, folder / runs.WEIGHTS)
        return state
    if (folder / runs.CONFIG).exists() and not overwrite and not resume:
        raise CheckpointError(f"{folder} already holds a run; pass resume=True (--resume) to continue it, "
                              "overwrite=True (--overwrite) to replace it, or another out")
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"out={str(folder)!r} exists and is not a folder")
    return None


def _seed(seed: int, state: TrainingState | None, dev: torch.device) -> torch.Generator:
    """Seed torch's generator (corruption, VAE sampling) and the shuffling one, or restore both from state."""
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    if state is not None:
        torch.set_rng_state(state.rng["torch"])
        shuffle.set_state(state.rng["shuffle"])
        if "cuda" in state.rng and dev.type == "cuda":
            torch.cuda.set_rng_state(state.rng["cuda"], dev)
    return shuffle


def _start_folder(folder: Path, model, opts: FitOptions, x, data: TrainingData, dev, precision: str, world: int,
                  command: str | None) -> None:
    """A fresh run folder: config.json and the initial weights; files of an earlier run are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (runs.STATE, runs.METRICS, runs.HISTORY):
        (folder / stale).unlink(missing_ok=True)
    runs.write_run(folder, model, training=asdict(opts),
                   data={"scaling": getattr(x, "scaling", None), "source": getattr(x, "source", None),
                         "n_train": len(data.train_rows), "n_val": len(data.val_rows),
                         "labelled": None if data.labels is None else int((data.labels[data.train_rows] >= 0).sum()),
                         "device": str(dev),
                         "precision": precision, "processes": world},
                   command=command)


def _final_metrics(model, data: TrainingData, seconds: float) -> dict:
    metrics = {"train": evaluate_loss(model, data.data, data.train_rows, labels=data.labels)}
    if len(data.val_rows):
        metrics["validation"] = evaluate_loss(model, data.val_data, data.val_rows, labels=data.val_labels)
    metrics["units"] = {k: v for k, v in runs.UNITS.items() if k in metrics["train"]}
    metrics["reconstruction_loss"] = model.config.reconstruction
    metrics["seconds"] = round(seconds, 3)
    return metrics
