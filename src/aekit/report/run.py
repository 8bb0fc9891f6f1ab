"""report.html for one run folder: configuration and training segments, loss curves,
reconstructions, latent space, samples, the metrics that apply, the command.

Figures and metrics use a seeded, class-stratified random subset of the data (never the first
rows: many datasets are sorted by class), and say how many examples they show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from aekit import data as datasets
from aekit.data.images import image_shape
from aekit.errors import AekitError
from aekit.evaluation.evaluate import evaluate
from aekit.evaluation.metrics import latent_2d, probe_rows
from aekit.inference import pass_threads, torch_threads
from aekit.models.autoencoder import VariationalAutoencoder
from aekit.models.corruption import corrupt
from aekit.models.kinds import get_kind
from aekit.report.figures import image_grid, image_rows, loss_curves, rate_distortion, scatter, side_by_side
from aekit.report.html import Page, Section, table
from aekit.runs.run import REPORT, Run, load_run

SUBSET = 2000  # examples behind the report's figures and metrics


def flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested metrics as (dotted key, scalar) rows; lists are left out (they have their own figures)."""
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += flatten(v, key + ".")
        elif isinstance(v, (int, float, str)) and not isinstance(v, bool):
            rows.append((key, v))
    return rows


def subset(ds, limit: int = SUBSET, seed: int = 0):
    """At most `limit` examples of ds: a seeded random subset, stratified by class when ds has labels."""
    if len(ds) <= limit:
        return ds
    y = None if ds.y is None else np.asarray(ds.y)
    if y is not None and np.issubdtype(y.dtype, np.integer) and np.bincount(y - y.min()).min() >= 2:
        from sklearn.model_selection import train_test_split

        rows, _ = train_test_split(np.arange(len(ds)), train_size=limit, stratify=y, random_state=seed)
        rows = np.sort(rows)
    else:
        rows = probe_rows(len(ds), seed, limit)
    return datasets.Dataset(ds.x[rows], None if y is None else y[rows], ds.name, ds.scaling, ds.info)


def run_data(run: Run):
    """The run's recorded data, or None when it was trained from arrays or the data moved since."""
    try:
        return run.dataset()
    except (AekitError, OSError):
        return None


def write_report(folder, data=None) -> Path:
    """Write folder/report.html for a run; `data` (a Dataset) overrides the recorded source."""
    run = load_run(folder)
    model = run.model
    with torch_threads(pass_threads(model, SUBSET)):  # a small model's figures and metrics: one thread
        return _write(run, model, data if data is not None else run_data(run))


def _write(run: Run, model, data) -> Path:
    page = Page(f"aekit run: {model.config.kind} ({run.folder.name})",
                intro=f"{model.config.kind}: {sum(p.numel() for p in model.parameters()):,} parameters, "
                      f"input {model.config.input_shape}, latent_dim {model.config.latent_dim}.")
    page.sections += _configuration(run)
    if run.history:
        page.sections.append(Section("Loss curves", "Every loss term per epoch, train (solid) and validation (dashed); "
                                     "per example, as in history.csv (a log scale when a term spans a decade "
                                     "or more).", [("loss curves", loss_curves(run.history))]))
    if run.metrics:
        rows = [[k, v] for k, v in flatten({"validation": run.metrics.get("validation", {}),
                                             "train": run.metrics.get("train", {})})]
        units = run.metrics.get("units", {})
        page.sections.append(Section("Final loss terms", "metrics.json: " + "; ".join(f"{k}: {v}" for k, v in units.items()),
                                     tables=[table(rows, ["term", "value"])]))
    if data is not None:
        page.sections += _data_sections(model, subset(data))
    samples = _samples(model)
    if samples is not None:
        page.sections.append(samples)
    page.footer = f"Produced by: {run.command}" if run.command else f"Run folder: {run.folder}"
    return page.write(run.folder / REPORT)


def _configuration(run: Run) -> list[Section]:
    """The options of this kind (not every field of every kind) and every training segment."""
    config = run.model.config.to_json()
    off = run.model.config.inactive_options()
    shown = [k for k in ["input_shape", *get_kind(config["kind"]).options, "seed"] if k not in off]
    tables = [table([[k, json.dumps(config[k])] for k in shown if k in config], ["option", "value"])]
    segments = run.segments or [{"command": run.command, "training": run.training}]
    rows = []
    for i, seg in enumerate(segments, 1):
        training = seg.get("training") or {}
        rows.append([i, seg.get("started", ""), seg.get("epochs_reached", ""), training.get("epochs", ""),
                     training.get("batch_size", ""), training.get("lr", ""), seg.get("command") or ""])
    tables.append(table(rows, ["segment", "started", "epochs reached", "epochs asked", "batch size", "lr", "command"]))
    return [Section("Configuration", "The kind's options; then each training segment (the first run and every "
                    "resume) with its command and the epochs the run had reached when it ended.", tables=tables)]


def _class_names(data) -> list[str] | None:
    classes = (data.info or {}).get("classes")
    return [str(c) for c in classes] if classes else None


def _one_per_class(y, count: int, seed: int = 0) -> np.ndarray:
    """Up to `count` rows spread over the classes: one of each class in turn, seeded."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
    picked = [rows[i] for i in range(count) for rows in per_class if i < len(rows)]
    return np.asarray(picked[:count])


def _data_sections(model, data) -> list[Section]:
    """Reconstructions across classes, the latent space coloured by class, and the metrics that apply."""
    shape = model.config.input_shape
    x = np.asarray(data.x, dtype=np.float32)
    y = None if data.y is None else np.asarray(data.y)
    labelled = y is not None and np.issubdtype(y.dtype, np.integer)
    sections = []
    if image_shape(shape) is not None:
        rows = _one_per_class(y, min(12, len(x))) if labelled else np.arange(min(12, len(x)))
        sections.append(Section("Reconstructions", f"{len(rows)} examples of {data.name}"
                                + (" across its classes" if labelled else "") + ": input, "
                                + ("the corrupted input the model was trained to clean, " if model.config.noise else "")
                                + "reconstruction (deterministic: the posterior mean for a VAE).",
                                [("reconstructions", image_rows(_reconstruction_rows(model, x[rows]), shape))]))
    elif shape == (2,):
        full = np.asarray(model.reconstruct(x))
        fig = side_by_side([("data", lambda ax: ax.scatter(x[:, 0], x[:, 1], s=3)),
                            ("reconstruction", lambda ax: ax.scatter(full[:, 0], full[:, 1], s=3, c="C1"))])
        sections.append(Section("Reconstructions", f"{len(x)} points and their reconstructions.",
                                [("reconstructions", fig)]))
    view, how = latent_2d(model, x)
    names = _class_names(data) if labelled else None
    sections.append(Section("Latent space", f"{how} of {len(x)} examples" + (", coloured by class." if labelled else "."),
                            [("latent space", scatter(view, y if labelled else None, how, categorical=labelled,
                                                      class_names=names))]))
    variational = isinstance(model, VariationalAutoencoder)
    report = evaluate(model, data, labels=y if labelled else None, log_likelihood_samples=100 if variational else 0,
                      log_likelihood_examples=300, jacobian_examples=200, compression_sizes=False)
    caption = f"ae.evaluate on {len(x)} examples of {data.name} (a seeded, class-stratified subset); units in the names"
    if variational:
        caption += "; the importance-sampled log-likelihood uses K=100 samples on the first 300 of them"
    sections.append(Section("Metrics", caption + ".", tables=[table([[k, v] for k, v in flatten(report)],
                                                                    ["metric", "value"])]))
    return sections


def _reconstruction_rows(model, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """input, (corrupted input,) reconstruction of the input the model would see in training."""
    rows = [("input", x)]
    if model.config.noise is not None and model.config.noise_level > 0:
        with torch.random.fork_rng(devices=[]):  # the same corruption every time the report is written
            torch.manual_seed(0)
            x = corrupt(torch.from_numpy(x), model.config.noise, model.config.noise_level).numpy()
        rows.append(("corrupted", x))
    rows.append(("reconstruction", np.asarray(model.reconstruct(x))))
    return rows


def _samples(model) -> Section | None:
    """New examples: a VAE's prior (a conditional one's four per class, one class per column), or the
    Gaussian ae.fit fitted to a plain autoencoder's codes."""
    shape = model.config.input_shape
    if image_shape(shape) is None:
        return None
    variational = isinstance(model, VariationalAutoencoder)
    if not variational and not bool(model.code_cholesky.any()):
        return None
    classes = min(model.config.n_classes, 16)
    labels = np.tile(np.arange(classes), 4) if classes else None
    samples = model.sample(len(labels) if classes else 32, seed=0, labels=labels)
    source = "draws z ~ N(0, I) from the prior" if variational else \
        "codes drawn from the Gaussian fitted to the training codes (the model has no prior)"
    if classes:
        source += f", with the class of each column (0 to {classes - 1})"
    title = "Samples from the prior" if variational else "Samples from the codes' Gaussian"
    return Section(title, f"{len(samples)} decoded {source}.",
                   [("samples", image_grid(samples, shape, ncols=classes or 16))])


def write_evaluation(path: Path, result: dict, title: str, command: str = "") -> Path:
    """An HTML page of ae.evaluate's result: the metrics table and, when the result has
    "rate_distortion" (codec.rate_distortion's curves), its plot and table."""
    page = Page(title, intro=f"{result.get('kind', '')} on {result.get('examples', '?')} examples; units in the names.")
    curves = result.get("rate_distortion")
    if curves:
        rows = [[p["codec"], p["setting"], p["bytes_per_example"], p.get("header_bytes", ""),
                 p.get("mean_psnr_db", ""), p.get("psnr_db", ""), p["mse_per_feature"]]
                for pts in curves.values() for p in pts]
        page.sections.append(Section(
            "Rate and distortion",
            "Real file sizes: for the autoencoder and PCA codecs the file's total divided by the number of "
            "examples (the header's bytes, shared by all, stated apart); for PNG, JPEG and WebP the mean size of "
            "one file per image. Decoded values are clipped to [0, 1]. PSNR: mean over examples, and of the mean MSE.",
            [("rate-distortion curves", rate_distortion(curves))],
            [table(rows, ["codec", "setting", "bytes per example", "header bytes", "mean PSNR (dB)", "PSNR of mean MSE (dB)",
                          "MSE per feature"])]))
    page.sections.append(Section("Metrics", tables=[table([[k, v] for k, v in flatten(result)], ["metric", "value"])]))
    page.footer = f"Produced by: {command}" if command else ""
    return page.write(path)
