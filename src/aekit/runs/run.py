"""Run folders and the Run object.

A run folder is self-describing:

    config.json                 format, version, the model's configuration, the training options,
                                the data source and its scaling, the command that made it
    weights.safetensors         the model's weights and, while it trains, everything resume needs
                                (optimizer, random generators, history: training/state.py), all in
                                one file replaced by one rename after every epoch: the folder is
                                always one consistent epoch
    history.csv, metrics.json   one row per epoch (a copy for people); the final loss terms with units
    report.html                 written by the CLI (report/run.py)

`load(folder)` gives the model; `load_run(folder)` gives a Run with everything
above, and `Run.dataset()` replays the recorded data source with the recorded scaling.
Everything read from a folder is checked (a tampered file gives a CheckpointError
naming the file and the field), and a folder never makes the tool reach the network.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import typing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from aekit import data as datasets
from aekit._version import __version__
from aekit.anomaly import detector as detection
from aekit.data import Dataset
from aekit.data.base import validate_scaling
from aekit.data.schema import ROLE_OPTIONS, as_schema
from aekit.errors import CheckpointError, ConfigError, DataError
from aekit.models.autoencoder import Autoencoder
from aekit.models.config import ModelConfig
from aekit.models.kinds import get_kind, model_from_config
from aekit.runs import fields as checks
from aekit.runs.storage import (
    read_json,
    read_some_tensors,
    read_tensor_metadata,
    read_tensor_shapes,
    write_json,
    write_tensors,
    write_text,
)

FORMAT = "aekit-run"
LEGACY_FORMATS = ("autoencoders-run",)  # the same folders, written before the package was renamed aekit
# 1: the training state in training_state.safetensors; 2: in weights.safetensors; 3: the model uses an option
# that version-2 readers may not know (LATER_OPTIONS). A folder says the lowest version that describes it.
FORMAT_VERSION = 3
# Model options added after format 2 was fixed, and the format version that introduced them. write_config leaves
# one out of config.json while it holds its default (reading fills the default back in, as for runs written
# before the option existed), and a folder whose model uses one gets that format_version: an aekit that reads
# only older versions then refuses it by its version ("a newer version needs a newer aekit"), not by an unknown
# field deep in the model section, and a folder that uses none stays readable by every version-2 reader.
LATER_OPTIONS = dict.fromkeys(("posterior", "kl_warmup_epochs", "free_bits", "objective", "iwae_samples", "n_classes",
                               "label_dropout", "dropout", "input_clip", "categorical_groups", "code_noise",
                               "rate_weight"), 3)
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
HISTORY = "history.csv"
METRICS = "metrics.json"
REPORT = "report.html"
LOCK = ".lock"
STATE_PREFIX = "state."  # tensors of the training state inside weights.safetensors
DETECTOR_PREFIX = detection.PREFIX  # and of the anomaly detector fitted at the end of training
# And of a saved scikit-learn estimator's own fitted arrays (aekit.sklearn: its scaler, training scores);
# its parameters and the rest are config.json's "estimator" section.
ESTIMATOR_PREFIX = "estimator."
# Options of a recorded data source that could make a replay reach the network or write
# somewhere: dropped when a run replays its source (only the user's own command gives them).
_UNSAFE_SOURCE_OPTIONS = ("mirrors", "data_dir", "download")

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
    if not isinstance(data, dict) or data.get("format") not in (FORMAT, *LEGACY_FORMATS):
        raise CheckpointError(f"{path} was not written by aekit (no format {FORMAT!r})")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this aekit reads versions 1 to {FORMAT_VERSION}: "
            "a newer version needs a newer aekit"
        )
    return checks.check_fields(data, checks.CONFIG, path)


def write_config(folder: Path, model: Autoencoder, **sections) -> None:
    """config.json: format, version, the model's configuration and any extra sections."""
    section, version = model_section(model.config)
    write_json(Path(folder) / CONFIG, {"format": FORMAT, "format_version": version, "library_version": __version__,
                                       "model": section, **sections})


def model_section(config: ModelConfig) -> tuple[dict, int]:
    """The model's configuration as config.json holds it (LATER_OPTIONS left out at their defaults) and the
    run-folder format version it needs."""
    section = json.loads(json.dumps(config.to_json()))
    defaults = json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(ModelConfig)
                                      if f.name in LATER_OPTIONS}))
    used = [name for name in LATER_OPTIONS if section[name] != defaults[name]]
    for name in set(LATER_OPTIONS) - set(used):
        del section[name]
    return section, max([2, *(LATER_OPTIONS[name] for name in used)])


def save(model, folder, overwrite: bool = False) -> Path:
    """Save a model (trained in memory, e.g. without `out=`) as a run folder that `load` reads back; or
    a fitted estimator of aekit.sklearn, by its own `save` (model, preprocessing, detector, parameters).

    Refuses a folder that already holds a run unless overwrite=True, and a non-empty folder
    that holds something else.
    """
    if isinstance(model, Autoencoder):
        return write_run(folder, model, overwrite)
    if callable(getattr(model, "save", None)) and hasattr(model, "get_params"):  # aekit.sklearn: a stage above
        return model.save(folder, overwrite=overwrite)
    raise ConfigError(f"ae.save saves a model (ae.build, ae.fit, ae.load) or a fitted estimator of aekit.sklearn, "
                      f"got {type(model).__name__}")


def write_run(folder, model: Autoencoder, overwrite: bool = False, sections: dict | None = None,
              tensors: dict | None = None, metadata: dict | None = None, history: History | None = None) -> Path:
    """A complete run folder: the model's weights with `tensors` and `metadata` in weights.safetensors,
    history.csv, and config.json with `sections` written last (a folder whose config.json is there
    always has its weights: "interrupted before the first epoch" stays true of training only)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} exists and is not a folder")
    if (folder / CONFIG).exists() and not overwrite:
        raise CheckpointError(f"{folder} already holds a run; pass overwrite=True to replace it")
    if folder.is_dir() and not (folder / CONFIG).exists() and any(folder.iterdir()):
        raise CheckpointError(f"{folder} is not empty and holds no run of ours: choose an empty or new folder")
    folder.mkdir(parents=True, exist_ok=True)
    write_tensors(folder / WEIGHTS, {**model.state_dict(), **(tensors or {})}, metadata)  # a failure: old run intact
    for stale in (CONFIG, HISTORY, METRICS, REPORT):  # of the run it replaces
        (folder / stale).unlink(missing_ok=True)
    if history:
        write_text(folder / HISTORY, history.to_csv())
    write_config(folder, model, **(sections or {}))
    return folder


def save_weights(model: Autoencoder, folder: Path) -> None:
    write_tensors(Path(folder) / WEIGHTS, model.state_dict())


def _model_shapes(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """name -> (shape, dtype) of a model's tensors, from a model built on the meta device (no memory)."""
    with torch.device("meta"):
        model = model_from_config(config)
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def load_weights(model: Autoencoder, path: Path) -> None:
    """Copy the model's tensors of a weights file into model, refusing any name, shape, dtype or value mismatch."""
    tensors = read_some_tensors(path, check_weights_file(model.config, path))
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or infinite values; refusing these weights")
    model.load_state_dict(tensors, strict=False)  # strict in effect: check_weights_file compared every name


# Tensors a model has that older run folders may lack: the model keeps its defaults for them.
OPTIONAL_TENSORS = ("code_mean", "code_cholesky")  # the plain autoencoder's code density (models.py)


def check_weights_file(config: ModelConfig, path: Path) -> list[str]:
    """The weights file holds exactly the tensors of config's model (read from its header only);
    returns the names of the model's tensors it holds."""
    ours = (STATE_PREFIX, DETECTOR_PREFIX, ESTIMATOR_PREFIX)
    stored = {k: v for k, v in read_tensor_shapes(path).items() if not k.startswith(ours)}
    expected = {k: v for k, v in _model_shapes(config).items() if k in stored or k not in OPTIONAL_TENSORS}
    missing, foreign = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or foreign:
        raise CheckpointError(f"{path} does not match the model in config.json: missing {missing[:5]}, unexpected {foreign[:5]}")
    for name, (shape, dtype) in expected.items():
        if stored[name][0] != shape or _DTYPES.get(stored[name][1]) != dtype:
            raise CheckpointError(f"{path}: tensor {name!r} has shape {stored[name][0]} {stored[name][1]}, "
                                  f"expected {shape} {dtype}")
    return list(expected)


_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}


def model_config(data: dict, folder: Path) -> ModelConfig:
    """The ModelConfig of a config.json document: every field's JSON type (from ModelConfig's annotations),
    a known kind, then ModelConfig's own ranges and combinations."""
    where = Path(folder) / CONFIG
    section = checks.check_annotated(data["model"], typing.get_type_hints(ModelConfig), where, "model.",
                                     required=("kind", "input_shape"))
    try:
        get_kind(section["kind"])
        return ModelConfig.from_json({**section, "input_shape": tuple(section["input_shape"])})
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{where}: the model section is invalid ({e})") from None


def load(folder, device: str | None = None) -> Autoencoder:
    """The trained model of a run folder (config.json + weights.safetensors), in eval mode.

    The weights file's header is checked against the configuration before the model
    is built, so a tampered config.json cannot make the tool allocate a huge model.
    """
    folder = Path(folder)
    config = model_config(read_config(folder), folder)
    if not (folder / WEIGHTS).exists():
        raise CheckpointError(f"{folder} holds no weights: its training was interrupted before the first epoch ended")
    check_weights_file(config, folder / WEIGHTS)
    model = model_from_config(config)
    load_weights(model, folder / WEIGHTS)
    if device is not None:
        model.to(device)
    return model.eval()


def record_segment(folder: Path, training: dict, command: str | None, started_at_epoch: int) -> None:
    """Append a training segment (a fresh start or a resume) to config.json; `training` becomes the
    run's current training options."""
    folder = Path(folder)
    config = read_config(folder)
    segment = {"started": datetime.now().isoformat(timespec="seconds"), "command": command,
               "training": training, "started_at_epoch": started_at_epoch}
    segments = config.get("segments") if isinstance(config.get("segments"), list) else []
    first = {} if segments else {"command": command}  # "command": the one that started the run
    write_json(folder / CONFIG, {**config, **first, "training": training, "segments": [*segments, segment]})


def finish_segment(folder: Path, epochs_reached: int) -> None:
    """Record how many epochs (all stages) the run has when the current segment ends."""
    config = read_config(folder)
    segments = config.get("segments") or [{}]
    segments[-1] = {**segments[-1], "epochs_reached": epochs_reached}
    write_json(Path(folder) / CONFIG, {**config, "segments": segments})


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
    command: str | None = None  # the command that started the run
    # Every training segment (the first, then each resume): started, command, training options,
    # started_at_epoch, epochs_reached.
    segments: list[dict] = field(default_factory=list)
    # The anomaly detector of the final weights (score, threshold learnt on the training rows,
    # held-out scores for novelty thresholds); None for a run whose training did not finish.
    detector: detection.Detector | None = None
    # The class of the aekit.sklearn estimator the folder was saved from (its "estimator" section), or None.
    estimator: str | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def why_no_detector(self) -> str:
        """Why the run has no anomaly detector, in words: "its training did not finish" only when it did not."""
        if self.estimator is not None:
            return (f"it was saved from an {self.estimator}, which has none: save a fitted AutoencoderOutlierDetector"
                    if self.estimator != "AutoencoderOutlierDetector" else
                    "its AutoencoderOutlierDetector scores with a smoothing a run's detector does not apply: "
                    "load it with AutoencoderOutlierDetector.load")
        if not self.segments and not self.training:
            return ("it was saved with ae.save from a model, and a detector is fitted on the training data: train "
                    "with ae.fit(..., out=...) or `aekit train`, or save a fitted AutoencoderOutlierDetector")
        if self.segments and "epochs_reached" not in self.segments[-1]:
            return "its training did not finish (resume it, or train again)"
        return "it was trained by an aekit that fitted no detector (train it again)"

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
        run's scaling, so that new data reach the model in the units it was trained on.

        A recorded source is replayed as a named dataset or a local path only, never with the
        recorded mirrors, data folder or download permission: a run folder cannot make the tool
        reach the network or write anywhere. Options given here (the user's own) are used as given.
        """
        if data is None:
            if not self.source:
                raise DataError(f"{self.folder} records no data source (it was trained from arrays): pass the data")
            data = self.source["name"]
            recorded = {k: v for k, v in self.source.get("options", {}).items() if k not in _UNSAFE_SOURCE_OPTIONS}
            if data in datasets.SOURCES and "download" in datasets.SOURCES[data].options:
                recorded["download"] = False
            options = {**recorded, **(options or {})}
        return load_with_scaling(data, options or {}, self.scaling, self.data.get("table"))


def load_run(folder, device: str | None = None) -> Run:
    """The whole run in `folder`: model (in eval mode), configuration, data source, scaling, history, metrics.

    Every section is checked field by field (fields.py) and against the model before it is used."""
    folder = Path(folder)
    where = folder / CONFIG
    config = read_config(folder)
    model = load(folder, device)
    data = check_data_section(config.get("data") or {}, model.config, where)
    training = checks.check_fields(config.get("training") or {}, checks.TRAINING, where, "training.")
    segments = checks.check_rows(config.get("segments", []), checks.SEGMENT, where, "segments")
    for i, segment in enumerate(segments):
        checks.check_fields(segment.get("training") or {}, checks.TRAINING, where, f"segments[{i}].training.")
    estimator = checks.check_fields(config.get("estimator") or {}, checks.ESTIMATOR, where, "estimator.").get("class")
    return Run(folder, model, training, data, read_history(folder), read_metrics(folder), config.get("command"),
               segments, read_detector(folder, model.config), estimator)


def check_data_section(data: dict, config: ModelConfig, where: Path) -> dict:
    """config.json's data section: its fields, the scaling and the table schema against the model's inputs
    (a schema of another width would meet the model only as a broadcasting error), the recorded source."""
    checks.check_fields(data, checks.DATA, where, "data.")
    if data.get("scaling") is not None:
        try:
            validate_scaling(data["scaling"], config.input_size)
        except DataError as e:
            raise CheckpointError(f"{where}: field 'data.scaling' is invalid ({e})") from None
    if data.get("table") is not None:
        try:
            schema = as_schema(data["table"])
        except DataError as e:
            raise CheckpointError(f"{where}: field 'data.table' is invalid ({e})") from None
        width = len(schema.encoded_names())
        if width != config.input_size:
            raise CheckpointError(f"{where}: field 'data.table' encodes {width} model inputs, but the model takes "
                                  f"{config.input_size} (field 'model.input_shape' {list(config.input_shape)})")
        groups = tuple(tuple(g) for g in schema.softmax_groups())
        if config.categorical_groups and config.categorical_groups != groups:
            raise CheckpointError(f"{where}: field 'model.categorical_groups' {list(config.categorical_groups)} "
                                  f"disagrees with the one-hot columns of field 'data.table' {list(groups)}")
    if data.get("source") is not None:
        checks.check_fields(data["source"], checks.SOURCE, where, "data.source.")
    return data


def read_detector(folder: Path, config: ModelConfig) -> detection.Detector | None:
    """The detector stored with the final weights, checked: its metadata's fields, the calibration scores'
    shape from the file's header before they are read, then the detector's own checks (the reference rows,
    weights and typical terms against the model's inputs); None when the run has none."""
    path = Path(folder) / WEIGHTS
    metadata = read_tensor_metadata(path).get("detector")
    if metadata is None:
        return None
    checks.check_fields(metadata, checks.DETECTOR, path, "detector.")
    shapes = {k: v[0] for k, v in read_tensor_shapes(path).items() if k.startswith(DETECTOR_PREFIX)}
    calibration = shapes.get(DETECTOR_PREFIX + "calibration")
    if calibration is not None and len(calibration) != 1:
        raise CheckpointError(f"{path}: tensor '{DETECTOR_PREFIX}calibration' has shape {list(calibration)}, "
                              "expected one score per calibration row [N]")
    return detection.Detector.from_stored(read_some_tensors(path, list(shapes)), metadata, config, str(path))


def read_history(folder: Path) -> History:
    """The run's history: from the training state in the weights file (always in step with the
    weights), else from history.csv (a saved model, or a folder of format 1); every row checked."""
    meta = read_tensor_metadata(folder / WEIGHTS)
    rows = meta.get("state", {}).get("history") if isinstance(meta.get("state"), dict) else None
    if rows is not None:
        for i, row in enumerate(checks.check_rows(rows, {}, folder / WEIGHTS, "state.history")):
            checks.check_history_row(row, folder / WEIGHTS, f"state.history[{i}]")
        return History(rows)
    if not (folder / HISTORY).is_file():
        return History()
    try:
        history = History.from_csv((folder / HISTORY).read_text(encoding="utf-8"))
    except (ValueError, KeyError, UnicodeDecodeError, csv.Error) as e:
        raise CheckpointError(f"{folder / HISTORY}: not a history of ours ({e})") from None
    for i, row in enumerate(history):
        checks.check_history_row(row, folder / HISTORY, f"row {i + 1}")
    return history


def read_metrics(folder: Path) -> dict:
    """metrics.json: a mapping of splits to loss terms (numbers), units and the like; {} when absent."""
    if not (folder / METRICS).is_file():
        return {}
    metrics = read_json(folder / METRICS)
    if not isinstance(metrics, dict):
        raise CheckpointError(f"{folder / METRICS}: must be a JSON object, got {type(metrics).__name__}")
    checks.check_fields(metrics, checks.METRICS, folder / METRICS)
    for split in ("train", "validation"):
        terms = metrics.get(split, {})
        if not isinstance(terms, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in terms.values()):
            raise CheckpointError(f"{folder / METRICS}: field {split!r} must map loss terms to numbers")
    return metrics


def load_with_scaling(name, options: dict, scaling: dict | None, table: dict | None = None) -> Dataset:
    """A dataset whose raw values go through a recorded scaling (unless the options name a scale); a
    table file is encoded with the recorded table schema (the same columns and categories as in training)."""
    if table is not None and "schema" not in options and datasets.is_table_source(name):
        # the schema fixes every column's role: the role options it was inferred with are not replayed
        options = {**{k: v for k, v in options.items() if k not in ROLE_OPTIONS}, "schema": table}
    if scaling and scaling.get("method") not in (None, "none") and "scale" not in options:
        ds = datasets.load(name, scale="none", **options)
        ds.x = torch.from_numpy(datasets.apply_scaling(np.asarray(ds.x), scaling))
        ds.scaling = scaling
        if ds.source is not None:  # the source as given: replayed, it gets this scaling again (a DataFrame has none)
            ds.source = {**ds.source, "options": options}
        return ds
    return datasets.load(name, **options)
