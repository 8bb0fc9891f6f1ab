"""Run folders: config as JSON, weights and training state as safetensors.

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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ModelConfig
from .errors import CheckpointError, ConfigError

FORMAT = "autoencoders-run"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
STATE = "training_state.safetensors"
HISTORY = "history.csv"
METRICS = "metrics.json"


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path to path (atomic on POSIX)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")

    atomic_write(path, write)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
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
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return json.loads(meta.get("json", "{}"))
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None


def read_config(folder: Path) -> dict:
    """The run's config.json, checked to be ours and of a version we can read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such run folder")
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a run folder: {CONFIG} is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by autoencoders (no format {FORMAT!r})")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this autoencoders reads up to {FORMAT_VERSION}: upgrade the package"
        )
    return data


def save_model(model, folder: Path, **sections) -> None:
    """config.json (kind, options, shapes, version, any extra sections) and weights.safetensors."""
    from . import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(
        folder / CONFIG,
        {"format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__, "model": model.config.to_json(), **sections},
    )
    save_weights(model, folder)


def save_weights(model, folder: Path) -> None:
    write_tensors(Path(folder) / WEIGHTS, model.state_dict())


def load_weights(model, path: Path) -> None:
    tensors = read_tensors(path)
    expected = model.state_dict()
    missing, foreign = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or foreign:
        raise CheckpointError(f"{path} does not match the model in config.json: missing {missing[:5]}, unexpected {foreign[:5]}")
    for name, t in tensors.items():
        if t.shape != expected[name].shape or t.dtype != expected[name].dtype:
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {tuple(t.shape)} {t.dtype}, expected {tuple(expected[name].shape)} {expected[name].dtype}"
            )
    model.load_state_dict(tensors)


def load(folder, device: str | None = None):
    """The trained model of a run folder (config.json + weights.safetensors), in eval mode."""
    from .kinds import model_from_config

    folder = Path(folder)
    data = read_config(folder)
    try:
        config = ModelConfig.from_json({**data["model"], "input_shape": tuple(data["model"]["input_shape"])})
    except (KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{folder / CONFIG}: the model section is invalid ({e})") from None
    model = model_from_config(config)
    load_weights(model, folder / WEIGHTS)
    if device is not None:
        model.to(device)
    model.data_scaling = data.get("data", {}).get("scaling")
    return model.eval()
