"""A fitted estimator of aekit.sklearn saved as a run folder (issue 24, "saved without pickle"): JSON and
safetensors only; loaded back as the same estimator with the same scores, also in a fresh process;
scored by `aekit detect` as by the estimator; a folder of the other class or a tampered field refused
with the field named; and "its training did not finish" said only of a training that did not."""

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import aekit as ae
from aekit.anomaly.detect import detect
from aekit.cli import run as cli_run
from aekit.data.synthetic import mixed_table
from aekit.runs import run as runs
from aekit.sklearn import AutoencoderOutlierDetector, AutoencoderTransformer
from helpers import python

pytestmark = pytest.mark.filterwarnings("ignore::aekit.data.schema.TableWarning")


@pytest.fixture(scope="module")
def table():
    """A sensor table with an id, a timestamp, free text and a 3-level categorical (what a CSV holds)."""
    return mixed_table(n_rows=240, categoricals=(3,), missing=0.0, seed=0)[0]


@pytest.fixture(scope="module")
def numbers():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(160, 3))
    x = np.concatenate([z @ rng.normal(size=(3, 8)), rng.normal(size=(160, 2))], axis=1) * [1, 10, 100, 1, 1, 1, 5,
                                                                                              1, 1, 0.1]
    return x, rng.normal(size=(25, 10)) * 3


@pytest.fixture(scope="module")
def saved(table, tmp_path_factory):
    """A detector fitted on the table, and its folder."""
    det = AutoencoderOutlierDetector(epochs=3, random_state=0).fit(table)
    folder = tmp_path_factory.mktemp("saved") / "det"
    ae.save(det, folder)
    return det, folder


def _same(a, b, name: str) -> None:
    """a and b hold the same values (arrays: also the dtype; models: the configuration and every tensor)."""
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    elif isinstance(a, torch.nn.Module):
        assert a.config == b.config and not b.training, name
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), name
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{name}.{f.name}")
    elif hasattr(a, "transform"):  # a scaler
        assert type(a) is type(b) and vars(a).keys() == vars(b).keys(), name
        for key in vars(a):
            _same(getattr(a, key), getattr(b, key), f"{name}.{key}")
    elif isinstance(a, np.random.RandomState):
        _same(a.get_state(legacy=False)["state"]["key"], b.get_state(legacy=False)["state"]["key"], name)
    else:
        assert type(a) is type(b) and a == b, (name, a, b)


def assert_same_estimator(a, b) -> None:
    """Same class, parameters (types too: tuples stay tuples) and fitted attributes."""
    assert type(a) is type(b)
    pa, pb = a.get_params(), b.get_params()
    assert pa.keys() == pb.keys()
    for key in pa:
        _same(pa[key], pb[key], key)
    fitted = sorted(k for k in vars(a) if k.endswith("_") and not k.startswith("_"))
    assert fitted == sorted(k for k in vars(b) if k.endswith("_") and not k.startswith("_"))
    for key in fitted:
        _same(getattr(a, key), getattr(b, key), key)


def _round_trip(est, folder):
    ae.save(est, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "history.csv", "weights.safetensors"]
    assert not any(p.read_bytes().startswith(b"\x80") for p in folder.iterdir())  # no pickle stream anywhere
    return type(est).load(folder)


# ----- the same estimator back -----


@pytest.mark.parametrize("params", [
    {},  # scaling "auto": robust
    {"scaling": "minmax", "hidden": (16, 8), "options": {"dropout": 0.1}},
    {"scaling": "standard", "latent_dim": 3},
    {"scaling": None, "random_state": np.random.RandomState(3)},
    {"false_alarm_rate": 0.1},  # novelty: the conformal threshold_ and the calibration scores
    {"anomaly_score": "reconstruction", "false_alarm_rate": 0.1},  # no detector_: calibration_scores_
    {"anomaly_score": "squared_error", "contamination": 0.05, "kind": "vae"},
], ids=["robust", "minmax", "standard", "none", "novelty", "reconstruction-novelty", "vae"])
def test_a_detector_comes_back_the_same_with_the_same_scores(numbers, params, tmp_path):
    x, new = numbers
    det = AutoencoderOutlierDetector(epochs=3, **{"random_state": 0, **params}).fit(x)
    back = _round_trip(det, tmp_path / "det")
    assert_same_estimator(det, back)
    for method in ("decision_function", "predict", "predict_proba", "explain"):
        if method != "explain" or det.anomaly_score != "elbo":
            np.testing.assert_array_equal(getattr(back, method)(new), getattr(det, method)(new))


@pytest.mark.parametrize("params", [
    {},  # denoising, minmax, squared error
    {"kind": "vae", "latent_dim": 3},  # Bernoulli: MinMaxScaler(clip=True)
    {"kind": "pca", "latent_dim": 4, "scaling": "standard"},
    {"kind": "ae", "scaling": "robust", "hidden": [12]},  # a list stays a list
])
def test_a_transformer_comes_back_the_same_with_the_same_codes(numbers, params, tmp_path):
    x, new = numbers
    est = AutoencoderTransformer(epochs=3, random_state=0, **params).fit(x)
    back = _round_trip(est, tmp_path / "tr")
    assert_same_estimator(est, back)
    np.testing.assert_array_equal(back.transform(new), est.transform(new))
    np.testing.assert_array_equal(back.inverse_transform(est.transform(new)), est.inverse_transform(est.transform(new)))
    assert back.score(new) == est.score(new)


def test_a_detector_of_a_dataframe_keeps_its_columns_schema_and_scores(saved, table):
    det, folder = saved
    back = AutoencoderOutlierDetector.load(folder)
    assert_same_estimator(det, back)
    assert list(back.feature_names_in_) == list(table.columns) and back.table_schema_.categorical == {
        "mode": det.table_schema_.categorical["mode"]}
    np.testing.assert_array_equal(back.explain(table), det.explain(table))
    with pytest.raises(ValueError, match="fitted on a DataFrame with columns"):
        back.decision_function(table.drop(columns="note"))


def test_scores_are_the_same_in_a_fresh_process_that_never_unpickles(saved, table, tmp_path):
    det, folder = saved
    table.to_csv(tmp_path / "t.csv", index=False)
    code = (
        "import pickle, sys\n"
        "def refuse(*a, **k): raise AssertionError('unpickled')\n"
        "pickle.load = pickle.loads = refuse\n"
        "import numpy as np, pandas as pd\n"
        "from aekit.sklearn import AutoencoderOutlierDetector\n"
        "det = AutoencoderOutlierDetector.load(sys.argv[1])\n"
        "frame = pd.read_csv(sys.argv[2], keep_default_na=False)\n"
        "np.save(sys.argv[3], np.stack([det.decision_function(frame), det.predict(frame)]))\n"
    )
    proc = python(code, folder, tmp_path / "t.csv", tmp_path / "out.npy", env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    scores, labels = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(scores, det.decision_function(table), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(labels, det.predict(table))


# ----- the folder is a run folder -----


def _detect(capsys, folder, csv, *options) -> pd.DataFrame:
    out = csv.parent / "scores.csv"
    code = cli_run(["detect", str(folder), "--data", str(csv), "--out", str(out), *options])
    assert code == 0, capsys.readouterr().err
    return pd.read_csv(out, keep_default_na=False)


@pytest.mark.parametrize("case", ["mixed", "empty-cells", "novelty", "numeric"])
def test_aekit_detect_on_the_folder_gives_the_estimators_scores_and_labels(table, case, tmp_path, capsys):
    frame = {"numeric": table.drop(columns=["id", "timestamp", "note", "mode"]),
             "empty-cells": mixed_table(n_rows=240, categoricals=(3,), missing=0.02, seed=1)[0]}.get(case, table)
    det = AutoencoderOutlierDetector(epochs=3, random_state=1,
                                     false_alarm_rate=0.1 if case == "novelty" else None).fit(frame)
    ae.save(det, tmp_path / "det")
    csv = tmp_path / "same.csv"
    frame.to_csv(csv, index=False)
    result = _detect(capsys, tmp_path / "det", csv)
    # A run's data are float32: `aekit detect` reads the file's numbers as float32 before it scales them
    # (runs.load_with_scaling), and computes in float32; the estimator, given float64, computes in float64.
    # On the numbers as the run reads them the scores agree to 1e-6 (measured: 1e-7); on the exact numbers
    # the float32 reading adds up to 2e-6 here (flow is about 20,000, so float32 holds it to 1e-3).
    read_as_run = frame.apply(lambda c: c.astype(np.float32).astype(np.float64) if c.dtype == np.float64 else c)
    np.testing.assert_allclose(result["score"], det.decision_function(read_as_run), rtol=1e-6)
    np.testing.assert_allclose(result["score"], det.decision_function(frame), rtol=1e-5)
    np.testing.assert_array_equal(result["outlier"], det.predict(frame))
    if case != "numeric":
        assert list(result["id"]) == list(frame["id"])  # the id column carried through
    model = ae.load(tmp_path / "det")  # the model of the run
    assert all(torch.equal(v, det.model_.state_dict()[k]) for k, v in model.state_dict().items())
    run = ae.load_run(tmp_path / "det")
    np.testing.assert_allclose(detect(run, run.dataset(csv)).scores, result["score"], rtol=1e-12)


# ----- refused with a clear error -----


def test_a_folder_of_another_class_or_a_trained_run_is_refused(saved, numbers, tmp_path):
    _, det_folder = saved
    AutoencoderTransformer(epochs=2, random_state=0).fit(numbers[0]).save(tmp_path / "tr")
    with pytest.raises(ae.CheckpointError, match="holds a saved AutoencoderTransformer, not an AutoencoderOutlier"):
        AutoencoderOutlierDetector.load(tmp_path / "tr")
    with pytest.raises(ae.CheckpointError, match="holds a saved AutoencoderOutlierDetector, not an AutoencoderTrans"):
        AutoencoderTransformer.load(det_folder)
    model = ae.build("ae", input_shape=(10,), hidden=(8,), latent_dim=2, reconstruction="mse")
    ae.fit(model, numbers[0].astype(np.float32), epochs=1, out=tmp_path / "trained", verbose=0)
    with pytest.raises(ae.CheckpointError, match="holds a run trained with ae.fit or `aekit train`, not a saved"):
        AutoencoderOutlierDetector.load(tmp_path / "trained")


def test_save_refuses_what_it_cannot_hold_and_an_occupied_folder(saved, tmp_path):
    det, folder = saved
    with pytest.raises(ae.ConfigError, match="not fitted yet"):
        ae.save(AutoencoderOutlierDetector(), tmp_path / "unfitted")
    with pytest.raises(ae.ConfigError, match="a model .* or a fitted estimator of aekit.sklearn, got str"):
        ae.save("model", tmp_path / "other")
    with pytest.raises(ae.CheckpointError, match="already holds a run; pass overwrite=True"):
        ae.save(det, folder)
    assert not (tmp_path / "unfitted").exists() and not (tmp_path / "other").exists()


def _edit(folder, change) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def _set(path: str, value):
    def change(config):
        *parents, last = path.split(".")
        holder = config
        for key in parents:
            holder = holder[key]
        holder[last] = value
    return change


@pytest.mark.parametrize("path, value, field", [
    ("estimator.fitted.threshold_", "high", "estimator.fitted.threshold_"),
    ("estimator.fitted.detector_threshold", None, "estimator.fitted.detector_threshold"),
    ("estimator.fitted.n_features_in_", 0, "estimator.fitted.n_features_in_"),
    ("estimator.fitted.feature_names_in_", ["a"], "estimator.fitted.feature_names_in_"),
    ("estimator.fitted.scaler", {"class": "Pickled"}, "estimator.fitted.scaler.class"),
    ("estimator.fitted.scaler.params.method", "minmax", "estimator.fitted.scaler.params.method"),
    ("estimator.fitted", [], "estimator.fitted"),
    ("estimator.params.contamination", 0.9, "estimator.params"),
    ("estimator.params.surprise", 1, "estimator.params"),
    ("estimator.params.kind", "vae", "estimator.params.kind"),
    ("estimator.tuples", ["nowhere/3"], "estimator.tuples"),
    ("estimator.class", 7, "estimator.class"),
    ("data.table", None, "estimator.fitted.table"),
    ("data.scaling", {"method": "robust", "center": [0.0], "scale": [-1.0], "tail": 3.0}, "data.scaling"),
])
def test_a_tampered_field_is_a_checkpoint_error_naming_it(saved, path, value, field, tmp_path):
    folder = shutil.copytree(saved[1], tmp_path / "det")
    _edit(folder, _set(path, value))
    with pytest.raises(ae.CheckpointError, match=f"config.json: field '{field}'"):
        AutoencoderOutlierDetector.load(folder)


@pytest.mark.parametrize("name, value, message", [
    ("estimator.decision_scores_", torch.tensor([1.0, float("nan")], dtype=torch.float64),
     "tensor 'estimator.decision_scores_' must be finite float64 scores"),
    ("detector.reference", torch.zeros(3, 2), "the detector's reference rows"),
])
def test_a_tampered_tensor_is_a_checkpoint_error_naming_it(saved, name, value, message, tmp_path):
    folder = shutil.copytree(saved[1], tmp_path / "det")
    path = folder / "weights.safetensors"
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    save_file({**load_file(path), name: value}, path, metadata=metadata)
    with pytest.raises(ae.CheckpointError, match=message):
        AutoencoderOutlierDetector.load(folder)


def test_a_failed_save_leaves_the_previous_folder_loadable(saved, table, tmp_path, monkeypatch):
    det, _ = saved
    folder = tmp_path / "det"
    ae.save(det, folder)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs, "write_tensors", full_disk)
    with pytest.raises(OSError, match="No space"):
        ae.save(det, folder, overwrite=True)
    with pytest.raises(OSError, match="No space"):
        ae.save(det, tmp_path / "new")
    monkeypatch.undo()
    np.testing.assert_array_equal(AutoencoderOutlierDetector.load(folder).decision_function(table),
                                  det.decision_function(table))
    assert not (tmp_path / "new" / "config.json").exists()  # never a config.json without its weights


# ----- "its training did not finish" only when it did not -----


def _detect_error(capsys, folder, csv) -> str:
    code = cli_run(["detect", str(folder), "--data", str(csv), "--out", str(csv.parent / "s.csv")])
    assert code != 0
    return capsys.readouterr().err


def test_did_not_finish_is_said_only_of_a_training_that_did_not(numbers, tmp_path, capsys):
    x = numbers[0].astype(np.float32)
    csv = tmp_path / "x.csv"
    pd.DataFrame(x, columns=[f"c{j}" for j in range(x.shape[1])]).to_csv(csv, index=False)

    def stop_in_epoch_two(row, model):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    model = ae.build("ae", input_shape=(10,), hidden=(8,), latent_dim=2, reconstruction="mse")
    with pytest.raises(KeyboardInterrupt):
        ae.fit(model, x, epochs=3, out=tmp_path / "stopped", callback=stop_in_epoch_two, verbose=0)
    assert "its training did not finish (resume it, or train again)" in _detect_error(capsys, tmp_path / "stopped", csv)

    done = ae.build("ae", input_shape=(10,), hidden=(8,), latent_dim=2, reconstruction="mse")
    ae.fit(done, x, epochs=1, verbose=0)  # complete, in memory
    ae.save(done, tmp_path / "model")
    error = _detect_error(capsys, tmp_path / "model", csv)
    assert "saved with ae.save from a model" in error and "did not finish" not in error
    AutoencoderTransformer(epochs=2, random_state=0).fit(x).save(tmp_path / "tr")
    error = _detect_error(capsys, tmp_path / "tr", csv)
    assert "saved from an AutoencoderTransformer, which has none" in error and "did not finish" not in error
    AutoencoderOutlierDetector(epochs=2, random_state=0).fit(x).save(tmp_path / "det")
    assert len(_detect(capsys, tmp_path / "det", csv)) == len(x)
