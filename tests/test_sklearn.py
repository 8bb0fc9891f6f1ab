"""The scikit-learn estimators: scikit-learn's conformance suite for every kind, then behaviour and bad input.

Data: scikit-learn's 1,797 real 8x8 digits (the `digits` fixture, pixels in [0, 1]).
"""

import pickle

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit as ae
from aekit.anomaly import scores as anomaly
from aekit.sklearn import AutoencoderOutlierDetector, AutoencoderTransformer

KINDS = [k.name for k in ae.kinds()]
ESTIMATORS = (AutoencoderTransformer, AutoencoderOutlierDetector)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The models here are tiny: a second thread only adds overhead and competes with other work.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _small(kind, **params):
    """Tiny networks and two epochs: the conformance suite trains a few hundred models."""
    small = dict(kind=kind, latent_dim=2, epochs=2, batch_size=32)
    if "hidden" in ae.get_kind(kind).options:  # the linear kinds (pca, factor_analysis, ppca) have no hidden layers
        small["hidden"] = (8,)
    if kind == "stacked":
        small["options"] = {"pretrain_epochs": 1}
    return {**small, **params}


CHECKED = [cls(**_small(kind)) for kind in KINDS for cls in ESTIMATORS] + [
    # The VAE's own score, and squared error on standardised features (any real data, no clipping).
    AutoencoderOutlierDetector(**_small("vae", anomaly_score="elbo")),
    AutoencoderOutlierDetector(**_small("ae", scaling="standard", reconstruction="mse")),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_conformance(estimator, check, monkeypatch):
    # check_array_api_input skips itself unless SCIPY_ARRAY_API is set; set, it runs on NumPy arrays.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def test_every_kind_is_checked():
    assert {e.kind for e in CHECKED if isinstance(e, AutoencoderTransformer)} == set(KINDS)
    assert {e.kind for e in CHECKED if isinstance(e, AutoencoderOutlierDetector)} == set(KINDS)


# ----- the transformer -----


def _relative_error(x, x_hat):
    """Squared reconstruction error relative to predicting every feature's mean (1 = no better than the mean)."""
    return float(((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


@pytest.mark.parametrize("kind", KINDS)
def test_transform_and_inverse_transform(kind, digits):
    x = digits[0].astype(np.float64)
    options = {"pretrain_epochs": 2} if kind == "stacked" else None
    est = AutoencoderTransformer(kind=kind, latent_dim=8, options=options, epochs=10, batch_size=64, lr=3e-3,
                                 random_state=0).fit(x)
    z = est.transform(x)
    assert z.shape == (len(x), 8) and z.dtype == np.float64
    x_hat = est.inverse_transform(z)
    assert x_hat.shape == x.shape and x_hat.dtype == np.float64
    # Eight numbers per digit keep most of its variance (PCA-8 leaves 0.33 of it); the sparse and
    # variational kinds trade reconstruction for their penalty (0.72 and 0.81 after 10 epochs: the sparse
    # kind's L1 penalty weighs more against squared error, the transformer's default, than against bce;
    # a cvae given no labels, as here, is a VAE whose class inputs are all "unknown": 0.55).
    assert _relative_error(x, x_hat) < (0.85 if kind in ("sparse", "vae", "cvae") else 0.5), kind
    assert_array_equal(est.get_feature_names_out(), [f"autoencodertransformer{i}" for i in range(8)])
    # float32 in, float32 out (the tag says so), the same codes up to float32 rounding.
    z32 = est.transform(x.astype(np.float32))
    assert z32.dtype == np.float32
    assert_allclose(z32, z, rtol=1e-4, atol=1e-4)


def test_fit_transform_equals_fit_then_transform_and_score_is_negative_loss(digits):
    x = digits[0]
    est = AutoencoderTransformer(latent_dim=4, epochs=3, random_state=0)
    assert_array_equal(est.fit_transform(x), clone(est).fit(x).transform(x))
    # The model sees the features min-max scaled with the training data's range.
    losses = anomaly.score(est.model_, est.scaler_.transform(x), "reconstruction")
    assert est.score(x) == pytest.approx(-losses.mean(), rel=1e-5)
    # A VAE's score is its evidence lower bound: below the negative reconstruction loss by the mean KL.
    vae = AutoencoderTransformer(kind="vae", latent_dim=4, epochs=3, random_state=0).fit(x)
    recon = anomaly.score(vae.model_, vae.scaler_.transform(x), "reconstruction").mean()
    assert vae.score(x) < -recon


def test_scaling_makes_any_real_data_work(digits):
    # Pixels in [0, 16] with an offset: outside [0, 1], which the Bernoulli likelihood needs.
    x = digits[0] * 16.0 - 3.0
    est = AutoencoderTransformer(latent_dim=8, epochs=10, lr=3e-3, random_state=0).fit(x)
    assert_allclose(est.scaler_.data_min_, x.min(0))
    assert _relative_error(x, est.inverse_transform(est.transform(x))) < 0.6
    # The same data without scaling are refused, naming the range and the fix.
    with pytest.raises(ae.DataError, match=r"needs data in \[0, 1\]"):
        AutoencoderTransformer(scaling=None, reconstruction="bce", epochs=1).fit(x)


def test_conv_architecture_via_input_shape(digits):
    x = digits[0]
    est = AutoencoderTransformer(latent_dim=8, hidden=(32,), input_shape=(1, 8, 8), epochs=5, random_state=0,
                                 options={"architecture": "conv", "channels": (8, 16)}).fit(x)
    assert est.model_.config.input_shape == (1, 8, 8)
    assert est.transform(x).shape == (len(x), 8)
    assert est.inverse_transform(est.transform(x[:5])).shape == (5, 64)


def test_pipeline_and_grid_search(digits):
    x, y = digits
    pipe = make_pipeline(AutoencoderTransformer(epochs=30, lr=3e-3, random_state=0),
                         LogisticRegression(max_iter=2000))
    search = GridSearchCV(pipe, {"autoencodertransformer__latent_dim": [2, 16]}, cv=3).fit(x, y)
    # Two numbers per digit cannot separate ten classes well (0.71 measured); sixteen do (0.87).
    assert search.best_params_ == {"autoencodertransformer__latent_dim": 16}
    assert search.best_score_ > 0.85
    means = search.cv_results_["mean_test_score"]
    assert means[0] < means[1] - 0.1


def test_detector_in_a_pipeline(digits):
    from sklearn.preprocessing import Normalizer

    x = digits[0].astype(np.float64)
    # A model-only score: the training rows' scores are then exactly what decision_function gives them
    # (the default "combined" score leaves each training row out of its own neighbours; test_detection.py).
    pipe = make_pipeline(Normalizer(), AutoencoderOutlierDetector(latent_dim=4, epochs=3, random_state=0,
                                                                  anomaly_score="squared_error")).fit(x)
    det = pipe[-1]
    # The pipeline forwards every method to the detector, on the normalised rows.
    rows = Normalizer().fit_transform(x)
    assert_array_equal(pipe.decision_function(x), det.decision_function(rows))
    assert_array_equal(pipe.predict(x), det.labels_)
    assert_array_equal(pipe.score_samples(x), -det.decision_scores_)
    assert pipe.predict_proba(x).shape == (len(x), 2)


def test_clone_copies_parameters_not_the_fit(digits):
    est = AutoencoderTransformer(kind="denoising", latent_dim=3, options={"noise": "masking"}, epochs=1,
                                 random_state=0).fit(digits[0])
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert copy.options is not est.options
    assert not hasattr(copy, "model_")
    with pytest.raises(NotFittedError):
        copy.transform(digits[0])


def test_feature_names_from_a_dataframe(digits):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(digits[0][:200], columns=[f"px{i}" for i in range(64)])
    est = AutoencoderOutlierDetector(latent_dim=2, epochs=1, random_state=0).fit(frame)
    assert_array_equal(est.feature_names_in_, frame.columns)
    assert est.n_features_in_ == 64
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.decision_function(digits[0][:5])


def test_defaults(digits):
    x = digits[0][:300]
    # Pixels (non-negative, 64 features, mostly 0): each row divided by its norm; the network from the
    # number of features (2 x 64 hidden units, round(1.5 sqrt(64)) = 12 code units), dropout, no clip.
    det = AutoencoderOutlierDetector(epochs=1).fit(x)
    c = det.model_.config
    assert (c.kind, c.hidden, c.latent_dim, c.reconstruction, c.dropout, c.input_clip) == (
        "ae", (128,), 12, "mse", 0.2, None)
    assert det.scaler_.scaling_["method"] == "rownorm"
    # A table of 12 real features: robust scaling, 32 hidden units (the floor), 5 code units, input clipped.
    table = np.random.default_rng(0).normal(size=(300, 12)) * np.logspace(-1, 3, 12)
    det = AutoencoderOutlierDetector(epochs=1).fit(table)
    c = det.model_.config
    assert (c.hidden, c.latent_dim, c.input_clip, det.scaler_.scaling_["method"]) == ((32,), 5, 1.5, "robust")
    # Left as None, the training length follows the rows: batches of 128, at least 250 steps, at lr 2e-3.
    history = AutoencoderOutlierDetector().fit(table).history_
    assert len(history) == 84  # 3 batches an epoch x 84 epochs
    # A kind that fixes the layout keeps it: no hidden layers for pca, whose loss is squared error anyway.
    c = AutoencoderOutlierDetector(kind="pca", epochs=1).fit(x).model_.config
    assert (c.hidden, c.reconstruction) == ((), "mse")
    # The transformer takes the kind's own layout and squared error (README, "scikit-learn estimators"),
    # except a VAE, which keeps its Bernoulli likelihood, clipped to [0, 1] at predict time.
    trans = AutoencoderTransformer(epochs=1).fit(x)
    assert (trans.model_.config.hidden, trans.model_.config.reconstruction) == ((256, 64), "mse")
    assert not trans.scaler_.clip
    vae = AutoencoderTransformer(kind="vae", epochs=1).fit(x)
    assert vae.model_.config.reconstruction == "bce" and vae.scaler_.clip


# ----- pickling -----


@pytest.mark.parametrize("kind", ["ae", "vae", "stacked"])
def test_pickle_and_joblib_round_trip_are_exact(kind, digits, tmp_path):
    x = digits[0]
    reconstruction = "gaussian" if kind == "vae" else None  # a learnt variance: one more parameter to carry
    det = AutoencoderOutlierDetector(kind=kind, latent_dim=4, reconstruction=reconstruction, epochs=2,
                                     random_state=0).fit(x)
    trans = AutoencoderTransformer(kind=kind, latent_dim=4, reconstruction=reconstruction, epochs=2,
                                   random_state=0).fit(x)
    joblib.dump(det, tmp_path / "det.joblib")
    for before, after in ((det, pickle.loads(pickle.dumps(det))), (det, joblib.load(tmp_path / "det.joblib")),
                          (trans, pickle.loads(pickle.dumps(trans)))):
        assert type(after.model_) is type(before.model_) and after.model_.config == before.model_.config
        assert not after.model_.training
        for name, value in before.model_.state_dict().items():
            assert torch.equal(after.model_.state_dict()[name], value.cpu()), name
    assert_array_equal(pickle.loads(pickle.dumps(trans)).transform(x), trans.transform(x))
    det2 = joblib.load(tmp_path / "det.joblib")
    assert_array_equal(det2.decision_function(x), det.decision_function(x))
    assert_array_equal(det2.predict(x), det.predict(x))
    assert det2.threshold_ == det.threshold_
    # The estimator's pickle holds the weights as arrays, not a pickled torch module.
    assert isinstance(det.__getstate__()["model_"]["weights"]["decoder.0.weight"], np.ndarray)


# ----- the outlier detector -----


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.25])
def test_labels_match_contamination_on_training_data(contamination, digits):
    x = digits[0].astype(np.float64)
    det = AutoencoderOutlierDetector(latent_dim=4, contamination=contamination, epochs=3, random_state=0,
                                     anomaly_score="squared_error").fit(x)
    n = len(x)
    # threshold_ is the (1 - contamination) quantile: the fraction above it is within one example of it
    # (scores are continuous, so there are no ties to widen that).
    assert abs(det.labels_.mean() - contamination) <= 1 / n
    assert set(np.unique(det.labels_)) == {0, 1} and det.labels_.dtype.kind == "i"
    assert_array_equal(det.predict(x), det.labels_)
    assert_array_equal(det.fit_predict(x), det.labels_)
    assert_allclose(det.decision_function(x), det.decision_scores_, rtol=1e-12)
    assert det.threshold_ == pytest.approx(np.quantile(det.decision_scores_, 1 - contamination))
    assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(int))
    # The default score leaves each training row out of its own neighbours in decision_scores_: scored
    # again as new rows they count themselves (distance 0) among their neighbours, so they score lower.
    combined = AutoencoderOutlierDetector(contamination=contamination, epochs=3, random_state=0).fit(x)
    assert abs(combined.labels_.mean() - contamination) <= 1 / n
    assert np.all(combined.decision_function(x) <= combined.decision_scores_ + 1e-9)
    assert combined.threshold_ == pytest.approx(np.quantile(combined.decision_scores_, 1 - contamination))


def _with_planted_noise(x, n_noise, seed):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 1, size=(n_noise, x.shape[1])).astype(x.dtype)
    data = np.concatenate([x, noise])
    truth = np.r_[np.zeros(len(x)), np.ones(n_noise)]
    order = rng.permutation(len(data))
    return data[order], truth[order]


@pytest.mark.parametrize("kind,score", [("ae", "reconstruction"), ("denoising", "squared_error"), ("vae", "elbo"),
                                        ("pca", "reconstruction")])
def test_detector_finds_planted_noise_images(kind, score, digits):
    x = digits[0]
    # Contaminated training data, as PyOD assumes: 20 uniform-noise "images" hidden among 1,797 digits.
    data, truth = _with_planted_noise(x, 20, seed=1)
    det = AutoencoderOutlierDetector(kind=kind, anomaly_score=score, latent_dim=8, contamination=0.02, epochs=10,
                                     random_state=0).fit(data)
    assert roc_auc_score(truth, det.decision_scores_) > 0.9
    # Unseen noise among unseen-by-the-threshold digits: scored by decision_function.
    test, test_truth = _with_planted_noise(x[:300], 30, seed=2)
    assert roc_auc_score(test_truth, det.decision_function(test)) > 0.9
    # Most planted images are flagged, few digits are.
    flagged = det.predict(test)
    assert flagged[test_truth == 1].mean() >= 0.8
    assert flagged[test_truth == 0].mean() <= 0.1


@pytest.mark.parametrize("kind", ["denoising", "vae", "contractive", "sparse"])
def test_scores_are_deterministic(kind, digits):
    x = digits[0][:400]
    params = dict(kind=kind, latent_dim=4, epochs=2, random_state=0)
    det = AutoencoderOutlierDetector(**params).fit(x)
    # No fresh noise per call: denoising scores the clean input, a VAE its posterior mean.
    assert_array_equal(det.decision_function(x), det.decision_function(x))
    order = np.random.default_rng(0).permutation(len(x))
    assert_allclose(det.decision_function(x[order]), det.decision_function(x)[order], rtol=1e-12)
    # The same random_state and data give the same model and scores.
    assert_array_equal(AutoencoderOutlierDetector(**params).fit(x).decision_function(x), det.decision_function(x))
    # A different random_state gives a different model.
    other = AutoencoderOutlierDetector(**{**params, "random_state": 1}).fit(x)
    assert not np.allclose(other.decision_function(x), det.decision_function(x))


def test_score_conventions_and_probabilities(digits):
    x = digits[0]
    det = AutoencoderOutlierDetector(latent_dim=4, epochs=3, random_state=0).fit(x)
    scores = det.decision_function(x)
    assert_array_equal(det.score_samples(x), -scores)  # scikit-learn's sign: higher = more normal
    for method in ("linear", "unify"):
        proba = det.predict_proba(x, method=method)
        assert proba.shape == (len(x), 2)
        assert_allclose(proba.sum(1), 1.0)
        assert proba.min() >= 0 and proba.max() <= 1
        # A monotone map of the score: a higher score never has a lower outlier probability.
        order = np.argsort(scores, kind="stable")
        assert np.all(np.diff(proba[order, 1]) >= 0), method
    linear = det.predict_proba(x)[:, 1]
    low, high = det.decision_scores_.min(), det.decision_scores_.max()
    assert_allclose(linear, np.clip((scores - low) / (high - low), 0, 1), rtol=1e-10)
    with pytest.raises(ae.ConfigError, match=r"unknown probability method 'lin' \(did you mean 'linear'\?\)"):
        det.predict_proba(x, method="lin")


def test_anomaly_scores_match_the_training_loss_terms(digits):
    x = torch.from_numpy(digits[0])
    model = ae.build("ae", input_shape=(64,), latent_dim=4)
    ae.fit(model, x, epochs=2, verbose=0)
    terms = ae.evaluate_loss(model, x)
    # Per-example scores averaged over the examples are the loss terms the training loop reports.
    assert anomaly.score(model, x, "reconstruction").mean() == pytest.approx(terms["reconstruction"], rel=1e-5)
    assert anomaly.score(model, x, "squared_error").mean() == pytest.approx(terms["mse_per_feature"] * 64, rel=1e-5)

    vae = ae.build("vae", input_shape=(64,), latent_dim=4)
    ae.fit(vae, x, epochs=2, verbose=0)
    elbo = anomaly.score(vae, x, "elbo", dtype=torch.float64)
    recon = anomaly.score(vae, x, "reconstruction", dtype=torch.float64)
    mu, logvar = (torch.from_numpy(t).double() for t in vae.posterior(digits[0]))
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1).numpy()  # Kingma & Welling 2014, appendix B
    assert_allclose(elbo - recon, kl, rtol=1e-4, atol=1e-5)
    assert np.all(kl >= 0)


def test_threshold_helpers():
    scores = np.arange(100, dtype=float)
    assert anomaly.threshold(scores, 0.1) == pytest.approx(89.1)
    assert_array_equal(anomaly.labels([1.0, 5.0, 89.1, 90.0], 89.1), [0, 0, 0, 1])
    for bad in (0, 0.6, -0.1, True):
        with pytest.raises(ae.ConfigError, match=r"contamination must be a float in the range \(0.0, 0.5\]"):
            anomaly.threshold(scores, bad)


# ----- bad input: scikit-learn-style messages -----


@pytest.fixture(scope="module")
def fitted(digits):
    return {cls: cls(latent_dim=2, epochs=1, random_state=0).fit(digits[0]) for cls in ESTIMATORS}


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("value,message", [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")])
def test_nan_and_inf_are_refused(cls, value, message, digits, fitted):
    x = digits[0].copy()
    x[3, 5] = value
    with pytest.raises(ValueError, match=message):
        cls(epochs=1).fit(x)
    method = "transform" if cls is AutoencoderTransformer else "decision_function"
    with pytest.raises(ValueError, match=message):
        getattr(fitted[cls], method)(x)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_wrong_number_of_features_and_1d_input(cls, digits, fitted):
    est = fitted[cls]
    methods = ["transform"] if cls is AutoencoderTransformer else ["decision_function", "predict", "score_samples",
                                                                     "predict_proba"]
    for method in methods:
        with pytest.raises(ValueError, match=f"X has 3 features, but {cls.__name__} is expecting 64 features as input"):
            getattr(est, method)(digits[0][:, :3])
        with pytest.raises(ValueError, match="Expected a 2-dimensional container|Expected 2D array, got 1D array"):
            getattr(est, method)(digits[0][0])
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        cls(epochs=1).fit(digits[0][:, 0])


@pytest.mark.parametrize("contamination", [0, 0.7, -0.1, "auto"])
def test_contamination_outside_the_range_is_refused(contamination, digits):
    with pytest.raises(ValueError, match=r"The 'contamination' parameter of AutoencoderOutlierDetector must be a float "
                                         r"in the range \(0.0, 0.5\]\. Got .* instead"):
        AutoencoderOutlierDetector(contamination=contamination).fit(digits[0])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_unknown_kind_suggests_the_closest(cls, digits):
    with pytest.raises(ae.ConfigError, match=r"unknown kind 'vea' \(did you mean 'vae'\?\); valid: ae, contractive"):
        cls(kind="vea").fit(digits[0])


@pytest.mark.parametrize(
    "params,error,message",
    [
        (dict(kind="ae", anomaly_score="elbo"), ae.ConfigError, r"'elbo' needs a variational model \(kind='vae'\)"),
        (dict(anomaly_score="reconstuction"), ae.ConfigError, r"did you mean 'reconstruction'\?"),
        (dict(options={"latent_dim": 3}), ae.ConfigError, r"options\['latent_dim'\] repeats a parameter"),
        (dict(options={"seed": 3}), ae.ConfigError, r"set random_state instead"),
        (dict(options={"nosie": "masking"}), ae.ConfigError,
         r"unknown option for kind 'ae': 'nosie' \(did you mean 'noise'\?\)"),
        (dict(kind="pca", hidden=(8,)), ae.ConfigError, r"option 'hidden' is fixed to \(\) for kind 'pca'"),
        (dict(scaling="standard", reconstruction="bce"), ae.ConfigError,
         r"scaling='standard' gives values outside \[0, 1\]"),
        (dict(options={"reconstruction": "mse"}), ae.ConfigError, r"options\['reconstruction'\] repeats a parameter"),
        (dict(kind="pca", reconstruction="bce"), ae.ConfigError,
         r"option 'reconstruction' is fixed to 'mse' for kind 'pca'"),
        (dict(reconstruction="l2"), ValueError, r"The 'reconstruction' parameter of AutoencoderOutlierDetector must be"),
        (dict(scaling="iqr"), ValueError, r"The 'scaling' parameter of AutoencoderOutlierDetector must be"),
        (dict(input_shape=(1, 28, 28)), ae.ConfigError,
         r"input_shape=\(1, 28, 28\) holds 784 values per example, but X has 64"),
        (dict(epochs=0), ValueError,
         r"The 'epochs' parameter of AutoencoderOutlierDetector must be an int in the range \[1, inf\)"),
        (dict(lr=-1.0), ValueError,
         r"The 'lr' parameter of AutoencoderOutlierDetector must be a float in the range \(0.0, inf\)"),
        (dict(latent_dim=2.5), ValueError, r"The 'latent_dim' parameter"),
    ],
)
def test_bad_parameters_are_refused_at_fit(params, error, message, digits):
    det = AutoencoderOutlierDetector(**{"epochs": 1, **params})  # __init__ only stores: nothing is checked yet
    with pytest.raises(error, match=message):
        det.fit(digits[0])
    assert not hasattr(det, "model_")


def test_unfitted_and_wrong_code_width(digits, fitted):
    with pytest.raises(NotFittedError):
        AutoencoderOutlierDetector().decision_function(digits[0])
    with pytest.raises(NotFittedError):
        AutoencoderTransformer().inverse_transform(np.zeros((2, 2)))
    with pytest.raises(ValueError,
                       match=r"Z has 3 features, but AutoencoderTransformer is expecting 2 features \(its latent_dim\)"):
        fitted[AutoencoderTransformer].inverse_transform(np.zeros((2, 3)))


def test_unscaled_bce_model_refuses_out_of_range_input_at_predict_time(digits):
    det = AutoencoderOutlierDetector(scaling=None, reconstruction="bce", latent_dim=2, epochs=1,
                                     random_state=0).fit(digits[0])
    with pytest.raises(ae.DataError, match=r"X has values in \[0, 2\], but reconstruction='bce' with scaling=None"):
        det.decision_function(digits[0] * 2)


# ----- the smoothed score for images -----


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.6])
def test_gaussian_smooth_is_scipys_gaussian_filter(sigma):
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    images = np.random.default_rng(0).normal(size=(3, 2, 9, 7))
    expected = scipy_ndimage.gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="constant", truncate=4.0)
    assert_allclose(anomaly.gaussian_smooth(torch.from_numpy(images), sigma).numpy(), expected, atol=1e-12)


def test_smoothing_forgives_misalignment_not_missing_strokes():
    # Two residuals of equal energy: a one-pixel checkerboard (a reconstruction off by a pixel
    # everywhere) and a solid 3x3 block (a stroke the model cannot produce).
    checker = torch.from_numpy(np.indices((8, 8)).sum(0) % 2 * 2.0 - 1).reshape(1, 1, 8, 8)
    block = torch.zeros(1, 1, 8, 8)
    block[..., 2:5, 2:5] = (64 / 9) ** 0.5
    assert checker.pow(2).sum() == pytest.approx(float(block.pow(2).sum()))
    smoothed = [float(anomaly.gaussian_smooth(r.double(), 1.0).pow(2).sum()) for r in (checker, block)]
    assert smoothed[0] < 0.01 * smoothed[1]


def test_smoothed_score_on_images(digits):
    x = digits[0]
    det = AutoencoderOutlierDetector(input_shape=(1, 8, 8), anomaly_score="smoothed_squared_error", latent_dim=8,
                                     epochs=10, random_state=0).fit(x)
    # The score is the squared error of the smoothed residual, in the scaled space.
    xs = torch.from_numpy(det.scaler_.transform(x.astype(np.float64)).reshape(-1, 1, 8, 8))
    x_hat = torch.from_numpy(det.model_.reconstruct(xs.float().numpy())).double()
    expected = anomaly.gaussian_smooth(xs - x_hat, 1.0).pow(2).flatten(1).sum(1).numpy()
    assert_allclose(det.decision_function(x.astype(np.float64)), expected, rtol=1e-4)
    data, truth = _with_planted_noise(x, 20, seed=3)
    assert roc_auc_score(truth, clone(det).fit(data).decision_scores_) > 0.9
    with pytest.raises(ae.ConfigError, match=r"needs input_shape \(C, H, W\), got \(64,\)"):
        AutoencoderOutlierDetector(anomaly_score="smoothed_squared_error", epochs=1).fit(x)
    with pytest.raises(ValueError, match=r"The 'smoothing' parameter of AutoencoderOutlierDetector must be a float"):
        AutoencoderOutlierDetector(input_shape=(1, 8, 8), anomaly_score="smoothed_squared_error", smoothing=0).fit(x)
