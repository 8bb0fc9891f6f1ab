"""Tables: CSV / TSV / text files, Parquet files and pandas DataFrames with mixed column types.

    frame = read_frame("sensors.csv")                  # a DataFrame; every failure is a DataError
    schema = infer_schema(frame, exclude="note")       # the role of each column (see infer_schema)
    x = encode(frame, schema)                          # float64 model inputs, one-hot categories
    ds = load_table("sensors.csv")                     # all of it, as a robustly scaled Dataset
    new = load_table("today.csv", schema=ds.info["table"])  # scored exactly like the training file

A column has one role: "numeric" and "categorical" columns are the features; "id", "timestamp"
and "text" columns are kept out of the features and carried beside the rows (Dataset.ids);
"label" is the label column; "excluded" columns are dropped. The schema (TableSchema) is JSON,
so new files are encoded with the training file's columns and categories.

pandas and pyarrow are imported when a table is read, not when the package is imported.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aekit.data.base import Dataset, check_allocation, check_finite, check_regular_file, make_dataset
from aekit.data.options import as_list
from aekit.errors import DataError, suggest

ROLES = ("numeric", "categorical", "id", "timestamp", "label", "excluded", "text")
FEATURE_ROLES = ("numeric", "categorical")
CARRIED_ROLES = ("id", "timestamp", "text")  # kept out of the features, carried beside the rows
TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": None}  # .txt: tab, comma or space, from its first row
TABLE_SUFFIXES = (*TEXT_SUFFIXES, ".parquet")
CELL_BYTES = 8  # a float64 cell of the DataFrame (strings are stored about as compactly as in the file)
TEXT_BYTES_PER_CELL = 2  # the fewest bytes a cell takes in a text table: one character and a delimiter
MAX_CATEGORIES = 50
DATE_SAMPLE = 1000  # values tried as dates before the whole column is
# An identifier's name: id, key, index, uuid ... alone or after a separator (user_id, order-no), camelCase
# (userId, rowKey), or what pandas names an unnamed index column (Unnamed: 0).
_ID_NAME = re.compile(r"(^|[_\-\s.])(id|ids|key|index|idx|uuid|guid|no|nr|num|number)$|^(#|row|unnamed: ?\d+|)$",
                      re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9](Id|ID|Key|Index|Idx|No|Nr|Num)$")
_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none", "<na>", "nat"}


class TableWarning(UserWarning):
    """A column the loader kept out of the features on its own judgement (free text, empty, unusable type)."""


# ----- reading -----


def read_frame(path, delimiter=None, header="auto"):
    """The table in `path` (.csv, .tsv, .txt or .parquet) as a pandas DataFrame with string column names.

    delimiter: one character; by default "," for .csv, a tab for .tsv, and for .txt a tab, comma or
    space, whichever its first row holds. header: True, False or "auto" (the first row is a header
    when any of its cells is not a number); without one the columns are named "0", "1", ...
    Text is read as UTF-8 (a byte-order mark is skipped). Every failure is a DataError naming the file.
    """
    path = Path(path)
    check_regular_file(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = _read_parquet(path)
    elif suffix in TEXT_SUFFIXES:
        frame = _read_text(path, delimiter, header)
    else:
        raise DataError(f"{path}: unknown table type {suffix!r}; readable: {', '.join(TABLE_SUFFIXES)}")
    frame.attrs["source"] = str(path)
    return frame


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _first_row(path: Path, delimiter):
    """(cells of the first non-blank row, delimiter), or (None, delimiter) for a file of blank lines."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            line = next((line for line in f if line.strip()), None)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from None
    if line is None:
        return None, delimiter
    if delimiter is None:
        delimiter = TEXT_SUFFIXES[path.suffix.lower()]
    if delimiter is None:  # .txt
        delimiter = "\t" if "\t" in line else "," if "," in line else " " if " " in line.strip() else ","
    return next(csv.reader([line], delimiter=delimiter)), delimiter


def _read_text(path: Path, delimiter, header):
    import pyarrow as pa

    size = path.stat().st_size
    check_allocation(size // TEXT_BYTES_PER_CELL * CELL_BYTES, f"{path} ({size} bytes of text as a table)")
    first, delimiter = _first_row(path, delimiter)
    if first is None:
        raise DataError(f"{path}: the file is empty")
    if header == "auto":
        header = any(c.strip() and not _is_number(c) for c in first)
    names = [c.strip() for c in first] if header else [str(i) for i in range(len(first))]
    names = [name or f"Unnamed: {i}" for i, name in enumerate(names)]  # as pandas names them
    _check_unique(names, str(path))
    try:
        table = _arrow_csv(path, delimiter, names, header, threads=True)
    except _Ragged as bad:
        if bad.row is None:  # the parallel reader does not know row numbers: find it again, serially
            try:
                _arrow_csv(path, delimiter, names, header, threads=False)
            except _Ragged as again:
                bad = again
        where = f"row {bad.row}" if bad.row is not None else f"a row ({bad.text[:40]!r})"
        raise DataError(f"{path}: {where} has {bad.actual} fields, expected {bad.expected} (ragged rows)") from None
    except pa.ArrowException as e:
        raise DataError(f"{path}: not a readable text table ({e})") from None
    return _arrow_frame(table, path, first_row=2 if header else 1, header=header)


class _Ragged(Exception):
    """A row with too many or too few fields: its row number (None when the reader did not know it)."""

    def __init__(self, row):
        super().__init__(row.text)
        self.row, self.text, self.expected, self.actual = row.number, row.text, row.expected_columns, row.actual_columns


def _arrow_csv(path: Path, delimiter: str, names: list, header: bool, threads: bool):
    """pyarrow's CSV reader: rows with too many or too few fields raise _Ragged; empty cells and the
    usual missing markers (NA, nan, null) are missing values, in text columns too."""
    import pyarrow as pa
    import pyarrow.csv as pc

    bad = []

    def ragged(row):  # an exception raised here would be swallowed: remember the row, stop the reader
        bad.append(row)
        return "error"

    # With a header, the file's own header row (whatever blank lines come before it), renamed as cleaned.
    read = pc.ReadOptions(use_threads=threads) if header else pc.ReadOptions(column_names=names, use_threads=threads)
    parse = pc.ParseOptions(delimiter=delimiter, invalid_row_handler=ragged, newlines_in_values=True)
    convert = pc.ConvertOptions(strings_can_be_null=True)
    try:
        table = pc.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid:
        if bad:
            raise _Ragged(bad[0]) from None
        raise
    return table.rename_columns(names) if header else table


def _arrow_frame(table, path: Path, first_row: int | None, header: bool = True):
    """An Arrow table as a DataFrame: text that is not UTF-8 refused, all-empty columns as float NaN,
    dates as datetime64; no rows is an error."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type):
            if first_row is not None:  # a text file whose cells are not UTF-8
                raise DataError(f"{path}: column {f.name!r} is not UTF-8 text; save the file as UTF-8")
        elif pa.types.is_null(f.type):
            table = table.set_column(i, f.name, pa.nulls(table.num_rows, pa.float64()))
    if table.num_rows == 0:
        raise DataError(f"{path}: a header but no data rows" if header else f"{path}: the file holds no rows")
    frame = table.to_pandas(date_as_object=False)
    frame.attrs = {}  # pandas keeps a frame's attrs in Parquet metadata: a stale row offset must not come back
    if first_row is not None:
        frame.attrs["first_row"] = first_row  # the file's row number of the frame's first row, for messages
    return frame


def _read_parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(size - 4, 0))
        tail = f.read(4)
    if size < 12 or head != b"PAR1" or tail != b"PAR1":
        raise DataError(f"{path}: not a Parquet file (it lacks Parquet's 'PAR1' markers)")
    try:
        meta = pq.ParquetFile(path).metadata
        check_allocation(meta.num_rows * meta.num_columns * CELL_BYTES,
                         f"{path} ({meta.num_rows} rows x {meta.num_columns} columns)")
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    _check_unique(table.column_names, str(path))
    frame = _arrow_frame(table, path, first_row=None, header=False)
    if frame.index.name is not None or frame.index.names[0] is not None:  # a pandas index stored in the file
        frame = frame.reset_index()
    return _named(frame, str(path))


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
                "roles": dict(self.roles), "label_column": self.label_column}

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
        missing, unknown = [k for k in expected if k not in data], [k for k in data if k not in expected]
        if missing or unknown:
            raise DataError(f"table schema: missing fields {missing}, unknown fields {unknown}; expected {list(expected)}")
        schema = cls(**{k: data[k] for k in expected})
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


def infer_schema(frame, columns=None, exclude=None, categorical=None, id_columns=None, label_column=None) -> TableSchema:
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
    id_columns= carries columns as identifiers. label_column= is the label.
    """
    where = _where(frame)
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
    return _schema(frame, order, roles, label, where)


def _chosen_role(frame, name: str, chosen) -> str:
    """The guessed role, bent by columns=: a chosen column is a feature, other features are excluded."""
    try:
        role, why = _guess(frame, name)
    except DataError:  # a messy column that columns= leaves out is no error
        if chosen is None or name in chosen:
            raise
        role, why = "excluded", None
    if chosen is not None and name in chosen and role not in FEATURE_ROLES:
        role, why = ("numeric" if _all_numbers(frame[name]) else "categorical"), None
    elif chosen is not None and name not in chosen and role in FEATURE_ROLES:
        role, why = "excluded", None
    if why:
        warnings.warn(f"{_where(frame)}: column {name!r} {why}", TableWarning, stacklevel=4)
    return role


def _schema(frame, order: list, roles: dict, label, where: str) -> TableSchema:
    features = [c for c in order if roles[c] in FEATURE_ROLES]
    if not features:
        raise DataError(f"{where}: no feature columns left (roles: {roles}); "
                        "name some with columns= or categorical=")
    categorical = {c: _categories(frame[c]) for c in features if roles[c] == "categorical"}
    return TableSchema(features=features, numeric=[c for c in features if roles[c] == "numeric"],
                       categorical=categorical, ids=[c for c in frame.columns if roles[c] in CARRIED_ROLES],
                       roles=roles, label_column=label)


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
    import pandas as pd

    text = values.astype(str).str.strip()
    values, text = values[(text != "").to_numpy()], text[text != ""]  # blank text is a missing value
    if text.empty:
        return "excluded", "has no values: left out"
    numbers = pd.to_numeric(text, errors="coerce")
    is_number = numbers.notna() | text.str.lower().isin(_MISSING_TEXT)
    distinct = text.nunique()
    if is_number.all():
        return ("id" if looks_like_id(name) and distinct == len(text) else "numeric"), None
    if is_number.mean() >= 0.5:
        first = int(np.argmin(is_number.to_numpy()))
        position = int(np.flatnonzero(frame[name].notna().to_numpy())[first])  # in the frame, not among values
        raise DataError(f"{_where(frame)}: {_row(frame, position)}, column {name!r}: "
                        f"{values.iloc[first]!r} is not a number (most of the column is); fix it, or {override}")
    if _dates(text) is not None:
        return "timestamp", None
    if distinct <= max(2, min(MAX_CATEGORIES, len(frame) // 5)):
        return "categorical", None
    if distinct == len(text):
        return "id", None
    return "text", (f"holds free text ({distinct} distinct values in {len(frame)} rows): kept out of the "
                    f"features and carried like an identifier; {override}")


def _all_numbers(series) -> bool:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype):
        return True
    text = series.dropna().astype(str).str.strip()
    return bool((pd.to_numeric(text, errors="coerce").notna() | text.str.lower().isin(_MISSING_TEXT)).all())


def _dates(text):
    """The datetime64 values of text when every value is a date or time of one format, else None.
    A format must name a year or an hour: '1-2' or 'Jan' are categories, not dates."""
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
                pd.to_datetime(sample, format=fmt)
                return pd.to_datetime(text, format=fmt)
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


# ----- encoding -----


def encode(frame, schema) -> np.ndarray:
    """(n_rows, len(schema.encoded_names())) float64 model inputs: numeric columns as numbers (missing
    values NaN), categorical ones one-hot (a category the schema does not know: all zeros)."""
    schema = as_schema(schema)
    where = _where(frame)
    frame = _named(frame, where)
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing columns {missing} that the table schema's features need; "
                        f"columns: {list(frame.columns)}")
    names = schema.encoded_names()
    check_allocation(len(frame) * len(names) * CELL_BYTES, f"{where} ({len(frame)} rows x {len(names)} inputs)")
    x = np.zeros((len(frame), len(names)), dtype=np.float64)
    j = 0
    for column in schema.features:
        if column in schema.categorical:
            categories = schema.categorical[column]
            x[:, j : j + len(categories)] = _one_hot(frame[column], categories)
            j += len(categories)
        else:
            x[:, j] = _numbers(frame, column)
            j += 1
    return x


def _one_hot(series, categories: list) -> np.ndarray:
    import pandas as pd

    codes = pd.Index(categories).get_indexer(_category_strings(series))  # -1: a category the schema lacks
    out = np.zeros((len(series), len(categories)))
    known = np.flatnonzero(codes >= 0)
    out[known, codes[known]] = 1.0
    return out


def _numbers(frame, column: str) -> np.ndarray:
    """A numeric column as float64; text that is no number is a DataError naming row and column."""
    import pandas as pd

    series = frame[column]
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        text = series.astype(object).where(series.notna(), "").astype(str).str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(numbers) & ~text.str.lower().isin(_MISSING_TEXT).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{_where(frame)}: {_row(frame, i)}, column {column!r}: {series.iloc[i]!r} is not a number")
        return numbers
    raise DataError(f"{_where(frame)}: column {column!r} holds {dtype} values where the table schema wants numbers")


def decode(x, schema):
    """Model inputs (n, len(encoded_names())), already in the data's own units, as a DataFrame of the
    original feature columns: numbers as they are, a categorical column as its most likely category."""
    import pandas as pd

    schema = as_schema(schema)
    x = np.asarray(x, dtype=np.float64)
    width = len(schema.encoded_names())
    if x.ndim != 2 or x.shape[1] != width:
        raise DataError(f"decode: expected rows of {width} inputs ({schema.encoded_names()[:4]}...), got shape {x.shape}")
    columns, j = {}, 0
    for column in schema.features:
        if column in schema.categorical:
            categories = schema.categorical[column]
            columns[column] = np.asarray(categories, dtype=object)[x[:, j : j + len(categories)].argmax(1)]
            j += len(categories)
        else:
            columns[column] = x[:, j]
            j += 1
    return pd.DataFrame(columns, columns=schema.features)


# ----- the Dataset -----


def is_frame(value) -> bool:
    """Whether value is a pandas DataFrame (without importing pandas when nobody has)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def load_table(path_or_frame, label_column=None, columns=None, exclude=None, categorical=None, id_columns=None,
               header="auto", delimiter=None, scale="auto", drop_nan=False, schema=None) -> Dataset:
    """A table (.csv, .tsv, .txt, .parquet file or pandas DataFrame) as a Dataset.

    Column roles are inferred (see infer_schema) unless `schema` (a TableSchema, its JSON, or the
    path of a .json file holding it: a training set's `ds.info["table"]`) fixes them, so that new
    files are encoded exactly like the training file. Labels: integers, or class names as sorted
    integer codes (names in info["classes"]). Missing numbers are refused unless drop_nan=True
    drops their rows. scale="auto" is the robust scaling. ds.ids holds the id, timestamp and text
    columns row-aligned with ds.x (None when there are none); ds.feature_names the model inputs.
    """
    if is_frame(path_or_frame):
        frame, name, info = path_or_frame.copy(deep=False), "DataFrame", {}
        frame.attrs = {"source": "DataFrame"}
        frame = _named(frame, "DataFrame")
    else:
        frame = read_frame(path_or_frame, delimiter, header)
        name, info = Path(path_or_frame).name, {"path": str(path_or_frame)}
    where = _where(frame)
    if schema is None:
        schema = infer_schema(frame, columns, exclude, categorical, id_columns, label_column)
        label_column = schema.label_column
    else:
        schema = as_schema(schema)
        given = [k for k, v in (("columns", columns), ("exclude", exclude), ("categorical", categorical),
                                ("id_columns", id_columns)) if v is not None]
        if given:
            raise DataError(f"{where}: schema= fixes the columns' roles; drop {', '.join(given)}")
        if label_column is not None:
            label_column = _resolve(list(frame.columns), [label_column], "label_column", where)[0]
        elif schema.label_column in frame.columns:
            label_column = schema.label_column
    x = encode(frame, schema)
    labels = _labels(frame[label_column], info) if label_column is not None else None
    carried = [c for c in schema.ids if c in frame.columns and c != label_column]
    ids = frame[carried].reset_index(drop=True) if carried else None
    keep = check_finite(x, where, drop_nan)
    if keep is not None:
        x, labels = x[keep], None if labels is None else labels[keep]
        ids = None if ids is None else ids[keep].reset_index(drop=True)
        info["dropped_rows"] = int((~keep).sum())
    info.update({"columns": schema.encoded_names(), "table": schema.to_json()})
    ds = make_dataset(x, name, labels, scale, info=info, table=True)
    ds.ids, ds.feature_names = ids, schema.encoded_names()
    return ds


def _labels(series, info: dict) -> np.ndarray:
    """Integer labels as they are; anything else (class names) as codes of the sorted names, kept in info."""
    import pandas as pd

    if not pd.api.types.is_bool_dtype(series.dtype):
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
            return numbers.astype(np.int64)
    names = _category_strings(series).astype(str)
    classes = sorted(set(names.tolist()))
    info["classes"] = classes
    return np.searchsorted(np.asarray(classes), names).astype(np.int64)
