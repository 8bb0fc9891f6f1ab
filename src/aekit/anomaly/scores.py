"""Anomaly ("fake") scores and thresholds: one function per formula.

Every score is per example and *higher means more anomalous*. Scores are
computed in batches, in eval mode, without gradients, and are deterministic:
no corruption (a denoising model scores the clean input), no sampling (a VAE
decodes its posterior mean), so the same model and rows always give the same
scores, whatever the batch they come in.

    scores = anomaly.score(model, x, "reconstruction")        # (N,) NumPy
    t = anomaly.threshold(train_scores, contamination=0.1)    # PyOD's rule
    labels = anomaly.labels(scores, t)                        # 1 = outlier, 0 = inlier
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import erf
from sklearn.preprocessing import MinMaxScaler

from aekit.errors import ConfigError, check_number, unknown
from aekit.inference import BATCH_SIZE, apply
from aekit.models.config import ModelConfig
from aekit.models.distributions import (
    categorical_terms,
    reconstruction_nll_per_example,
    reconstruction_nll_per_feature,
)


def _reconstruction_terms(model, x: torch.Tensor) -> torch.Tensor:
    # model.code is the deterministic code: the posterior mean for a VAE.
    out = model.decoder_out(model.code(x))
    return reconstruction_nll_per_feature(model.config.reconstruction, out, x, model.log_sigma,
                                          model.config.categorical_groups).flatten(1)


def _squared_error_terms(model, x: torch.Tensor) -> torch.Tensor:
    # model(x) is the reconstruction in data space (probabilities for bce); x is not clipped here even
    # when the model clips its input (ModelConfig.input_clip): a value far out counts fully. A categorical
    # column (ModelConfig.categorical_groups) counts the cross-entropy of its observed level instead.
    groups = model.config.categorical_groups
    if not groups:
        return reconstruction_nll_per_feature("mse", model(x), x).flatten(1)
    out = model.decoder_out(model.code(x))
    return categorical_terms((model.output(out) - x) ** 2, out, x, groups)


def gaussian_smooth(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel of (N, C, H, W) images convolved with a 2-D Gaussian of standard deviation sigma pixels.

    Separable (a row pass, then a column pass), truncated at 4 sigma as
    scipy.ndimage.gaussian_filter does; outside the image counts as zero.
    """
    radius = max(1, int(4 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    rows = F.conv2d(images, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


def _smoothed_squared_error_terms(model, x: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    # The squared error of the low-passed residual: a stroke that is missing or extra (spatially
    # coherent) counts fully, while a one-pixel misalignment of an otherwise right reconstruction
    # (alternating signs) mostly cancels. Smoothing is linear, so this is the squared error
    # between the smoothed input and the smoothed reconstruction.
    smoothed = gaussian_smooth(model(x), smoothing), gaussian_smooth(x, smoothing)
    return reconstruction_nll_per_feature("mse", *smoothed).flatten(1)


def _summed(terms: Callable) -> Callable:
    """A score that is the sum of per-feature terms (the terms are what explain() returns)."""
    return lambda model, x, **kw: terms(model, x, **kw).sum(1)


_reconstruction = _summed(_reconstruction_terms)
_squared_error = _summed(_squared_error_terms)
_smoothed_squared_error = _summed(_smoothed_squared_error_terms)


def _negative_elbo(model, x: torch.Tensor) -> torch.Tensor:
    # -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)) (Kingma & Welling 2014, eq. 3), with beta = 1:
    # the bound on -log p(x), whatever beta the model was trained with. The expectation is taken
    # at z = mu (the posterior mean) instead of by sampling, so the score is deterministic and does
    # not depend on which other rows share the batch. For reconstruction='mse' the first term is the
    # summed squared error: the Gaussian NLL with sigma^2 = 1/2 less a constant, same ranking.
    q = model.posterior_of(x)
    nll = reconstruction_nll_per_example(model.config.reconstruction, model.decoder_out(q.mean), x, model.log_sigma,
                                         model.config.categorical_groups)
    return nll + q.kl()


SCORES: dict[str, Callable] = {
    # the model's own reconstruction loss (nats for bce/gaussian, summed squared error for mse)
    "reconstruction": _reconstruction,
    # summed squared error between x and its reconstruction in data space, whatever the training loss
    "squared_error": _squared_error,
    # squared error of the Gaussian-smoothed residual, for images (input_shape (C, H, W))
    "smoothed_squared_error": _smoothed_squared_error,
    # the negative evidence lower bound of a VAE, at the posterior mean
    "elbo": _negative_elbo,
}


# The scores that are sums over input features, by their per-feature terms (explanations).
FEATURE_TERMS: dict[str, Callable] = {
    "reconstruction": _reconstruction_terms,
    "squared_error": _squared_error_terms,
    "smoothed_squared_error": _smoothed_squared_error_terms,
}


def check_score(name: str, config: ModelConfig) -> None:
    """Raise ConfigError unless `name` is a score that a model with this config can give."""
    if name not in SCORES:
        raise unknown("anomaly score", name, SCORES)
    if name == "elbo" and not config.variational:
        raise ConfigError(f"anomaly score 'elbo' needs a variational model (kind='vae'), got kind={config.kind!r}")
    if name == "smoothed_squared_error" and len(config.input_shape) != 3:
        raise ConfigError(
            "anomaly score 'smoothed_squared_error' smooths images: it needs input_shape (C, H, W), "
            f"got {tuple(config.input_shape)}"
        )


def scorer(name: str, smoothing: float = 1.0) -> Callable:
    """The score function fn(model, batch) -> (B,) for inference.apply; smoothing: sigma in pixels."""
    if name not in SCORES:
        raise unknown("anomaly score", name, SCORES)
    if name == "smoothed_squared_error":
        smoothing = check_number("smoothing (pixels)", smoothing, 0, low_open=True)
        return functools.partial(_smoothed_squared_error, smoothing=smoothing)
    return SCORES[name]


def per_feature(model, x, name: str = "squared_error", smoothing: float = 1.0, dtype=torch.float32) -> np.ndarray:
    """(N, D) float64: each input feature's term of the score `name` (rows sum to `score`); for a
    score that is not a sum over features ('elbo': its KL term belongs to no feature) a ConfigError."""
    check_score(name, model.config)
    if name not in FEATURE_TERMS:
        raise ConfigError(f"anomaly score {name!r} is not a sum over features, so it cannot be split into "
                          f"per-feature contributions; explainable: {', '.join(FEATURE_TERMS)}")
    fn = FEATURE_TERMS[name]
    if name == "smoothed_squared_error":
        fn = functools.partial(fn, smoothing=check_number("smoothing (pixels)", smoothing, 0, low_open=True))
    return apply(model, x, fn, dtype=dtype, numpy=True).astype(np.float64)


def score(model, x, name: str = "reconstruction", batch_size: int = BATCH_SIZE, dtype=torch.float32,
          smoothing: float = 1.0) -> np.ndarray:
    """Per-example anomaly scores (N,) of x (N, *input_shape), as NumPy: higher = more anomalous.

    name: one of SCORES; smoothing: sigma in pixels for "smoothed_squared_error";
    dtype: torch.float64 computes in a float64 copy of the model (inference.apply).
    """
    check_score(name, model.config)
    return apply(model, x, scorer(name, smoothing), batch_size=batch_size, dtype=dtype, numpy=True)


# ----- thresholds and labels (PyOD's conventions) -----


def threshold(train_scores, contamination: float) -> float:
    """The (1 - contamination) quantile of the training scores (PyOD's rule).

    With linear interpolation between order statistics, so that about a
    `contamination` fraction of the training rows lies strictly above it.
    """
    check_number("contamination", contamination, 0.0, 0.5, low_open=True, phrase="must be a float in the range")
    return float(np.percentile(np.asarray(train_scores, dtype=np.float64), 100 * (1 - contamination)))


def conformal_threshold(calibration_scores, false_alarm_rate: float) -> float:
    """The threshold a new clean row exceeds with probability at most false_alarm_rate: the
    ceil((m + 1)(1 - alpha))-th smallest of m held-out clean scores (split conformal; Vovk et al.
    2005, Angelopoulos & Bates 2021). Fewer than (1 - alpha) / alpha held-out rows: ConfigError."""
    alpha = check_number("false_alarm_rate", false_alarm_rate, 0, 1, low_open=True, high_open=True)
    scores = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    rank = math.ceil((len(scores) + 1) * (1 - alpha))
    if rank > len(scores):
        raise ConfigError(f"a false-alarm rate of {alpha} needs at least {math.ceil((1 - alpha) / alpha)} held-out "
                          f"clean rows; there are {len(scores)}")
    return float(scores[rank - 1])


def labels(scores, threshold: float) -> np.ndarray:
    """1 = outlier (score above the threshold), 0 = inlier: PyOD's labels, not scikit-learn's -1/+1."""
    return (np.asarray(scores) > threshold).astype(np.int64)


PROBABILITIES = ("linear", "unify")


def probability(train_scores, scores, method: str = "linear") -> np.ndarray:
    """(N, 2): column 0 the probability of being an inlier, column 1 of being an outlier (PyOD's predict_proba).

    linear: the scores min-max scaled by the training scores' range, clipped to [0, 1].
    unify: erf of the scores standardised by the training scores (Kriegel et al. 2011,
    "Interpreting and unifying outlier scores"), clipped to [0, 1].
    """
    train = np.asarray(train_scores, dtype=np.float64).reshape(-1, 1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    if method == "linear":
        outlier = MinMaxScaler(clip=True).fit(train).transform(s)[:, 0]
    elif method == "unify":
        std = train.std()
        z = (s[:, 0] - train.mean()) / (std * np.sqrt(2) if std > 0 else 1.0)
        outlier = erf(z).clip(0, 1)
    else:
        raise unknown("probability method", method, PROBABILITIES)
    return np.column_stack([1 - outlier, outlier])
