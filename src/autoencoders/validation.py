"""Checks on data handed to the library: type, shape, emptiness, NaN/inf, range.

Large arrays (memory-mapped .npy) are checked in chunks so memory stays bounded.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .datasets.base import CHUNK, MappedArray, release_pages
from .errors import DataError


def as_array(x, name: str = "x"):
    """A float32 torch.Tensor, or a NumPy memmap left on disk (batches are read from it)."""
    if hasattr(x, "x") and hasattr(x, "input_shape"):  # a datasets.Dataset
        x = x.x
    if isinstance(x, (np.memmap, MappedArray)):
        return x  # stays on disk: batches are read by take()
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
            raise DataError(f"{name} must hold numbers, got dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point() or x.dtype in (torch.uint8, torch.int32, torch.int64, torch.bool)):
            raise DataError(f"{name} must hold numbers, got dtype {x.dtype}")
        return x.detach().to(torch.float32)
    raise TypeError(f"{name} must be a torch.Tensor, a numpy.ndarray or a Dataset, got {type(x).__name__}")


def _chunks(x):
    n = x.shape[0]
    step = max(1, CHUNK // max(1, math.prod(x.shape[1:])))
    for i in range(0, n, step):
        part = x[i : i + step]
        if isinstance(part, np.ndarray):
            part = torch.from_numpy(np.array(part, dtype=np.float32))
            release_pages(x)
        yield i, part


def check_data(x, input_shape, name: str = "x", unit_range: bool = False) -> None:
    """Raise DataError unless x is (N >= 1, *input_shape), finite, and (unit_range) within [0, 1]."""
    shape = tuple(input_shape)
    if tuple(x.shape[1:]) != shape:
        raise DataError(f"{name} has shape {tuple(x.shape)}, expected (N, {', '.join(map(str, shape))}) to match input_shape {shape}")
    if x.shape[0] == 0:
        raise DataError(f"{name} is empty (0 examples)")
    bad, lo, hi = 0, math.inf, -math.inf
    first_bad = None
    for start, part in _chunks(x):
        finite = torch.isfinite(part)
        if not bool(finite.all()):
            count = int((~finite).sum())
            if first_bad is None:
                row = int((~finite).flatten(1).any(1).nonzero()[0]) + start
                first_bad = row
            bad += count
        elif unit_range:
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    if bad:
        raise DataError(f"{name} holds {bad} NaN/inf values (first in example {first_bad}); clean or drop them first")
    if unit_range and (lo < 0 or hi > 1):
        raise DataError(
            f"{name} has values in [{lo:.4g}, {hi:.4g}], but reconstruction='bce' needs data in [0, 1]: "
            "scale it to [0, 1] or use reconstruction='mse'"
        )


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


_ROWS_PER_READ = 64
