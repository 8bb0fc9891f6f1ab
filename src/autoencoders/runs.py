"""Run folders and the Run object.

A run folder is self-describing:

    config.json                 format, version, the model's configuration, the training options,
                                the data source and its scaling, the command that made it
    weights.safetensors         the model's weights
    training_state.safetensors  what resume needs (training/state.py)
    history.csv, metrics.json   one row per epoch; the final loss terms with their units
    report.html                 written by the CLI (report/run.py)

`load(folder)` gives the model; `load_run(folder)` gives a Run with everything
above, and `Run.dataset()` replays the recorded data source with the recorded scaling.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import datasets
from ._version import __version__
from .config import ModelConfig
from .datasets import Dataset
from .errors import CheckpointError, ConfigError, DataError
from .kinds import model_from_config
from .models import Autoencoder
from .storage import read_json, read_tensors, write_json, write_tensors

FORMAT = "autoencoders-run"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
STATE = "training_state.safetensors"
HISTORY = "history.csv"
METRICS = "metrics.json"
REPORT = "report.html"

# What each loss term in history.csv and metrics.json measures.
UNITS = {
    "total": "the training objective per example (reconstruction + weighted penalties)",
    "reconstruction": "per example, summed over features: nats for bce/gaussian, squared error for mse",
    "kl": "nats per example, KL(q(z|x) || N(0, I))",
    "sparsity": "per example, before its weight: sum_j |z_j| (l1) or sum_j KL(rho || rho_hat_j) (kl)",
    "contractive": "||J_f(x)||_F^2 per example, before its weight",
    "rate": "bits per example of the code (with its training noise) under the learned per-dimension density, before its weight",
    "mse_per_feature": "mean squared error per feature of the deterministic reconstruction",
}


class History(list):
    """One dict per epoch: stage, epoch, seconds, train_<term>, val_<term>."""

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(row["stage"] for row in self))

    def stage(self, name: str) -> list[dict]:
        return [row for row in self if row["stage"] == name]

    def to_csv(self) -> str:
        columns = list(dict.fromkeys(k for row in self for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self)
        return buf.getvalue()

    @classmethod
    def from_csv(cls, text: str) -> History:
        """The rows of a history.csv, numbers as numbers (empty cells: terms a stage did not have)."""
        rows = []
        for row in csv.DictReader(io.StringIO(text)):
            rows.append({k: (v if k == "stage" else int(v) if k == "epoch" else float(v))
                         for k, v in row.items() if v not in ("", None)})
        return cls(rows)


# ----- config.json and weights -----


def read_config(folder: Path) -> dict:
    """The run's config.json, checked to be ours and of a version we can read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such run folder")
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a run folder: {CONFIG} is missing")
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by autoencoders (no format {FORMAT!r})")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this autoencoders reads up to {FORMAT_VERSION}: upgrade the package"
        )
    return data


def write_run(folder: Path, model: Autoencoder, **sections) -> None:
    """config.json (format, version, the model's configuration, any extra sections) and weights.safetensors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CONFIG, {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
                                 "model": model.config.to_json(), **sections})
    save_weights(model, folder)


def save(model: Autoencoder, folder, overwrite: bool = False) -> Path:
    """Save a model (trained in memory, e.g. without `out=`) as a run folder that `load` reads back.

    Refuses a folder that already holds a run unless overwrite=True, and a non-empty folder
    that holds something else.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} exists and is not a folder")
    if (folder / CONFIG).exists() and not overwrite:
        raise CheckpointError(f"{folder} already holds a run; pass overwrite=True to replace it")
    if folder.is_dir() and not (folder / CONFIG).exists() and any(folder.iterdir()):
        raise CheckpointError(f"{folder} is not empty and holds no run of ours: choose an empty or new folder")
    write_run(folder, model)
    return folder


def save_weights(model: Autoencoder, folder: Path) -> None:
    write_tensors(Path(folder) / WEIGHTS, model.state_dict())


def load_weights(model: Autoencoder, path: Path) -> None:
    """Copy the tensors of a weights file into model, refusing any name, shape or dtype mismatch."""
    tensors = read_tensors(path)
    expected = model.state_dict()
    missing, foreign = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or foreign:
        raise CheckpointError(f"{path} does not match the model in config.json: missing {missing[:5]}, unexpected {foreign[:5]}")
    for name, t in tensors.items():
        if t.shape != expected[name].shape or t.dtype != expected[name].dtype:
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {tuple(t.shape)} {t.dtype}, expected {tuple(expected[name].shape)} {expected[name].dtype}"
            )
    model.load_state_dict(tensors)


def model_config(data: dict, folder: Path) -> ModelConfig:
    """The ModelConfig of a config.json document."""
    try:
        return ModelConfig.from_json({**data["model"], "input_shape": tuple(data["model"]["input_shape"])})
    except (KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{Path(folder) / CONFIG}: the model section is invalid ({e})") from None


def load(folder, device: str | None = None) -> Autoencoder:
    """The trained model of a run folder (config.json + weights.safetensors), in eval mode."""
    folder = Path(folder)
    model = model_from_config(model_config(read_config(folder), folder))
    load_weights(model, folder / WEIGHTS)
    if device is not None:
        model.to(device)
    return model.eval()


def write_metrics(folder: Path, metrics: dict) -> None:
    write_json(Path(folder) / METRICS, metrics)


# ----- the Run object -----


@dataclass
class Run:
    """Everything a run folder holds, read back: the model, its configuration, the training options,
    the recorded data source and scaling, the history and the final metrics."""

    folder: Path
    model: Autoencoder
    training: dict = field(default_factory=dict)  # the fit options it was trained with
    data: dict = field(default_factory=dict)  # source, scaling, sizes, device, precision
    history: History = field(default_factory=History)
    metrics: dict = field(default_factory=dict)
    command: str | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def scaling(self) -> dict | None:
        """How the training data were scaled (applied again to any data given to this run)."""
        return self.data.get("scaling")

    @property
    def source(self) -> dict | None:
        """{"name": dataset name or path, "options": {...}} of the training data, or None (trained from arrays)."""
        return self.data.get("source")

    def dataset(self, data=None, options: dict | None = None) -> Dataset:
        """`data` (a dataset name or path; by default the recorded training source) loaded with the
        run's scaling, so that new data reach the model in the units it was trained on."""
        if data is None:
            if not self.source:
                raise DataError(f"{self.folder} records no data source (it was trained from arrays): pass the data")
            data, options = self.source["name"], {**self.source.get("options", {}), **(options or {})}
        return load_with_scaling(data, options or {}, self.scaling)


def load_run(folder, device: str | None = None) -> Run:
    """The whole run in `folder`: model (in eval mode), configuration, data source, scaling, history, metrics."""
    folder = Path(folder)
    config = read_config(folder)
    model = load(folder, device)
    history = History.from_csv((folder / HISTORY).read_text()) if (folder / HISTORY).is_file() else History()
    metrics = read_json(folder / METRICS) if (folder / METRICS).is_file() else {}
    return Run(folder, model, config.get("training") or {}, config.get("data") or {}, history, metrics,
               config.get("command"))


def load_with_scaling(name, options: dict, scaling: dict | None) -> Dataset:
    """A dataset whose raw values go through a recorded scaling (unless the options name a scale)."""
    if scaling and scaling.get("method") not in (None, "none") and "scale" not in options:
        ds = datasets.load(name, scale="none", **options)
        ds.x = torch.from_numpy(datasets.apply_scaling(np.asarray(ds.x), scaling))
        ds.scaling = scaling
        return ds
    return datasets.load(name, **options)
