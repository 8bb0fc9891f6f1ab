"""`fit`: check everything, prepare the run folder, seed, initialise from the data, run the stages."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from aekit.anomaly import detector as detection
from aekit.data.base import evenly_spaced
from aekit.data.validation import as_array, check_data, check_labels, take
from aekit.errors import CheckpointError, ConfigError, DataError
from aekit.inference import apply
from aekit.models.kinds import model_from_config
from aekit.runs import run as runs
from aekit.training import distributed, summaries
from aekit.training.divergence import Diverged
from aekit.training.folder import inspect, writing
from aekit.training.loop import Trainer, TrainingData, evaluate_loss, plan, split
from aekit.training.options import FitOptions, resolve_device, threads_for, torch_threads
from aekit.training.precision import resolve as resolve_precision
from aekit.training.state import TrainingState, commit_epoch

_INIT_ROWS = 10000  # rows the output bias and the code density are fitted on (PCA uses all training rows)
_DETECTOR_ROWS = 20000  # training (and validation) rows the run's anomaly detector is fitted on


def fit(
    model,
    x,
    x_val=None,
    *,
    y=None,
    y_val=None,
    epochs: int | None = None,
    batch_size: int | None = None,
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
    n_threads: int | None = None,
    contamination: float = 0.1,
    log_dir=None,
    verbose: int = 1,
    command: str | None = None,
    callback: Callable | None = None,
) -> runs.History:
    """Train `model` on x (array, tensor or Dataset of shape (N, *input_shape)).

    Labels are for a conditional model (kind 'cvae') only: `y` (and `y_val` for x_val), one class per
    row, -1 for unknown; a Dataset's integer labels are used when y is not given. Other kinds take none.

    With `out`, writes the run folder (config.json; weights.safetensors with the
    training state, committed by one rename after every epoch; history.csv;
    metrics.json at the end). `resume=True` continues an interrupted run in `out`
    and ends with exactly the weights an uninterrupted run would have; `overwrite=True`
    replaces a run only once the new one is complete. See training/folder.py. Returns the
    History (one row per epoch of every stage). `command` is recorded in config.json.
    `callback(row, model)` is called after every epoch with its History row; returning
    True stops training there (the run folder is complete, as after the last epoch).
    epochs / batch_size None: decided from the number of training rows (at least 1,000
    optimizer steps; training/options.py), and recorded. n_threads None: torch threads
    chosen by threads_for (1 for small models or a busy machine). contamination: the expected
    fraction of outliers in x, which sets the threshold of the run's anomaly detector.
    log_dir: a folder for TensorBoard event files (every loss term per epoch, the learning rate, image
    reconstructions; training/summaries.py), recorded with the options so that resume continues the
    same curves there; needs the tensorboard package (pip install aekit[tensorboard]).

    Started by torchrun (WORLD_SIZE > 1), every process runs this with the same
    arguments: the model trains in DistributedDataParallel, each rank on its slice
    of every global batch of `batch_size` rows, and only rank 0 writes `out`.
    """
    opts = FitOptions(epochs, batch_size, lr, seed, val_fraction, patience, clip_grad_norm, weight_decay,
                      precision, lr_schedule, n_threads, contamination,
                      os.fspath(log_dir) if isinstance(log_dir, os.PathLike) else log_dir).validate()
    data = _training_data(model.config, x, x_val, opts, y, y_val)
    opts = opts.resolved(len(data.train_rows), gradient_steps=not hasattr(model, "em_statistics"))
    dist, dev = distributed.context(resolve_device(device))
    folder = Path(out) if out is not None else None
    scaling = getattr(x, "scaling", None)
    decide = functools.partial(inspect, folder, model, scaling, resume, overwrite)
    dest = decide() if folder is not None else None  # every rank reads; refusals happen before any write
    writes = dest is not None and dist.main
    with contextlib.ExitStack() as stack:
        if writes:
            dest = stack.enter_context(writing(folder, decide))  # the lock, then the same decision under it
        dist.barrier()  # every rank has checked the run folder before rank 0 changes it
        if dest is not None and dest.state is not None:
            runs.load_weights(model, dest.write_to / runs.WEIGHTS)
        with torch_threads(threads_for(model, opts.batch_size, opts.n_threads)):
            history, trained_on, seconds = _train(model, data, opts, dest, dist, dev, callback, command, x,
                                                  verbose if dist.main else 0, writes)
            if writes:
                runs.write_metrics(dest.write_to, _final_metrics(model, trained_on, seconds))
    dist.barrier()  # the other ranks return once rank 0 has written the run folder
    model.eval()
    return history


def _train(model, data, opts, dest, dist, dev, callback, command, x, verbose, writes):
    """Seed (or restore the generators), initialise from the data, write config.json, run the stages."""
    state = dest.state if dest is not None else None
    model.to(dev)
    used_precision = resolve_precision(opts.precision, dev, model)
    history = runs.History(state.history if state else [])
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        shuffle = _seed(opts.seed, state, dev)
        if state is None:
            rows = data.train_rows if model.config.init == "pca" else data.train_rows[:_INIT_ROWS]
            model.initialise_from_data(take(data.data, rows))
            if writes:
                _start_folder(dest.write_to, model, opts, x, data, dev, used_precision, dist.world)
        if writes:
            runs.record_segment(dest.write_to, asdict(opts), command, len(history))
        log_dir = opts.log_dir if dist.main else None  # only rank 0 writes TensorBoard summaries
        examples = summaries.fixed_examples(data, model.config.input_shape) if log_dir else None
        with summaries.opened(log_dir, len(history) + 1, examples) as board:
            trainer = Trainer(model, data.resident(dev), opts, shuffle, dev, dist, used_precision, callback,
                              dest.write_to if writes else None, history, verbose, board)
            try:
                trainer.run(plan(model, opts.epochs), state)
            except Diverged as e:  # say what the run folder keeps (the loop knows epochs, not folders)
                raise e.located(dest.folder if writes else None, writes and dest.staging) from None
    if not model.config.variational:  # the Gaussian plain autoencoders sample from (model.sample)
        rows = trainer.data.train_rows[:_INIT_ROWS]
        model.fit_code_density(apply(model, trainer.data.data, lambda m, b: m.code(b), rows=rows, numpy=False))
    if writes:
        profile = (getattr(x, "scaling", None) or {}).get("method") == "rownorm"
        commit_epoch(dest.write_to, model, history, trainer.last_state or state,
                     _run_detector(model, trainer.data, profile, opts.contamination))
    if writes:
        runs.finish_segment(dest.write_to, len(history))
    return history, trainer.data, time.perf_counter() - started


def _run_detector(model, data: TrainingData, profile: bool, contamination: float) -> detection.Detector:
    """The run's anomaly detector (detection.default_score) on at most _DETECTOR_ROWS evenly spread
    training rows, calibrated on the validation rows (which it neither trained on nor keeps)."""
    def spread(rows):
        return rows[torch.from_numpy(evenly_spaced(len(rows), _DETECTOR_ROWS)).to(rows.device)]

    calibration = take(data.val_data, spread(data.val_rows)) if len(data.val_rows) else None
    return detection.fit_detector(model, take(data.data, spread(data.train_rows)), detection.default_score(model.config),
                                  contamination, calibration, profile)[0]


def resume(folder, x=None, **fit_options) -> runs.Run:
    """Continue the run in `folder` (e.g. with more epochs): the model comes from the run, the data
    from its recorded source (or x), and every fit option not given here from its last segment.
    Returns the Run as it is afterwards."""
    run = runs.load_run(folder)
    fit(model_from_config(run.config), x if x is not None else run.dataset(), out=folder, resume=True,
        **{"verbose": 0, **recorded_options(run, fit_options), **fit_options})
    return runs.load_run(folder)


def recorded_options(run: runs.Run, given: dict) -> dict:
    """The fit options of the run's last segment that `given` does not replace, checked as the library checks
    them: a value out of range there was written by hand (runs/fields.py checks only their types), so it is
    a CheckpointError naming the file, not a ConfigError about an option the user never gave."""
    names = {f.name for f in fields(FitOptions)}
    recorded = {k: v for k, v in run.training.items() if k in names and k not in given}
    try:
        FitOptions(**recorded).validate()
    except ConfigError as e:
        raise CheckpointError(f"{run.folder / 'config.json'}: field 'training' is invalid: {e}") from None
    return recorded


def _training_data(config, x, x_val, opts: FitOptions, y=None, y_val=None) -> TrainingData:
    """x (and x_val) checked against the model; without x_val, a seeded validation split of x.
    With their labels for a conditional model."""
    bce = config.reconstruction == "bce"
    data = as_array(x, "x")
    check_data(data, config.input_shape, "x", unit_range=bce)
    if data.shape[0] < 2:
        raise DataError(f"x has {data.shape[0]} sample; training needs at least 2 examples")
    if x_val is None and y_val is not None:
        raise DataError("y_val was given without x_val: the labels of the validation split come from y")
    labels = _labels(config, x, y, data.shape[0], "y")
    if x_val is None:
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
    (which refuse an explicit y: they do not use labels). A conditional model without labels is a DataError:
    it would train as an unconditional one and then ignore the class it is asked for."""
    if y is None and config.n_classes:
        labels = getattr(x, "y", None)
        if labels is not None and np.issubdtype(np.asarray(labels).dtype, np.integer):
            y = labels
        else:
            raise DataError(
                f"{name}: a conditional model (kind {config.kind!r}, n_classes={config.n_classes}) needs class labels "
                f"and {'x_val' if name == 'y_val' else 'x'} has none: give {name}= (one class in [0, {config.n_classes}) "
                "per row, -1 for unknown), or data with labels (a table's label_column=, on the command line "
                "--data-option label_column=NAME; a labelled dataset); "
                "for an unconditional model use kind 'vae'")
    return None if y is None else check_labels(y, n, config.n_classes, name)


def _seed(seed: int, state: TrainingState | None, dev: torch.device) -> torch.Generator:
    """Seed torch's generator (corruption, VAE sampling) and the shuffling one, or restore both from state."""
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    if state is not None:
        try:
            torch.set_rng_state(state.rng["torch"])
            shuffle.set_state(state.rng["shuffle"])
            if "cuda" in state.rng and dev.type == "cuda":
                torch.cuda.set_rng_state(state.rng["cuda"], dev)
        except (RuntimeError, ValueError) as e:
            raise CheckpointError(f"the run's random generator state is malformed ({e})") from None
    return shuffle


def _start_folder(folder: Path, model, opts: FitOptions, x, data: TrainingData, dev, precision: str,
                  world: int) -> None:
    """A fresh run: config.json only (record_segment adds the command and options). The weights
    appear with the first committed epoch, so a run stopped before it never looks trained."""
    for stale in (runs.WEIGHTS, runs.METRICS, runs.HISTORY):
        (folder / stale).unlink(missing_ok=True)
    runs.write_config(folder, model, training=asdict(opts),
                      data={"scaling": getattr(x, "scaling", None), "source": getattr(x, "source", None),
                            "table": (getattr(x, "info", None) or {}).get("table"),
                            "n_train": len(data.train_rows), "n_val": len(data.val_rows),
                            "labelled": None if data.labels is None else int((data.labels[data.train_rows] >= 0).sum()),
                            "device": str(dev), "precision": precision, "processes": world})


def _final_metrics(model, data: TrainingData, seconds: float) -> dict:
    metrics = {"train": evaluate_loss(model, data.data, data.train_rows, labels=data.labels)}
    if len(data.val_rows):
        metrics["validation"] = evaluate_loss(model, data.val_data, data.val_rows, labels=data.val_labels)
    metrics["units"] = {k: v for k, v in runs.UNITS.items() if k in metrics["train"]}
    metrics["reconstruction_loss"] = model.config.reconstruction
    metrics["seconds"] = round(seconds, 3)
    return metrics
