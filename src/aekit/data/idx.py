"""Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.), gzip or raw.

Header: two zero bytes, a type code, the number of dimensions, then one
big-endian uint32 per dimension; the data follow in C order. Every field is
checked: a wrong magic number, a truncated file or extra bytes are reported
with the file's name, never silently reshaped.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from aekit.data.base import check_allocation, check_regular_file
from aekit.errors import DataError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """The array in an IDX file (gzip when the name ends in .gz), every size checked before allocating."""
    path = Path(path)
    check_regular_file(path)
    size = path.stat().st_size
    gz = path.suffix == ".gz"
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            dtype, dims, header = _header(f, str(path), None if gz else size)
            nbytes = math.prod(dims) * dtype.itemsize  # Python ints: a header cannot overflow them
            expected = header + nbytes
            if gz and _gzip_size(path) != expected % (1 << 32):
                raise DataError(f"{path}: not a readable gzip file, truncated or corrupt: its trailer declares "
                                f"{_gzip_size(path)} bytes (mod 2**32), its IDX header shape {dims} ({expected} bytes)")
            if not gz and size != expected:
                state = "truncated" if size < expected else "longer than its header says"
                raise DataError(f"{path}: {state}: header declares shape {dims} ({expected} bytes), file has {size} bytes")
            check_allocation(nbytes, f"{path} (IDX shape {dims})")
            data = bytearray(nbytes)
            if f.readinto(data) != nbytes or f.read(1):
                raise DataError(f"{path}: truncated or longer than its header says (shape {dims})")
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut gzip raises EOFError
        raise DataError(f"{path}: not a readable {'gzip' if gz else 'IDX'} file, truncated or corrupt ({e})") from None
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _header(f, name: str, size: int | None) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, dimensions, header length) from the start of an IDX stream."""
    head = f.read(4)
    if len(head) < 4:
        raise DataError(f"{name}: {len(head)} bytes, too short for an IDX header")
    if head[0] != 0 or head[1] != 0 or head[2] not in _TYPES:
        raise DataError(f"{name}: bad IDX magic number {head.hex()} (expected 0000 + type code + dimensions)")
    dtype, ndim = np.dtype(_TYPES[head[2]]), head[3]
    raw_dims = f.read(4 * ndim)
    if ndim == 0 or len(raw_dims) < 4 * ndim:
        length = size if size is not None else 4 + len(raw_dims)
        raise DataError(f"{name}: IDX header declares {ndim} dimensions but the file is {length} bytes")
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    return dtype, dims, 4 + 4 * ndim


def _gzip_size(path: Path) -> int:
    """The uncompressed size (mod 2**32) a gzip file's trailer declares (RFC 1952, ISIZE)."""
    with open(path, "rb") as f:
        f.seek(-4, 2)
        return int.from_bytes(f.read(4), "little")


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
