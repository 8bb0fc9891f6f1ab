"""Empty cells of a table's features: which they are, and the policy that decides what becomes of them.

    x, empty, keep = apply_policy(frame, schema, encode(frame, schema))   # tables.encode_rows
    imputed_inputs(schema, empty)                                          # the model inputs they touch

Policies (TableSchema.missing, recorded with a run and used again on every new file): "impute" fills a
numeric cell with its column's training median (TableSchema.fill) and a categorical one is its MISSING
level; "drop" leaves the rows out; "error" names the file, the count and the first cell by its row and column.
"""

from __future__ import annotations

import numpy as np

from aekit.data.schema import MISSING_POLICIES, _category_strings, _row, _where, as_schema
from aekit.errors import DataError


def empty_cells(frame, schema, x: np.ndarray) -> np.ndarray:
    """(n_rows, len(schema.features)) bool: the empty cells of each feature column (a number that is
    missing or not finite; a category left empty, unless the schema keeps "" as a category of its own)."""
    out = np.zeros((len(x), len(schema.features)), dtype=bool)
    j = 0
    for i, column in enumerate(schema.features):
        if column in schema.categorical:
            if "" not in schema.categorical[column]:
                out[:, i] = _category_strings(frame[column]) == ""
            j += len(schema.categorical[column])
        else:
            out[:, i] = ~np.isfinite(x[:, j])
            j += 1
    return out


def imputed_inputs(schema, empty) -> np.ndarray | None:
    """(N, model inputs) bool: the inputs that hold an imputed number, from empty cells per feature column
    (a categorical's empty cell is its own MISSING level, not imputed); None when there are none."""
    if empty is None or not np.asarray(empty).any():
        return None
    schema = as_schema(schema)
    groups = schema.groups()
    numeric = np.asarray([schema.features[i] not in schema.categorical for i in groups])
    return np.asarray(empty, dtype=bool)[:, groups] & numeric


def apply_policy(frame, schema, x: np.ndarray, missing=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, empty, keep): frame's encoded rows x (tables.encode) with the missing policy applied
    (missing=None: the one the schema records).

    impute: numeric empty cells take the column's training median (schema.fill), categorical ones are
    already their MISSING level; drop: rows with an empty cell are left out (keep says which are kept);
    error: a DataError naming the file, the count and the first empty cell by its row and column.
    empty: (kept rows, features) bool, the cells that were empty (and imputed)."""
    schema = as_schema(schema)
    policy = schema.missing if missing is None else missing
    if policy not in MISSING_POLICIES:
        raise DataError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {policy!r}")
    empty = empty_cells(frame, schema, x)
    rows = empty.any(1)
    if not rows.any():
        return x, empty, None
    if policy == "error" or (policy == "impute" and not all(c in schema.fill for c in schema.numeric)):
        row, col = np.argwhere(empty)[0]
        hint = ("this run's schema records no medians to fill them: pass missing='drop'" if policy == "impute"
                else "pass missing='impute' to fill them, or missing='drop' to leave their rows out")
        raise DataError(f"{_where(frame)}: {int(empty.sum())} empty cells in {int(rows.sum())} rows (first: "
                        f"{_row(frame, int(row))}, column {schema.features[col]!r}); {hint}")
    if policy == "drop":
        keep = ~rows
        return x[keep], empty[keep], keep
    j = 0
    for column in schema.features:
        if column in schema.categorical:
            j += len(schema.categorical[column])
            continue
        bad = ~np.isfinite(x[:, j])
        x[bad, j] = schema.fill[column]
        j += 1
    return x, empty, None
