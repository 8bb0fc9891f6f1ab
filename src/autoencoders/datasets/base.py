"""The Dataset every source returns, scaling, and lazily scaled memory-mapped arrays."""

from __future__ import annotations

import math
import mmap
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError, suggest

SCALES = ("auto", "pixels", "standard", "minmax", "none")
CHUNK = 1 << 22  # values per chunk when a large (memory-mapped) array is scanned


class MappedArray:
    """A memory-mapped array read lazily: indexing returns float32 rows with the scaling applied.

    Training reads only the rows of each batch, so a file larger than memory
    trains with bounded memory; the stored dtype (e.g. uint8 pixels) stays on disk.
    """

    def __init__(self, data: np.ndarray, shape: tuple[int, ...], shift=0.0, factor=1.0):
        self.data, self.shape = data, (data.shape[0], *shape)
        self.shift = np.asarray(shift, dtype=np.float32).reshape(-1) if np.ndim(shift) else np.float32(shift)
        self.factor = np.asarray(factor, dtype=np.float32).reshape(-1) if np.ndim(factor) else np.float32(factor)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        raw = np.asarray(self.data[rows], dtype=np.float32)
        n = raw.shape[0] if raw.ndim == self.data.ndim else None  # several rows, or a single one
        flat = raw.reshape(n if n is not None else 1, -1)
        flat = (flat - self.shift) * self.factor
        return flat.reshape((n, *self.shape[1:]) if n is not None else self.shape[1:])

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out.astype(dtype) if dtype is not None else out


@dataclass
class Dataset:
    """Examples `x` (float32, (N, *input_shape)), optional labels `y`, and how they were scaled.

    `x` is a torch.Tensor in memory, or a MappedArray read from disk batch by batch.
    `y` holds integer class labels, or for the toy sets the float generating parameter.
    `scaling` is JSON (stored in a run's config.json) so new data can be transformed
    the same way with `transform`.
    """

    x: object
    y: np.ndarray | None
    name: str
    scaling: dict = field(default_factory=lambda: {"method": "none"})
    info: dict = field(default_factory=dict)  # source-specific facts: classes, split, held-out range, files
    source: dict | None = None  # how to load it again: {"name": name or path, "options": {...}} (set by load)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def __repr__(self) -> str:
        labels = "no labels" if self.y is None else f"labels {self.y.dtype}"
        where = "memory-mapped" if isinstance(self.x, MappedArray) else "in memory"
        return f"Dataset({self.name!r}, {len(self)} examples of shape {self.input_shape}, {labels}, {where}, scaling={self.scaling['method']})"

    def numpy(self) -> np.ndarray:
        return np.asarray(self.x, dtype=np.float32)

    def transform(self, raw) -> np.ndarray:
        """Apply this dataset's scaling to new raw data of the same layout."""
        return apply_scaling(np.asarray(raw, dtype=np.float32), self.scaling)


def apply_scaling(raw: np.ndarray, scaling: dict) -> np.ndarray:
    shift, factor = _affine(scaling)
    flat = raw.reshape(raw.shape[0], -1).astype(np.float32)
    return ((flat - shift) * factor).reshape(raw.shape).astype(np.float32)


def _affine(scaling: dict) -> tuple:
    """(shift, factor) with scaled = (raw - shift) * factor, per feature or global."""
    method = scaling["method"]
    if method == "none":
        return np.float32(0), np.float32(1)
    if method == "pixels":
        return np.float32(0), np.float32(1.0 / scaling["max"])
    if method == "standard":
        return np.asarray(scaling["mean"], np.float32), 1.0 / np.asarray(scaling["std"], np.float32)
    if method == "minmax":
        lo, hi = np.asarray(scaling["min"], np.float32), np.asarray(scaling["max"], np.float32)
        span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)  # constant columns map to 0
        return lo, 1.0 / span
    raise DataError(f"unknown scaling method {method!r} in {scaling}")


def _column_stats(raw) -> dict:
    """Per-feature min, max, mean and std, in chunks (works on memmaps)."""
    n = raw.shape[0]
    d = math.prod(raw.shape[1:])
    step = max(1, CHUNK // max(1, d))
    lo = np.full(d, np.inf)
    hi = np.full(d, -np.inf)
    s = np.zeros(d)
    ss = np.zeros(d)
    for i in range(0, n, step):
        part = np.asarray(raw[i : i + step], dtype=np.float64).reshape(-1, d)
        lo, hi = np.minimum(lo, part.min(0)), np.maximum(hi, part.max(0))
        s += part.sum(0)
        ss += (part**2).sum(0)
        release_pages(raw)
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean**2, 0))
    return {"min": lo, "max": hi, "mean": mean, "std": std}


def choose_scaling(raw, scale: str, images: bool) -> dict:
    """The scaling of `scale` ('auto': pixels for images, minmax for tables), fitted on raw."""
    if scale not in SCALES:
        raise DataError(f"scale={scale!r} is not one of {', '.join(map(repr, SCALES))}{suggest(scale, SCALES)}")
    if scale == "auto":
        scale = "pixels" if images else "minmax"
    if scale == "none":
        return {"method": "none"}
    if scale == "pixels":
        # Integer images are scaled by their type's maximum (255 for 8-bit); float images by 1.
        dtype = np.asarray(raw[:1]).dtype
        top = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
        return {"method": "pixels", "max": top}
    stats = _column_stats(raw)
    if scale == "minmax":
        return {"method": "minmax", "min": stats["min"].tolist(), "max": stats["max"].tolist()}
    std = np.where(stats["std"] > 0, stats["std"], 1.0)  # constant columns stay 0 after centring
    return {"method": "standard", "mean": stats["mean"].tolist(), "std": std.tolist()}


def check_finite(raw: np.ndarray, where: str, drop_nan: bool):
    """Rows to keep (all, or only the finite ones with drop_nan) or a DataError saying how many and where."""
    flat = raw.reshape(raw.shape[0], -1)
    finite_rows = np.isfinite(flat).all(1)
    if finite_rows.all():
        return None
    bad = np.argwhere(~np.isfinite(flat))
    if drop_nan:
        return finite_rows
    row, col = bad[0]
    raise DataError(
        f"{where}: {len(bad)} NaN/inf values in {int((~finite_rows).sum())} rows (first at row {row}, column {col}); "
        "clean them, or pass drop_nan=True to drop those rows"
    )


def make_dataset(raw, name: str, y=None, scale: str = "auto", images: bool = False, info=None, memmap: bool = False,
                 input_shape=None) -> Dataset:
    """Scale raw (N, ...) numbers into a Dataset; memory-mapped raw stays on disk."""
    if raw.shape[0] == 0:
        raise DataError(f"{name}: no examples (empty)")
    shape = tuple(input_shape) if input_shape is not None else tuple(raw.shape[1:])
    if math.prod(shape) != math.prod(raw.shape[1:]):
        raise DataError(f"{name}: input_shape {shape} does not hold examples of shape {tuple(raw.shape[1:])}")
    scaling = choose_scaling(raw, scale, images)
    if memmap:
        shift, factor = _affine(scaling)
        x = MappedArray(raw, shape, shift, factor)
    else:
        x = torch.from_numpy(apply_scaling(np.asarray(raw), scaling).reshape(-1, *shape))
    labels = None if y is None else np.asarray(y)
    if labels is not None and len(labels) != raw.shape[0]:
        raise DataError(f"{name}: {len(labels)} labels for {raw.shape[0]} examples")
    return Dataset(x, labels, name, scaling, dict(info or {}))


def release_pages(x) -> None:
    """Unmap the pages of a memory-mapped file that reads have touched (call after each read).

    Pages of a file mapping that a process has read count in its resident memory
    until it unmaps them, and the kernel maps up to 64 KB around each faulting
    row (fault-around), so a few thousand shuffled rows already map most of a
    file: one epoch over a file of several GB would end with all of it resident.
    MADV_DONTNEED drops the pages from this process only: they stay in the
    kernel's page cache, and the next read maps them back cheaply (a minor
    fault, no disk read while the cache holds them). It costs microseconds.
    """
    array = x.data if isinstance(x, MappedArray) else x
    mapping = getattr(array, "_mmap", None)  # numpy.memmap keeps its mmap.mmap here
    if mapping is not None and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)
