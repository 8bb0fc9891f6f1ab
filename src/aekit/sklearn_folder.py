"""A fitted estimator of aekit.sklearn saved as a run folder, and loaded back: JSON and safetensors, no pickle.

    det.save("runs/det")                                   # or ae.save(det, "runs/det")
    det = AutoencoderOutlierDetector.load("runs/det")      # the same scores, bit for bit
    aekit detect runs/det --data new.csv --out scores.csv  # the folder is a run folder (ae.load gives the model)

The folder is runs/run.py's, with one more section and one more tensor prefix:

    config.json          the model; `data`: the scaling as a run records it and, for a DataFrame, the
                         table schema (the columns, their roles and categories), so that `aekit detect`
                         and `ae.load_run(...).dataset(file)` prepare rows as the estimator does;
                         `estimator`: the class, the parameters (get_params) and the fitted scalars
                         (n_features_in_, feature_names_in_, threshold_, the scaler's class and parameters)
    weights.safetensors  the model's weights; the anomaly detector as training stores it (reference rows,
                         scales, calibration scores), with the estimator's threshold_; `estimator.*`: the
                         scaler's arrays, decision_scores_, calibration_scores_
    history.csv          history_
"""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from aekit.anomaly import scores as anomaly
from aekit.anomaly.detector import COMBINED, Detector
from aekit.data.schema import TableSchema, as_schema
from aekit.errors import CheckpointError, ConfigError
from aekit.runs import run as runs
from aekit.runs.fields import Field, check_fields
from aekit.runs.storage import read_some_tensors, read_tensor_shapes
from aekit.sklearn_base import _OwnScaling

PREFIX = runs.ESTIMATOR_PREFIX
# The fitted attributes a folder holds; any other one is refused when saving rather than silently lost.
FITTED = ("model_", "scaler_", "history_", "table_schema_", "n_features_in_", "feature_names_in_",
          "detector_", "decision_scores_", "threshold_", "labels_", "calibration_scores_")
# scikit-learn's scalers as the estimators fit them: the class and the fitted attributes that define it.
SCALERS = {"MinMaxScaler": (MinMaxScaler, ("n_features_in_", "n_samples_seen_", "min_", "scale_", "data_min_",
                                           "data_max_", "data_range_")),
           "StandardScaler": (StandardScaler, ("n_features_in_", "n_samples_seen_", "mean_", "var_", "scale_"))}
# config.json's "estimator" section, field by field (runs/fields.py), before the values below check their meaning.
SECTION = {"class": Field("str", required=True), "params": Field("mapping", required=True),
           "tuples": Field("list", required=True), "fitted": Field("mapping", required=True)}
FITTED_FIELDS = {"n_features_in_": Field("int", 1, required=True), "feature_names_in_": Field("list", null=True),
                 "table": Field("bool"), "scaler": Field("mapping", required=True), "threshold_": Field("number"),
                 "detector_threshold": Field("number")}
SCALER = {"class": Field("str", null=True, choices=("_OwnScaling", *SCALERS)), "params": Field("mapping"),
          "tuples": Field("list"), "values": Field("mapping")}


class RunFolderMixin:
    """`save(folder)` and `Class.load(folder)`: the estimator as a run folder (see this module)."""

    def save(self, folder, overwrite: bool = False) -> Path:
        """Write the fitted estimator to `folder` as a run folder (JSON and safetensors, never pickle):
        `type(self).load(folder)` gives it back with the same scores, `aekit detect folder --data file`
        scores a file as it does, and `ae.load(folder)` gives its model. Refuses a folder that already
        holds a run unless overwrite=True, and a non-empty folder that holds something else."""
        return save_estimator(self, folder, overwrite)

    @classmethod
    def load(cls, folder):
        """The estimator saved in `folder` by `save` (or ae.save); CheckpointError naming the file and the
        field when the folder holds another class, a run trained otherwise, or a damaged value."""
        return load_estimator(cls, folder)


# ----- saving -----


def save_estimator(est, folder, overwrite: bool = False) -> Path:
    """The estimator's run folder (RunFolderMixin.save)."""
    if getattr(est, "model_", None) is None:
        raise ConfigError(f"this {type(est).__name__} is not fitted yet: call fit before save")
    unknown = [k for k in vars(est) if k.endswith("_") and not k.startswith("_") and k not in FITTED]
    if unknown:
        raise ConfigError(f"{type(est).__name__} has fitted attributes {unknown} that a run folder does not hold yet")
    params, tuples = _params_json(est.get_params(deep=False))
    scaler, tensors = _scaler_state(est.scaler_)
    fitted = {"n_features_in_": int(est.n_features_in_), "table": est.table_schema_ is not None,
              "feature_names_in_": [str(c) for c in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None,
              "scaler": scaler}
    metadata = None
    if hasattr(est, "threshold_"):  # the detector
        fitted["threshold_"] = float(est.threshold_)
        for name in ("decision_scores_", "calibration_scores_"):  # copies: the detector may share them
            if hasattr(est, name):
                tensors[PREFIX + name] = torch.from_numpy(np.array(getattr(est, name), dtype=np.float64))
        if est.detector_ is not None:
            fitted["detector_threshold"] = float(est.detector_.threshold)
        detector = _run_detector(est)
        if detector is not None:
            tensors.update(detector.tensors())
            metadata = {"detector": detector.metadata()}
    data = {"scaling": _run_scaling(est.scaler_), "source": None, "table": _table(est),
            "n_train": int(len(est.decision_scores_)) if hasattr(est, "decision_scores_") else None}
    section = {"class": type(est).__name__, "params": params, "tuples": tuples, "fitted": fitted}
    return runs.write_run(folder, est.model_, overwrite, {"data": data, "estimator": section}, tensors, metadata,
                          est.history_)


def _params_json(params: dict) -> tuple[dict, list[str]]:
    """get_params as JSON, and the paths ("hidden", "options/shape") of the tuples in it (JSON has lists)."""
    tuples: list[str] = []

    def plain(value, path: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, (list, tuple)):
            if isinstance(value, tuple):
                tuples.append(path)
            return [plain(v, f"{path}/{i}") for i, v in enumerate(value)]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {k: plain(v, f"{path}/{k}") for k, v in value.items()}
        if isinstance(value, np.random.RandomState) and path == "random_state":
            _, keys, pos, has_gauss, cached = value.get_state(legacy=True)
            return {"numpy_random_state": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                                           "cached_gaussian": float(cached)}}
        raise ConfigError(f"parameter {path.split('/')[0]} holds {value!r}, which a run folder cannot store as JSON")

    return {name: plain(value, name) for name, value in params.items()}, tuples


def _scaler_state(scaler) -> tuple[dict, dict]:
    """The scaler as JSON (class, parameters, scalars) and its arrays as tensors."""
    if scaler is None:
        return {"class": None}, {}
    if isinstance(scaler, _OwnScaling):  # its scaling_ is the run's data.scaling
        return {"class": "_OwnScaling", "params": {"method": scaler.method}}, {}
    name = type(scaler).__name__
    if name not in SCALERS or type(scaler) is not SCALERS[name][0]:
        raise ConfigError(f"a run folder cannot hold a scaler of type {name}")
    values, tensors = {}, {}
    for attribute in SCALERS[name][1]:
        value = getattr(scaler, attribute)
        if isinstance(value, (np.ndarray, np.generic)):  # NumPy scalars too: their type comes back
            tensors[f"{PREFIX}scaler.{attribute}"] = torch.from_numpy(np.array(value))  # a copy, 0-d kept
        else:
            values[attribute] = None if value is None else int(value)
    params, tuples = _params_json(scaler.get_params())
    return {"class": name, "params": params, "tuples": tuples, "values": values}, tensors


def _run_scaling(scaler) -> dict:
    """The scaling as a run records it (data/base.py), so `aekit detect` scales rows as the estimator does.
    MinMaxScaler(clip=True) (reconstruction='bce') clips where the run's 'minmax' does not."""
    if scaler is None:
        return {"method": "none"}
    if isinstance(scaler, _OwnScaling):
        return scaler.scaling_
    if isinstance(scaler, MinMaxScaler):
        return {"method": "minmax", "min": scaler.data_min_.tolist(), "max": scaler.data_max_.tolist()}
    return {"method": "standard", "mean": scaler.mean_.tolist(), "std": scaler.scale_.tolist()}


def _table(est) -> dict | None:
    """The table schema of a DataFrame: the estimator's own, or for numeric columns all of them as numbers
    (a file's other columns are then left out, as the estimator would refuse them)."""
    if est.table_schema_ is not None:
        return est.table_schema_.to_json()
    if not hasattr(est, "feature_names_in_") or est.input_shape is not None:
        return None
    names = [str(c) for c in est.feature_names_in_]
    # missing="error": the estimator refuses empty cells of an all-numeric frame too.
    return TableSchema(features=names, numeric=names, categorical={}, roles=dict.fromkeys(names, "numeric"),
                       missing="error").to_json()


def _run_detector(est) -> Detector | None:
    """The run's detector, as `aekit detect` applies it: the estimator's, with its threshold_ (in novelty mode
    the conformal one); None for a smoothing other than the runs' 1 pixel."""
    if est.detector_ is not None:
        return dataclasses.replace(est.detector_, threshold=float(est.threshold_))
    if est.anomaly_score == "smoothed_squared_error" and est.smoothing != 1.0:
        return None
    calibration = getattr(est, "calibration_scores_", np.zeros(0))
    return Detector(est.anomaly_score, float(est.contamination), float(est.threshold_), calibration)


# ----- loading -----


def load_estimator(cls, folder):
    """The estimator of class cls saved in folder (RunFolderMixin.load), every field checked."""
    folder = Path(folder)
    where = folder / runs.CONFIG
    section = runs.read_config(folder).get("estimator")
    if section is None:
        raise CheckpointError(f"{folder} holds a run trained with ae.fit or `aekit train`, not a saved "
                              f"{cls.__name__}: read it with ae.load_run (or ae.load for its model)")
    if not isinstance(section, dict):
        raise CheckpointError(f"{where}: field 'estimator' must be a mapping")
    if not isinstance(section.get("class"), str):
        raise CheckpointError(f"{where}: field 'estimator.class' must be the name of an estimator's class")
    if section["class"] != cls.__name__:
        raise CheckpointError(f"{folder} holds a saved {section.get('class')}, not an {cls.__name__}: "
                              f"load it with {section.get('class')}.load")
    check_fields(section, SECTION, where, "estimator.")
    check_fields(section["fitted"], FITTED_FIELDS, where, "estimator.fitted.")
    check_fields(section["fitted"]["scaler"], SCALER, where, "estimator.fitted.scaler.")
    run = runs.load_run(folder)
    names = [k for k in read_tensor_shapes(folder / runs.WEIGHTS) if k.startswith(PREFIX)]
    tensors = {k[len(PREFIX):]: v for k, v in read_some_tensors(folder / runs.WEIGHTS, names).items()}
    est = _with_params(cls, section, where, run.model.config)
    fitted = _mapping(section, "fitted", where)
    est.model_, est.history_ = run.model, run.history
    if fitted.get("table") is True and run.data.get("table") is None:
        raise CheckpointError(f"{where}: field 'estimator.fitted.table' says the estimator has a table schema, "
                              "but 'data.table' holds none")
    est.table_schema_ = as_schema(run.data["table"]) if fitted.get("table") is True else None
    width = _input_width(est, fitted, where, run.model.config.input_size)
    est.scaler_ = _scaler(_mapping(fitted, "scaler", where, "estimator.fitted"), tensors, run.data.get("scaling"),
                          width, where)
    if hasattr(cls, "decision_function"):  # the detector
        _detector_state(est, fitted, tensors, run, where)
    return est


def _mapping(section: dict, name: str, where: Path, parent: str = "estimator") -> dict:
    value = section.get(name)
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: field '{parent}.{name}' must be a mapping, got {type(value).__name__}")
    return value


def _with_params(cls, section: dict, where: Path, config):
    """cls(**params), the parameters checked as fit checks them and against the stored model."""
    params = _params_back(_mapping(section, "params", where), section.get("tuples"), where, "estimator")
    try:
        est = cls(**params)
        est._validate_params()
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: field 'estimator.params' is invalid ({e})") from None
    for name, stored in (("kind", config.kind), ("latent_dim", config.latent_dim)):
        if getattr(est, name) is not None and getattr(est, name) != stored:
            raise CheckpointError(f"{where}: field 'estimator.params.{name}' is {getattr(est, name)!r}, but the "
                                  f"model section says {stored!r}")
    return est


def _params_back(params: dict, tuples, where: Path, field: str) -> dict:
    """_params_json's output as parameters again: its tuples and a RandomState rebuilt."""
    if not isinstance(tuples, list) or not all(isinstance(p, str) for p in tuples):
        raise CheckpointError(f"{where}: field '{field}.tuples' must be a list of parameter paths")
    params = dict(params)
    for path in sorted(tuples, key=lambda p: -p.count("/")):  # the innermost first
        *parents, last = path.split("/")
        try:
            holder = params
            for key in parents:
                holder = holder[int(key) if isinstance(holder, list) else key]
            holder[int(last) if isinstance(holder, list) else last] = tuple(holder[int(last) if isinstance(
                holder, list) else last])
        except (KeyError, IndexError, ValueError, TypeError):
            raise CheckpointError(f"{where}: field '{field}.tuples' names {path!r}, which is no list of "
                                  f"'{field}.params'") from None
    state = params.get("random_state")
    if isinstance(state, dict):
        try:
            s = state["numpy_random_state"]
            rng = np.random.RandomState()
            rng.set_state(("MT19937", np.asarray(s["keys"], dtype=np.uint32), int(s["pos"]), int(s["has_gauss"]),
                           float(s["cached_gaussian"])))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: field '{field}.params.random_state' is invalid ({e!r})") from None
        params["random_state"] = rng
    return params


def _input_width(est, fitted: dict, where: Path, model_inputs: int) -> int:
    """Sets n_features_in_ and feature_names_in_; returns the number of model inputs the scaler sees."""
    count = fitted.get("n_features_in_")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise CheckpointError(f"{where}: field 'estimator.fitted.n_features_in_' must be a positive int, got {count!r}")
    names = fitted.get("feature_names_in_")
    if names is not None:
        if not isinstance(names, list) or len(names) != count or not all(isinstance(n, str) for n in names):
            raise CheckpointError(f"{where}: field 'estimator.fitted.feature_names_in_' must be {count} column names")
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.n_features_in_ = count
    schema = est.table_schema_
    width = len(schema.encoded_names()) if schema is not None else count
    if width != model_inputs or (schema is not None and not set(schema.features) <= set(names or [])):
        raise CheckpointError(f"{where}: field 'estimator.fitted' describes {width} inputs of columns {names}, "
                              f"but the model takes {model_inputs} (or the table schema has other columns)")
    return width


def _scaler(state: dict, tensors: dict, scaling, width: int, where: Path):
    """The fitted scaler, rebuilt from its class, parameters, scalars and arrays, each checked."""
    field = "estimator.fitted.scaler"
    name = state.get("class")
    if name is None:
        return None
    if name == "_OwnScaling":
        method = (state.get("params") or {}).get("method")
        if not isinstance(scaling, dict) or scaling.get("method") != method or method not in ("robust", "rownorm"):
            raise CheckpointError(f"{where}: field '{field}.params.method' ({method!r}) disagrees with 'data.scaling'")
        scaler = _OwnScaling(method)
        scaler.scaling_ = scaling
        return scaler
    if name not in SCALERS:
        raise CheckpointError(f"{where}: field '{field}.class' must be one of {[None, '_OwnScaling', *SCALERS]}, "
                              f"got {name!r}")
    kind, attributes = SCALERS[name]
    try:
        scaler = kind().set_params(**_params_back(_mapping(state, "params", where, field), state.get("tuples"),
                                                  where, field))
    except ValueError as e:
        raise CheckpointError(f"{where}: field '{field}.params' is invalid ({e})") from None
    values = _mapping(state, "values", where, field)
    for attribute in attributes:
        if f"scaler.{attribute}" in tensors:
            value = tensors[f"scaler.{attribute}"].numpy()
            if value.shape not in ((width,), ()) or not np.isfinite(value).all():
                raise CheckpointError(f"{where.parent / runs.WEIGHTS}: tensor '{PREFIX}scaler.{attribute}' must hold "
                                      f"{width} finite numbers, got shape {tuple(value.shape)}")
            value = value[()] if value.ndim == 0 else value  # a NumPy scalar
        else:
            value = values.get(attribute)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CheckpointError(f"{where}: field '{field}.values.{attribute}' must be a positive int, "
                                      f"got {value!r}")
        setattr(scaler, attribute, value)
    if scaler.n_features_in_ != width:
        raise CheckpointError(f"{where}: field '{field}.values.n_features_in_' is {scaler.n_features_in_}, "
                              f"but the model takes {width} inputs")
    return scaler


def _detector_state(est, fitted: dict, tensors: dict, run, where: Path) -> None:
    """decision_scores_, threshold_, labels_, detector_ and calibration_scores_ of a saved detector."""
    threshold = fitted.get("threshold_")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not np.isfinite(threshold):
        raise CheckpointError(f"{where}: field 'estimator.fitted.threshold_' must be a finite number, got {threshold!r}")
    weights = where.parent / runs.WEIGHTS
    for name in ("decision_scores_", "calibration_scores_"):
        if name in tensors:
            value = tensors[name].numpy()
            if value.ndim != 1 or value.dtype != np.float64 or not np.isfinite(value).all():
                raise CheckpointError(f"{weights}: tensor '{PREFIX}{name}' must be finite float64 scores")
            setattr(est, name, value)
    if not hasattr(est, "decision_scores_"):
        raise CheckpointError(f"{weights}: tensor '{PREFIX}decision_scores_' is missing")
    est.threshold_ = float(threshold)
    est.labels_ = anomaly.labels(est.decision_scores_, est.threshold_)
    est.detector_ = None
    if est.anomaly_score == COMBINED:
        if run.detector is None or run.detector.score != COMBINED:
            raise CheckpointError(f"{weights}: the 'combined' detector of anomaly_score='combined' is missing")
        original = fitted.get("detector_threshold")
        if not isinstance(original, (int, float)) or isinstance(original, bool) or not np.isfinite(original):
            raise CheckpointError(f"{where}: field 'estimator.fitted.detector_threshold' must be a finite number, "
                                  f"got {original!r}")
        est.detector_ = dataclasses.replace(run.detector, threshold=float(original))
