"""The training state: everything resume needs, as one typed object, saved and loaded here only.

It is saved inside the run's weights.safetensors, next to the model's weights: the
optimizer's tensors, the random generators' states and the best weights as tensors
under "state.", the rest (stage, epoch, early stopping, history) as JSON metadata.
One file, replaced by one rename after every epoch (`commit_epoch`), so a run
folder always holds one consistent epoch: a kill at any instant leaves either the
previous epoch or the new one, never the weights of one beside the state of another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from aekit.errors import CheckpointError
from aekit.runs import run as runs
from aekit.runs.storage import read_tensor_metadata, read_tensors, write_tensors, write_text

_PREFIX = runs.STATE_PREFIX


@dataclass
class TrainingState:
    """Where a run stands after an epoch: enough to continue it exactly."""

    stage_index: int  # which stage of the plan (stacked pretraining layers, then fine-tuning)
    stage: str
    epoch: int  # the last finished epoch of that stage
    stage_done: bool  # the stage ran all its epochs, stopped early or was stopped by the callback
    stopped_early: bool
    best_val: float  # early stopping: the best validation total so far (inf before any)
    bad_epochs: int  # epochs since it improved
    history: list[dict]  # every epoch's row, all stages
    optimizer: dict  # torch optimizer state_dict
    rng: dict[str, torch.Tensor]  # "torch", "shuffle" and, on CUDA, "cuda" generator states
    best: dict[str, torch.Tensor] | None = field(default=None)  # the best weights (early stopping)

    def is_finished(self, stage_epochs: int) -> bool:
        """The stage it was in is over: done, and either stopped early or at its last epoch.

        A stage that ran out of epochs continues when more epochs are asked for now.
        """
        return self.stage_done and (self.stopped_early or self.epoch >= stage_epochs)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for pid, slots in self.optimizer["state"].items():
            out.update({f"{_PREFIX}optimizer.{pid}.{k}": v for k, v in slots.items() if isinstance(v, torch.Tensor)})
        out.update({f"{_PREFIX}rng.{name}": value for name, value in self.rng.items()})
        out.update({f"{_PREFIX}best.{name}": value for name, value in (self.best or {}).items()})
        return out

    def metadata(self) -> dict:
        scalars = {str(pid): {k: v for k, v in slots.items() if not isinstance(v, torch.Tensor)}
                   for pid, slots in self.optimizer["state"].items()}
        return {"stage_index": self.stage_index, "stage": self.stage, "epoch": self.epoch,
                "stage_done": self.stage_done, "stopped_early": self.stopped_early, "best_val": self.best_val,
                "bad_epochs": self.bad_epochs, "history": list(self.history),
                "optimizer": {"param_groups": self.optimizer["param_groups"], "scalars": scalars}}

    @classmethod
    def load(cls, path: Path) -> TrainingState | None:
        """The state saved in a weights file, None when it holds none (a saved model, or an older format);
        CheckpointError naming the file and the field when it is incomplete or malformed."""
        meta = read_tensor_metadata(path).get("state")
        if meta is None:
            return None
        tensors = {k[len(_PREFIX):]: v for k, v in read_tensors(path).items() if k.startswith(_PREFIX)}
        _check(meta, tensors, path)
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, slot = key.split(".", 2)
                state.setdefault(int(pid), {})[slot] = value
        for pid, slots in meta["optimizer"]["scalars"].items():
            state.setdefault(int(pid), {}).update(slots)
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
        return cls(meta["stage_index"], meta["stage"], meta["epoch"], meta["stage_done"], meta["stopped_early"],
                   float(meta["best_val"]), meta["bad_epochs"], meta["history"],
                   {"state": state, "param_groups": meta["optimizer"]["param_groups"]}, rng, best)


def _check(meta, tensors: dict, path: Path) -> None:
    """Every field of a saved state present and of its type: the project's error, never a KeyError."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: field 'state' must be a JSON object")
    expected = {"stage_index": int, "stage": str, "epoch": int, "stage_done": bool, "stopped_early": bool,
                "best_val": (int, float), "bad_epochs": int, "history": list, "optimizer": dict}
    for name, kind in expected.items():
        value = meta.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(f"{path}: field 'state.{name}' is missing or has the wrong type ({value!r})")
    if meta["stage_index"] < 0 or meta["epoch"] < 1 or meta["bad_epochs"] < 0:
        raise CheckpointError(f"{path}: fields 'state.stage_index', 'state.epoch', 'state.bad_epochs' out of range")
    groups, scalars = meta["optimizer"].get("param_groups"), meta["optimizer"].get("scalars")
    if not isinstance(groups, list) or not isinstance(scalars, dict) or not all(
            isinstance(v, dict) and k.isdigit() for k, v in scalars.items()):
        raise CheckpointError(f"{path}: field 'state.optimizer' lacks its param_groups or scalars")
    if not all(isinstance(r, dict) and isinstance(r.get("stage"), str) for r in meta["history"]):
        raise CheckpointError(f"{path}: field 'state.history' must be a list of rows with a stage")
    for name in ("rng.torch", "rng.shuffle"):
        if name not in tensors or tensors[name].dtype != torch.uint8:
            raise CheckpointError(f"{path}: the random generator state {_PREFIX}{name} is missing or malformed")
    for key in tensors:
        parts = key.split(".")
        if parts[0] == "optimizer" and (len(parts) < 3 or not parts[1].isdigit()):
            raise CheckpointError(f"{path}: unexpected tensor {_PREFIX}{key}")


def commit_epoch(folder: Path, model, history: runs.History, state: TrainingState, detector=None) -> None:
    """The one write of an epoch: weights and training state in one file, replaced by one rename.
    history.csv follows as a copy for people (the run's history is read from the state). The end of
    training adds the anomaly detector of the final weights (detection.Detector) to the same file."""
    tensors, metadata = {**model.state_dict(), **state.tensors()}, {"state": state.metadata()}
    if detector is not None:
        tensors.update(detector.tensors())
        metadata["detector"] = detector.metadata()
    write_tensors(folder / runs.WEIGHTS, tensors, metadata)
    write_text(folder / runs.HISTORY, history.to_csv())
