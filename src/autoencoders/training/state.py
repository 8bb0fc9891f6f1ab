"""The training state: everything resume needs, as one typed object, saved and loaded here only.

On disk it is training_state.safetensors: the optimizer's tensors, the random
generators' states and the best weights as tensors, the rest as JSON metadata
in the same file (no pickle, nothing that can run code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import runs
from ..errors import CheckpointError
from ..storage import read_tensor_metadata, read_tensors, write_tensors, write_text


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

    # ----- one file -----

    def save(self, path: Path) -> None:
        tensors, scalars = {}, {}
        for pid, slots in self.optimizer["state"].items():
            for key, value in slots.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{pid}.{key}"] = value
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        tensors.update({f"rng.{name}": value for name, value in self.rng.items()})
        tensors.update({f"best.{name}": value for name, value in (self.best or {}).items()})
        meta = {"stage_index": self.stage_index, "stage": self.stage, "epoch": self.epoch,
                "stage_done": self.stage_done, "stopped_early": self.stopped_early, "best_val": self.best_val,
                "bad_epochs": self.bad_epochs, "history": list(self.history),
                "optimizer": {"param_groups": self.optimizer["param_groups"], "scalars": scalars}}
        write_tensors(path, tensors, meta)

    @classmethod
    def load(cls, path: Path) -> TrainingState:
        """The state in path; CheckpointError naming the file and the field when it is incomplete or malformed."""
        tensors, meta = read_tensors(path), read_tensor_metadata(path)
        expected = {"stage_index": int, "stage": str, "epoch": int, "stage_done": bool, "stopped_early": bool,
                    "best_val": (int, float), "bad_epochs": int, "history": list, "optimizer": dict}
        for name, kind in expected.items():
            if not isinstance(meta.get(name), kind) or (kind is int and isinstance(meta.get(name), bool)):
                raise CheckpointError(f"{path}: field {name!r} is missing or has the wrong type ({meta.get(name)!r})")
        groups, scalars = meta["optimizer"].get("param_groups"), meta["optimizer"].get("scalars")
        if not isinstance(groups, list) or not isinstance(scalars, dict):
            raise CheckpointError(f"{path}: field 'optimizer' lacks its param_groups or scalars")
        for name in ("torch", "shuffle"):
            if f"rng.{name}" not in tensors:
                raise CheckpointError(f"{path}: the random generator state 'rng.{name}' is missing")
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, pid, slot = key.split(".", 2)
                state.setdefault(int(pid), {})[slot] = value
        for pid, slots in scalars.items():
            state.setdefault(int(pid), {}).update(slots)
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
        rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
        return cls(meta["stage_index"], meta["stage"], meta["epoch"], meta["stage_done"], meta["stopped_early"],
                   float(meta["best_val"]), meta["bad_epochs"], meta["history"],
                   {"state": state, "param_groups": groups}, rng, best)


def save_epoch(folder: Path, model, history: runs.History, state: TrainingState) -> None:
    """Write an epoch's weights, history and training state into the run folder."""
    runs.save_weights(model, folder)
    write_text(folder / runs.HISTORY, history.to_csv())
    state.save(folder / runs.STATE)
