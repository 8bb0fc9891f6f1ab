"""scikit-learn estimators: an autoencoder as a transformer, and as an outlier detector.

    from aekit.sklearn import AutoencoderTransformer, AutoencoderOutlierDetector

    codes = AutoencoderTransformer(kind="vae", latent_dim=8).fit_transform(X)
    det = AutoencoderOutlierDetector(contamination=0.05).fit(X_train)
    det.decision_function(X_test)        # higher = more anomalous (PyOD)
    det.predict(X_test)                  # 1 = outlier, 0 = inlier (PyOD, not scikit-learn's -1/+1)

Both take 2-D X (n_samples, n_features) and follow scikit-learn's conventions:
`__init__` only stores its arguments, everything is checked at fit time, fitted
state ends in `_`, they work in Pipeline, GridSearchCV, `clone`, pickle and
joblib, and pass scikit-learn's `parametrize_with_checks` for every kind.
`est.save(folder)` (or `ae.save(est, folder)`) and `Class.load(folder)` keep a
fitted estimator as a run folder, without pickle (sklearn_folder.py).

Scaling: by default every feature is min-max scaled to [0, 1] with the
training data's minimum and maximum (scikit-learn's MinMaxScaler), so that any
real data works with any kind, including the Bernoulli (bce) likelihood,
which needs data in [0, 1]. For a bce model, values outside the training range
are clipped to [0, 1] at predict time (the likelihood is undefined outside);
for mse/gaussian models they are left as they are.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

# scikit-learn's own parameter validation: the same messages and exception type
# (InvalidParameterError, a ValueError and TypeError) as its estimators give.
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from aekit.anomaly import scores as anomaly
from aekit.anomaly.detector import fit_detector
from aekit.data.base import is_profile_data
from aekit.inference import BATCH_SIZE, apply
from aekit.models.kinds import data_defaults
from aekit.sklearn_base import AutoencoderEstimator, torch_dtype
from aekit.sklearn_folder import RunFolderMixin
from aekit.training.options import table_fit_length, threads_for, torch_threads

__all__ = ["AutoencoderOutlierDetector", "AutoencoderTransformer"]

class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, RunFolderMixin, AutoencoderEstimator):
    """An autoencoder of any registered kind as a scikit-learn transformer: X -> codes.

    Parameters
    ----------
    kind : str, default="denoising"
        A registered kind (``aekit.kinds()``): "pca", "ae", "sparse",
        "denoising", "contractive", "stacked", "vae". The denoising autoencoder's
        codes (with squared error and the default training length) score higher
        in a linear probe than PCA's of the same size on the digits (README,
        "scikit-learn estimators"); the plain autoencoder's scored lower.
    latent_dim : int, default=16
        Code size: the number of output features of ``transform``.
    hidden : tuple of int, default=None
        MLP widths from the input towards the code; None: the kind's default
        ((256, 64); "pca" has none).
    reconstruction : {"bce", "mse", "gaussian"}, default=None
        The reconstruction loss: "bce" (Bernoulli, data in [0, 1]), "mse"
        (summed squared error) or "gaussian" (Gaussian with a learnt variance);
        None: "mse" (features are not Bernoulli variables).
    input_shape : tuple of int, default=None
        One example's shape for the model, e.g. (1, 28, 28) with
        ``options={"architecture": "conv"}``; its product must equal
        n_features. None: (n_features,).
    options : dict, default=None
        Any other option of the kind (``aekit.kinds()``), e.g.
        ``{"noise": "masking", "noise_level": 0.2}`` or ``{"beta": 0.5}``; a dict,
        so that get_params, set_params and clone work for every kind.
    scaling : {"minmax", "standard"} or None, default="minmax"
        Feature scaling learnt at fit time. "minmax": each feature to [0, 1]
        with the training minimum and maximum (clipped at predict time for
        reconstruction="bce"). "standard": zero mean, unit variance (needs
        reconstruction "mse" or "gaussian"). None: X as given.
    epochs : int, default=None
        Passes over the training data; None: enough for 1,000 optimizer steps
        (at least 10 epochs), as ``ae.fit`` decides.
    batch_size : int, default=None
        Examples per optimizer step (Adam); None: 128, smaller for small data
        (at least 8 steps an epoch).
    lr : float, default=1e-3
        Adam's learning rate.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling, the corruption noise and the
        VAE's sampling: the same value and data give the same model.
    device : str, default=None
        "cpu", "cuda", "mps" or None for the best available.
    n_threads : int, default=None
        torch threads while fitting and predicting; None: 1 for a small model or
        a busy machine, else the idle cores (``ae.fit``'s rule).
    verbose : int, default=0
        1 shows a progress bar while training (when stderr is a terminal).

    Attributes
    ----------
    model_ : aekit.Autoencoder
        The trained model (in eval mode).
    scaler_ : MinMaxScaler, StandardScaler or None
        The fitted feature scaling.
    history_ : aekit.History
        One row per epoch with the training loss terms.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X was a DataFrame with string column names.
    """

    _default_reconstruction = "mse"

    def __init__(self, kind="denoising", latent_dim=16, hidden=None, reconstruction=None, input_shape=None, options=None,
                 scaling="minmax", epochs=None, batch_size=None, lr=1e-3, random_state=None, device=None,
                 n_threads=None, verbose=0):
        self.kind = kind
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.reconstruction = reconstruction
        self.input_shape = input_shape
        self.options = options
        self.scaling = scaling
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    def fit(self, X, y=None):
        """Train on X (n_samples, n_features); y is ignored."""
        self._fit_model(X)
        return self

    def transform(self, X):
        """The codes (n_samples, latent_dim); a VAE gives its posterior mean. Deterministic."""
        codes, dtype = self._apply(X, lambda m, x: m.code(x))
        return codes.astype(dtype, copy=False)

    def inverse_transform(self, X):
        """Codes (n_samples, latent_dim) -> reconstructions (n_samples, n_features) in the original units."""
        return self._decode(X)

    def score(self, X, y=None):
        """Mean log-likelihood-like score of X, higher is better.

        For a VAE the mean evidence lower bound (-negative ELBO, nats); for the
        other kinds the negative mean reconstruction loss (nats for bce/gaussian,
        summed squared error for mse), both in the scaled space. Only comparable
        between models with the same scaling and reconstruction.
        """
        check_is_fitted(self)
        name = "elbo" if self.model_.config.variational else "reconstruction"
        losses, _ = self._apply(X, anomaly.SCORES[name])
        return -float(np.mean(losses))

    @property
    def _n_features_out(self):
        return self.model_.config.latent_dim

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class AutoencoderOutlierDetector(RunFolderMixin, AutoencoderEstimator):
    """Anomaly ("fake") detection with an autoencoder, following PyOD's conventions.

    Train on (mostly) normal data; an example's anomaly score says how badly the
    model explains it. By default (``anomaly_score="combined"``) it is the
    autoencoder's squared residual plus the distance to the nearest training
    rows, each divided by its median on the training rows (``aekit.anomaly.detector``):
    on the 14 tables of ADBench in ``../shared/data/adbench`` this ranks first
    of seven detectors (README, "Anomaly detection on your tables").

    - ``decision_scores_``, ``threshold_``, ``labels_`` after fit (the training data's scores and labels);
    - ``decision_function(X)``: the anomaly score, **higher = more anomalous**;
    - ``predict(X)``: **1 = outlier, 0 = inlier** (PyOD). scikit-learn's own outlier
      detectors (IsolationForest, ...) return -1 for outliers and +1 for inliers
      and a decision_function that is *lower* for outliers; this estimator is
      therefore deliberately not tagged as a scikit-learn outlier detector;
    - ``score_samples(X)``: scikit-learn's convention, higher = more normal
      (the negative of decision_function);
    - ``predict_proba(X)``: PyOD's (n_samples, 2) [P(inlier), P(outlier)];
    - ``explain(X)``: (n_samples, n_features_in_) per-feature contributions that sum to the scores.

    Scores are deterministic: no corruption, no dropout, no sampling (a VAE
    decodes its posterior mean), so the same rows always get the same scores.

    Parameters
    ----------
    kind : str, default="ae"
        A registered kind (``aekit.kinds()``). The estimators take no class labels: a
        conditional kind ("cvae") trains with every class "unknown" (its label-dropout
        input); for a model conditioned on labels use ``ae.fit(model, x, y=labels)``.
    latent_dim : int, default=None
        None: about 1.5 sqrt(n_features) units, 2 to 32, at most n_features.
    hidden : tuple of int, default=None
        None: one hidden layer of 2 n_features units (32 to 256).
    reconstruction : {"bce", "mse", "gaussian"}, default=None
        None: "mse", squared error.
    input_shape, options, random_state, device, n_threads, verbose
        As for AutoencoderTransformer. ``options`` may set any option of the
        kind; the defaults add ``dropout=0.2`` and, with robust scaling,
        ``input_clip=1.5`` (the network learns the bulk of each feature, the
        score compares with the unclipped value).
    scaling : {"auto", "robust", "rownorm", "minmax", "standard"} or None, default="auto"
        "auto": "robust" for a DataFrame with categorical or text columns (as the CLI
        scales a CSV); otherwise "rownorm" for pixel-, count- or bag-of-words-like data (non-negative,
        at least 32 features, at least a quarter of the entries 0: each row divided
        by its norm, so its pattern matters, not its total intensity), else "robust"
        (per feature: median, spread of the values winsorised to their 5-95th
        percentiles, logarithmic tails beyond 3 spreads; invariant to each feature's units).
    epochs, batch_size : int, default=None
        None: batches of 128 and about 10 epochs, between 250 and 1,000 optimizer steps
        (training.options.table_fit_length).
    lr : float, default=None
        Adam's learning rate; None: 2e-3, the table rule's (table_fit_length).
    contamination : float in (0, 0.5], default=0.1
        The expected fraction of outliers in the training data: threshold_ is
        the (1 - contamination) quantile of decision_scores_ (PyOD's rule).
    false_alarm_rate : float in (0, 1), default=None
        Novelty mode, for clean training data: 20% of X is held out, the model
        trains on the rest, and threshold_ is the split-conformal quantile of the
        held-out scores, so a new clean row is flagged with probability at most
        false_alarm_rate (needs at least (1 - rate) / rate held-out rows).
    anomaly_score : {"combined", "reconstruction", "squared_error", "smoothed_squared_error", "elbo"}, default="combined"
        "combined": residual plus neighbour distance (above); "reconstruction":
        the model's own reconstruction loss; "squared_error": summed squared error
        in the scaled space; "smoothed_squared_error": for images (input_shape
        (C, H, W)), the squared error of the residual smoothed by a Gaussian of std
        ``smoothing`` pixels; "elbo": the negative evidence lower bound, VAE only
        (not a sum over features: no ``explain``).
    smoothing : float, default=1.0
        The Gaussian's standard deviation in pixels for "smoothed_squared_error".

    Attributes
    ----------
    decision_scores_ : ndarray (n_samples,)
        Anomaly scores of the training rows (the neighbour term leaves each row out of its own neighbours).
    threshold_ : float
        Scores above it are outliers.
    labels_ : ndarray of int (n_samples,)
        1 = outlier, 0 = inlier for the training data.
    detector_ : aekit.anomaly.detector.Detector or None
        The reference rows and medians of the "combined" score.
    model_, scaler_, history_, n_features_in_, feature_names_in_
        As for AutoencoderTransformer.
    """

    _parameter_constraints: dict = {
        **AutoencoderEstimator._parameter_constraints,
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "false_alarm_rate": [Interval(Real, 0, 1, closed="neither"), None],
        "anomaly_score": [str],
        "smoothing": [Interval(Real, 0, None, closed="neither")],
    }

    CALIBRATION_FRACTION = 0.2  # of X held out in novelty mode

    def __init__(self, kind="ae", latent_dim=None, hidden=None, reconstruction=None, input_shape=None,
                 options=None, scaling="auto", contamination=0.1, false_alarm_rate=None, anomaly_score="combined",
                 smoothing=1.0, epochs=None, batch_size=None, lr=None, random_state=None, device=None,
                 n_threads=None, verbose=0):
        self.kind = kind
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.reconstruction = reconstruction
        self.input_shape = input_shape
        self.options = options
        self.scaling = scaling
        self.contamination = contamination
        self.false_alarm_rate = false_alarm_rate
        self.anomaly_score = anomaly_score
        self.smoothing = smoothing
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    # ----- what the data decide -----

    def _scaling_method(self, X) -> str | None:
        if self.scaling != "auto":
            return self.scaling
        if getattr(self, "table_schema_", None) is not None:
            # A DataFrame with categorical or text columns is a table, scaled as the CLI scales a CSV: its
            # one-hot inputs (non-negative, mostly 0) would otherwise make positive sensors look like counts,
            # and rownorm would mix the categories into each sensor's scale (AUC 0.63 instead of 0.89 on
            # benchmarks/mixed_tables.py's impossible category pairs).
            return "robust"
        return "rownorm" if is_profile_data(X) else "robust"

    def _data_defaults(self, X, method) -> dict:
        # Squared error even for binary columns (binary=False): the residual score is a squared error.
        schema = getattr(self, "table_schema_", None)
        groups = schema.softmax_groups() if schema is not None else ()
        return data_defaults(self.kind, X.shape[1], binary=False, scaling=method, groups=groups)

    def _fit_length(self, n: int) -> dict:
        auto = table_fit_length(n)
        return {k: v for k, v in auto.items() if getattr(self, k) is None}

    # ----- fitting -----

    def fit(self, X, y=None):
        """Train on X (n_samples, n_features), then score it and set the threshold; y is ignored."""
        score = None if self.anomaly_score == "combined" else self.anomaly_score
        if self.false_alarm_rate is not None:
            x, calibration = self._fit_model(X, score, held_out=self.CALIBRATION_FRACTION)
        else:
            x, calibration = self._fit_model(X, score), None
        if self.anomaly_score == "combined":
            with torch_threads(threads_for(self.model_, BATCH_SIZE, self.n_threads)):
                profile = getattr(self.scaler_, "method", None) == "rownorm"
                imputed = self._imputed_inputs(X) if calibration is None else None
                self.detector_, scores = fit_detector(self.model_, x, "combined", self.contamination, calibration,
                                                      profile, imputed)
        else:
            self.detector_ = None
            scores = apply(self.model_, x, self._scorer(), dtype=torch_dtype(x)).astype(np.float64)
            if calibration is not None:
                cal = apply(self.model_, calibration, self._scorer(), dtype=torch_dtype(x))
                self.calibration_scores_ = np.sort(cal.astype(np.float64))
        self.decision_scores_ = scores
        self.threshold_ = anomaly.threshold(scores, self.contamination)
        if self.false_alarm_rate is not None:
            calibration = self.detector_.calibration if self.detector_ is not None else self.calibration_scores_
            self.threshold_ = anomaly.conformal_threshold(calibration, self.false_alarm_rate)
        self.labels_ = anomaly.labels(self.decision_scores_, self.threshold_)
        return self

    # ----- scores -----

    def decision_function(self, X):
        """Anomaly scores (n_samples,): higher = more anomalous."""
        if self.anomaly_score == "combined":
            return self.explain(X).sum(1)
        scores, _ = self._apply(X, self._scorer())
        return scores.astype(np.float64)

    def explain(self, X):
        """(n_samples, n_features_in_) float64: each feature's share of each row's score, in the
        order of the columns of X (feature_names_in_); each row sums to decision_function.

        For image input (input_shape (C, H, W)) the columns are the pixels, C * H * W of them, in
        that order: reshape a row to input_shape for its map.
        """
        check_is_fitted(self)
        X_given, X = X, self._input(X, reset=False)
        x = self._to_model_space(X)
        with torch_threads(threads_for(self.model_, BATCH_SIZE, self.n_threads)):
            if self.anomaly_score == "combined":
                shares = self.detector_.contributions(self.model_, x, self._imputed_inputs(X_given))
            else:
                shares = anomaly.per_feature(self.model_, x, self.anomaly_score, self.smoothing, dtype=torch_dtype(x))
        return self._by_input_column(shares)

    def _scorer(self):
        return anomaly.scorer(self.anomaly_score, self.smoothing)

    def score_samples(self, X):
        """scikit-learn's convention: higher = more normal (the negative of decision_function)."""
        return -self.decision_function(X)

    def predict(self, X):
        """1 = outlier (score above threshold_), 0 = inlier."""
        return anomaly.labels(self.decision_function(X), self.threshold_)

    def fit_predict(self, X, y=None):
        """fit(X), then the training data's labels_ (1 = outlier, 0 = inlier)."""
        return self.fit(X).labels_

    def predict_proba(self, X, method="linear"):
        """(n_samples, 2): [P(inlier), P(outlier)], the scores rescaled by the training scores (PyOD).

        method="linear": min-max by the training scores' range, clipped to [0, 1];
        "unify": erf of the scores standardised by the training scores.
        """
        check_is_fitted(self)
        return anomaly.probability(self.decision_scores_, self.decision_function(X), method)
