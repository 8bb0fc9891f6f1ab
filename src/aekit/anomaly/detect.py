"""What a trained run says about data, as tables in the data's own terms: anomaly scores with their
labels and explanations, reconstructions in the original columns and units, codes.

    result = detect(run, ds, explain=True)            # ds: run.dataset(path) (scaled as the run was trained)
    result.frame                                      # ids first, score, outlier, [label],
                                                      # [top_features, contributions], [imputed]

Rows keep the table's identifier and timestamp columns (Dataset.ids) or, without them, their index.
Our column names (score, outlier, label, top_features, imputed, the contributions, an encoding's z0 ...)
are a contract and stay as they are, except where one of the data's own carried columns has the name:
the user's column keeps it and ours gets the prefix "aekit_" (issue 25: a table with its own `score`
column had two), with a TableWarning naming both (with_ids; Detection.names says which name is which).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aekit.anomaly import scores as anomaly
from aekit.anomaly.detector import Detector, group_columns, top_features
from aekit.data import missing, tables
from aekit.data.base import unscaled
from aekit.data.schema import TableSchema, TableWarning, as_schema
from aekit.errors import CheckpointError, ConfigError

RESERVED = ("score", "outlier", "label", "imputed", "top_features", "index")
PREFIX = "aekit_"  # what our output columns get where the data's own columns have their names


def _schema(ds) -> TableSchema | None:
    table = (ds.info or {}).get("table")
    return as_schema(table) if table is not None else None


def feature_columns(ds, n_inputs: int) -> list[str]:
    """The names of the data's columns: a table's own features, pixels of images as c{channel}y{row}x{column},
    else x0, x1, ... (one per model input)."""
    schema = _schema(ds)
    if schema is not None:
        return list(schema.features)
    shape = tuple(ds.input_shape)
    if len(shape) == 3:
        return [f"c{c}y{y}x{x}" for c in range(shape[0]) for y in range(shape[1]) for x in range(shape[2])]
    return [f"x{j}" for j in range(n_inputs)]


def by_column(ds, contributions: np.ndarray) -> np.ndarray:
    """(N, D) per-input contributions summed into the table's columns (a categorical column's one-hot inputs)."""
    schema = _schema(ds)
    return contributions if schema is None else group_columns(contributions, schema.groups())


def imputed_inputs(ds) -> np.ndarray | None:
    """(N, inputs) bool: the model inputs that hold an imputed number (a categorical's empty cell is its
    own MISSING level, not imputed), or None when no cell was."""
    schema = _schema(ds)
    return None if schema is None else missing.imputed_inputs(schema, getattr(ds, "imputed", None))


def imputed_cells(ds) -> list[str]:
    """For each row, the names of its feature columns that were empty (and imputed), joined by ';'."""
    schema, empty = _schema(ds), getattr(ds, "imputed", None)
    if empty is None:
        return [""] * len(ds)
    names = np.asarray(schema.features, dtype=object)
    return [";".join(names[row]) for row in empty]


def output_names(carried, ours) -> dict[str, str]:
    """Each of our column names, prefixed with PREFIX (again, while still taken) where one of the data's
    carried columns, or another of ours, already has it."""
    carried, out = set(carried), {}
    taken = carried | set(ours)
    for name in ours:
        new = name
        if new in carried:
            while new in taken:
                new = PREFIX + new
            taken.add(new)
        out[name] = new
    return out


def with_ids(ds, frame: pd.DataFrame) -> pd.DataFrame:
    """frame with the data's identifier columns first (or an `index` column when it has none); our columns
    that the data's own carried columns already name get PREFIX (output_names), with a TableWarning."""
    ids = ds.ids if ds.ids is not None else pd.DataFrame({"index": np.arange(len(frame))})
    names = output_names(ids.columns if ds.ids is not None else [], list(frame.columns))
    renamed = {k: v for k, v in names.items() if k != v}
    if renamed:
        warnings.warn(f"the data has its own column{'s' if len(renamed) > 1 else ''} {', '.join(map(repr, renamed))}, "
                      f"kept as {'they are' if len(renamed) > 1 else 'it is'}: ours "
                      f"{'are' if len(renamed) > 1 else 'is'} written as {', '.join(map(repr, renamed.values()))}",
                      TableWarning, stacklevel=2)
        frame = frame.rename(columns=renamed)
    return pd.concat([ids.reset_index(drop=True), frame.reset_index(drop=True)], axis=1)


def in_original_units(ds, rows: np.ndarray) -> pd.DataFrame:
    """Model-space rows (N, *input_shape) as a frame of the data's columns in its own units (a
    categorical column gets its most likely category). 'rownorm' data stay in scaled units."""
    flat = unscaled(np.asarray(rows).reshape(len(rows), -1), ds.scaling)
    schema = _schema(ds)
    if schema is not None:
        return tables.decode(flat, schema)
    return pd.DataFrame(flat, columns=feature_columns(ds, flat.shape[1]))


@dataclass
class Detection:
    frame: pd.DataFrame  # ids, score, outlier, [label], [top_features, one contribution column per feature]
    scores: np.ndarray
    threshold: float
    rule: str  # how the threshold was chosen, in words
    contributions: np.ndarray | None  # (N, columns) when explained
    columns: list[str]  # the feature columns the contributions belong to
    # our column names (score, outlier, ...) -> their names in frame: the same unless the data's own
    # carried columns have them (PREFIX, with_ids)
    names: dict = field(default_factory=dict)

    @property
    def flagged(self) -> int:
        """How many rows are flagged as outliers."""
        return int(anomaly.labels(self.scores, self.threshold).sum())


def threshold_of(detector: Detector, scores, contamination=None, false_alarm_rate=None) -> tuple[float, str]:
    """The threshold to apply and how it was chosen: the one learnt on the training rows, or re-set
    on these scores (contamination), or the novelty threshold of the held-out rows (false_alarm_rate)."""
    if contamination is not None and false_alarm_rate is not None:
        raise ConfigError("give contamination (re-threshold these rows) or false_alarm_rate (novelty), not both")
    if contamination is not None:
        return anomaly.threshold(scores, contamination), f"the {1 - contamination:g} quantile of these scores"
    if false_alarm_rate is not None:
        return detector.novelty_threshold(false_alarm_rate), (
            f"at most {false_alarm_rate:g} false alarms on clean rows ({len(detector.calibration)} held-out rows)")
    return detector.threshold, (f"learnt on the training rows: the {1 - detector.contamination:g} quantile of "
                                "their scores")


def detect(run, ds, contamination=None, false_alarm_rate=None, explain: bool = False, top: int = 3,
           contributions: bool = False) -> Detection:
    """Scores and labels of the rows of ds with run's detector; explain=True adds top_features and
    one contribution column per feature to the frame (contributions=True computes them without)."""
    detector = run.detector
    if detector is None:
        raise CheckpointError(f"{run.folder} has no anomaly detector: {run.why_no_detector()}")
    columns = feature_columns(ds, run.config.input_size)
    imputed = imputed_inputs(ds)
    shares = (by_column(ds, detector.contributions(run.model, ds.x, imputed)) if explain or contributions
              else None)
    scores = shares.sum(1) if shares is not None else detector.scores(run.model, ds.x, imputed)
    threshold, rule = threshold_of(detector, scores, contamination, false_alarm_rate)
    frame = pd.DataFrame({"score": scores, "outlier": anomaly.labels(scores, threshold)})
    if ds.y is not None:
        classes = (ds.info or {}).get("classes")
        frame["label"] = [classes[i] for i in ds.y] if classes else ds.y
    if explain:
        frame["top_features"] = top_features(shares, columns, min(top, len(columns)))
        frame = pd.concat([frame, pd.DataFrame(shares, columns=_contribution_names(columns))], axis=1)
    if _schema(ds) is not None and _schema(ds).missing == "impute":  # which of the row's cells were imputed (last)
        frame["imputed"] = imputed_cells(ds)
    carried = list(ds.ids.columns) if ds.ids is not None else []
    return Detection(with_ids(ds, frame), scores, threshold, rule, shares, columns,
                     output_names(carried, list(frame.columns)))


def _contribution_names(columns: list[str]) -> list[str]:
    """A feature's contribution column is named after it; "contribution_<name>" where that name is one of
    ours (RESERVED), prefixed again while another column has it."""
    taken = set(RESERVED) | set(columns)
    names = []
    for c in columns:
        name = c
        while name in RESERVED or (name != c and name in taken):
            name = f"contribution_{name}"
        taken.add(name)
        names.append(name)
    return names
