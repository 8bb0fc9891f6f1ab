"""Where a fit writes, decided before anything is written: a new or empty folder, one of our runs
to resume, one to replace (overwrite), and never a folder that holds anything else.

- Nothing is written into a non-empty folder that does not hold one of our runs.
- Resume continues from the training state in the weights file and refuses a folder
  without one, or a model, input shape or data scaling that differ from the run's
  (naming each differing option with both values).
- An overwrite trains into a hidden staging folder beside the old run and swaps it in
  only once the new run is complete: the old run is never lost to a failed overwrite.
- Two trainings never write one folder at the same time: a lock (flock, released by the
  kernel even when the process is killed) guards it.
- A run that ends (error, Ctrl-C) before its first epoch is committed leaves nothing that
  looks like a trained run: what it wrote is removed again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from aekit.errors import CheckpointError
from aekit.models.config import ModelConfig
from aekit.runs import run as runs
from aekit.training.state import TrainingState


@dataclass
class Destination:
    folder: Path  # the run folder the user asked for
    write_to: Path  # where the epochs go: the folder, or the staging folder of an overwrite
    state: TrainingState | None  # the state to resume from, None for a fresh start

    @property
    def staging(self) -> bool:
        return self.write_to != self.folder


def inspect(folder: Path, model, scaling, resume: bool, overwrite: bool) -> Destination:
    """Decide (reading only) where this fit writes and what it resumes; CheckpointError when it must not."""
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"out={str(folder)!r} exists and is not a folder")
    holds_run = (folder / runs.CONFIG).exists()
    if holds_run:
        saved = runs.read_config(folder)  # ours and readable, or a CheckpointError
    elif folder.is_dir() and any(p.name != runs.LOCK for p in folder.iterdir()):
        raise CheckpointError(f"{folder} is not empty and holds no run of ours: nothing is written there; "
                              "choose a new or empty folder")
    if not holds_run:
        return Destination(folder, folder, None)
    if resume:
        _check_same_run(folder, saved, model, scaling)
        if not (folder / runs.WEIGHTS).exists():
            return Destination(folder, folder, None)  # interrupted before its first epoch: start it again
        state = TrainingState.load(folder / runs.WEIGHTS)
        if state is None:
            raise CheckpointError(f"{folder} holds a trained model without its training state (saved with ae.save "
                                  "or by an older version): it cannot be resumed; use overwrite=True to retrain")
        return Destination(folder, folder, state)
    if not overwrite:
        raise CheckpointError(f"{folder} already holds a run; pass resume=True (--resume) to continue it, "
                              "overwrite=True (--overwrite) to replace it, or another out")
    return Destination(folder, folder.parent / f".{folder.name}.overwrite", None)


def _check_same_run(folder: Path, saved: dict, model, scaling) -> None:
    """Resume only the same model on data in the same scaling: name every difference with both values."""
    mine = json.loads(json.dumps(model.config.to_json()))
    theirs = _with_defaults(saved.get("model") if isinstance(saved.get("model"), dict) else {})
    differ = [f"{k}: {theirs.get(k)!r} in the run, {mine.get(k)!r} here"
              for k in sorted(set(mine) | set(theirs)) if theirs.get(k) != mine.get(k)]
    recorded = (saved.get("data") or {}).get("scaling") if isinstance(saved.get("data"), dict) else None
    if _scaling_key(recorded) != _scaling_key(scaling):
        differ.append(f"data scaling: {_describe(recorded)} in the run, {_describe(scaling)} here")
    if differ:
        raise CheckpointError(f"{folder} holds a run of a different model configuration; cannot resume it: "
                              + "; ".join(differ))


def _with_defaults(saved_model: dict) -> dict:
    """A saved model section with the options added since it was written at their defaults, as
    runs.load reads it: a run from before an option existed resumes as the same model."""
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.default is not dataclasses.MISSING}
    defaults["extra"] = {}
    return {**json.loads(json.dumps(defaults)), **saved_model}


def _scaling_key(scaling) -> str:
    none = scaling is None or (isinstance(scaling, dict) and scaling.get("method") == "none")
    return "none" if none else json.dumps(scaling, sort_keys=True)


def _describe(scaling) -> str:
    return "none (arrays as given)" if _scaling_key(scaling) == "none" else repr(scaling.get("method"))


@contextlib.contextmanager
def writing(folder: Path, decide):
    """Lock the folder, decide again under the lock (`decide()` -> Destination: another process may
    have written since the first look), yield the Destination while training writes; then clean up
    a run that committed no epoch, or swap a completed overwrite into place."""
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / runs.LOCK, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CheckpointError(f"{folder} is being written by another training right now; wait for it "
                              "to finish or choose another out") from None
    try:
        for stale in folder.glob(".*.tmp"):  # temporary files of a write that a kill interrupted
            stale.unlink(missing_ok=True)
        dest = decide()
        if dest.staging:
            shutil.rmtree(dest.write_to, ignore_errors=True)  # a staging folder left by a killed overwrite
            dest.write_to.mkdir()
        try:
            yield dest
        except BaseException:
            _discard_uncommitted(dest, created)
            raise
        if dest.staging:
            _swap_in(dest.folder, dest.write_to)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _discard_uncommitted(dest: Destination, created: bool) -> None:
    """After a failure: a staging folder goes; a run with no committed epoch leaves nothing behind."""
    if dest.staging:
        shutil.rmtree(dest.write_to, ignore_errors=True)
        return
    if dest.state is None and not (dest.folder / runs.WEIGHTS).exists():
        for name in (runs.CONFIG, runs.HISTORY, runs.METRICS, runs.LOCK):
            (dest.folder / name).unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                dest.folder.rmdir()


def _swap_in(folder: Path, staging: Path) -> None:
    """Replace the old run by the completed new one: two renames and a removal."""
    old = folder.parent / f".{folder.name}.replaced"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(folder, old)
    os.rename(staging, folder)
    shutil.rmtree(old, ignore_errors=True)
