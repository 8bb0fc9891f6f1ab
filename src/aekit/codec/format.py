"""The codec file: compress / decompress, its header, checksum and model fingerprint (the layout is in the
package docstring, codec/__init__.py), and the checks that refuse a file before anything is allocated."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from aekit.budget import check_memory
from aekit.codec.coder import MAX_BITS, Quantiser, decode_symbols, encode_symbols
from aekit.data.validation import as_array, check_data
from aekit.errors import CheckpointError, DataError, check_int
from aekit.inference import codes

MAGIC = b"\x89AECODEC"  # a non-ASCII first byte (as PNG's) so no tool mistakes the file for text
FORMAT_VERSION = 1
# The encoder pads the payload to at least one byte per EXAMPLES_PER_BYTE examples (2 bits each;
# every real code costs far more), so a header's count can be checked against the file before
# the decoder allocates anything: a hostile header cannot declare billions of examples.
EXAMPLES_PER_BYTE = 4
_PREFIX = struct.Struct("<8sHQ")  # magic, format version, total length
_HEADER = struct.Struct("<16sQIBBf")  # fingerprint, count, latent_dim, bits, ndim, step
_CRC = struct.Struct("<I")
# Bytes decoding holds per example and code dimension (the symbols, the coded part, the dequantised codes, the
# model's float32 copy of them, the re-encoded check) and per input (the decoded batches and their concatenation):
# checked against the memory limit before anything the size of the header's count is allocated.
_BYTES_PER_CODE = 20
_BYTES_PER_INPUT = 8


# ----- the file -----


# Model options added after codec format 1 was fixed: left out of the fingerprint while they are empty (their
# default), so that a file written before they existed still matches its model.
LATER_OPTIONS = ("categorical_groups",)


def fingerprint(model) -> bytes:
    """16 bytes identifying a model: SHA-256 of its configuration (JSON) and every weight's name, dtype, shape and bytes."""
    config = model.config.to_json()
    for name in LATER_OPTIONS:
        if not config.get(name):
            config.pop(name, None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.digest()[:16]


@dataclass(frozen=True)
class Header:
    """What a codec file says about itself (read_header)."""

    version: int
    fingerprint: bytes
    count: int
    input_shape: tuple[int, ...]
    bits: int
    quantiser: Quantiser
    header_bytes: int  # everything but the payload, the checksum included
    payload: bytes

    @property
    def latent_dim(self) -> int:
        return len(self.quantiser.levels)


def compress(model, x, bits: int = 8, step: float | None = None) -> bytes:
    """The codec file of x (N, *input_shape): the model's codes, quantised and range-coded.

    bits: the widest code dimension gets 2**bits levels (1 to MAX_BITS). step: the quantisation step
    in code units instead; for a model trained with code_noise=w, step=w is the grid it was trained for.
    """
    if step is None:
        check_int("bits", bits, 1, MAX_BITS)
    data = as_array(x, "x")
    check_data(data, model.config.input_shape, "x")
    z = codes(model, data)
    if not np.isfinite(z).all():
        raise DataError("the model's codes of x hold NaN/inf: the model cannot compress these data")
    quantiser = Quantiser.fit(z, bits, step)
    payload = encode_symbols(quantiser.quantise(z), quantiser.levels)
    return _pack(fingerprint(model), len(z), tuple(model.config.input_shape), quantiser, payload)


def decompress(model, blob: bytes) -> np.ndarray:
    """The examples (N, *input_shape) a codec file holds: model.decode of the dequantised codes.

    DataError for a damaged, foreign or newer file, or one whose examples would not fit the memory limit
    (checked from the header, before decoding); CheckpointError when it was written by another model.
    """
    header = read_header(blob)
    check_model(header, model)
    check_memory(f"decoding the codec file's {header.count:,} examples",
                 header.count * (_BYTES_PER_CODE * header.latent_dim + _BYTES_PER_INPUT * math.prod(header.input_shape)),
                 error=DataError)
    symbols = decode_symbols(header.payload, header.quantiser.levels, header.count)
    # The payload must be exactly what compress writes for these symbols: a forged or damaged payload (its
    # checksum made valid again) can decode to symbols of the right count and range, and only this tells.
    if _padded(encode_symbols(symbols, header.quantiser.levels), header.count) != header.payload:
        raise DataError(f"the coded payload ({len(header.payload):,} bytes) is not the coding of the {header.count:,} "
                        "examples it decodes to: the file is corrupt or was altered")
    return model.decode(header.quantiser.dequantise(symbols))


def _padded(payload: bytes, count: int) -> bytes:
    """The payload padded with zero words to at least count / EXAMPLES_PER_BYTE bytes (never read by the decoder)."""
    minimum = math.ceil(count / EXAMPLES_PER_BYTE)
    if len(payload) < minimum:
        payload += bytes(4 * math.ceil((minimum - len(payload)) / 4))
    return payload


def _pack(print_: bytes, count: int, shape: tuple, quantiser: Quantiser, payload: bytes) -> bytes:
    payload = _padded(payload, count)
    body = (_HEADER.pack(print_, count, len(quantiser.levels), quantiser.bits, len(shape), quantiser.step)
            + struct.pack(f"<{len(shape)}I", *shape)
            + quantiser.offsets.astype("<f4").tobytes() + (quantiser.levels - 1).astype("<u2").tobytes())
    total = _PREFIX.size + len(body) + len(payload) + _CRC.size
    head = _PREFIX.pack(MAGIC, FORMAT_VERSION, total) + body + payload
    return head + _CRC.pack(zlib.crc32(head))


def read_header(blob: bytes) -> Header:
    """The header of a codec file, after checking magic, version, length and checksum (DataError naming the problem)."""
    blob = bytes(blob)
    if len(blob) < _PREFIX.size or blob[: len(MAGIC)] != MAGIC:
        raise DataError("not an aekit codec file (its first bytes are not the codec's magic number)")
    _, version, total = _PREFIX.unpack_from(blob)
    if version > FORMAT_VERSION:
        raise DataError(f"the codec file has format version {version}; this aekit reads up to "
                        f"{FORMAT_VERSION}: upgrade the package")
    if version < 1:
        raise DataError(f"the codec file has format version {version}; there is no such version (1 to {FORMAT_VERSION})")
    if len(blob) < total:
        raise DataError(f"the codec file is truncated: it has {len(blob)} bytes, its header says {total}")
    if len(blob) > total:
        raise DataError(f"the codec file has {len(blob) - total} bytes after its end ({total} bytes)")
    if zlib.crc32(blob[: -_CRC.size]) != _CRC.unpack_from(blob, total - _CRC.size)[0]:
        raise DataError("the codec file's checksum does not match: the file is corrupt or was altered")
    return _parse(blob, version, total)


def _parse(blob: bytes, version: int, total: int) -> Header:
    """The fields after the prefix, each checked against what the file can hold."""
    end = total - _CRC.size
    if end < _PREFIX.size + _HEADER.size:
        raise DataError(f"the codec file's header is incomplete ({total} bytes)")
    print_, count, k, bits, ndim, step = _HEADER.unpack_from(blob, _PREFIX.size)
    at = _PREFIX.size + _HEADER.size
    need = 4 * ndim + 6 * k
    if not (1 <= bits <= MAX_BITS and ndim >= 1 and k >= 1 and math.isfinite(step) and step > 0) or at + need > end:
        raise DataError(f"the codec file's header is invalid (bits {bits}, {ndim} input dimensions, latent_dim {k}, "
                        f"step {step}, {total} bytes)")
    shape = struct.unpack_from(f"<{ndim}I", blob, at)
    at += 4 * ndim
    offsets = np.frombuffer(blob, dtype="<f4", count=k, offset=at).astype(np.float32)
    levels = np.frombuffer(blob, dtype="<u2", count=k, offset=at + 4 * k).astype(np.int64) + 1
    at += 6 * k
    payload = blob[at:end]
    if not np.isfinite(offsets).all() or (levels > 2**bits).any() or min(shape) < 1:
        raise DataError("the codec file's quantiser or shape is invalid")
    if count < 1 or count > EXAMPLES_PER_BYTE * len(payload):
        raise DataError(f"the codec file declares {count} examples, but its {len(payload)} bytes of codes hold at "
                        f"most {EXAMPLES_PER_BYTE * len(payload)}: the header is corrupt")
    return Header(version, print_, count, tuple(shape), bits, Quantiser(step, offsets, levels), total - len(payload),
                  payload)


def check_model(header: Header, model) -> None:
    """CheckpointError unless the file was written by this very model (same configuration and weights)."""
    if header.fingerprint != fingerprint(model):
        raise CheckpointError(f"the codec file was written by another model (fingerprint {header.fingerprint.hex()}, "
                              f"this model's is {fingerprint(model).hex()}): decode it with the run that wrote it")
    shape, k = tuple(model.config.input_shape), model.config.latent_dim
    if header.input_shape != shape or header.latent_dim != k:  # same fingerprint: only a forged header gets here
        raise CheckpointError(f"the codec file holds codes of size {header.latent_dim} for inputs {header.input_shape}; "
                              f"the model has latent_dim {k} and input_shape {shape}")


