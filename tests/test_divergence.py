"""Issue 25, mechanism 4: a diverging training keeps the last good weights. The run folder holds the last
finite epoch's weights and training state (never NaN weights over them), the TrainingError says which
epoch diverged and which one the folder keeps, and the run resumes from there with a lower lr."""

import math

import numpy as np
import pytest
import torch
from tests.helpers import cli

import aekit as ae
from aekit.runs import run as runs
from aekit.runs.storage import read_tensors
from aekit.training import loop
from aekit.training.state import TrainingState

DIVERGING_LR = 1e6


def _model():
    return ae.build("ae", input_shape=(64,), hidden=(16,), latent_dim=4, reconstruction="mse")


def _weights(folder):
    return {k: v for k, v in read_tensors(folder / runs.WEIGHTS).items() if not k.startswith(runs.STATE_PREFIX)}


def _all_finite(tensors) -> bool:
    return all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


@pytest.fixture
def x(digits):
    return digits[0][:300]


def test_a_fresh_run_that_diverges_saves_nothing_and_says_so(x, tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(ae.TrainingError, match=r"training diverged: .* became (nan|inf) at epoch 1;") as caught:
        ae.fit(_model(), x, epochs=3, lr=DIVERGING_LR, out=folder, verbose=0)
    message = str(caught.value)
    assert "nothing was saved" in message and "--lr" in message and "lr=1e+06 now" in message, message
    assert not (folder / runs.WEIGHTS).exists()  # no run that looks trained: nothing of it is left


def test_divergence_keeps_the_last_finite_epoch_and_resume_continues_from_it(x, tmp_path):
    folder = tmp_path / "run"
    ae.fit(_model(), x, epochs=2, lr=1e-3, out=folder, verbose=0)
    before = (folder / runs.WEIGHTS).read_bytes()
    model = _model()
    with pytest.raises(ae.TrainingError, match=r"diverged: .* at epoch 3; .*keeps epoch 2, the last finite one"):
        ae.fit(model, x, epochs=6, lr=DIVERGING_LR, out=folder, resume=True, verbose=0)
    assert (folder / runs.WEIGHTS).read_bytes() == before  # epoch 2's weights and state, untouched
    state = TrainingState.load(folder / runs.WEIGHTS)
    assert state.epoch == 2 and len(state.history) == 2 and _all_finite(state.tensors())
    kept = _weights(folder)
    assert _all_finite(kept)
    for name, value in model.state_dict().items():  # in memory too: the last good weights
        assert torch.equal(value.cpu(), kept[name]), name
    history = ae.fit(_model(), x, epochs=4, lr=1e-3, out=folder, resume=True, verbose=0)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert _all_finite(_weights(folder)) and all(math.isfinite(r["train_total"]) for r in history)


def test_nan_weights_after_the_last_step_of_an_epoch_with_finite_losses_are_never_committed(x, tmp_path,
                                                                                           monkeypatch):
    # An epoch's losses are computed before each step: the last step can break the weights while every
    # loss of the epoch was finite. Without validation rows nothing else would notice.
    real, epochs = loop.train_epoch, []

    def breaking(model, *args, **kwargs):
        out = real(model, *args, **kwargs)
        epochs.append(1)
        if len(epochs) == 3:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(loop, "train_epoch", breaking)
    folder = tmp_path / "run"
    model = _model()
    with pytest.raises(ae.TrainingError, match=r"diverged: .*weight became NaN or inf .* at epoch 3; .*keeps epoch 2"):
        ae.fit(model, x, epochs=5, val_fraction=0.0, out=folder, verbose=0)
    assert TrainingState.load(folder / runs.WEIGHTS).epoch == 2 and _all_finite(_weights(folder))
    assert _all_finite(model.state_dict())


def test_without_a_folder_the_model_keeps_the_last_finite_weights(x):
    model = _model()
    with pytest.raises(ae.TrainingError, match="the model keeps the weights"):
        ae.fit(model, x, epochs=3, lr=DIVERGING_LR, verbose=0)
    assert _all_finite(model.state_dict())


def _one_error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert "Traceback" not in proc.stderr + proc.stdout and len(lines) == 1, proc.stderr
    return lines[0]


def test_cli_resume_that_diverges_keeps_the_run_and_says_how_to_go_on(x, tmp_path):
    folder, data = tmp_path / "run", tmp_path / "x.npy"
    np.save(data, x)
    ae.fit(_model(), ae.data.load(str(data)), epochs=1, out=folder, verbose=0)  # as `aekit train` reads it
    before = (folder / runs.WEIGHTS).read_bytes()
    line = _one_error_line(cli("resume", folder, "--data", data, "--epochs", "4", "--lr", "1e6", "--quiet", check=1))
    assert " at epoch 2; " in line and "keeps epoch 1, the last finite one" in line, line
    assert f"aekit resume {folder} --lr" in line and "lr=1e+06 now" in line, line
    assert (folder / runs.WEIGHTS).read_bytes() == before
    ae.resume(folder, epochs=2, lr=1e-3)  # as the message says: a lower lr continues it
    assert TrainingState.load(folder / runs.WEIGHTS).epoch == 2 and _all_finite(_weights(folder))


@pytest.mark.slow
def test_cli_train_and_resume_that_diverge_then_resume_with_a_lower_lr(x, tmp_path):
    folder, data = tmp_path / "run", tmp_path / "x.npy"
    np.save(data, x)
    model = ["--hidden", "16", "--latent-dim", "4", "--reconstruction", "mse", "--quiet"]
    line = _one_error_line(cli("train", "ae", "--data", data, "--out", folder, "--epochs", "2", "--lr", "1e6", *model,
                               check=1))
    assert " at epoch 1; " in line and "nothing was saved" in line and "train again" in line, line
    assert not (folder / runs.WEIGHTS).exists()
    cli("train", "ae", "--data", data, "--out", folder, "--epochs", "1", *model, check=0)
    before = (folder / runs.WEIGHTS).read_bytes()
    line = _one_error_line(cli("train", "ae", "--data", data, "--out", folder, "--resume", "--epochs", "3",
                               "--lr", "1e6", "--quiet", check=1))
    assert " at epoch 2; " in line and "keeps epoch 1, the last finite one" in line, line
    assert (folder / runs.WEIGHTS).read_bytes() == before
    cli("resume", folder, "--epochs", "2", "--lr", "1e-3", "--quiet", check=0)
    assert TrainingState.load(folder / runs.WEIGHTS).epoch == 2 and _all_finite(_weights(folder))
