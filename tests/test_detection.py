"""The default detector (detection.py) through the estimator and ae.fit: explanations, thresholds,
novelty mode, scaling invariance, storage in the run folder."""

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import roc_auc_score

import aekit as ae
from aekit.anomaly import detector as detection
from aekit.data.base import make_dataset
from aekit.errors import ConfigWarning
from aekit.models.kinds import data_defaults
from aekit.runs.run import WEIGHTS, load_run
from aekit.runs.storage import read_tensor_metadata, read_tensors, write_tensors
from aekit.sklearn import AutoencoderOutlierDetector
from helpers import assert_usage_error, cli


def _table(n=600, d=8, seed=0, anomalies=0):
    """Correlated features on very different scales (two latent factors), the last `anomalies` rows
    breaking the correlation of feature 3 only."""
    mixing = np.random.default_rng(12345).normal(size=(2, d))  # one distribution; seed draws rows from it
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) @ mixing + 0.1 * rng.normal(size=(n, d))
    if anomalies:
        x[-anomalies:, 3] += 4.0 * np.sign(rng.normal(size=anomalies))
    return x * np.logspace(-1, 3, d) + np.arange(d) * 10.0


def test_explain_sums_to_the_score_and_names_the_broken_feature():
    x = _table(anomalies=20)
    det = AutoencoderOutlierDetector(random_state=0).fit(x)
    contributions = det.explain(x)
    assert contributions.shape == (len(x), x.shape[1])
    assert_allclose(contributions.sum(1), det.decision_function(x), rtol=1e-10)
    assert (contributions >= 0).all()  # squared residuals and squared distances
    # Feature 3 is the one the planted anomalies break: it carries most of each of their scores.
    assert (contributions[-20:].argmax(1) == 3).mean() >= 0.9
    y = np.r_[np.zeros(len(x) - 20), np.ones(20)]
    assert roc_auc_score(y, det.decision_scores_) > 0.95


def test_scores_do_not_depend_on_units_or_batches():
    x = _table(anomalies=10)
    det = AutoencoderOutlierDetector(random_state=0).fit(x)
    # Robust scaling is invariant to a per-feature change of units (and shift): the same model, the same scores.
    rescaled = AutoencoderOutlierDetector(random_state=0).fit(x * np.linspace(0.5, 20, 8) - 3.0)
    assert_allclose(rescaled.decision_scores_, det.decision_scores_, rtol=1e-3, atol=1e-3)
    # One row alone scores as it does among others.
    alone = np.array([det.decision_function(x[i : i + 1])[0] for i in (0, 17, len(x) - 1)])
    assert_allclose(alone, det.decision_function(x)[[0, 17, len(x) - 1]], rtol=1e-6)


def test_novelty_mode_flags_clean_rows_at_the_stated_rate():
    train, fresh = _table(n=2500, seed=1), _table(n=4000, seed=2)
    det = AutoencoderOutlierDetector(false_alarm_rate=0.05, random_state=0).fit(train)
    assert len(det.detector_.calibration) == 500  # 20% held out, neither trained on nor kept as neighbours
    # Split-conformal: a new clean row exceeds the threshold with probability at most 0.05 (on average over
    # calibration sets); 4,000 rows and one calibration set of 500 give a spread of about 0.012.
    rate = det.predict(fresh).mean()
    assert 0.01 < rate < 0.09, rate
    with pytest.raises(ae.ConfigError, match="needs at least 999 held-out clean rows; there are 500"):
        det.detector_.novelty_threshold(0.001)


def test_contamination_threshold_is_learnt_on_the_training_rows():
    x = _table(anomalies=30)
    det = AutoencoderOutlierDetector(contamination=0.05, random_state=0).fit(x)
    assert det.threshold_ == pytest.approx(np.quantile(det.decision_scores_, 0.95))
    assert det.labels_.mean() == pytest.approx(0.05, abs=1 / len(x))
    assert det.detector_.threshold == det.threshold_


def test_images_are_explained_pixel_by_pixel(digits):
    x = digits[0][:400].astype(np.float64)
    det = AutoencoderOutlierDetector(epochs=2, random_state=0).fit(x)  # pixels: rownorm, combined score
    maps = det.explain(x[:5])
    assert maps.shape == (5, 64)
    assert_allclose(maps.sum(1), det.decision_function(x[:5]), rtol=1e-10)
    smoothed = AutoencoderOutlierDetector(epochs=2, input_shape=(1, 8, 8), anomaly_score="smoothed_squared_error",
                                          random_state=0).fit(x)
    assert_allclose(smoothed.explain(x[:5]).sum(1), smoothed.decision_function(x[:5]), rtol=1e-5)
    vae = AutoencoderOutlierDetector(kind="vae", anomaly_score="elbo", epochs=1, random_state=0).fit(x)
    with pytest.raises(ae.ConfigError, match="'elbo' is not a sum over features"):
        vae.explain(x[:5])


def test_table_defaults_never_give_the_bernoulli_loss_to_real_columns():
    assert data_defaults("ae", 12)["reconstruction"] == "mse"
    assert data_defaults("ae", 12, binary=True, scaling="minmax")["reconstruction"] == "bce"
    assert data_defaults("ae", 12) == {"hidden": (32,), "latent_dim": 5, "reconstruction": "mse", "dropout": 0.2,
                                       "input_clip": 1.5}
    assert data_defaults("ae", 400)["hidden"] == (256,) and data_defaults("ae", 400)["latent_dim"] == 30
    assert "dropout" not in data_defaults("stacked", 12) and "hidden" not in data_defaults("pca", 12)
    with pytest.warns(ConfigWarning, match="latent_dim=16 for 12 input features"):
        ae.build("ae", input_shape=(12,), latent_dim=16)


def test_a_run_stores_its_detector_with_the_final_weights(tmp_path):
    x = _table(n=400, anomalies=8).astype(np.float32)
    ds = make_dataset(x, "table", table=True)
    model = ae.build("ae", input_shape=(8,), **data_defaults("ae", 8))
    ae.fit(model, ds, epochs=5, out=tmp_path / "run", verbose=0)
    run = load_run(tmp_path / "run")
    d = run.detector
    assert d.score == "combined" and d.contamination == 0.1
    assert len(d.calibration) == 40  # the validation rows (10%): novelty thresholds need no refit
    scores = d.scores(run.model, ds.x)
    assert_allclose(d.contributions(run.model, ds.x).sum(1), scores, rtol=1e-10)
    # Scores are recomputed exactly after loading (the reference rows and medians are stored).
    fresh = detection.Detector.scores(d, model, ds.x)
    assert_allclose(fresh, scores, rtol=1e-6)
    # A tampered detector is refused, naming what is wrong.
    path = tmp_path / "run" / WEIGHTS
    tensors, meta = read_tensors(path), read_tensor_metadata(path)
    meta["detector"]["k"] = 10**6
    write_tensors(path, tensors, meta)
    with pytest.raises(ae.CheckpointError, match="k=1000000 do not fit"):
        load_run(tmp_path / "run")
    meta["detector"] = {**meta["detector"], "k": 10, "threshold": float("nan")}
    write_tensors(path, tensors, json.loads(json.dumps(meta)))
    with pytest.raises(ae.CheckpointError, match="field 'detector.threshold' must be a finite number"):
        load_run(tmp_path / "run")


def sensor_csv(path, n=1500, seed=0, anomalies=0.02):
    """A realistic sensor log: an id, a timestamp, a categorical machine, 12 sensors on scales from 0.2
    to 5,000 driven by two hidden factors, and `anomalies` of the rows with two sensors out of step."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(7).normal(size=(2, 12))
    machine = rng.choice(["press-A", "press-B", "lathe"], size=n)
    state = rng.normal(size=(n, 2)) + np.where(machine == "lathe", 1.5, 0.0)[:, None]
    sensors = (state @ mixing + 0.15 * rng.normal(size=(n, 12))) * np.geomspace(0.2, 5000, 12) + 100.0
    bad = rng.random(n) < anomalies
    sensors[bad, 4] += 5 * np.geomspace(0.2, 5000, 12)[4] * rng.choice([-1, 1], size=bad.sum())
    sensors[bad, 9] -= 4 * np.geomspace(0.2, 5000, 12)[9]
    frame = pd.DataFrame(sensors, columns=[f"sensor_{j}" for j in range(12)])
    frame.insert(0, "machine", machine)
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S"))
    frame.insert(0, "reading_id", [f"r{seed}-{i:05d}" for i in range(n)])
    frame.to_csv(path, index=False)
    return bad.astype(int)


def test_a_sensor_csv_from_train_to_detect_with_no_flags(tmp_path):
    truth = sensor_csv(tmp_path / "log.csv")
    clean_truth = sensor_csv(tmp_path / "new.csv", n=800, seed=1, anomalies=0.0)
    assert clean_truth.sum() == 0
    run = tmp_path / "run"
    proc = cli("train", "ae", "--data", tmp_path / "log.csv", "--out", run, "--quiet", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    loaded = load_run(run)
    c = loaded.config
    # Data-derived defaults: 17 inputs (12 sensors + 3 machines, "(other)" and "(missing)" one-hot), squared
    # error, the machine as one softmax group, robust scaling.
    assert (c.reconstruction, c.hidden, c.latent_dim, c.input_clip) == ("mse", (34,), 6, 1.5)
    assert c.categorical_groups == ((0, 5),)
    assert loaded.scaling["method"] == "robust"
    proc = cli("detect", run, "--data", tmp_path / "log.csv", "--out", tmp_path / "scores.csv", "--explain")
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns[:5]) == ["reading_id", "time", "score", "outlier", "top_features"]
    assert list(scores.columns[5:]) == ["machine", *[f"sensor_{j}" for j in range(12)], "imputed"]
    assert scores["imputed"].isna().all()  # no empty cells in this file: an empty column
    assert roc_auc_score(truth, scores["score"]) > 0.95
    # Contributions are per original column (the machine's one-hot inputs summed) and add up to the score.
    assert_allclose(scores.iloc[:, 5:].sum(axis=1), scores["score"], rtol=1e-5)
    flagged_tops = scores.loc[truth == 1, "top_features"].str.split(";").str[0]
    assert flagged_tops.isin(["sensor_4", "sensor_9"]).mean() > 0.8
    # New clean rows against the threshold learnt on the training rows: few flagged (the training set
    # had 2% anomalies and the threshold is its 0.9 quantile); --contamination re-thresholds on request.
    proc = cli("detect", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "new_scores.csv")
    assert proc.returncode == 0 and "learnt on the training rows" in proc.stdout, proc.stderr
    new = pd.read_csv(tmp_path / "new_scores.csv")
    assert list(new.columns) == ["reading_id", "time", "score", "outlier", "imputed"]
    assert new["outlier"].mean() < 0.12
    proc = cli("detect", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "c.csv", "--contamination", "0.25")
    assert pd.read_csv(tmp_path / "c.csv")["outlier"].mean() == pytest.approx(0.25, abs=2 / 800)
    # Novelty mode: the validation rows (10%, some anomalous: a conservative threshold) give the false-alarm rate.
    proc = cli("detect", run, "--data", tmp_path / "new.csv", "--out", tmp_path / "f.csv", "--false-alarm-rate", "0.05")
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(tmp_path / "f.csv")["outlier"].mean() < 0.1


def test_reconstructions_and_codes_keep_names_ids_and_units(tmp_path):
    sensor_csv(tmp_path / "log.csv", n=600, anomalies=0.0)
    run = tmp_path / "run"
    assert cli("train", "ae", "--data", tmp_path / "log.csv", "--out", run, "--quiet").returncode == 0
    assert cli("reconstruct", run, "--data", tmp_path / "log.csv", "--out", tmp_path / "r.csv").returncode == 0
    original, recon = pd.read_csv(tmp_path / "log.csv"), pd.read_csv(tmp_path / "r.csv")
    assert list(recon.columns) == list(original.columns)  # ids, time, machine, sensors: in the file's order
    assert (recon["reading_id"] == original["reading_id"]).all()
    # lathe shifts the sensors, so the reconstruction knows it; press-A and press-B differ in nothing else,
    # and the machine's cross-entropy weighs like one column, so the code need not copy it (2/3 expected)
    assert (recon["machine"] == original["machine"]).mean() > 0.6
    for j in (0, 11):  # sensors 0.2 and 5,000 wide: reconstructed in their own units (scaled units would be
        column = f"sensor_{j}"  # off by about 100 and 5,000 here); the typical error is a fraction of a std
        error = np.abs(recon[column] - original[column]).median() / original[column].std()
        assert error < 0.6, (column, error)
    assert cli("encode", run, "--data", tmp_path / "log.csv", "--out", tmp_path / "z.csv").returncode == 0
    codes = pd.read_csv(tmp_path / "z.csv")
    assert list(codes.columns[:2]) == ["reading_id", "time"] and codes.shape[1] == 2 + load_run(run).config.latent_dim


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_the_detection_report(tmp_path):
    sensor_csv(tmp_path / "log.csv", n=500)
    run = tmp_path / "run"
    assert cli("train", "ae", "--data", tmp_path / "log.csv", "--out", run, "--quiet").returncode == 0
    proc = cli("detect", run, "--data", tmp_path / "log.csv", "--out", tmp_path / "s.csv", "--report",
               tmp_path / "detect.html")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "detect.html").read_text()
    assert "Scores and threshold" in page and "most anomalous rows" in page and "sensor_" in page
    assert page.count("<img") == 1  # the histogram
    assert_usage_error(cli("detect", run, "--out", tmp_path / "s.csv", "--contamination", "0.7"), "not in (0, 0.5]")
    assert_usage_error(cli("detect", run, "--out", tmp_path / "t.csv", "--contamination", "0.1",
                           "--false-alarm-rate", "0.1"), "not both")


def test_the_estimator_takes_a_dataframe_with_ids_and_categories(tmp_path):
    truth = sensor_csv(tmp_path / "log.csv", n=800)
    frame = pd.read_csv(tmp_path / "log.csv")
    det = AutoencoderOutlierDetector(random_state=0).fit(frame)
    assert list(det.feature_names_in_) == list(frame.columns) and det.n_features_in_ == 15
    # 12 sensors + 3 machines, "(other)" and "(missing)" one-hot; id and time kept out
    assert det.model_.config.input_shape == (17,)
    shares = det.explain(frame)
    assert shares.shape == (800, 15)
    assert_allclose(shares.sum(1), det.decision_function(frame), rtol=1e-10)
    assert (shares[:, :2] == 0).all()  # reading_id and time are not features
    assert roc_auc_score(truth, det.decision_function(frame)) > 0.95
    with pytest.raises(ValueError, match="fitted on a DataFrame with columns"):
        det.decision_function(frame.drop(columns=["machine"]))


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_image_runs_are_explained_by_pixel_maps(tmp_path):
    run = tmp_path / "run"
    assert cli("train", "ae", "--data", "digits", "--out", run, "--quiet", "--epochs", "2").returncode == 0
    detector = load_run(run).detector
    assert detector.score == "reconstruction" and detector.reference is None  # images: the model's own loss
    proc = cli("detect", run, "--data", "digits", "--out", tmp_path / "s.csv", "--explain", "--report",
               tmp_path / "d.html")
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_csv(tmp_path / "s.csv")
    assert list(scores.columns[:5]) == ["index", "score", "outlier", "label", "top_features"]
    assert scores.columns[5] == "c0y0x0" and scores.shape[1] == 5 + 64
    assert_allclose(scores.iloc[:, 5:].sum(axis=1), scores["score"], rtol=1e-4)
    page = (tmp_path / "d.html").read_text()
    assert "most anomalous images" in page and page.count("<img") == 2  # the histogram and the heatmaps
