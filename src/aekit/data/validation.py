"""Data handed to the library: checks (type, shape, emptiness, NaN/inf, range) and reading rows.

Every array the library takes, in memory or memory-mapped, goes through here:
`as_array` turns it into a float32 tensor (or leaves a memmap on disk),
`check_data` checks it in chunks so memory stays bounded, and `take` / `row_batches`
read rows from it, releasing a memmap's pages after every read.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aekit.data.base import CHUNK, Dataset, MappedArray, release_pages
from aekit.errors import ConfigError, DataError


def as_array(x, name: str = "x", dtype: torch.dtype = torch.float32):
    """A float32 (or `dtype`) torch.Tensor, or a NumPy memmap left on disk (batches are read from it)."""
    if isinstance(x, Dataset):
        x = x.x
    if isinstance(x, (np.memmap, MappedArray)):
        return x  # stays on disk: batches are read by take()
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
            raise DataError(f"{name} must hold numbers, got dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=_NUMPY_DTYPES[dtype]))
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point() or x.dtype in (torch.uint8, torch.int32, torch.int64, torch.bool)):
            raise DataError(f"{name} must hold numbers, got dtype {x.dtype}")
        return x.detach().to(dtype)
    raise TypeError(f"{name} must be a torch.Tensor, a numpy.ndarray or a Dataset, got {type(x).__name__}")


def check_shape(x, shape, name: str = "x") -> None:
    """DataError unless x is (N, *shape), with a reshape hint when only the layout differs."""
    shape = tuple(shape)
    if tuple(x.shape[1:]) != shape:
        hint = ""
        if len(x.shape) >= 2 and math.prod(x.shape[1:]) == math.prod(shape):
            hint = f"; reshape it with x.reshape(-1, *{shape})"
        raise DataError(f"{name} has shape {tuple(x.shape)}, expected (N, {', '.join(map(str, shape))}) "
                        f"to match input_shape {shape}{hint}")


def check_data(x, input_shape, name: str = "x", unit_range: bool = False) -> None:
    """Raise DataError unless x is (N >= 1, *input_shape), finite, and (unit_range) within [0, 1]."""
    check_shape(x, input_shape, name)
    if x.shape[0] == 0:
        raise DataError(f"{name} is empty (0 examples)")
    bad, lo, hi = 0, math.inf, -math.inf
    first_bad = None
    step = max(1, CHUNK // max(1, math.prod(x.shape[1:])))
    for start, part in zip(range(0, x.shape[0], step), row_batches(x, step)):
        finite = torch.isfinite(part)
        if not bool(finite.all()):
            if first_bad is None:
                first_bad = int((~finite).flatten(1).any(1).nonzero()[0]) + start
            bad += int((~finite).sum())
        elif unit_range:
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    if bad:
        raise DataError(f"{name} holds {bad} NaN/inf values (first in example {first_bad}); clean or drop them first")
    if unit_range and (lo < 0 or hi > 1):
        raise DataError(
            f"{name} has values in [{lo:.4g}, {hi:.4g}], but reconstruction='bce' needs data in [0, 1]: "
            "scale it to [0, 1] or use reconstruction='mse'"
        )


def check_labels(labels, n: int, n_classes: int, name: str = "labels") -> torch.Tensor:
    """Class labels for a conditional model as an int64 tensor (n,): integers in [-1, n_classes), -1 = unknown.

    DataError naming the argument, what is wrong and the allowed range; ConfigError for labels given to a
    model that does not condition on them (n_classes = 0).
    """
    if not n_classes:
        raise ConfigError(f"{name}: class labels are for a conditional model (kind 'cvae', n_classes > 0); this model takes none")
    if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
        labels = np.full(n, int(labels))
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)  # whole numbers stored as floats
    if y.dtype.kind not in "iu":
        raise DataError(f"{name} must be integer class labels, got dtype {y.dtype}")
    if y.shape != (n,):
        raise DataError(f"{name} has shape {y.shape}, expected ({n},): one label per example")
    if n and (y.min() < -1 or y.max() >= n_classes):
        bad = int(y[(y < -1) | (y >= n_classes)][0])
        raise DataError(f"{name} must lie in [-1, {n_classes}) (n_classes={n_classes}; -1 = unknown), got {bad}")
    return torch.as_tensor(y, dtype=torch.int64)


def take(x, idx: torch.Tensor) -> torch.Tensor:
    """Rows idx of x as a float32 tensor; from a memmap, reads them from disk in sorted order."""
    if isinstance(x, torch.Tensor):
        return x[idx]
    rows = np.sort(idx.numpy())
    parts = []
    # A few rows at a time, releasing the mapped pages after each: the kernel maps a whole
    # page-cache folio (up to 2 MB) around every row it faults in, so 10,000 scattered rows
    # read at once would map most of a multi-GB file into this process.
    for start in range(0, len(rows), _ROWS_PER_READ):
        parts.append(np.asarray(x[rows[start : start + _ROWS_PER_READ]], dtype=np.float32))
        release_pages(x)
    return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))


def row_batches(x, batch_size: int, rows: torch.Tensor | None = None):
    """Consecutive batches of x's rows (all, or `rows` in order) as float32 tensors, read lazily."""
    rows = torch.arange(x.shape[0]) if rows is None else rows
    for start in range(0, len(rows), batch_size):
        yield take(x, rows[start : start + batch_size])


_ROWS_PER_READ = 64
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
