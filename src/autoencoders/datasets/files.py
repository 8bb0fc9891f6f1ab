"""Users' own files: .npy / .npz arrays, .csv / .tsv tables, folders of PNG/JPEG images, IDX files."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError, suggest
from .base import Dataset, check_finite, make_dataset
from .idx import read_idx

MEMMAP_THRESHOLD = 1 << 30  # .npy files larger than this (bytes) are memory-mapped, not read
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _images_layout(raw: np.ndarray) -> np.ndarray:
    """(N, H, W) arrays are grayscale images: give them the channel axis, (N, 1, H, W)."""
    return raw[:, None] if raw.ndim == 3 else raw


def _finish_array(raw, path: Path, labels, scale, drop_nan, input_shape, memmap, info=None) -> Dataset:
    if raw.ndim < 2:
        raise DataError(f"{path}: array of shape {raw.shape}; expected (N, features...) with at least 2 dimensions")
    if not (np.issubdtype(raw.dtype, np.number) or raw.dtype == np.bool_):
        raise DataError(f"{path}: array dtype {raw.dtype} is not numeric")
    images = np.issubdtype(raw.dtype, np.integer) and raw.ndim >= 3
    if not memmap:
        keep = check_finite(raw, str(path), drop_nan)
        if keep is not None:
            raw, labels = raw[keep], None if labels is None else np.asarray(labels)[keep]
    return make_dataset(_images_layout(raw) if input_shape is None else raw, path.name, labels, scale, images=images,
                        memmap=memmap, input_shape=input_shape, info={"path": str(path), **(info or {})})


def load_npy(path: Path, scale="auto", drop_nan=False, input_shape=None, labels=None,
             memmap_threshold=MEMMAP_THRESHOLD) -> Dataset:
    """A .npy array; files above memmap_threshold bytes stay on disk and are read batch by batch."""
    memmap = path.stat().st_size > memmap_threshold
    try:
        raw = np.load(path, mmap_mode="r" if memmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npy file ({e})") from None
    if memmap and drop_nan:
        raise DataError(f"{path}: drop_nan=True needs the array in memory; this file is memory-mapped "
                        f"({path.stat().st_size} bytes > memmap_threshold={memmap_threshold})")
    if memmap and raw.ndim == 3 and input_shape is None:
        input_shape = (1, *raw.shape[1:])
    return _finish_array(raw, path, labels, scale, drop_nan, input_shape, memmap)


def load_npz(path: Path, key=None, label_key=None, scale="auto", drop_nan=False, input_shape=None) -> Dataset:
    """An array of a .npz archive, picked by `key` ('x' or the only array by default); labels by `label_key`."""
    try:
        archive = np.load(path, allow_pickle=False)
        keys = list(archive.keys())
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    if not keys:
        raise DataError(f"{path}: the archive holds no arrays (empty)")
    if key is None:
        key = "x" if "x" in keys else keys[0] if len(keys) == 1 else None
        if key is None:
            raise DataError(f"{path} holds several arrays {keys}: pick one with key=")
        if label_key is None and key == "x" and "y" in keys:
            label_key = "y"
    for name, k in (("key", key), ("label_key", label_key)):
        if k is not None and k not in keys:
            raise DataError(f"{path}: {name}={k!r} is not in the archive{suggest(k, keys)}; arrays: {keys}")
    try:
        raw = archive[key]
        labels = archive[label_key] if label_key is not None else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: array {key!r} cannot be read, the archive is truncated or corrupt ({e})") from None
    return _finish_array(raw, path, labels, scale, drop_nan, input_shape, memmap=False, info={"key": key})


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def load_table(path: Path, label_column=None, columns=None, header="auto", delimiter=None, scale="auto",
               drop_nan=False) -> Dataset:
    """A .csv / .tsv of numbers. Empty cells and 'nan' are missing values (refused unless drop_nan=True).

    header: True, False or "auto" (the first row is a header when any of its cells is not a number).
    label_column / columns: names (with a header) or 0-based indices.
    """
    delimiter = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f, delimiter=delimiter) if r and any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable text table ({e})") from None
    if not rows:
        raise DataError(f"{path}: the file is empty")
    if header == "auto":
        header = not all(_is_number(c) or not c.strip() for c in rows[0])
    names = [c.strip() for c in rows[0]] if header else [str(i) for i in range(len(rows[0]))]
    body = rows[1:] if header else rows
    if not body:
        raise DataError(f"{path}: a header but no data rows")
    width = len(names)
    for i, row in enumerate(body):
        if len(row) != width:
            line = i + (2 if header else 1)
            raise DataError(f"{path}: row {line} has {len(row)} fields, expected {width} (ragged rows)")

    def index_of(col):
        if isinstance(col, int) and not isinstance(col, bool):
            if not 0 <= col < width:
                raise DataError(f"{path}: column index {col} out of range 0..{width - 1}")
            return col
        if col in names:
            return names.index(col)
        raise DataError(f"{path}: no column {col!r}{suggest(str(col), names)}; columns: {names}")

    label_idx = index_of(label_column) if label_column is not None else None
    wanted = [index_of(c) for c in columns] if columns is not None else [i for i in range(width) if i != label_idx]
    if not wanted:
        raise DataError(f"{path}: no feature columns left")
    x = np.empty((len(body), len(wanted)), dtype=np.float64)
    for i, row in enumerate(body):
        for j, col in enumerate(wanted):
            cell = row[col].strip()
            if not cell:
                x[i, j] = np.nan
                continue
            try:
                x[i, j] = float(cell)
            except ValueError:
                line = i + (2 if header else 1)
                raise DataError(f"{path}: row {line}, column {names[col]!r}: {cell!r} is not a number") from None
    labels, info = None, {"path": str(path), "columns": [names[c] for c in wanted]}
    if label_idx is not None:
        raw_labels = [row[label_idx].strip() for row in body]
        if all(_is_number(v) and float(v).is_integer() for v in raw_labels):
            labels = np.array([int(float(v)) for v in raw_labels], dtype=np.int64)
        else:  # class names: integer codes in sorted order, names kept in info
            classes = sorted(set(raw_labels))
            labels = np.array([classes.index(v) for v in raw_labels], dtype=np.int64)
            info["classes"] = classes
    keep = check_finite(x, str(path), drop_nan)
    if keep is not None:
        x, labels = x[keep], None if labels is None else labels[keep]
        info["dropped_rows"] = int((~keep).sum())
    return make_dataset(x.astype(np.float32), path.name, labels, scale, info=info)


def load_image_folder(path: Path, image_size=None, color="auto", scale="auto") -> Dataset:
    """PNG/JPEG files; sub-folder names become labels (sorted), files at the top level get none.

    image_size: (height, width) or one int to resize every image; otherwise all must share one size.
    color: "grayscale", "rgb" or "auto" (grayscale when every image is).
    """
    from PIL import Image, UnidentifiedImageError

    subdirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    groups = [(d.name, d) for d in subdirs] if subdirs else [(None, path)]
    files = [(label, f) for label, d in groups for f in sorted(d.iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")]
    if not files:
        raise DataError(f"{path}: no PNG or JPEG images (looked in {'its sub-folders' if subdirs else 'the folder'})")
    if color not in ("auto", "grayscale", "rgb"):
        raise DataError(f"color={color!r} is not one of 'auto', 'grayscale', 'rgb'")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    images = []
    for _, f in files:
        try:
            with Image.open(f) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"{f}: unreadable image ({e})") from None
    if color == "auto":
        color = "grayscale" if all(im.mode in ("1", "L", "I;16", "I") for im in images) else "rgb"
    mode = "L" if color == "grayscale" else "RGB"
    arrays = []
    for im in images:
        im = im.convert(mode)
        if image_size is not None:
            im = im.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        first = {a.shape[:2]: f for (_, f), a in zip(files, arrays)}
        examples = ", ".join(f"{s[0]}x{s[1]} ({first[s].name})" for s in sizes[:3])
        raise DataError(f"{path}: images of different sizes ({examples}); pass image_size=(height, width) to resize")
    raw = np.stack(arrays)
    raw = raw[:, None] if raw.ndim == 3 else raw.transpose(0, 3, 1, 2)  # (N, C, H, W)
    labels, info = None, {"path": str(path), "files": [str(f) for _, f in files]}
    if subdirs:
        classes = sorted({label for label, _ in files})
        labels = np.array([classes.index(label) for label, _ in files], dtype=np.int64)
        info["classes"] = classes
    return make_dataset(raw, path.name, labels, scale, images=True, info=info)


def load_idx_file(path: Path, labels_path=None, scale="auto") -> Dataset:
    raw = read_idx(path)
    labels = read_idx(labels_path).astype(np.int64) if labels_path is not None else None
    return _finish_array(raw, path, labels, scale, False, None, memmap=False)

