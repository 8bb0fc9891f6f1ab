"""Kills in the middle of a write (issue 25): SIGTERM, SIGINT and SIGKILL against train, resume, detect,
compress and decompress, each delivered while the command is writing a file (its temporary file written,
before the rename: tests/helpers.slow_write_cli). Afterwards no file that was there has changed, and no
temporary file remains: SIGTERM and SIGINT remove it at once and print one line saying what was kept and
how to go on (exit 143 / 130); SIGKILL cannot be caught, so its temporary file is removed by the next
command that writes the same file (for a run folder: the next training in it).

The default run sends one signal per command (the five cases in DEFAULT); -m slow runs all fifteen."""

import shutil
import signal
from pathlib import Path

import pytest

from aekit.cli import run as aekit
from helpers import slow_write_cli, tiny_table


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(run folder trained for one epoch, its training CSV, a file compress wrote from it)."""
    root = tmp_path_factory.mktemp("kills")
    data = tiny_table(root / "table.csv", rows=200)
    assert aekit(["train", "ae", "--data", str(data), "--epochs", "1", "--quiet", "--out", str(root / "run")]) == 0
    assert aekit(["compress", str(root / "run"), "--data", str(data), "--out", str(root / "codes.aec")]) == 0
    return root / "run", data, root / "codes.aec"


def _case(command: str, tiny, tmp: Path):
    """(arguments, the file name whose write is interrupted, which write of it, the folder it goes to)."""
    run, data, codes = tiny
    if command == "train":  # killed while saving epoch 2: the folder keeps epoch 1
        return ["train", "ae", "--data", data, "--epochs", "3", "--quiet", "--out", tmp / "run"], \
            "weights.safetensors", 2, tmp / "run"
    if command == "resume":  # killed while saving its first epoch: the run keeps what it had
        shutil.copytree(run, tmp / "run")
        return ["resume", tmp / "run", "--epochs", "3", "--quiet"], "weights.safetensors", 1, tmp / "run"
    out = tmp / {"detect": "scores.csv", "compress": "out.aec", "decompress": "x.npy"}[command]
    out.write_text("an earlier output\n")  # replaced only with --overwrite, and only whole
    args = {"detect": ["detect", run, "--data", data, "--out", out],
            "compress": ["compress", run, "--data", data, "--out", out],
            "decompress": ["decompress", run, codes, "--out", out]}[command]
    return [*args, "--overwrite"], out.name, 1, tmp


def _files(folder: Path) -> dict:
    """Every file under folder but temporary ones, with its bytes."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".tmp"}


def _temporaries(folder: Path) -> list:
    return sorted(folder.rglob("*.tmp"))


COMMANDS = ("train", "resume", "detect", "compress", "decompress")
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGKILL)
DEFAULT = {("train", signal.SIGTERM), ("resume", signal.SIGINT), ("detect", signal.SIGKILL),
           ("compress", signal.SIGTERM), ("decompress", signal.SIGINT)}


@pytest.mark.parametrize("command, signum", [
    pytest.param(c, s, id=f"{c}-{s.name}", marks=() if (c, s) in DEFAULT else pytest.mark.slow)
    for c in COMMANDS for s in SIGNALS])
def test_a_kill_during_a_write_changes_no_earlier_file_and_leaves_no_temporary_one(command, signum, tiny, tmp_path):
    run = tiny[0]
    inputs = _files(run.parent)
    args, name, nth, folder = _case(command, tiny, tmp_path)
    proc, tmp = slow_write_cli(name, nth, *args)
    assert Path(tmp).exists()
    before = _files(folder)  # as the write stands paused: the earlier files, whole
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert _files(folder) == before  # nothing that was there changed
    assert _files(run.parent) == inputs  # nor any input
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL and Path(tmp).exists()  # nothing could remove it then
        # the next command that writes the same file removes it (a run folder: the next training in it); run
        # here, in this process: a kill is not needed again
        again = ["resume", folder, "--epochs", "3", "--quiet"] if command in ("train", "resume") else args
        assert aekit([str(a) for a in again]) == 0
    else:
        assert proc.returncode == 128 + signum, err
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
        assert len(lines) == 1 and "Traceback" not in err, err
        how = "interrupted" if signum == signal.SIGINT else "interrupted (SIGTERM)"
        if command in ("train", "resume"):
            epoch = "epoch 1" if command == "train" else "epoch 1, 0 of them in this session"
            assert lines[0] == (f"{how}: {folder} keeps the last finished epoch ({epoch}); "
                                f"continue with: aekit resume {folder}"), lines[0]
        else:
            assert lines[0].startswith(f"{how}: nothing was written, and files that were there are unchanged"), lines
    assert not _temporaries(tmp_path), _temporaries(tmp_path)
