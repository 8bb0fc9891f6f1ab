"""Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.), gzip or raw.

Header: two zero bytes, a type code, the number of dimensions, then one
big-endian uint32 per dimension; the data follow in C order. Every field is
checked: a wrong magic number, a truncated file or extra bytes are reported
with the file's name, never silently reshaped.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut gzip raises EOFError
        raise DataError(f"{path}: not a readable gzip file, truncated or corrupt ({e})") from None
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    if len(raw) < 4:
        raise DataError(f"{name}: {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{name}: bad IDX magic number {raw[:4].hex()} (expected 0000 + type code + dimensions)")
    dtype, ndim = np.dtype(_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{name}: IDX header declares {ndim} dimensions but the file is {len(raw)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{name}: {state}: header declares shape {dims} ({expected} bytes), file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> None:
    """Write an array as IDX (gzip when the name ends in .gz): used by tests and users' own exports."""
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in _TYPES.items()}
    arr = np.asarray(array)
    code = codes.get(arr.dtype.newbyteorder("=").str)
    if code is None:
        raise DataError(f"IDX cannot store dtype {arr.dtype}")
    big = arr.astype(np.dtype(_TYPES[code]).newbyteorder(">"), copy=False)
    data = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes() + big.tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(data)
