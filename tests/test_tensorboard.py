"""TensorBoard summaries (fit's log_dir, `aekit train --log-dir`): read back with tensorboard's own
EventAccumulator and compared with the run's history.csv. Scalars are stored as float32: they equal
History's float64 values to a relative 1e-6."""

import io
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tests.helpers import python

import aekit as ae
from aekit.cli import run as cli_run
from aekit.errors import ConfigError
from aekit.runs.run import History
from aekit.training import distributed, learning_rate, summaries
from aekit.training.options import FitOptions

REL = 1e-6  # float32 scalars against float64 History values


@pytest.fixture(autouse=True)
def _quiet(one_thread):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few optimizer steps in these short runs
        yield


def _events(log_dir) -> EventAccumulator:
    return EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0}).Reload()


def _history(folder) -> History:
    return History.from_csv((folder / "history.csv").read_text(encoding="utf-8"))


def _assert_scalars_match(events: EventAccumulator, history: History, prefix: str = "", stage=None):
    """Every train_/val_ column of history.csv is the tag train/..., val/... at its global epoch."""
    rows = [(step, row) for step, row in enumerate(history, 1) if stage is None or row["stage"] == stage]
    columns = {k for _, row in rows for k in row if k.startswith(("train_", "val_"))}
    assert columns, "history has no loss columns"
    for column in columns:
        logged = events.Scalars(prefix + column.replace("_", "/", 1))
        expected = [(step, row[column]) for step, row in rows if column in row]
        assert [e.step for e in logged] == [step for step, _ in expected], column  # each epoch once, in order
        assert [e.value for e in logged] == pytest.approx([value for _, value in expected], rel=REL), column


def _grid(image_event) -> np.ndarray:
    """The logged PNG as floats in [0, 1], one channel."""
    return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)), dtype=np.float64)[..., 0] / 255


def test_image_run_logs_every_term_the_lr_and_reconstructions(digit_images, tmp_path):
    x, _ = digit_images
    x_train, x_val = x[:600], x[600:700]
    model = ae.build("vae", (1, 8, 8), latent_dim=4, hidden=(32,))
    history = ae.fit(model, x_train, x_val, epochs=10, batch_size=64, lr=3e-3, lr_schedule="cosine",
                     out=tmp_path / "run", log_dir=tmp_path / "logs", verbose=0)
    events = _events(tmp_path / "logs")
    saved = _history(tmp_path / "run")
    assert len(saved) == len(history) == 10
    assert {"train/total", "train/reconstruction", "train/kl", "val/total", "val/kl", "lr"} <= set(
        events.Tags()["scalars"])
    _assert_scalars_match(events, saved)
    # the learning rate of each epoch's last step under the cosine schedule (10 steps an epoch)
    opts = FitOptions(epochs=10, batch_size=64, lr=3e-3, lr_schedule="cosine")
    assert [e.step for e in events.Scalars("lr")] == list(range(1, 11))
    assert [e.value for e in events.Scalars("lr")] == pytest.approx(
        [learning_rate(opts, epoch * 10 - 1, 100) for epoch in range(1, 11)], rel=REL)
    # images every max(1, 10 // 5) = 2 epochs and at the last
    images = events.Images("reconstructions")
    assert [e.step for e in images] == [2, 4, 6, 8, 10]
    grid = _grid(images[-1])
    assert grid.shape == (2 * 8 + 3, 8 * 9 + 1)
    # top row: the first 8 validation images; bottom row: the final model's reconstructions of them.
    # PNG levels truncate x * 255: within one level.
    shown = np.stack([grid[1:9, 1 + i * 9:9 + i * 9] for i in range(8)])
    recon = np.stack([grid[10:18, 1 + i * 9:9 + i * 9] for i in range(8)])
    assert np.abs(shown - x_val[:8, 0]).max() <= 1 / 255 + 1e-6
    expected = model.reconstruct(torch.from_numpy(x_val[:8])).numpy()[:, 0]
    assert np.abs(recon - expected).max() <= 1 / 255 + 1e-6


def test_table_run_logs_scalars_of_every_stage_and_no_images(digits, tmp_path):
    x, _ = digits  # 64 features as a vector: no image grid
    model = ae.build("stacked", (64,), latent_dim=8, hidden=(32,), pretrain_epochs=2)
    ae.fit(model, x[:500], epochs=3, batch_size=50, out=tmp_path / "run", log_dir=str(tmp_path / "logs"), verbose=0)
    history, events = _history(tmp_path / "run"), _events(tmp_path / "logs")
    assert events.Tags()["images"] == []
    stages = history.stages
    assert len(stages) >= 2 and stages[-1] == "finetune"
    for stage in stages[:-1]:  # greedy pretraining: prefixed by the stage's name, global epochs
        _assert_scalars_match(events, history, f"{stage}/", stage)
    _assert_scalars_match(events, history, "", "finetune")
    finetune_steps = [step for step, row in enumerate(history, 1) if row["stage"] == "finetune"]
    assert [e.step for e in events.Scalars("train/total")] == finetune_steps == [len(history) - 2, len(history) - 1,
                                                                                  len(history)]
    assert [e.value for e in events.Scalars("lr")] == pytest.approx([1e-3] * 3, rel=REL)
    assert "val/total" in events.Tags()["scalars"]


def test_resume_continues_the_same_curves(digit_images, tmp_path):
    x, _ = digit_images
    model = ae.build("ae", (1, 8, 8), latent_dim=4, hidden=(32,))
    stop_at_3 = lambda row, model: row["epoch"] == 3  # noqa: E731  (an interrupted run)
    ae.fit(model, x[:400], epochs=6, batch_size=50, out=tmp_path / "run", log_dir=tmp_path / "logs", verbose=0,
           callback=stop_at_3)
    assert [e.step for e in _events(tmp_path / "logs").Scalars("train/total")] == [1, 2, 3]
    ae.resume(tmp_path / "run", x[:400])  # log_dir comes from the run's recorded options
    history, events = _history(tmp_path / "run"), _events(tmp_path / "logs")
    assert len(history) == 6 and len(list((tmp_path / "logs").glob("events.out.tfevents.*"))) == 2
    assert [e.step for e in events.Scalars("train/total")] == [1, 2, 3, 4, 5, 6]
    _assert_scalars_match(events, history)
    assert [e.step for e in events.Images("reconstructions")] == [1, 2, 3, 4, 5, 6]  # max(1, 6 // 5) = 1


def test_fresh_run_into_a_used_log_dir_hides_the_old_curves(digit_images, tmp_path):
    x, _ = digit_images
    for seed in (0, 1):
        ae.fit(ae.build("ae", (64,), latent_dim=4, hidden=(16,)), x[:200].reshape(200, 64), epochs=2,
               batch_size=50, seed=seed, out=tmp_path / "run", overwrite=True, log_dir=tmp_path / "logs", verbose=0)
    _assert_scalars_match(_events(tmp_path / "logs"), _history(tmp_path / "run"))  # the second run's only


def test_cli_log_dir(tmp_path):
    out, logs = tmp_path / "run", tmp_path / "logs"
    assert cli_run(["train", "ae", "--data", "digits", "--latent-dim", "4", "--hidden", "16", "--epochs", "2",
                    "--batch-size", "256", "--out", str(out), "--log-dir", str(logs), "--quiet"]) == 0
    events = _events(logs)
    _assert_scalars_match(events, _history(out))
    assert [e.step for e in events.Images("reconstructions")] == [1, 2]


def _without_tensorboard(monkeypatch):
    for name in ("tensorboard", "torch.utils.tensorboard", "torch.utils.tensorboard.writer"):
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_tensorboard_is_a_config_error_before_training(digits, tmp_path, monkeypatch, capsys):
    x, _ = digits
    _without_tensorboard(monkeypatch)
    with pytest.raises(ConfigError, match=r"pip install aekit\[tensorboard\]"):
        ae.fit(ae.build("ae", (64,), latent_dim=4), x[:100], epochs=1, out=tmp_path / "run",
               log_dir=tmp_path / "logs", verbose=0)
    assert not (tmp_path / "run").exists() and not (tmp_path / "logs").exists()
    code = cli_run(["train", "ae", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "cli"),
                    "--log-dir", str(tmp_path / "logs")])
    assert code == 2 and "pip install aekit[tensorboard]" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()
    # without log_dir, training needs no tensorboard
    ae.fit(ae.build("ae", (64,), latent_dim=4), x[:100], epochs=1, batch_size=50, verbose=0)


def test_log_dir_that_is_a_file_is_refused(digits, tmp_path):
    x, _ = digits
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="log_dir=.* is a file"):
        ae.fit(ae.build("ae", (64,), latent_dim=4), x[:100], epochs=1, log_dir=tmp_path / "f", verbose=0)


def test_writer_is_closed_when_training_is_interrupted(digits, tmp_path, monkeypatch):
    x, _ = digits
    closed = []
    original = summaries.Summaries.close
    monkeypatch.setattr(summaries.Summaries, "close", lambda self: (closed.append(1), original(self)))

    def interrupt(row, model):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ae.fit(ae.build("ae", (64,), latent_dim=4, hidden=(16,)), x[:200], epochs=5, batch_size=50,
               log_dir=tmp_path / "logs", verbose=0, callback=interrupt)
    assert closed == [1]
    assert [e.step for e in _events(tmp_path / "logs").Scalars("train/total")] == [1]  # epoch 2 never finished


def test_training_without_log_dir_imports_no_tensorboard():
    proc = python("import sys, numpy as np, aekit as ae\n"
                  "x = np.random.default_rng(0).random((64, 8), dtype=np.float32)\n"
                  "ae.fit(ae.build('ae', (8,), latent_dim=2, hidden=(8,)), x, epochs=1, batch_size=32, verbose=0)\n"
                  "print(sorted(m for m in sys.modules if 'tensorboard' in m))", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_only_rank_0_writes(digits, tmp_path, monkeypatch):
    """A process that is not rank 0 (the distributed context's `main` is False) opens no writer."""
    x, _ = digits
    monkeypatch.setattr(distributed, "context", lambda device: (distributed.Context(rank=1), device))
    ae.fit(ae.build("ae", (64,), latent_dim=4, hidden=(16,)), x[:100], epochs=2, batch_size=50,
           log_dir=tmp_path / "logs", verbose=0)
    assert not (tmp_path / "logs").exists()
