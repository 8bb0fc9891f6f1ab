"""The Dataset every source returns, scaling, and lazily scaled memory-mapped arrays."""

from __future__ import annotations

import math
import mmap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aekit.budget import check_memory
from aekit.errors import DataError, suggest

SCALES = ("auto", "pixels", "standard", "minmax", "robust", "rownorm", "none")
# "robust": per feature, (x - median) / spread, where spread is the standard deviation of the values
# winsorised to their [5, 95] percentiles, so that a few extreme rows (the anomalies a detector looks for)
# neither set the scale nor squash the bulk; beyond TAIL spreads a value grows logarithmically,
# TAIL + log(1 + |z| - TAIL), keeping its order while one heavy-tailed feature cannot dominate every
# distance. Invariant to a per-feature affine change of units (README, "Anomaly detection on your tables").
WINSOR_PERCENT = 5.0
TAIL = 3.0
ROBUST_FIT_ROWS = 100_000  # the median and percentiles are taken on at most this many evenly spaced rows
CHUNK = 1 << 22  # values per chunk when a large (memory-mapped) array is scanned


def check_regular_file(path) -> None:
    """DataError unless path is an existing regular file: a FIFO or device would block or never end."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path} is not a regular file (a folder, FIFO or device): refusing to read it")


def check_allocation(nbytes: int, what: str, error=DataError) -> None:
    """`error` unless nbytes fit the memory limit (aekit.budget.check_memory): the readers' form, with a
    DataError by default, since their sizes come from a file's header (a damaged or hostile one)."""
    check_memory(what, nbytes, error)


class MappedArray:
    """A memory-mapped array read lazily: indexing returns float32 rows with the scaling applied.

    Training reads only the rows of each batch, so a file larger than memory
    trains with bounded memory; the stored dtype (e.g. uint8 pixels) stays on disk.
    """

    def __init__(self, data: np.ndarray, shape: tuple[int, ...], scaling: dict | None = None):
        self.data, self.shape = data, (data.shape[0], *shape)
        self.scaling = scaling or {"method": "none"}
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        raw = np.asarray(self.data[rows])
        n = raw.shape[0] if raw.ndim == self.data.ndim else None  # several rows, or a single one
        with np.errstate(over="ignore", invalid="ignore"):
            flat = scaled(raw.reshape(n if n is not None else 1, -1), self.scaling).astype(np.float32)
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
    # Tables only: the identifier and timestamp columns (a pandas DataFrame, row-aligned with x), carried
    # through to every output; and the names of the model's input features, in order.
    ids: object = None
    feature_names: list | None = None
    # Tables only: (N, feature columns) bool, the cells that were empty and imputed (None: none were).
    imputed: object = None

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


FLOAT32_MAX = float(np.finfo(np.float32).max)


def compress_tails(z: np.ndarray, tail: float) -> np.ndarray:
    """|z| beyond `tail` grows logarithmically: sign(z) (tail + log(1 + |z| - tail)); order kept."""
    a = np.abs(z)
    return np.where(a > tail, np.sign(z) * (tail + np.log1p(np.maximum(a - tail, 0.0))), z)


def expand_tails(z: np.ndarray, tail: float) -> np.ndarray:
    """The inverse of compress_tails."""
    a = np.abs(z)
    return np.where(a > tail, np.sign(z) * (tail + np.expm1(np.maximum(a - tail, 0.0))), z)


def scaled(flat: np.ndarray, scaling: dict) -> np.ndarray:
    """(N, D) raw rows scaled as recorded, in float64 (the one place each scaling's formula is written)."""
    flat = np.asarray(flat, dtype=np.float64)
    method = scaling["method"]
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "rownorm":
            # Each row divided by its L2 norm, times sqrt(D): the pattern of a row, not its total intensity
            # (pixels, counts, bag-of-words); a zero row stays zero.
            norm = np.linalg.norm(flat, axis=1, keepdims=True)
            return flat / np.where(norm > 0, norm, 1.0) * math.sqrt(flat.shape[1])
        shift, factor = _affine(scaling)
        out = (flat - shift) * factor
        return compress_tails(out, scaling["tail"]) if method == "robust" else out


def unscaled(flat: np.ndarray, scaling: dict) -> np.ndarray:
    """(N, D) scaled rows back in the data's own units (float64). 'rownorm' forgets each row's norm:
    its rows stay in scaled units."""
    flat = np.asarray(flat, dtype=np.float64)
    if scaling["method"] == "rownorm":
        return flat
    if scaling["method"] == "robust":
        flat = expand_tails(flat, scaling["tail"])
    shift, factor = _affine(scaling)
    return flat / factor + shift


def apply_scaling(raw: np.ndarray, scaling: dict) -> np.ndarray:
    """raw scaled as recorded, as float32. Computed in float64, so that values beyond float32's
    range are scaled before they are cast; a result that float32 cannot hold is refused."""
    result = scaled(raw.reshape(raw.shape[0], -1), scaling).reshape(raw.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        out = result.astype(np.float32)
    if not np.isfinite(out).all() and np.isfinite(result).all():
        raise DataError(f"values beyond float32's range (|x| > {FLOAT32_MAX:.3g}) after scaling "
                        f"{scaling['method']!r}: rescale them (scale='standard' or 'minmax')")
    return out


def validate_scaling(scaling, n_features: int) -> dict:
    """A recorded scaling, checked: a known method, finite parameters of the right length, no zero span."""
    if not isinstance(scaling, dict) or scaling.get("method") not in SCALES or scaling["method"] == "auto":
        raise DataError(f"scaling must be a mapping with a method in {SCALES[1:]}, got {scaling!r}")
    fields = {"pixels": ("max",), "standard": ("mean", "std"), "minmax": ("min", "max"), "robust": ("center", "scale", "tail"),
              "rownorm": (), "none": ()}[scaling["method"]]
    for name in fields:
        try:
            values = np.asarray(scaling.get(name), dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"scaling {name!r} must hold numbers, got {scaling.get(name)!r}") from None
        if len(values) not in (1, n_features) or not np.isfinite(values).all():
            raise DataError(f"scaling {name!r} must be 1 or {n_features} finite numbers, got {len(values)} values")
        if (name in ("std", "scale", "tail") or name == "max" and scaling["method"] != "minmax") and not (values > 0).all():
            raise DataError(f"scaling {name!r} must be > 0 (it divides the data)")
    if scaling["method"] == "minmax" and not (np.asarray(scaling["max"]) >= np.asarray(scaling["min"])).all():
        raise DataError("scaling 'max' must be >= 'min' for every feature")
    return scaling


def _affine(scaling: dict) -> tuple:
    """(shift, factor) with scaled = (raw - shift) * factor, per feature or global."""
    method = scaling["method"]
    if method in ("none", "rownorm"):
        return np.float64(0), np.float64(1)
    if method == "pixels":
        return np.float64(0), np.float64(1.0 / scaling["max"])
    if method == "standard":
        return np.asarray(scaling["mean"], np.float64), 1.0 / np.asarray(scaling["std"], np.float64)
    if method == "minmax":
        lo, hi = np.asarray(scaling["min"], np.float64), np.asarray(scaling["max"], np.float64)
        span = np.where(hi > lo, hi - lo, 1.0)  # constant columns map to 0
        return lo, 1.0 / span
    if method == "robust":
        return np.asarray(scaling["center"], np.float64), 1.0 / np.asarray(scaling["scale"], np.float64)
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


def evenly_spaced(n: int, m: int) -> np.ndarray:
    """Sorted indices of at most m of n rows, evenly spread from the first to the last (all when m >= n):
    the one row sampler for statistics fitted on a sample (scaling, detector references, data checks)."""
    return np.arange(n) if m >= n else np.linspace(0, n - 1, m).round().astype(np.int64)


def _robust_stats(raw) -> dict:
    """Per-feature median and winsorised spread (see SCALES), on at most ROBUST_FIT_ROWS evenly spaced rows."""
    n = raw.shape[0]
    rows = evenly_spaced(n, ROBUST_FIT_ROWS) if n > ROBUST_FIT_ROWS else slice(None)
    x = np.asarray(raw[rows], dtype=np.float64).reshape(-1, math.prod(raw.shape[1:]))
    release_pages(raw)
    low, center, high = np.percentile(x, [WINSOR_PERCENT, 50, 100 - WINSOR_PERCENT], axis=0)
    spread = np.clip(x, low, high).std(0)
    tiny = 1e-12 * np.maximum(1.0, np.abs(center))
    spread = np.where(spread > tiny, spread, x.std(0))  # constant on 90% of its rows: the plain std
    spread = np.where(spread > tiny, spread, 1.0)  # a constant feature: unit scale
    return {"method": "robust", "center": center.tolist(), "scale": spread.tolist(), "tail": TAIL}


def is_profile_data(raw) -> bool:
    """Pixels, counts or bag-of-words: non-negative, at least 32 features, at least a quarter of the
    entries exactly 0. For such rows the pattern matters more than each feature's own scale."""
    d = math.prod(raw.shape[1:])
    if d < 32:
        return False
    rows = np.asarray(raw[: min(raw.shape[0], 10_000)], dtype=np.float64).reshape(-1, d)
    return bool((rows >= 0).all()) and float(np.mean(rows == 0)) >= 0.25


def choose_scaling(raw, scale: str, images: bool, table: bool = False) -> dict:
    """The scaling of `scale` fitted on raw. 'auto': pixels for images, robust for tables (CSV, Parquet,
    DataFrames), minmax for other arrays."""
    if scale not in SCALES:
        raise DataError(f"scale={scale!r} is not one of {', '.join(map(repr, SCALES))}{suggest(scale, SCALES)}")
    if scale == "auto":
        scale = "pixels" if images else "robust" if table else "minmax"
    if scale in ("none", "rownorm"):
        return {"method": scale}
    if scale == "robust":
        return _robust_stats(raw)
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


def keep_unit(scaling: dict, unit) -> dict:
    """scaling with the features in `unit` left as they are (one-hot inputs stay 0 or 1: a robust or
    standard scaling would blow a rare level up to tens of spreads and let it dominate the score)."""
    unit = list(unit)
    if not unit:
        return scaling
    scaling = dict(scaling)
    for key, value in {"center": 0.0, "scale": 1.0, "mean": 0.0, "std": 1.0, "min": 0.0, "max": 1.0}.items():
        if isinstance(scaling.get(key), list):
            scaling[key] = list(scaling[key])
            for j in unit:
                scaling[key][j] = value
    return scaling


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
                 input_shape=None, table: bool = False, unit=None) -> Dataset:
    """Scale raw (N, ...) numbers into a Dataset; memory-mapped raw stays on disk. table: the rows of a
    table (its 'auto' scaling is robust). unit: indices of features kept as they are (one-hot inputs)."""
    if raw.shape[0] == 0:
        raise DataError(f"{name}: no examples (empty)")
    shape = tuple(input_shape) if input_shape is not None else tuple(raw.shape[1:])
    if math.prod(shape) != math.prod(raw.shape[1:]):
        raise DataError(f"{name}: input_shape {shape} does not hold examples of shape {tuple(raw.shape[1:])}")
    scaling = keep_unit(choose_scaling(raw, scale, images, table), unit or [])
    if memmap:
        x = MappedArray(raw, shape, scaling)
    else:
        x = torch.from_numpy(apply_scaling(np.asarray(raw), scaling).reshape(-1, *shape))
    labels = None if y is None else np.asarray(y)
    if labels is not None and len(labels) != raw.shape[0]:
        raise DataError(f"{name}: {len(labels)} labels for {raw.shape[0]} examples")
    return Dataset(x, labels, name, scaling, {"raw_dtype": str(raw.dtype), **(info or {})})


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
