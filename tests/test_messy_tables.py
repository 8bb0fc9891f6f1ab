"""Messy tables (issue 24): empty cells get a score and are reported, the missing policy and the schema
travel with a run to new files, categorical columns weigh in proportion (softmax groups, pooled levels,
a bounded width), and the detector finds the faults of aekit.data.synthetic.mixed_table and names the
column at fault."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import aekit as ae
from aekit.anomaly.detect import detect
from aekit.data.schema import MAX_LEVELS, MISSING, OTHER, TableWarning
from aekit.data.synthetic import mixed_table
from aekit.data.tables import load_table
from aekit.errors import CheckpointError
from aekit.runs.run import load_run
from aekit.sklearn import AutoencoderOutlierDetector


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableWarning)
        yield


def small_table(seed=0, n_rows=600, missing=0.05):
    return mixed_table(n_rows=n_rows, seed=seed, missing=missing)


def test_every_row_is_scored_and_the_imputed_cells_are_named(tmp_path):
    frame, _ = small_table()
    frame.to_csv(tmp_path / "train.csv", index=False)
    new, _ = small_table(seed=1, n_rows=200, missing=0.1)
    new.loc[0, ["pressure", "mode"]] = None  # a number and a category left empty on one row
    new.loc[1, "machine"] = "mac-99"  # a category training never saw
    new.to_csv(tmp_path / "new.csv", index=False)
    ds = ae.data.load(tmp_path / "train.csv")
    assert ds.imputed is not None and ds.info["table"]["missing"] == "impute"
    model = ae.build_for("ae", ds, seed=0)
    ae.fit(model, ds, out=tmp_path / "run", epochs=2, verbose=0)
    loaded = load_run(tmp_path / "run")
    new_ds = loaded.dataset(tmp_path / "new.csv")  # no option: the run's schema and policy
    assert len(new_ds) == 200 and new_ds.feature_names == ds.feature_names
    result = detect(loaded, new_ds, explain=True)
    frame_out = result.frame
    assert list(frame_out.columns[:5]) == ["id", "timestamp", "note", "score", "outlier"]
    assert frame_out.columns[5] == "top_features" and frame_out.columns[-1] == "imputed"
    assert np.isfinite(frame_out["score"]).all() and len(frame_out) == 200
    assert set(frame_out.loc[0, "imputed"].split(";")) >= {"pressure", "mode"}
    empty = new[ds.info["table"]["features"]].isna().any(axis=1).to_numpy()
    assert ((frame_out["imputed"] != "").to_numpy() == empty).all()
    shares = frame_out[ds.info["table"]["features"]].to_numpy()
    np.testing.assert_allclose(shares.sum(1), frame_out["score"], rtol=1e-6)
    machine = [i for i, n in enumerate(new_ds.feature_names) if n.startswith("machine=")]
    assert new_ds.feature_names[machine[-2]] == f"machine={OTHER}" and new_ds.numpy()[1, machine[-2]] == 1


def test_missing_drop_and_error_name_the_file_column_and_row(tmp_path):
    frame, _ = small_table()
    frame.to_csv(tmp_path / "pump.csv", index=False)
    first = int(np.argmax(frame.drop(columns=["id", "timestamp", "note"]).isna().any(axis=1).to_numpy()))
    column = frame.drop(columns=["id", "timestamp", "note"]).iloc[first].isna().idxmax()
    cells = int(frame.drop(columns=["id", "timestamp", "note"]).isna().to_numpy().sum())
    with pytest.raises(ae.DataError, match=rf"pump.csv: {cells} empty cells in \d+ rows \(first: row {first + 2}, "
                                           rf"column '{column}'\)"):
        ae.data.load(tmp_path / "pump.csv", missing="error")
    dropped = ae.data.load(tmp_path / "pump.csv", missing="drop")
    rows = frame.drop(columns=["id", "timestamp", "note"]).isna().any(axis=1)
    assert len(dropped) == int((~rows).sum()) and dropped.info["dropped_rows"] == int(rows.sum())
    assert dropped.ids["id"].tolist() == frame.loc[~rows, "id"].tolist() and dropped.imputed is None
    assert dropped.info["table"]["missing"] == "drop"
    with pytest.raises(ae.DataError, match="missing"):
        ae.data.load(tmp_path / "pump.csv", missing="fill")
    # the policy a schema records is the one a new file gets without options
    again = ae.data.load(tmp_path / "pump.csv", schema=dropped.info["table"])
    assert len(again) == len(dropped)


def test_rare_levels_are_pooled_and_a_5000_level_column_stays_bounded():
    rng = np.random.default_rng(0)
    n = 20_000
    frame = pd.DataFrame({"x": rng.normal(size=n), "code": [f"c{v}" for v in rng.integers(0, 5000, n)],
                          "kind": rng.choice(["a", "b", "c", "rare"], n, p=[0.5, 0.3, 0.1998, 0.0002])})
    ds = load_table(frame, categorical=["code"])
    levels = ds.info["table"]["categorical"]
    # 0.5% of 20,000 rows is 100: no code is seen that often, so all are "(other)"; "rare" (about 4 rows) too
    assert sorted(levels["kind"][:3]) == ["a", "b", "c"] and levels["kind"][3:] == [OTHER, MISSING]
    assert len(levels["code"]) <= MAX_LEVELS + 2 and ds.x.shape[1] <= 1 + 2 * (MAX_LEVELS + 2)
    frame["code"] = [f"c{v}" for v in rng.integers(0, 80, n)]  # 80 frequent levels: the 50 most frequent kept
    assert len(load_table(frame, categorical=["code"]).info["table"]["categorical"]["code"]) == MAX_LEVELS + 2


def test_a_tampered_categorical_groups_is_refused_naming_the_field(tmp_path):
    frame, _ = small_table(n_rows=300)
    ds = ae.data.load(frame)
    model = ae.build_for("ae", ds, seed=0)
    assert model.config.categorical_groups  # mode and machine, one softmax group each
    ae.save(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model"]["categorical_groups"] = [[0, 2], [ds.x.shape[1] - 1, 5]]  # past the input's end
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="categorical_groups"):
        ae.load(tmp_path / "m")


def test_the_estimator_finds_the_faults_and_names_the_culprit():
    frame, truth = mixed_table(seed=0)
    est = AutoencoderOutlierDetector(random_state=0, n_threads=1).fit(frame)
    shares = est.explain(frame)
    y = truth["is_anomaly"].to_numpy()
    auc = roc_auc_score(y, shares.sum(1))
    top = np.asarray(est.feature_names_in_)[shares.argmax(1)]
    top1 = np.mean(top[y == 1] == truth["culprit"].to_numpy()[y == 1])
    # measured 0.933 and 0.99 (seed 0); the bar is 0.93 and 0.8, with a little room for the machine
    assert auc >= 0.92 and top1 >= 0.85, (auc, top1)
    normal = shares[y == 0] / shares[y == 0].sum(1, keepdims=True)
    columns = list(est.feature_names_in_)
    # no column dominates a normal row: the 50-level machine takes about its 1/8 share, not 69%
    assert normal[:, columns.index("machine")].mean() < 0.2


def test_a_frame_with_categoricals_is_scaled_as_a_table_even_when_its_sensors_are_positive():
    # Positive sensors beside one-hot categories look like counts (non-negative, mostly 0): the estimator
    # once chose rownorm there, mixing the categories into each sensor's scale, and missed the impossible
    # line/product pairs (AUC 0.45 on this seed, the CLI 0.89 on the same rows).
    frame, truth = mixed_table(seed=1, faults=("category",))
    est = AutoencoderOutlierDetector(random_state=1, n_threads=1).fit(frame)
    assert est.scaler_.method == "robust" and est.model_.config.input_clip == 1.5
    y = truth["is_anomaly"].to_numpy()
    auc = roc_auc_score(y, est.decision_scores_)
    assert auc > 0.8, auc  # the CLI's 0.88-0.90 on seeds 0-2 (benchmarks/mixed_tables.py), chance 0.5
