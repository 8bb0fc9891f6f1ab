"""Run folders load back safely: nothing is unpickled, tampering is reported by name."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

import aekit as ae


@pytest.fixture
def run(digits, tmp_path):
    model = ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2)
    ae.fit(model, digits[0][:200], epochs=1, out=tmp_path / "run", verbose=0)
    return tmp_path / "run"


class _Payload:
    """Unpickling this would create the marker file: it must never happen."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_as_weights_is_refused_and_never_runs(run, tmp_path):
    marker = str(tmp_path / "pwned")
    with open(run / "weights.safetensors", "wb") as f:
        pickle.dump({"encoder.1.weight": _Payload(marker)}, f)
    with pytest.raises(ae.CheckpointError, match="weights.safetensors is not a valid safetensors file"):
        ae.load(run)
    assert not os.path.exists(marker)


def test_torch_save_checkpoint_is_refused(run, tmp_path):
    marker = str(tmp_path / "pwned2")
    torch.save({"x": _Payload(marker)}, run / "weights.safetensors")
    with pytest.raises(ae.CheckpointError, match="not a valid safetensors"):
        ae.load(run)
    assert not os.path.exists(marker)


def test_truncated_weights_are_reported(run):
    path = run / "weights.safetensors"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ae.CheckpointError, match="weights.safetensors"):
        ae.load(run)


def test_weights_of_another_shape_are_reported(run, digits, tmp_path):
    other = ae.build("ae", input_shape=(64,), hidden=(9,), latent_dim=2)
    ae.fit(other, digits[0][:100], epochs=1, out=tmp_path / "other", verbose=0)
    (run / "weights.safetensors").write_bytes((tmp_path / "other" / "weights.safetensors").read_bytes())
    with pytest.raises(ae.CheckpointError, match="has shape"):
        ae.load(run)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.update(format="something-else"), "not written by aekit"),
        (lambda c: c.update(format_version=99), "format_version 99"),
        (lambda c: c["model"].update(latent_dim=-1), "latent_dim must be an int > 0"),
        (lambda c: c["model"].update(surprise=1), "unknown fields"),
    ],
)
def test_foreign_or_incompatible_config_is_reported(run, edit, message):
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ae.CheckpointError, match=message):
        ae.load(run)


def test_missing_folder_or_config(tmp_path):
    with pytest.raises(ae.CheckpointError, match="no such run folder"):
        ae.load(tmp_path / "nope")
    with pytest.raises(ae.CheckpointError, match="config.json is missing"):
        ae.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ae.CheckpointError, match="not valid JSON"):
        ae.load(tmp_path)


def test_loaded_model_is_in_eval_mode_and_deterministic(run, digits):
    model = ae.load(run)
    assert not model.training
    np.testing.assert_array_equal(model.reconstruct(digits[0][:5]), model.reconstruct(digits[0][:5]))
