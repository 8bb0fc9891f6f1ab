"""A diverging training keeps the last good weights (issue 25, mechanism 4).

After every epoch, before it is committed, the loop checks its loss terms, the model's weights and
the optimizer's state (Adam's moments) for NaN and inf (`check_epoch`). The first non-finite one
stops the run: the model gets the last finite epoch's weights back, nothing of the bad epoch is
written, so the run folder keeps the last committed (finite) epoch, and the TrainingError says which
epoch diverged, which one the folder keeps and how to go on (`Diverged.located`).

Checking the weights, not only the losses, matters: an epoch's losses are computed before each
step, so the last step of an epoch can turn the weights to NaN while every loss of the epoch was
finite, and those weights would be committed as the "good" epoch.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import torch

from aekit.errors import TrainingError


def first_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating tensor that holds a NaN or an inf, else None (one sync per device)."""
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            by_device.setdefault(value.device, []).append((name, value))
    for named in by_device.values():
        finite = torch.stack([torch.isfinite(v).all() for _, v in named]).cpu()
        if not bool(finite.all()):
            return named[int((~finite).nonzero()[0])][0]
    return None


def _optimizer_tensors(optimizer) -> dict[str, torch.Tensor]:
    return {f"optimizer {slot} of parameter {i}": value
            for i, slots in enumerate(optimizer.state.values()) for slot, value in slots.items()}


class Diverged(TrainingError):
    """Training produced a non-finite loss term or weight in `epoch` of `stage`; `kept` is the last
    committed (finite) epoch as (stage, epoch), None when no epoch was committed."""

    def __init__(self, what: str, stage: str, epoch: int, kept: tuple[str, int] | None, lr: float):
        self.what, self.stage, self.epoch, self.kept, self.lr = what, stage, epoch, kept, lr
        super().__init__(self.message(None))

    def message(self, kept_where: str | None, resumable: bool = False) -> str:
        stage = "" if self.stage == "train" else f" of stage {self.stage!r}"
        fix = (f"a lower learning rate (lr={self.lr:g} now: lr=, --lr) or clipped gradients "
               "(clip_grad_norm=, --clip-grad-norm)")
        go_on = f"resume it with {fix}" if resumable else f"train again with {fix}"
        return f"training diverged: {self.what} at epoch {self.epoch}{stage}; {kept_where or self._in_memory()}; {go_on}"

    def _in_memory(self) -> str:
        return ("the model keeps the weights it had before this training" if self.kept is None
                else f"the model keeps the weights of {self._epoch_name(self.kept)}, the last finite one")

    @staticmethod
    def _epoch_name(kept: tuple[str, int]) -> str:
        stage, epoch = kept
        return f"epoch {epoch}" + ("" if stage in ("train", "finetune") else f" of stage {stage!r}")

    def located(self, folder: Path | None, staging: bool) -> TrainingError:
        """The error to raise, saying what the run folder keeps (the fit's `out`) and how to go on."""
        if folder is None:
            return TrainingError(self.message(None))
        if staging:
            return TrainingError(self.message(f"{folder} keeps the run it held (an overwrite replaces it only once "
                                              "the new run is complete)"))
        if self.kept is None:
            return TrainingError(self.message(f"no epoch ended with finite weights, so nothing was saved in {folder}"))
        return TrainingError(self.message(
            f"the run folder {folder} keeps {self._epoch_name(self.kept)}, the last finite one "
            f"(`aekit resume {shlex.quote(str(folder))} --lr ...`, or fit(..., resume=True))", resumable=True))


def check_epoch(model, optimizer, terms: dict[str, dict[str, float]], stage: str, epoch: int,
                kept: tuple[str, int] | None, lr: float) -> None:
    """Raise Diverged when an epoch's loss terms ({"train": {...}, "validation": {...}}), the model's
    weights or the optimizer's state hold a NaN or an inf."""
    for split, values in terms.items():
        for term, value in values.items():
            if not math.isfinite(value):
                raise Diverged(f"{split} loss term {term!r} became {value}", stage, epoch, kept, lr)
    bad = first_non_finite({**model.state_dict(), **_optimizer_tensors(optimizer)})
    if bad is not None:
        raise Diverged(f"{bad} became NaN or inf (in the last steps: the losses were still finite)", stage, epoch,
                       kept, lr)
