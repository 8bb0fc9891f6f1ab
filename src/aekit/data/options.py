"""The options of every data source, checked in one place before a loader sees them.

A value of the wrong type (from Python, a YAML file or `--data-option KEY=VALUE`) gives a
DataError naming the option, never a Python error from deep inside a reader. List options
(`columns`, `exclude`, `categorical`, `id_columns`, `mirrors`) accept a list, a tuple or a comma-separated string.
"""

from __future__ import annotations

from pathlib import Path

from aekit.data.base import SCALES
from aekit.errors import DataError, check_choice, check_int, check_number

COLORS = ("auto", "grayscale", "rgb")


def check_options(options: dict) -> dict:
    """options with every known option checked and normalised (lists read, tuples built)."""
    return {name: _CHECKS[name](name, value) if name in _CHECKS else value for name, value in options.items()}


def as_list(name: str, value) -> list | None:
    """A list option: a list/tuple, a comma-separated string, or one value; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    else:
        raise DataError(f"{name} must be a list (or a comma-separated string), got {value!r}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise DataError(f"every entry of {name} must be a name or a 0-based index, got {item!r}")
    if not items:
        raise DataError(f"{name} is empty")
    return items


def _bool(name, value):
    if not isinstance(value, bool):
        raise DataError(f"{name} must be true or false, got {value!r}")
    return value


def _string(name, value):
    if not isinstance(value, str):
        raise DataError(f"{name} must be a string, got {value!r}")
    return value


def _optional_str(name, value):
    if value is not None and not isinstance(value, str):
        raise DataError(f"{name} must be a string, got {value!r}")
    return value


def _column(name, value):
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise DataError(f"{name} must be a column name or a 0-based index, got {value!r}")


def _schema(name, value):
    """A table schema: a TableSchema (it has to_json), its dict, its JSON text or a .json file's path.
    Its content is checked by the table loader (TableSchema.from_json)."""
    if value is None or isinstance(value, (dict, str, Path)) or callable(getattr(value, "to_json", None)):
        return value
    raise DataError(f"{name} must be a table schema (a TableSchema, its JSON or a .json file), got {value!r}")


def _shape(name, value):
    if value is None:
        return None
    items = (value,) if isinstance(value, int) else value
    if isinstance(items, str) or not isinstance(items, (list, tuple)) or not items:
        raise DataError(f"{name} must be a tuple of positive ints, got {value!r}")
    return tuple(check_int(f"every entry of {name}", v, 0, low_open=True, error=DataError) for v in items)


def _image_size(name, value):
    size = _shape(name, value)
    if size is not None and len(size) not in (1, 2):
        raise DataError(f"{name} must be one int or (height, width), got {value!r}")
    return size if size is None or len(size) == 2 else size * 2


def _header(name, value):
    if value != "auto" and not isinstance(value, bool):
        raise DataError(f"{name} must be true, false or 'auto', got {value!r}")
    return value


def _delimiter(name, value):
    if value is not None and not (isinstance(value, str) and len(value) == 1 and value not in "\r\n\"'"):
        raise DataError(f"{name} must be one character (',' or a tab, say), got {value!r}")
    return value


def _path(name, value):
    if value is not None and not isinstance(value, (str, Path)):
        raise DataError(f"{name} must be a path, got {value!r}")
    return value


def _optional_limit(name, value):
    return None if value is None else check_int(name, value, 1, error=DataError)


_CHECKS = {
    "scale": lambda n, v: check_choice(n, v, SCALES, error=DataError),
    "color": lambda n, v: check_choice(n, v, COLORS, error=DataError),
    "drop_nan": _bool,
    "missing": lambda n, v: check_choice(n, v, ("impute", "drop", "error"), error=DataError),
    "download": _bool,
    "header": _header,
    "delimiter": _delimiter,
    "key": _optional_str,
    "label_key": _optional_str,
    "split": _string,
    "label_column": _column,
    "columns": as_list,
    "exclude": as_list,
    "categorical": as_list,
    "id_columns": as_list,
    "schema": _schema,
    "mirrors": as_list,
    "input_shape": _shape,
    "image_size": _image_size,
    "memmap_threshold": lambda n, v: check_int(n, v, 0, error=DataError),
    "limit": _optional_limit,
    "n": lambda n, v: check_int(n, v, 0, low_open=True, error=DataError),
    "seed": lambda n, v: check_int(n, v, 0, 2**32 - 1, error=DataError),
    "noise": lambda n, v: check_number(n, v, 0, error=DataError),
    "turns": lambda n, v: check_number(n, v, 0, low_open=True, error=DataError),
    "holdout": lambda n, v: check_number(n, v, 0, 1, high_open=True, error=DataError),
    "data_dir": _path,
    "labels_path": _path,
}
