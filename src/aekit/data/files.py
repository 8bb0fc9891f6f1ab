"""Users' own files: .npy / .npz arrays, folders of PNG/JPEG images, IDX files (tables: tables.py)."""

from __future__ import annotations

import contextlib
import math
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from aekit.data.base import Dataset, check_allocation, check_finite, check_regular_file, make_dataset
from aekit.data.idx import read_idx
from aekit.errors import DataError, suggest

MEMMAP_THRESHOLD = 1 << 30  # .npy files larger than this (bytes) are memory-mapped, not read
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _images_layout(raw: np.ndarray) -> np.ndarray:
    """(N, H, W) arrays are grayscale images: give them the channel axis, (N, 1, H, W)."""
    return raw[:, None] if raw.ndim == 3 else raw


def _check_layout(shape: tuple, dtype: np.dtype, where: str) -> None:
    """An array we can train on: (N, features...) of booleans, integers or real floats, with features."""
    if dtype.kind not in "biuf":  # timedelta/datetime (kinds m, M) pass np.number checks but are no data
        raise DataError(f"{where}: array dtype {dtype} is not numeric (booleans, integers or real floats)")
    if len(shape) < 2:
        raise DataError(f"{where}: array of shape {shape}; expected (N, features...) with at least 2 dimensions")
    if math.prod(shape[1:]) == 0:
        raise DataError(f"{where}: array of shape {shape} has no features")


def _array_header(f, where: str, available: int, data: bool = True) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy stream declares, checked against the bytes `available` after the header
    (and, for data rather than labels, against what we can train on)."""
    try:
        version = np.lib.format.read_magic(f)
        reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in reader:
            raise ValueError(f"unsupported .npy format version {version}")
        start = f.tell()
        shape, _, dtype = reader[version](f, max_header_size=1 << 16)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise DataError(f"{where}: not a readable .npy file ({e})") from None
    if dtype.hasobject:
        raise DataError(f"{where}: not a readable .npy file (it holds Python objects, which would need unpickling)")
    if data:
        _check_layout(shape, dtype, where)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > available - (f.tell() - start):
        raise DataError(f"{where}: truncated: its header declares shape {shape} of {dtype} ({nbytes} bytes), "
                        f"the file holds {available - (f.tell() - start)}")
    return shape, dtype


def _finish_array(raw, path: Path, labels, scale, drop_nan, input_shape, memmap, info=None) -> Dataset:
    _check_layout(raw.shape, raw.dtype, str(path))
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
    size = path.stat().st_size
    memmap = size > memmap_threshold
    with open(path, "rb") as f:
        shape, dtype = _array_header(f, str(path), size - 6)  # 6: the magic string, read before the header
    if not memmap:
        check_allocation(math.prod(shape) * dtype.itemsize, f"{path} (shape {shape}, {dtype})")
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
    for k, data in ((key, True), (label_key, False)):
        if k is not None:
            _check_member(archive, k, path, data)
    try:
        raw = archive[key]
        labels = archive[label_key] if label_key is not None else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: array {key!r} cannot be read, the archive is truncated or corrupt ({e})") from None
    return _finish_array(raw, path, labels, scale, drop_nan, input_shape, memmap=False, info={"key": key})


def _check_member(archive, key: str, path: Path, data: bool) -> None:
    """An .npz member's declared shape fits its uncompressed size and the memory we have, before it is read."""
    info = archive.zip.getinfo(f"{key}.npy")
    try:
        with archive.zip.open(info) as f:
            shape, dtype = _array_header(f, f"{path}[{key!r}]", info.file_size - 6, data)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: array {key!r} cannot be read, the archive is truncated or corrupt ({e})") from None
    check_allocation(math.prod(shape) * dtype.itemsize, f"{path}[{key!r}] (shape {shape}, {dtype})")


def load_image_folder(path: Path, image_size=None, color="auto", scale="auto") -> Dataset:
    """PNG/JPEG files; sub-folder names become labels (sorted). A folder without sub-folders gives
    unlabelled images; one with sub-folders and loose images beside them is refused (never dropped).

    image_size: (height, width) or one int to resize every image; otherwise all must share one size.
    color: "grayscale", "rgb" or "auto" (grayscale when every image is). 16-bit grayscale images
    keep their 16 bits (scaled by 65,535, 8-bit ones alongside by 255).
    """
    files, subdirs = _image_files(path)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    # Decoded, the images take up to 4 bytes a pixel (RGBA, or 32-bit grayscale): known from their headers.
    check_allocation(sum(4 * _pixel_count(f) for _, f in files), f"{path} ({len(files)} images)")
    if image_size is not None:  # resized, they take the size asked for (image_size=100000: 40 GB a picture)
        check_allocation(len(files) * 4 * image_size[0] * image_size[1],
                         f"{path} ({len(files)} images resized to {image_size[0]}x{image_size[1]})")
    images = [_open_image(f) for _, f in files]
    if color == "auto":
        color = "grayscale" if all(im.mode in _GRAY_MODES for im in images) else "rgb"
    deep = color == "grayscale" and any(im.mode in _GRAY16_MODES for im in images)
    arrays = [_pixels(im, color, deep, image_size) for im in images]
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


MAX_IMAGE_PIXELS = 1 << 26  # 67 million pixels per image: far beyond any training image, far below a bomb
_GRAY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_GRAY_MODES = ("1", "L", *_GRAY16_MODES)


def _image_files(path: Path) -> tuple[list[tuple[str | None, Path]], list[Path]]:
    """(label, file) of every image, labels from sub-folders; loose images beside sub-folders are refused."""
    visible = [p for p in sorted(path.iterdir()) if not p.name.startswith(".")]
    subdirs = [d for d in visible if d.is_dir()]
    loose = [f for f in visible if f.suffix.lower() in IMAGE_SUFFIXES]
    if subdirs and loose:
        raise DataError(f"{path} holds images at its top level ({loose[0].name}, ...) beside the class sub-folders "
                        f"{[d.name for d in subdirs[:3]]}: move them into a sub-folder, or load a folder without "
                        "sub-folders for unlabelled images")
    groups = [(d.name, d) for d in subdirs] if subdirs else [(None, path)]
    files = [(label, f) for label, d in groups for f in sorted(d.iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")]
    if not files:
        raise DataError(f"{path}: no PNG or JPEG images (looked in {'its sub-folders' if subdirs else 'the folder'})")
    for _, f in files:
        check_regular_file(f)  # a FIFO named x.png would block the reader forever
    return files, subdirs


def _pixel_count(f: Path) -> int:
    """Width x height from the image's header (nothing decoded), capped at MAX_IMAGE_PIXELS."""
    with _reading(f) as im:
        width, height = im.size
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{f}: {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} an image may have here "
                        "(a decompression bomb, or resize it first)")
    return width * height


def _open_image(f: Path):
    """The decoded image."""
    with _reading(f) as im:
        im.load()
        return im.copy()


@contextlib.contextmanager
def _reading(f: Path):
    """PIL's image (lazy: header only until load), its errors and bomb warnings as DataErrors."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{f}: refused as a decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{f}: unreadable image ({e})") from None


def _pixels(im, color: str, deep: bool, image_size) -> np.ndarray:
    """(H, W) or (H, W, 3) pixels: uint8, or uint16 for a grayscale folder holding 16-bit images."""
    from PIL import Image

    if deep:  # 16-bit grayscale: resize in float, keep 16 bits; 8-bit images scale up by 257 (255 -> 65535)
        im = im.convert("I") if im.mode in _GRAY16_MODES else Image.fromarray(np.asarray(im.convert("L"), np.int32) * 257)
        im = im.convert("F")
        if image_size is not None:
            im = im.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
        return np.asarray(im).round().clip(0, 65535).astype(np.uint16)
    if im.mode in _GRAY16_MODES:  # 16 bits into an 8-bit (RGB) folder: by the real range, not saturated
        im = Image.fromarray((np.asarray(im.convert("I"), np.float64) / 257).round().astype(np.uint8))
    im = im.convert("L" if color == "grayscale" else "RGB")
    if image_size is not None:
        im = im.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def load_idx_file(path: Path, labels_path=None, scale="auto") -> Dataset:
    raw = read_idx(path)
    labels = read_idx(labels_path).astype(np.int64) if labels_path is not None else None
    return _finish_array(raw, path, labels, scale, False, None, memmap=False)

