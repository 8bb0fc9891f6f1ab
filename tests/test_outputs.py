"""One writer for every output (issue 25): through every command that writes a user-named file, an output
onto the command's own input is refused and the input stays byte-identical; an existing output is refused
without --overwrite and replaced with it; a FIFO or a folder where a file is expected is refused without
being opened (nothing hangs); no temporary file is left after a refused or a failed write. Also: repeated
single-valued options are a usage error, --max-memory reaches aekit.budget, --threads is capped at the
cores. The commands run in this process (aekit.cli.run), on a run trained here in about a second."""

import os
import signal
from pathlib import Path

import pytest

from aekit import budget
from aekit.cli import run as aekit
from aekit.runs import storage
from helpers import tiny_table


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(run folder, its training CSV, a file compress wrote from it), shared by the module's tests."""
    root = tmp_path_factory.mktemp("outputs")
    data = tiny_table(root / "table.csv")
    assert aekit(["train", "ae", "--data", str(data), "--epochs", "1", "--quiet", "--out", str(root / "run")]) == 0
    assert aekit(["compress", str(root / "run"), "--data", str(data), "--out", str(root / "codes.aec")]) == 0
    return root / "run", data, root / "codes.aec"


@pytest.fixture
def deadline():
    """A test that would block (opening a FIFO) fails after 60 s instead of hanging the run."""
    def expired(signum, frame):
        raise TimeoutError("the command blocked")

    before = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


# Every command that writes a user-named file: its arguments with OUT where the file goes.
COMMANDS = {
    "detect": lambda run, data, codes: ["detect", run, "--data", data, "--out", "OUT"],
    "detect --report": lambda run, data, codes: ["detect", run, "--data", data, "--out", "SCRATCH/s.csv",
                                                 "--report", "OUT"],
    "encode": lambda run, data, codes: ["encode", run, "--data", data, "--out", "OUT"],
    "reconstruct": lambda run, data, codes: ["reconstruct", run, "--data", data, "--out", "OUT"],
    "generate": lambda run, data, codes: ["generate", run, "-n", "4", "--out", "OUT"],
    "interpolate": lambda run, data, codes: ["interpolate", run, "--data", data, "--from", "0", "--to", "1",
                                             "--steps", "3", "--out", "OUT"],
    "compress": lambda run, data, codes: ["compress", run, "--data", data, "--out", "OUT"],
    "decompress": lambda run, data, codes: ["decompress", run, codes, "--out", "OUT"],
    "evaluate --json": lambda run, data, codes: ["evaluate", run, "--data", data, "--log-likelihood-samples", "0",
                                                 "--json", "OUT"],
    "evaluate --report": lambda run, data, codes: ["evaluate", run, "--data", data, "--log-likelihood-samples", "0",
                                                   "--report", "OUT"],
}
# A file name each command writes happily (its suffix says the format).
SUFFIX = {"detect": ".csv", "detect --report": ".html", "encode": ".csv", "reconstruct": ".csv", "generate": ".npy",
          "interpolate": ".npy", "compress": ".aec", "decompress": ".npy", "evaluate --json": ".json",
          "evaluate --report": ".html"}
# For each command, one of its own inputs as --out: the data, the run's files, the codec file.
OWN_INPUT = {"detect": "data", "detect --report": "run/report.html", "encode": "data", "reconstruct": "data",
             "generate": "data",  # a plain autoencoder samples a density fitted on its recorded training data
             "interpolate": "run/history.csv", "compress": "run/weights.safetensors", "decompress": "codes",
             "evaluate --json": "run/config.json", "evaluate --report": "data"}


def _args(name, tiny, out, scratch, *extra) -> list[str]:
    """The command's arguments: OUT is `out`, SCRATCH a folder for its other outputs."""
    args = [str(out) if a == "OUT" else str(a).replace("SCRATCH", str(scratch)) for a in COMMANDS[name](*tiny)]
    return args + list(extra)


def _temporaries(*folders) -> list[Path]:
    return [p for folder in folders for p in Path(folder).rglob("*.tmp")]


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", COMMANDS)
def test_an_output_onto_the_commands_own_input_is_refused(name, tiny, tmp_path, capsys):
    run, data, codes = tiny
    target = {"data": data, "codes": codes}.get(OWN_INPUT[name]) or run.parent / OWN_INPUT[name]
    before = _snapshot(run.parent)
    assert aekit(_args(name, tiny, target, tmp_path, "--overwrite")) == 2
    err = capsys.readouterr().err
    assert "which this command reads: refusing to write" in err, err
    assert _snapshot(run.parent) == before  # the input, and everything beside it, byte-identical
    assert not _temporaries(run.parent)


@pytest.mark.parametrize("link", ["symlink", "hard link"])
@pytest.mark.parametrize("name", ["detect", "compress"])
def test_a_link_to_an_input_is_the_input(name, link, tiny, tmp_path, capsys):
    run, data, codes = tiny
    alias = tmp_path / ("alias" + SUFFIX[name])
    (os.symlink if link == "symlink" else os.link)(data, alias)
    before = data.read_bytes()
    assert aekit(_args(name, tiny, alias, tmp_path, "--overwrite")) == 2
    assert "which this command reads" in capsys.readouterr().err
    assert data.read_bytes() == before and not _temporaries(tmp_path)


@pytest.mark.parametrize("name", COMMANDS)
def test_an_existing_output_is_refused_without_overwrite_and_replaced_with_it(name, tiny, tmp_path, capsys):
    out = tmp_path / ("out" + SUFFIX[name])
    out.write_bytes(b"the user's own file\n")
    assert aekit(_args(name, tiny, out, tmp_path)) == 2
    assert f"{out} already exists: pass --overwrite to replace it" in capsys.readouterr().err
    assert out.read_bytes() == b"the user's own file\n"
    assert aekit(_args(name, tiny, out, tmp_path, "--overwrite")) == 0, capsys.readouterr().err
    assert out.read_bytes() != b"the user's own file\n" and out.stat().st_size > 0
    assert not _temporaries(tmp_path, tiny[0].parent)


@pytest.mark.parametrize("target", ["fifo", "folder"])
@pytest.mark.parametrize("name", COMMANDS)
def test_a_fifo_or_a_folder_is_not_a_file_to_write(name, target, tiny, tmp_path, capsys, deadline):
    out = tmp_path / ("out" + SUFFIX[name])
    os.mkfifo(out) if target == "fifo" else out.mkdir()
    assert aekit(_args(name, tiny, out, tmp_path, "--overwrite")) == 2
    err = capsys.readouterr().err
    expected = ("a FIFO (named pipe), not a regular file",) if target == "fifo" else (
        "is a folder, not a regular file", "is a directory")  # (click's check of --out, where it has one)
    assert any(e in err for e in expected), err
    assert (out.is_fifo() if target == "fifo" else out.is_dir()) and not _temporaries(tmp_path)


def test_decompress_to_a_folder_is_written_whole_and_never_onto_a_file_or_a_full_folder(tmp_path, capsys, deadline):
    # A folder of images is written as one: an existing non-empty folder is refused without --overwrite and
    # replaced whole with it (nothing of the old folder survives); a regular file where the folder goes is
    # refused. Images need an image run: an ae on 60 of the 8x8 digits, one epoch (trained by the library:
    # no report to draw).
    import numpy as np

    import aekit as ae

    run, codes, folder, data = tmp_path / "digits_run", tmp_path / "d.aec", tmp_path / "images", tmp_path / "d.npy"
    np.save(data, np.asarray(ae.data.load("digits").x[:60]))
    ae.fit(ae.build("ae", input_shape=(1, 8, 8), hidden=(16,), latent_dim=4), np.load(data), epochs=1, out=run,
           verbose=0)
    assert aekit(["compress", str(run), "--data", str(data), "--out", str(codes)]) == 0
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    assert aekit(["decompress", str(run), str(codes), "--out", str(folder)]) == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err and (folder / "mine.txt").exists()
    assert aekit(["decompress", str(run), str(codes), "--out", str(folder), "--overwrite"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:05d}.png" for i in range(60)]
    plain = tmp_path / "plain"
    plain.write_text("a file")
    assert aekit(["decompress", str(run), str(codes), "--out", str(plain), "--overwrite"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and plain.read_text() == "a file"
    assert not _temporaries(tmp_path)


# ----- the writer itself: failures and interruptions leave the old file and no temporary one -----


@pytest.mark.parametrize("failure", [OSError("disk full"), storage.Interrupted(signal.SIGTERM)])
def test_a_failed_or_interrupted_write_leaves_the_old_file_and_no_temporary_one(failure, tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old")

    def write(tmp):
        Path(tmp).write_text("half of the new")
        raise failure

    with pytest.raises(type(failure)):
        storage.atomic_write(target, write)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["kept.txt"]


def test_a_temporary_file_of_a_killed_process_is_removed_by_the_next_write(tmp_path):
    # SIGKILL cannot be caught: what it leaves goes with the next write of the same file, once its process is
    # gone; a live process's temporary file (another writer, right now) is left alone.
    target = tmp_path / "scores.csv"
    dead = tmp_path / f".scores.csv.{2**22 + 12345}-abcd.tmp"  # above the usual pid_max: no such process
    live = tmp_path / f".scores.csv.{os.getppid()}-abcd.tmp"
    dead.write_text("left by a kill")
    live.write_text("being written")
    storage.write_text(target, "new")
    assert target.read_text() == "new" and not dead.exists() and live.exists()


# ----- the command line: repeated options, --max-memory, --threads -----


@pytest.mark.parametrize("args, option", [
    (["train", "ae", "--data", "digits", "--epochs", "3", "--epochs", "5"], "--epochs"),
    (["detect", "RUN", "--out", "a.csv", "--out", "b.csv"], "--out"),
    (["generate", "RUN", "-n", "3", "-n", "4", "--out", "x.npy"], "-n"),
    (["encode", "RUN", "--threads", "1", "--threads", "2", "--out", "x.npy"], "--threads"),
])
def test_a_single_valued_option_given_twice_is_a_usage_error(args, option, capsys):
    assert aekit(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"option {option} is given more than once" in lines[0], lines


def test_repeatable_options_still_accumulate(tiny, tmp_path):
    run, data, _ = tiny
    out = tmp_path / "z.csv"
    assert aekit(["encode", str(run), "--data", str(data), "--data-option", "missing=impute",
                  "--data-option", "delimiter=,", "--out", str(out)]) == 0
    assert out.exists()


def test_max_memory_reaches_the_budget_and_threads_are_capped_at_the_cores(tiny, tmp_path, capsys, monkeypatch):
    import torch

    run, data, _ = tiny
    limits = []
    monkeypatch.setattr(budget, "set_max_memory", lambda n: limits.append(n))
    threads = torch.get_num_threads()
    try:
        assert aekit(["encode", str(run), "--data", str(data), "--out", str(tmp_path / "z.npy"),
                      "--max-memory", "1.5G", "--threads", "100000"]) == 0
        assert torch.get_num_threads() == budget.cores()
    finally:
        torch.set_num_threads(threads)
    assert limits[-1] == int(1.5 * 2**30)
    assert (f"warning: --threads 100000 is more than the {budget.cores()} cores this process may use: "
            f"using {budget.cores()}") in capsys.readouterr().err
    assert aekit(["encode", str(run), "--out", str(tmp_path / "y.npy"), "--max-memory", "lots"]) == 2
    assert "--max-memory" in capsys.readouterr().err


def test_the_tour_rewrites_its_own_page_and_nothing_else(tmp_path, capsys):
    # An earlier tour's page is the tour's own (rewritten); a page it did not write needs --overwrite. The
    # refusal comes before any experiment runs.
    (tmp_path / "tour.html").write_text("<html>my notes</html>")
    assert aekit(["tour", "--quick", "--out", str(tmp_path)]) == 2
    assert "already exists: pass --overwrite" in capsys.readouterr().err
    from aekit.cli.info import _earlier_tour

    (tmp_path / "tour.html").write_text("<html>...<footer><pre>aekit tour --data mnist-5k --out x</pre></footer>")
    assert _earlier_tour(tmp_path / "tour.html")
