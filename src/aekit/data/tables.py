"""Tables: CSV / TSV / text files, Parquet files and pandas DataFrames with mixed column types.

    frame = read_frame("sensors.csv")                  # a DataFrame; every failure is a DataError
    schema = infer_schema(frame, exclude="note")       # the role of each column (schema.py)
    x = encode(frame, schema)                          # float64 model inputs, one-hot categories
    ids = carried_columns(frame, schema.ids)           # id / timestamp / text columns as the user wrote them
    ds = load_table("sensors.csv")                     # all of it, as a robustly scaled Dataset
    new = load_table("today.csv", schema=ds.info["table"])  # scored exactly like the training file

Each column's role (numeric, categorical, id, timestamp, text, label, excluded) comes from the
schema (schema.py), which is JSON, so new files are encoded with the training file's columns and
categories.

pandas and pyarrow are imported when a table is read, not when the package is imported.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from aekit.data import numbers
from aekit.data.base import Dataset, check_allocation, check_regular_file, make_dataset
from aekit.data.missing import apply_policy
from aekit.data.schema import (
    _MISSING_TEXT,
    CELL_BYTES,
    MISSING,
    OTHER,
    ROLE_OPTIONS,
    _category_strings,
    _check_unique,
    _named,
    _resolve,
    _row,
    _where,
    as_schema,
    infer_schema,
)
from aekit.errors import DataError

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": None}  # .txt: tab, comma or space, from its first row
TABLE_SUFFIXES = (*TEXT_SUFFIXES, ".parquet")
TEXT_BYTES_PER_CELL = 2  # the fewest bytes a cell takes in a text table: one character and a delimiter


# ----- reading -----


def read_frame(path, delimiter=None, header="auto"):
    """The table in `path` (.csv, .tsv, .txt or .parquet) as a pandas DataFrame with string column names.

    delimiter: one character; by default "," for .csv, a tab for .tsv, and for .txt a tab, comma or
    space, whichever its first row holds. header: True, False or "auto" (the first row is a header
    when any of its cells is not a number); without one the columns are named "0", "1", ...
    Text is read as UTF-8 (a byte-order mark is skipped). Every failure is a DataError naming the file.
    frame.attrs["reader"] records how the file was read, for carried_columns.
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
    frame = _arrow_frame(table, path, first_row=2 if header else 1, header=header)
    frame.attrs["reader"] = {"kind": "text", "delimiter": delimiter, "header": bool(header), "names": names,
                             "rows": len(frame)}
    return frame


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
    frame = _named(frame, str(path))
    frame.attrs["reader"] = {"kind": "parquet", "names": table.column_names, "rows": len(frame)}
    return frame


def carried_columns(frame, columns: list):
    """The carried (id, timestamp, text) `columns` of a table, row-aligned with `frame`, as the user wrote
    them: from a text file, each cell's own text (an id 007 stays "007", not 7; a time keeps its UTC
    offset and its format; an empty cell is missing); from a Parquet file or a DataFrame, the column
    with its own type (an integer column with missing values as pandas' nullable integers).

    frame: as read_frame returns it, or its rows (the index labels are the file's row positions)."""
    reader = frame.attrs.get("reader")
    if reader is None or not columns:
        return frame[list(columns)].reset_index(drop=True)
    path = Path(frame.attrs["source"])
    if reader["kind"] == "text":
        raw = _text_cells(path, reader, list(columns))
    else:
        stored = [c for c in columns if c in reader["names"]]
        if not stored:
            return frame[list(columns)].reset_index(drop=True)
        raw = _parquet_columns(path, stored)
    if len(raw) != reader["rows"]:
        raise DataError(f"{path}: the file changed while it was read ({reader['rows']} rows, now {len(raw)})")
    rows = raw.iloc[frame.index.to_numpy()].reset_index(drop=True)
    typed = frame[list(columns)].reset_index(drop=True)
    for c in columns:
        if c not in rows.columns:  # a column made from a Parquet file's pandas index ("index" for an unnamed one)
            rows[c] = typed[c]
        elif reader["kind"] == "text":
            rows[c] = _as_written(typed[c], rows[c])
    return rows[list(columns)]


def _as_written(typed, text):
    """A text file's column as integers when they write back as its text (7 from "7", with missing
    values as pandas' nullable integers), else as its text ("007", "2025-03-01T00:00:00+05:30")."""
    import pandas as pd

    if not (pd.api.types.is_integer_dtype(typed) or pd.api.types.is_float_dtype(typed)):
        return text
    try:
        numbers = typed.astype("Int64") if typed.isna().any() else typed.astype("int64")
    except (TypeError, ValueError):  # fractions: no integer column
        return text
    same = numbers.isna().equals(text.isna()) and (numbers.dropna().astype(str) == text.dropna()).all()
    return numbers if same else text


def _text_cells(path: Path, reader: dict, columns: list):
    """Columns of a text table as strings, exactly as the cells hold them (quotes removed)."""
    import pyarrow as pa
    import pyarrow.csv as pc

    read = pc.ReadOptions(column_names=reader["names"])  # the header row, if any, is read as row 0
    parse = pc.ParseOptions(delimiter=reader["delimiter"], newlines_in_values=True)
    convert = pc.ConvertOptions(column_types={c: pa.string() for c in columns}, include_columns=columns,
                                strings_can_be_null=True, null_values=[""])
    try:
        table = pc.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot read the columns {columns} again as text ({e})") from None
    return (table.slice(1) if reader["header"] else table).to_pandas()


def _parquet_columns(path: Path, columns: list):
    """Columns of a Parquet file with their stored types: integers stay integers when values are missing."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=columns).replace_schema_metadata(None)  # no pandas index restored
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the columns {columns} again ({e})") from None
    nullable = {f.type: pd.api.types.pandas_dtype(f"{'U' if pa.types.is_unsigned_integer(f.type) else ''}"
                                                  f"Int{f.type.bit_width}")
                for f, col in zip(table.schema, table.columns) if pa.types.is_integer(f.type) and col.null_count}
    return table.to_pandas(types_mapper=nullable.get, date_as_object=False)


# ----- encoding -----


def encode(frame, schema) -> np.ndarray:
    """(n_rows, len(schema.encoded_names())) float64 model inputs: numeric columns as numbers (missing
    values NaN), categorical ones one-hot (a category the schema does not know: its OTHER level, an
    empty cell its MISSING level; a schema without them: all zeros). encode_rows applies the missing policy."""
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
            x[:, j] = _numbers(frame, column, schema.formats.get(column))
            j += 1
    return x


def _one_hot(series, categories: list) -> np.ndarray:
    import pandas as pd

    strings = _category_strings(series)
    codes = pd.Index(categories).get_indexer(strings)  # -1: a category the schema lacks
    if OTHER in categories:
        codes[codes < 0] = categories.index(OTHER)
    if MISSING in categories:
        codes[strings == ""] = categories.index(MISSING)
    out = np.zeros((len(series), len(categories)))
    known = np.flatnonzero(codes >= 0)
    out[known, codes[known]] = 1.0
    return out


def _numbers(frame, column: str, written=None) -> np.ndarray:
    """A numeric column as float64, text read as the schema's format says (`written`, numbers.py) or, when
    it records none and the cells are no plain numbers, in the one format that reads them all; text that
    is no number is a DataError naming row and column."""
    import pandas as pd

    series = frame[column]
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise DataError(f"{_where(frame)}: column {column!r} holds {dtype} values where the table schema wants numbers")
    fmt = numbers.as_format(written)
    if fmt is None:
        found = numbers.column_format(series)
        fmt = found or None
    values = numbers.column_numbers(series, fmt)
    bad = np.isnan(values) & ~numbers.cell_text(series).str.lower().isin(_MISSING_TEXT).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        how = f" written with {numbers.describe(fmt)}" if fmt is not None else ""
        raise DataError(f"{_where(frame)}: {_row(frame, i)}, column {column!r}: {series.iloc[i]!r} is not a number{how}")
    return values


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


# ----- empty cells -----


def encode_rows(frame, schema, missing=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, empty, keep): encode, then the missing policy (missing=None: the schema's; missing.apply_policy)."""
    schema = as_schema(schema)
    return apply_policy(frame, schema, encode(frame, schema), missing)


# ----- the Dataset -----


def is_frame(value) -> bool:
    """Whether value is a pandas DataFrame (without importing pandas when nobody has)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def load_table(path_or_frame, label_column=None, columns=None, exclude=None, categorical=None, id_columns=None,
               header="auto", delimiter=None, scale="auto", drop_nan=False, schema=None, missing=None) -> Dataset:
    """A table (.csv, .tsv, .txt, .parquet file or pandas DataFrame) as a Dataset.

    Column roles are inferred (see infer_schema) unless `schema` (a TableSchema, its JSON, or the
    path of a .json file holding it: a training set's `ds.info["table"]`) fixes them, so that new
    files are encoded exactly like the training file. Labels: integers, or class names as sorted
    integer codes (names in info["classes"]). missing: "impute" (inferring a schema: the default),
    "drop" or "error" (encode_rows); with a given schema, None is the policy it records; drop_nan=True
    is missing="drop". scale="auto" is the robust scaling, the one-hot inputs stay 0 or 1. ds.ids holds
    the id, timestamp and text columns row-aligned with ds.x (None when there are none); ds.feature_names
    the model inputs; ds.imputed the empty (imputed) cells per feature column, or None when there are none.
    """
    if missing is None and drop_nan:
        missing = "drop"
    if is_frame(path_or_frame):
        frame, name, info = path_or_frame.copy(deep=False), "DataFrame", {}
        frame.attrs = {"source": "DataFrame"}
        frame = _named(frame, "DataFrame")
    else:
        frame = read_frame(path_or_frame, delimiter, header)
        name, info = Path(path_or_frame).name, {"path": str(path_or_frame)}
    where = _where(frame)
    if schema is None:
        schema = infer_schema(frame, columns, exclude, categorical, id_columns, label_column, missing or "impute")
        label_column = schema.label_column
    else:
        schema = as_schema(schema)
        given = [k for k, v in zip(ROLE_OPTIONS, (columns, exclude, categorical, id_columns)) if v is not None]
        if given:
            raise DataError(f"{where}: schema= fixes the columns' roles; drop {', '.join(given)}")
        if label_column is not None:
            label_column = _resolve(list(frame.columns), [label_column], "label_column", where)[0]
        elif schema.label_column in frame.columns:
            label_column = schema.label_column
    x, empty, keep = encode_rows(frame, schema, missing)
    labels = _labels(frame[label_column], info) if label_column is not None else None
    carried = [c for c in schema.ids if c in frame.columns and c != label_column]
    ids = carried_columns(frame, carried) if carried else None
    if keep is not None:
        if not keep.any():
            raise DataError(f"{where}: every row has an empty cell, so missing='drop' leaves none")
        labels = None if labels is None else labels[keep]
        ids = None if ids is None else ids[keep].reset_index(drop=True)
        info["dropped_rows"] = int((~keep).sum())
    info.update({"columns": schema.encoded_names(), "table": schema.to_json()})
    ds = make_dataset(x, name, labels, scale, info=info, table=True, unit=schema.unit_inputs())
    ds.ids, ds.feature_names = ids, schema.encoded_names()
    ds.imputed = empty if empty.any() else None
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
