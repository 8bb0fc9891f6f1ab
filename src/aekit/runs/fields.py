"""What every field of a run folder's JSON must hold, as tables, and the one checker that applies them.

A run folder is read back by code that trusts it (shapes, loops, allocations), so each document is
checked field by field before anything is built from it: its type, its range or allowed values, and
whether it may be missing or null. A mismatch is a CheckpointError naming the file and the field
("config.json: field 'data.n_train' must be an int >= 0, got -3"). Fields a table does not list are
ignored: a newer aekit that adds one whose meaning an older reader must not miss raises the folder's
format_version instead (runs/run.py). The consistency between files (the schema's and the scaling's
widths against the model's input, the detector's arrays against the model) is checked where the
pieces meet, in runs/run.py.

The training options are checked here by type only: their ranges are FitOptions.validate's (a stage
above), which resume applies before it trains.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass

from aekit.errors import CheckpointError


@dataclass(frozen=True)
class Field:
    """What one JSON field must hold. kind: "int", "number", "str", "bool", "mapping", "list"."""

    kind: str
    low: float | None = None  # inclusive bounds of a number
    high: float | None = None
    required: bool = False  # must be present
    null: bool = False  # may be null
    choices: tuple = ()  # the allowed values of a str
    low_open: bool = False  # the low bound itself is excluded

    def problem(self, value) -> str | None:
        """What is wrong with value, in words, or None."""
        if value is None:
            return None if self.null else f"must not be null ({self.wanted()})"
        if not _JSON_TYPES[self.kind](value):
            return f"must be {self.wanted()}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"must be one of {list(self.choices)}, got {value!r}"
        if self.kind in ("int", "number") and not (_above(value, self.low, self.low_open)
                                                    and (self.high is None or value <= self.high)):
            return f"must be {self.wanted()}, got {value!r}"
        return None

    def wanted(self) -> str:
        bounds = [f"{'>' if self.low_open else '>='} {self.low:g}" if self.low is not None else "",
                  f"<= {self.high:g}" if self.high is not None else ""]
        text = " and ".join(b for b in bounds if b)
        return f"{_WORDS[self.kind]}{' ' + text if text else ''}{' or null' if self.null else ''}"


def _above(value, low, low_open: bool) -> bool:
    return low is None or (value > low if low_open else value >= low)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_JSON_TYPES = {"int": _is_int, "number": _is_number, "str": lambda v: isinstance(v, str),
               "bool": lambda v: isinstance(v, bool), "mapping": lambda v: isinstance(v, dict),
               "list": lambda v: isinstance(v, list)}
_WORDS = {"int": "an int", "number": "a finite number", "str": "a string", "bool": "true or false",
          "mapping": "a mapping", "list": "a list"}


def check_fields(document, table: dict[str, Field], where, prefix: str = "") -> dict:
    """document itself when it is a mapping whose every field in table holds what the table says;
    else a CheckpointError naming `where` (the file) and the field (prefix + name)."""
    if not isinstance(document, dict):
        raise CheckpointError(f"{where}: {'field ' + repr(prefix[:-1]) if prefix else 'the document'} must be "
                              f"a mapping, got {type(document).__name__}")
    for name, spec in table.items():
        if name not in document:
            if spec.required:
                raise CheckpointError(f"{where}: field '{prefix}{name}' is missing ({spec.wanted()})")
            continue
        problem = spec.problem(document[name])
        if problem:
            raise CheckpointError(f"{where}: field '{prefix}{name}' {problem}")
    return document


def check_rows(rows, table: dict[str, Field], where, name: str) -> list:
    """A list of mappings, each checked by table (fields named name[i].field)."""
    if not isinstance(rows, list):
        raise CheckpointError(f"{where}: field {name!r} must be a list, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        check_fields(row, table, where, f"{name}[{i}].")
    return rows


# ----- config.json -----

# format and format_version decide whether the folder is read at all: runs/run.py's read_config checks them first.
CONFIG = {
    "library_version": Field("str"),
    "model": Field("mapping", required=True),
    "training": Field("mapping", null=True),
    "data": Field("mapping", null=True),
    "command": Field("str", null=True),  # the command that started the run
    "segments": Field("list"),
    "estimator": Field("mapping", null=True),  # aekit.sklearn's own section (sklearn_folder.py checks the rest)
}
DATA = {
    "scaling": Field("mapping", null=True),  # then data.base.validate_scaling, against the model's inputs
    "source": Field("mapping", null=True),
    "table": Field("mapping", null=True),  # then data.schema.as_schema, against the model's inputs
    "n_train": Field("int", 0, null=True),
    "n_val": Field("int", 0, null=True),
    "labelled": Field("int", 0, null=True),
    "device": Field("str", null=True),
    "precision": Field("str", null=True),
    "processes": Field("int", 1, null=True),
}
SOURCE = {"name": Field("str", required=True), "options": Field("mapping")}
# The options FitOptions records (training/options.py), by type: resume checks their ranges.
TRAINING = {
    "epochs": Field("int", null=True), "batch_size": Field("int", null=True), "lr": Field("number"),
    "seed": Field("int"), "val_fraction": Field("number"), "patience": Field("int", null=True),
    "clip_grad_norm": Field("number", null=True), "weight_decay": Field("number"), "precision": Field("str"),
    "lr_schedule": Field("str"), "n_threads": Field("int", null=True), "contamination": Field("number"),
    "log_dir": Field("str", null=True),
}
SEGMENT = {
    "started": Field("str"),
    "command": Field("str", null=True),
    "training": Field("mapping", null=True),
    "started_at_epoch": Field("int", 0),
    "epochs_reached": Field("int", 0),
}
ESTIMATOR = {"class": Field("str", null=True)}

# metrics.json ("train" and "validation": mappings of loss terms to numbers, checked by runs/run.py's read_metrics)
METRICS = {"units": Field("mapping"), "reconstruction_loss": Field("str"), "seconds": Field("number", 0)}

# ----- weights.safetensors: the detector's metadata (anomaly/detector.py checks the values' meaning) -----

DETECTOR = {
    "score": Field("str", required=True),
    "contamination": Field("number", 0, 0.5, required=True, low_open=True),
    "threshold": Field("number", required=True),
    "k": Field("int", 0, required=True),  # neighbours of the combined score; 0 for the others
    "residual_scale": Field("number", 0, required=True, low_open=True),
    "neighbour_scale": Field("number", 0, required=True, low_open=True),
}
# A row of the history (state.history, history.csv): the stage, the epoch, then numbers (seconds, loss terms).
HISTORY_ROW = {"stage": Field("str", required=True), "epoch": Field("int", 0, required=True)}


def check_history_row(row, where, name: str) -> dict:
    """One epoch's row (field `name`): HISTORY_ROW's fields, every other value a number (NaN and infinities
    included: a diverging loss is recorded as it was) or null."""
    check_fields(row, HISTORY_ROW, where, f"{name}.")
    for key, value in row.items():
        if key not in HISTORY_ROW and not (value is None or isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise CheckpointError(f"{where}: field '{name}.{key}' must be a number, got {value!r}")
    return row


# ----- the model section: its types read from ModelConfig's annotations (its ranges: ModelConfig.validate) -----


def check_annotated(document: dict, hints: dict, where, prefix: str, required: tuple = ()) -> dict:
    """Every field of document that hints annotates holds a JSON value of that type (tuples as lists)."""
    for name in required:
        if name not in document:
            raise CheckpointError(f"{where}: field '{prefix}{name}' is missing ({_describe(hints[name])})")
    for name, value in document.items():
        if name in hints and not _fits(value, hints[name]):
            # the option's own name too, as ModelConfig.validate's messages put it ("seed must be an int")
            raise CheckpointError(f"{where}: field '{prefix}{name}': {name} must be {_describe(hints[name])}, "
                                  f"got {value!r}")
    return document


def _fits(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, list):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
    if hint is float:
        return _is_number(value)
    checks = {int: _is_int, str: lambda v: isinstance(v, str), bool: lambda v: isinstance(v, bool),
              dict: lambda v: isinstance(v, dict)}
    check = checks.get(origin or hint)
    return True if check is None else check(value)


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"[{', '.join(_describe(a).split()[-1] for a in args)}]"
    words = {int: "an int", float: "a finite number", str: "a string", bool: "true or false", dict: "a mapping",
             type(None): "null"}
    return words.get(origin or hint, str(hint))
