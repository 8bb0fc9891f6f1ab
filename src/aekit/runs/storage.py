"""Files, written safely and read without running code: atomic writes, JSON, safetensors.

Nothing here unpickles: `safetensors` stores raw tensors and a JSON header, so
loading a file can never run code. Every file is written to a temporary name in
the same folder and renamed into place, so a crash leaves the previous version.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from aekit.errors import CheckpointError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path to path (atomic on POSIX).

    The data reach the disk (fsync) before the rename, and the rename before we return,
    so after a crash or a power cut the file is either the old one or the whole new one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def _fsync(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder: the rename itself is still atomic
        pass
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, error=CheckpointError, max_bytes: int = 64 << 20) -> object:
    """The JSON document in path; `error` naming the file (and line and column) when it is missing,
    too large, nested too deeply or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    if path.stat().st_size > max_bytes:
        raise error(f"{path}: {path.stat().st_size} bytes, more than the {max_bytes} a JSON file of ours can be")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise error(f"{path} is not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise error(f"{path} is not valid JSON: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise error(f"{path} is not valid JSON for us: nested too deeply") from None


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """A safetensors file; `metadata` (JSON) travels in its header."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"json": json.dumps(metadata)} if metadata is not None else None
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; anything else (a pickle, a truncated file) is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, ValueError, OSError) as e:  # header/length checks: no code runs
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None


def read_tensor_metadata(path: Path) -> dict:
    """The JSON metadata written by write_tensors ({} when there is none)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        data = json.loads(meta.get("json", "{}"))
    except (SafetensorError, ValueError, OSError, RecursionError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: its metadata is not a JSON object")
    return data


def read_tensor_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of every tensor in a safetensors file, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None


def read_some_tensors(path: Path, names) -> dict[str, torch.Tensor]:
    """Only the named tensors of a safetensors file (the rest is never read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in names}
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None
