"""Table schemas: the role of every column, inferred from a DataFrame or fixed by the user, as JSON.

    schema = infer_schema(frame, exclude="note")       # the role of each column (see infer_schema)
    schema.encoded_names()                              # one name per model input
    TableSchema.from_json(ds.info["table"])             # a training file's schema, checked field by field

A column has one role: "numeric" and "categorical" columns are the features; "id", "timestamp"
and "text" columns are kept out of the features and carried beside the rows (Dataset.ids);
"label" is the label column; "excluded" columns are dropped. Reading files and encoding rows
with a schema: tables.py.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aekit.data import numbers
from aekit.data.base import check_regular_file
from aekit.data.options import as_list
from aekit.errors import DataError, suggest

ROLES = ("numeric", "categorical", "id", "timestamp", "label", "excluded", "text")
FEATURE_ROLES = ("numeric", "categorical")
CARRIED_ROLES = ("id", "timestamp", "text")  # kept out of the features, carried beside the rows
CELL_BYTES = 8  # a float64 cell of the DataFrame (strings are stored about as compactly as in the file)
TEXT_BYTES_PER_CELL = 2  # the fewest bytes a cell takes in a text table: one character and a delimiter
MAX_CATEGORIES = 50
# Levels of a categorical feature (the rule of issue 24): a level seen fewer than max(MIN_LEVEL_COUNT,
# MIN_LEVEL_SHARE of the rows) times joins OTHER, and at most MAX_LEVELS levels are kept (the most
# frequent), so a column of 5,000 levels takes at most MAX_LEVELS + 2 inputs. Every categorical also has
# OTHER (a level unseen in training lands there) and MISSING (an empty cell): the model learns how
# likely each is, so an unseen or missing category counts as what it is.
MIN_LEVEL_COUNT, MIN_LEVEL_SHARE, MAX_LEVELS = 5, 0.005, 50
OTHER, MISSING = "(other)", "(missing)"
MISSING_POLICIES = ("impute", "drop", "error")
DATE_SAMPLE = 1000  # values tried as dates before the whole column is
# An identifier's name: id, key, index, uuid ... alone or after a separator (user_id, order-no), camelCase
# (userId, rowKey), or what pandas names an unnamed index column (Unnamed: 0).
_ID_NAME = re.compile(r"(^|[_\-\s.])(id|ids|key|index|idx|uuid|guid|no|nr|num|number)$|^(#|row|unnamed: ?\d+|)$",
                      re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID|Key|Index|Idx|No|Nr|Num)$")
_MISSING_TEXT = numbers.MISSING_TEXT


ROLE_OPTIONS = ("columns", "exclude", "categorical", "id_columns")  # the load options a schema fixes


class TableWarning(UserWarning):
    """A column the loader kept out of the features on its own judgement (free text, empty, unusable type)."""


# ----- the frame -----


def _check_unique(names: list, where: str) -> None:
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise DataError(f"{where}: duplicate column names {twice}; rename them so that each column has one name")


def _named(frame, where: str):
    """frame with string column names (a DataFrame built from an array has integer ones), each unique."""
    names = [str(c) for c in frame.columns]
    _check_unique(names, where)
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    named = frame.set_axis(names, axis=1)
    named.attrs = dict(frame.attrs)
    return named


def _where(frame) -> str:
    return frame.attrs.get("source", "DataFrame")


def _row(frame, position: int) -> str:
    """A row as the user sees it: the file's row number (the header is row 1), or the DataFrame's index."""
    first = frame.attrs.get("first_row")
    return f"row {position + first}" if first is not None else f"row {frame.index[position]!r}"



# ----- the schema -----


@dataclass
class TableSchema:
    """How a table becomes model inputs: its feature columns (in order), which are numeric, the
    categories of each categorical one (in the order the training rows show them; a missing value
    is the category ""), the carried columns, every column's role and the label column.

    JSON-able (to_json / from_json), so new files are encoded exactly like the training file."""

    features: list
    numeric: list
    categorical: dict
    ids: list = field(default_factory=list)
    roles: dict = field(default_factory=dict)
    label_column: str | None = None
    # Empty cells of the features: "impute" (a numeric column's training median from `fill`, a
    # categorical's MISSING level), "drop" (their rows) or "error". Schemas written before these
    # fields existed read as "error" with no fill (what those versions did).
    missing: str = "impute"
    fill: dict = field(default_factory=dict)  # numeric column -> its median on the training rows
    # numeric text column written with a thousands separator or decimal comma -> {"thousands", "decimal"}
    # (numbers.py); a column of plain numbers has none. Older schemas have none.
    formats: dict = field(default_factory=dict)

    def encoded_names(self) -> list[str]:
        """One name per model input: a numeric column's name, "column=value" for each category."""
        return [name for column in self.features for name in self._inputs(column)]

    def groups(self) -> list[int]:
        """For each model input, the index in `features` of its column (to sum contributions per column)."""
        return [i for i, column in enumerate(self.features) for _ in self._inputs(column)]

    def _inputs(self, column: str) -> list[str]:
        if column in self.categorical:
            return [f"{column}={value}" for value in self.categorical[column]]
        return [column]

    def to_json(self) -> dict:
        """A plain dict of lists, dicts and strings (json.dumps writes it as is)."""
        return {"features": list(self.features), "numeric": list(self.numeric),
                "categorical": {k: list(v) for k, v in self.categorical.items()}, "ids": list(self.ids),
                "roles": dict(self.roles), "label_column": self.label_column, "missing": self.missing,
                "fill": dict(self.fill), "formats": {k: dict(v) for k, v in self.formats.items()}}

    def unit_inputs(self) -> list[int]:
        """The indices of the one-hot inputs (categorical levels): 0 or 1, never rescaled."""
        return [j for j, i in enumerate(self.groups()) if self.features[i] in self.categorical]

    def softmax_groups(self) -> list[list[int]]:
        """[start, width] of each categorical column's one-hot inputs (ModelConfig.categorical_groups)."""
        out, j = [], 0
        for column in self.features:
            width = len(self._inputs(column))
            if column in self.categorical and width >= 2:
                out.append([j, width])
            j += width
        return out

    @classmethod
    def from_json(cls, data) -> TableSchema:
        """A schema from to_json's dict (or its JSON text), checked: a tampered one is a DataError."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise DataError(f"table schema: not JSON ({e})") from None
        if not isinstance(data, dict):
            raise DataError(f"table schema must be a mapping, got {type(data).__name__}")
        expected = ("features", "numeric", "categorical", "ids", "roles", "label_column")
        optional = ("missing", "fill", "formats")  # newer fields: an older schema without them reads as it was written
        missing = [k for k in expected if k not in data]
        unknown = [k for k in data if k not in expected + optional]
        if missing or unknown:
            raise DataError(f"table schema: missing fields {missing}, unknown fields {unknown}; "
                            f"expected {list(expected + optional)}")
        schema = cls(**{k: data[k] for k in expected}, missing=data.get("missing", "error"), fill=data.get("fill", {}),
                     formats=data.get("formats", {}))
        _validate(schema)
        return schema


def _strings(name: str, value, unique: bool = True) -> list:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"table schema: {name} must be a list of strings, got {value!r}")
    if unique and len(set(value)) != len(value):
        raise DataError(f"table schema: {name} repeats an entry: {value!r}")
    return value


def _validate(schema: TableSchema) -> None:
    features = _strings("features", schema.features)
    numeric = _strings("numeric", schema.numeric)
    if not features:
        raise DataError("table schema: no features")
    if not isinstance(schema.categorical, dict):
        raise DataError(f"table schema: 'categorical' must map columns to their categories, got {schema.categorical!r}")
    for column, values in schema.categorical.items():
        if not _strings(f"categorical[{column!r}]", values):
            raise DataError(f"table schema: categorical column {column!r} has no categories")
    if set(numeric) & set(schema.categorical) or set(numeric) | set(schema.categorical) != set(features):
        raise DataError("table schema: every feature must be either numeric or categorical, and only features")
    ids = _strings("ids", schema.ids)
    roles = schema.roles
    if not isinstance(roles, dict) or not all(isinstance(k, str) and v in ROLES for k, v in roles.items()):
        raise DataError(f"table schema: 'roles' must map columns to one of {ROLES}")
    wrong = [c for c in features if roles.get(c) != ("categorical" if c in schema.categorical else "numeric")]
    wrong += [c for c in ids if roles.get(c) not in CARRIED_ROLES]
    if wrong:
        raise DataError(f"table schema: the roles of {wrong} disagree with its features and ids")
    label = schema.label_column
    if label is not None and (not isinstance(label, str) or roles.get(label, "label") != "label"):
        raise DataError(f"table schema: 'label_column' must be a column with the role 'label', got {label!r}")
    if schema.missing not in MISSING_POLICIES:
        raise DataError(f"table schema: 'missing' must be one of {MISSING_POLICIES}, got {schema.missing!r}")
    fill = schema.fill
    if not isinstance(fill, dict) or not all(k in numeric and isinstance(v, (int, float)) and not isinstance(v, bool)
                                             and math.isfinite(v) for k, v in fill.items()):
        raise DataError(f"table schema: 'fill' must map numeric columns to finite numbers, got {fill!r}")
    formats = schema.formats
    if not isinstance(formats, dict) or not all(k in numeric and numbers.is_format(v) for k, v in formats.items()):
        raise DataError(f"table schema: 'formats' must map numeric columns to a thousands separator and a decimal "
                        f"mark of {[numbers.to_json(f) for f in numbers.FORMATS[:2]]}..., got {formats!r}")


def as_schema(schema) -> TableSchema:
    """A TableSchema, its to_json dict, its JSON text or the path of a .json file holding it."""
    if isinstance(schema, TableSchema):
        _validate(schema)
        return schema
    if isinstance(schema, (str, Path)) and not str(schema).lstrip().startswith("{"):
        path = Path(schema)
        check_regular_file(path)
        try:
            schema = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: cannot read the table schema ({e})") from None
    return TableSchema.from_json(schema)


# ----- column roles -----


def _resolve(names: list, spec, option: str, where: str) -> list:
    """Column names for a list option's entries: names, 0-based indices or indices as digit strings."""
    out = []
    for entry in as_list(option, spec) or []:
        if isinstance(entry, str) and entry in names:
            out.append(entry)
        elif isinstance(entry, int) or (isinstance(entry, str) and entry.isdigit()):
            if not 0 <= int(entry) < len(names):
                raise DataError(f"{where}: {option}: column index {entry} out of range 0..{len(names) - 1}")
            out.append(names[int(entry)])
        else:
            raise DataError(f"{where}: {option}: no column {entry!r}{suggest(str(entry), names)}; columns: {names}")
    return out


def infer_schema(frame, columns=None, exclude=None, categorical=None, id_columns=None, label_column=None,
                 missing="impute") -> TableSchema:
    """Every column's role, guessed from its values unless an option says so.

    Rules, for a column that no option names:
    - bool columns, pandas "category" columns: categorical;
    - numeric columns: numeric features, except an integer column whose values are all distinct and
      whose name looks like an identifier (id, user_id, userId, key, index, no, Unnamed: 0 ...): id;
    - datetime columns, and text columns in which every non-empty value parses as a date or a time
      with one format (pandas.to_datetime, the format guessed from the first value, tried on a
      sample first): timestamp;
    - text columns of numbers: numeric (of all-distinct values under an identifier's name: id); a text
      column in which at least half of the values are numbers but some are not is refused (a typo in
      a numeric column), naming the row: pass categorical= or exclude= for it;
    - other text columns with at most max(2, min(50, n_rows // 5)) distinct values: categorical;
      with all values distinct: id; with many distinct values: "text", carried like an identifier,
      with a TableWarning saying so;
    - columns with no values, or of a type that is no number, text or date (lists, bytes): excluded,
      with a TableWarning. Constant columns stay features (the robust scaling maps them to 0).

    Options (names, 0-based indices or digit strings; lists or comma-separated strings):
    columns= the features are these columns only, in this order (numeric when they parse as numbers, else
    categorical); other columns are still carried when they are ids, timestamps or text.
    exclude= drops columns, categorical= encodes columns as categories (an integer code column, say),
    id_columns= carries columns as identifiers. label_column= is the label. missing= the policy for
    empty cells of the features (MISSING_POLICIES; recorded, so new files are read the same way).
    Categorical levels are pooled (pooled_levels); numeric columns record their median (fill).
    """
    where = _where(frame)
    if missing not in MISSING_POLICIES:
        raise DataError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}{suggest(str(missing), MISSING_POLICIES)}")
    frame = _named(frame, where)
    names = list(frame.columns)
    label = _resolve(names, [label_column], "label_column", where)[0] if label_column is not None else None
    chosen = _resolve(names, columns, "columns", where) if columns is not None else None
    forced = {}
    for option, spec, role in (("exclude", exclude, "excluded"), ("categorical", categorical, "categorical"),
                               ("id_columns", id_columns, "id")):
        for name in _resolve(names, spec, option, where):
            if forced.get(name, role) != role or name == label:
                raise DataError(f"{where}: column {name!r} is given two roles ({forced.get(name, 'label')} and {role})")
            forced[name] = role
    roles = {}
    for name in names:
        if name == label:
            roles[name] = "label"
        elif name in forced:
            roles[name] = forced[name]
        else:
            roles[name] = _chosen_role(frame, name, chosen)
    order = [*(chosen or []), *(c for c in names if c not in (chosen or []))]  # columns= orders the features
    return _schema(frame, order, roles, label, where, missing)


def _chosen_role(frame, name: str, chosen) -> str:
    """The guessed role, bent by columns=: a chosen column is a feature, other features are excluded."""
    try:
        role, why = _guess(frame, name)
    except DataError:  # a messy column that columns= leaves out is no error
        if chosen is None or name in chosen:
            raise
        role, why = "excluded", None
    if chosen is not None and name in chosen and role not in FEATURE_ROLES:
        role, why = ("numeric" if numbers.column_format(frame[name]) is not False else "categorical"), None
    elif chosen is not None and name not in chosen and role in FEATURE_ROLES:
        role, why = "excluded", None
    if why:
        warnings.warn(f"{_where(frame)}: column {name!r} {why}", TableWarning, stacklevel=4)
    return role


def _schema(frame, order: list, roles: dict, label, where: str, missing: str) -> TableSchema:
    features = [c for c in order if roles[c] in FEATURE_ROLES]
    if not features:
        raise DataError(f"{where}: no feature columns left (roles: {roles}); "
                        "name some with columns= or categorical=")
    categorical = {c: pooled_levels(frame[c]) for c in features if roles[c] == "categorical"}
    numeric = [c for c in features if roles[c] == "numeric"]
    formats = {c: f for c in numeric if (f := numbers.column_format(frame[c]))}
    return TableSchema(features=features, numeric=numeric,
                       categorical=categorical, ids=[c for c in frame.columns if roles[c] in CARRIED_ROLES],
                       roles=roles, label_column=label, missing=missing,
                       fill={c: _median(frame[c], formats.get(c)) for c in numeric},
                       formats={c: numbers.to_json(f) for c, f in formats.items()})


def _median(series, fmt) -> float:
    """A numeric column's median over its finite values (0 when it has none): what fills its empty cells."""
    values = numbers.column_numbers(series, fmt)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else 0.0


def pooled_levels(series) -> list[str]:
    """A categorical column's levels: those seen at least max(MIN_LEVEL_COUNT, MIN_LEVEL_SHARE of the
    rows) times, at most MAX_LEVELS of them (the most frequent; ties in the order the rows show them),
    then OTHER and MISSING."""
    strings = _category_strings(series)
    counts = Counter(s for s in strings.tolist() if s != "")
    least = max(MIN_LEVEL_COUNT, MIN_LEVEL_SHARE * len(strings))
    kept = [v for v, n in counts.most_common() if n >= least and v not in (OTHER, MISSING)][:MAX_LEVELS]
    first = {v: i for i, v in enumerate(dict.fromkeys(strings.tolist()))}
    return [*sorted(kept, key=first.__getitem__), OTHER, MISSING]


def looks_like_id(name: str) -> bool:
    """Whether a column's name reads as an identifier's (id, user_id, userId, key, index, Unnamed: 0 ...)."""
    return bool(_ID_NAME.search(name) or _CAMEL_ID.search(name))


def _guess(frame, name: str) -> tuple[str, str | None]:
    """(role, why) of a column from its type and values; `why` is set when the column is kept out of
    the features on the loader's own judgement (for the warning)."""
    import pandas as pd

    series = frame[name]
    dtype = series.dtype
    override = f"pass categorical=[{name!r}] to encode it, or exclude=[{name!r}] to drop it quietly"
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical", None
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp", None
    values = series.dropna()
    if values.empty:
        return "excluded", "has no values: left out"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        if pd.api.types.is_integer_dtype(dtype) and looks_like_id(name) and series.is_unique:
            return "id", None
        return "numeric", None
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return "excluded", f"is of type {dtype}, neither numbers, text nor dates: left out"
    kinds = {type(v) for v in values.iloc[:: max(1, len(values) // DATE_SAMPLE)]}
    if kinds <= {bool, np.bool_}:
        return "categorical", None
    if any(issubclass(k, (bytes, list, tuple, dict, set, np.ndarray)) for k in kinds):
        return "excluded", "holds bytes or collections, neither numbers, text nor dates: left out"
    return _guess_text(frame, name, values, override)


def _guess_text(frame, name: str, values, override: str) -> tuple[str, str | None]:
    text = values.astype(str).str.strip()
    nonblank = (text != "").to_numpy()
    values, text = values[nonblank], text[nonblank]  # blank text is a missing value
    if text.empty:
        return "excluded", "has no values: left out"
    empty = text.str.lower().isin(_MISSING_TEXT).to_numpy()
    fmt, read, readable = numbers.best_reading(text[~empty])  # numbers as people write them (numbers.py)
    is_number = empty.copy()
    is_number[~empty] = read
    distinct = text.nunique()
    if is_number.all():
        return ("id" if looks_like_id(name) and distinct == len(text) else "numeric"), None
    if is_number.mean() >= 0.5:
        first = int(np.argmin(is_number))
        position = int(np.flatnonzero(frame[name].notna().to_numpy())[nonblank][first])  # in the frame
        written = f", with {numbers.describe(fmt)}" if fmt is not None else ""
        raise DataError(f"{_where(frame)}: {_row(frame, position)}, column {name!r}: {values.iloc[first]!r} is "
                        f"not a number (most of the column is{written}); fix it, or {override}")
    mixed = numbers.mixed_reason(text[~empty], readable, read)
    if mixed is None and _dates(text) is not None:
        return "timestamp", None
    if distinct <= max(2, min(MAX_CATEGORIES, len(frame) // 5)):
        role = "categorical"
    elif distinct == len(text):
        role = "id"
    else:
        return "text", (f"{mixed + '; it ' if mixed else ''}holds free text ({distinct} distinct values in "
                        f"{len(frame)} rows): kept out of the features and carried like an identifier; {override}")
    return role, None if mixed is None else (
        f"{mixed}: it is {'a categorical feature' if role == 'categorical' else 'carried as an identifier'}; "
        f"write its numbers one way to have them read as numbers, or pass exclude=[{name!r}] to drop it")


def _dates(text):
    """The datetime64 values (in UTC) of text when every value is a date or time of one format, else None.
    A format must name a year or an hour: '1-2' or 'Jan' are categories, not dates. Times with different
    UTC offsets, or some with an offset and some without (taken as UTC), are times all the same: the
    column is carried as written, never converted (issue 25: it became one-hot features)."""
    import pandas as pd
    from pandas.tseries.api import guess_datetime_format

    if not text.str.contains(r"\d", regex=True).all():
        return None
    sample = text.iloc[:: max(1, len(text) // DATE_SAMPLE)]
    guessed = guess_datetime_format(text.iloc[0])
    formats = [f for f in (guessed, "ISO8601") if f is not None and ("%Y" in f or "%H" in f or f == "ISO8601")]
    for fmt in formats:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pd.to_datetime(sample, format=fmt, utc=True)
                return pd.to_datetime(text, format=fmt, utc=True)
        except (ValueError, TypeError, OverflowError):
            continue
    return None


def _category_strings(series):
    """A column's values as category strings: missing values are "", integral floats drop their ".0"
    (an integer column with gaps reads as floats), booleans read "True" / "False"."""
    import pandas as pd

    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
        out = series.astype(object).astype(str).to_numpy(dtype=object)
    elif pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        out = series.str.strip().to_numpy(dtype=object)
    else:
        out = series.map(_category_string, na_action="ignore").to_numpy(dtype=object)
    out[missing] = ""
    return out


def _category_string(value) -> str:
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _categories(series) -> list[str]:
    """The distinct category strings of a column, in the order the rows show them first."""
    import pandas as pd

    return [str(v) for v in pd.unique(_category_strings(series))]


