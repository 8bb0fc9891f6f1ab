"""report.html for one run folder: loss curves, reconstructions, latent space, samples, metrics, command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .. import datasets
from ..errors import AutoencodersError
from ..evaluate import evaluate
from ..metrics import latent_2d
from ..models import VariationalAutoencoder
from ..runs import REPORT, Run, load_run
from .figures import image_grid, image_rows, image_shape, loss_curves, rate_distortion, scatter, side_by_side
from .html import Page, Section, table


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


def run_data(run: Run, limit: int = 2000):
    """Up to `limit` rows (a seeded random subset, in order) of the run's recorded data, or None."""
    try:
        ds = run.dataset()
    except (AutoencodersError, OSError):  # trained from arrays, or the data moved since: no data figures
        return None
    if len(ds) > limit:
        rows = np.random.default_rng(0).choice(len(ds), limit, replace=False)
        rows.sort()
        ds = datasets.Dataset(ds.x[rows], None if ds.y is None else ds.y[rows], ds.name, ds.scaling, ds.info)
    return ds


def write_report(folder, data=None) -> Path:
    """Write folder/report.html for a run; `data` (a Dataset) overrides the recorded source."""
    run = load_run(folder)
    model, history, metrics = run.model, run.history, run.metrics
    data = data if data is not None else run_data(run)
    page = Page(f"autoencoders run: {model.config.kind} ({run.folder.name})",
                intro=f"{model.config.kind}: {sum(p.numel() for p in model.parameters()):,} parameters, "
                      f"input {model.config.input_shape}, latent_dim {model.config.latent_dim}.")
    options = {k: v for k, v in model.config.to_json().items() if k not in ("extra",)}
    page.sections.append(Section("Configuration", tables=[
        table([[k, json.dumps(v)] for k, v in options.items()], ["option", "value"]),
        table([[k, json.dumps(v)] for k, v in run.training.items()], ["training option", "value"]),
    ]))
    if history:
        page.sections.append(Section("Loss curves", "Every loss term per epoch, train (solid) and validation (dashed); "
                                     "per example, as in history.csv.", [("loss curves", loss_curves(history))]))
    if metrics:
        rows = [[k, v] for k, v in flatten({"validation": metrics.get("validation", {}), "train": metrics.get("train", {})})]
        units = metrics.get("units", {})
        page.sections.append(Section("Final loss terms", "metrics.json: " + "; ".join(f"{k}: {v}" for k, v in units.items()),
                                     tables=[table(rows, ["term", "value"])]))
    if data is not None:
        page.sections += _data_sections(model, data)
    if isinstance(model, VariationalAutoencoder) and image_shape(model.config.input_shape) is not None:
        samples = model.sample(32, generator=torch.Generator().manual_seed(0)).cpu().numpy()
        page.sections.append(Section("Samples from the prior", "Decoded draws z ~ N(0, I).",
                                     [("samples", image_grid(samples, model.config.input_shape, ncols=16))]))
    page.footer = f"Produced by: {run.command}" if run.command else f"Run folder: {run.folder}"
    return page.write(run.folder / REPORT)


def _data_sections(model, data) -> list[Section]:
    """Reconstructions, the latent space and ae.evaluate on up to 2,000 examples of data."""
    shape = model.config.input_shape
    x = np.asarray(data.x[: min(len(data), 2000)], dtype=np.float32)
    y = None if data.y is None else np.asarray(data.y)[: len(x)]
    recon = np.asarray(model.reconstruct(x[:12]))
    sections = []
    if image_shape(shape) is not None:
        fig = image_rows([("input", x[:12]), ("reconstruction", recon)], shape)
    elif shape == (2,):
        full = np.asarray(model.reconstruct(x))
        fig = side_by_side([("data", lambda ax: ax.scatter(x[:, 0], x[:, 1], s=3)),
                            ("reconstruction", lambda ax: ax.scatter(full[:, 0], full[:, 1], s=3, c="C1"))])
    else:
        fig = None
    if fig is not None:
        sections.append(Section("Reconstructions", f"Examples of {data.name} and their reconstructions "
                                "(deterministic: the posterior mean for a VAE).", [("reconstructions", fig)]))
    view, how = latent_2d(model, x)
    categorical = y is not None and np.issubdtype(y.dtype, np.integer)
    sections.append(Section("Latent space", f"{how} of {len(x)} examples" + (", coloured by label." if y is not None else "."),
                            [("latent space", scatter(view, y, how, categorical=categorical))]))
    report = evaluate(model, data if len(data) <= 2000 else x, labels=y, log_likelihood_samples=100,
                      log_likelihood_examples=300, jacobian_examples=200, compression_sizes=False)
    sections.append(Section("Metrics", "ae.evaluate on up to 2,000 examples of the data (log-likelihood: "
                            "K=100 on 300 examples); units in the names.",
                            tables=[table([[k, v] for k, v in flatten(report)], ["metric", "value"])]))
    return sections


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
