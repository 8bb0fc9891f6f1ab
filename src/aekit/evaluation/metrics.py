"""Measuring a trained autoencoder: one function per metric. Reconstruction, likelihood,
regularisers, latent space, compression; `evaluate.py` gathers them into one report.

Every function takes data as an array, tensor or Dataset of shape (N, *input_shape)
and runs through inference.apply (batches, eval mode, no gradients), so memory stays
bounded for memory-mapped data. Key names carry their unit (`_nats`, `_db`, `_bytes`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aekit.budget import check_time, seconds_for
from aekit.data.validation import as_array, row_batches
from aekit.errors import DataError, check_int
from aekit.inference import apply, codes
from aekit.models import penalties
from aekit.models.autoencoder import VariationalAutoencoder
from aekit.models.corruption import corrupt
from aekit.models.distributions import log_likelihood_per_example, reconstruction_nll_per_example
from aekit.models.linear_gaussian import LinearGaussian

# Latent probes and PCA baselines read raw rows into memory: at most this many (a seeded
# random subset beyond it), so that a memory-mapped dataset never loads whole.
MAX_PROBE_EXAMPLES = 20000


def labels_of(data, labels=None):
    """Integer class labels: `labels`, else a Dataset's y when it holds integers, else None."""
    if labels is not None:
        return np.asarray(labels)
    y = getattr(data, "y", None)
    return None if y is None or not np.issubdtype(np.asarray(y).dtype, np.integer) else np.asarray(y)


def psnr_db(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio, 10 log10(peak^2 / MSE), for data in [0, peak]."""
    return float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse)


def conditioning(model, data, labels=None):
    """The labels a conditional model's likelihood metrics condition on (`labels`, else a Dataset's
    integer labels), or None (unconditional models; a conditional one then uses 'unknown')."""
    return labels_of(data, labels) if model.config.n_classes else None


def _reconstruction_terms(model, b, y=None):
    logits = model.decoder_out(model.code(b, y), y)
    sq = (model.output(logits) - b).pow(2).flatten(1).sum(1)
    unit = ((b >= 0) & (b <= 1)).flatten(1).all(1)
    bce = reconstruction_nll_per_example("bce", logits, b) if model.config.reconstruction == "bce" else sq * 0
    return sq, bce, unit


def is_image_data(model, data) -> bool:
    """Images (C, H, W), or data scaled as pixels: where a peak signal-to-noise ratio means something."""
    scaling = getattr(data, "scaling", None) or {}
    return len(model.config.input_shape) == 3 or scaling.get("method") == "pixels"


def reconstruction(model, data, batch_size: int = 1024, psnr: bool | None = None, labels=None) -> dict:
    """Per-example BCE (for data in [0, 1]), MSE per feature and, for images in [0, 1] (psnr=None:
    is_image_data; a sensor table scaled to [0, 1] has no peak signal), the PSNR of the deterministic
    reconstruction. `labels`: a conditional model's class of every example."""
    sq, bce, unit = apply(model, data, _reconstruction_terms, batch_size=batch_size, numpy=True, name="data",
                          labels=labels)
    n, d = len(sq), model.config.input_size
    out = {"examples": n, "mse_per_feature": float(sq.sum()) / (n * d), "sse_per_example": float(sq.sum()) / n}
    if psnr is None:
        psnr = is_image_data(model, data)
    if unit.all():
        if psnr:
            out["psnr_db"] = psnr_db(out["mse_per_feature"])
        if model.config.reconstruction == "bce":
            out["bce_nats_per_example"] = float(bce.sum()) / n
    return out


def denoising(model, data, noise: str | None = None, noise_level: float | None = None, seed: int = 0,
              batch_size: int = 1024) -> dict:
    """Reconstruct corrupted inputs, compare with the clean ones: MSE, PSNR and the gain over the noisy input.

    The corruption is seeded, so the figures are repeatable.
    """
    noise = noise or model.config.noise or "gaussian"
    level = noise_level if noise_level is not None else model.config.noise_level

    def errors(m, b):
        noisy = corrupt(b, noise, level)
        return (noisy - b).pow(2).flatten(1).sum(1), (m(noisy) - b).pow(2).flatten(1).sum(1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sq_noisy, sq_rec = apply(model, data, errors, batch_size=batch_size, numpy=True, name="data")
    n = len(sq_noisy) * model.config.input_size
    noisy_mse, rec_mse = float(sq_noisy.sum()) / n, float(sq_rec.sum()) / n
    return {
        "examples": len(sq_noisy), "noise": noise, "noise_level": level,
        "noisy_mse_per_feature": noisy_mse, "denoised_mse_per_feature": rec_mse,
        "noisy_psnr_db": psnr_db(noisy_mse), "denoised_psnr_db": psnr_db(rec_mse),
        "psnr_gain_db": psnr_db(rec_mse) - psnr_db(noisy_mse),
    }


def _log_px_given_z(model, out, x) -> torch.Tensor:
    return log_likelihood_per_example(model.config.reconstruction, out, x, model.log_sigma)


def elbo(model: VariationalAutoencoder, data, batch_size: int = 1024, seed: int = 0, labels=None) -> np.ndarray:
    """The ELBO of each example, E_q[log p(x|z)] - KL(q(z|x) || p(z)), one reparameterised sample, in nats."""

    def one_sample(m, b, y=None):
        q = m.posterior_of(b, y)
        return _log_px_given_z(m, m.decoder_out(q.sample(), y), b) - q.kl()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return apply(model, data, one_sample, batch_size=batch_size, numpy=True, name="data", labels=labels)


def log_likelihood(model: VariationalAutoencoder, data, samples: int = 1000, batch_size: int = 100,
                   max_elements: int = 1 << 20, seed: int = 0, rows=None, labels=None) -> np.ndarray:
    """Importance-sampled log p(x) of each example with K = `samples` draws from q(z|x) (Burda et al. 2016):

        log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,

    the importance-weighted bound of the IWAE objective (model.importance_weighted) with a large K.
    Batched over examples and samples (at most `max_elements` decoder outputs at
    once), with a running log-sum-exp, so memory stays bounded for any K. `rows`
    limits it to those examples; `labels` conditions a conditional model (log p(x|y)).
    """
    check_int("log_likelihood_samples", samples, 1)
    d = model.config.input_size
    check_log_likelihood_time(model, len(rows) if rows is not None else len(data), samples)

    def importance_sampled(m, b, y=None):
        chunk = max(1, min(samples, max_elements // max(1, b.shape[0] * d)))
        return m.importance_weighted(b, samples, y, chunk)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return apply(model, data, importance_sampled, batch_size=batch_size, rows=rows, numpy=True, name="data",
                     labels=labels)


def check_log_likelihood_time(model, n: int, samples: int) -> None:
    """ConfigError when the importance-sampled log-likelihood of n examples with K = samples draws would take
    longer than the time limit (aekit.budget.check_time): K decoder passes per example, about half of the
    model's operations and values (ModelConfig.size counts encoder and decoder), at the device's peak rates."""
    size = model.config.size()
    check_time(f"the log-likelihood of {n} examples with log_likelihood_samples={samples}",
               seconds_for(n * samples * size.flops / 2, n * samples * size.activations / 2, model.device.type))


def exact_log_likelihood(model: LinearGaussian, data, batch_size: int = 1024, rows=None) -> np.ndarray:
    """log p(x) of each example in closed form, in nats: factor analysis and PPCA (LinearGaussian)."""
    return apply(model, data, lambda m, b: m.log_marginal(b), batch_size=batch_size, rows=rows, numpy=True,
                 name="data")


def kl_per_dimension(model: VariationalAutoencoder, data, batch_size: int = 1024, labels=None) -> np.ndarray:
    """Mean KL(q(z_j|x) || N(0, 1)) of each latent dimension, in nats."""
    kl = apply(model, data, lambda m, b, y=None: m.posterior_of(b, y).kl_per_dimension(), batch_size=batch_size,
               numpy=True, name="data", labels=labels)
    return kl.mean(0)


def activity(z: np.ndarray, threshold: float = 0.1) -> dict:
    """Sparsity statistics of codes: the fraction of (example, unit) activations above threshold in
    magnitude, the mean absolute activation, and the fraction of units never active."""
    z = np.abs(np.asarray(z))
    active = z > threshold
    return {
        "active_fraction": float(active.mean()),
        "mean_activation": float(z.mean()),
        "dead_unit_fraction": float((~active.any(0)).mean()),
        "activity_threshold": threshold,
    }




def jacobian_norm(model, data, batch_size: int = 100, max_examples: int = 1000) -> float:
    """Mean ||J_f(x)||_F^2 of the encoder (the code, posterior mean for a VAE) over the first max_examples."""
    n = min(max_examples, as_array(data, "data").shape[0])
    # The penalty switches autograd on for itself inside the no-grad pass; no graph is kept.
    norms = apply(model, data, lambda m, b: penalties.jacobian_frobenius_per_example(m.code, b),
                  batch_size=batch_size, rows=torch.arange(n), numpy=True, name="data")
    return float(norms.mean())


# ----- latent space -----


def _probe_split(n, labels, seed):
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    stratify = labels if np.bincount(labels).min() >= 2 else None
    return train_test_split(idx, test_size=0.5, random_state=seed, stratify=stratify)


def probe_rows(n: int, seed: int = 0, limit: int = MAX_PROBE_EXAMPLES) -> np.ndarray:
    """All row indices, or a seeded sorted random subset of `limit` of them."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def raw_rows(data, rows: np.ndarray) -> np.ndarray:
    """Rows of data as a flat float32 NumPy array (n, features), read in batches from memmaps."""
    batches = row_batches(as_array(data, "data"), 4096, torch.from_numpy(np.asarray(rows)))
    return torch.cat([b.flatten(1) for b in batches]).numpy()


def probe_accuracy(features_train, y_train, features_test, y_test, neighbours: int = 5) -> dict:
    """Linear-probe (standardised logistic regression) and k-NN accuracy of features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    linear.fit(features_train, y_train)
    knn = KNeighborsClassifier(n_neighbors=neighbours).fit(features_train, y_train)
    return {"linear_probe_accuracy": float(linear.score(features_test, y_test)),
            "knn_accuracy": float(knn.score(features_test, y_test))}


def retrieval_precision(z: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean precision@k: the fraction of each example's k nearest codes (itself excluded) sharing its label."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(z) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(z)
    _, idx = nn.kneighbors(z)
    neighbours = []
    for i, row in enumerate(idx):  # drop the query itself (it may not be first when codes tie)
        row = row[row != i][:k]
        neighbours.append(row)
    return float((labels[np.stack(neighbours)] == labels[:, None]).mean())


def retrieve(model, queries, database, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest examples of `database` to each query in the code space: (indices, distances), each (Q, k)."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=min(k, len(database))).fit(codes(model, database))
    distances, indices = index.kneighbors(codes(model, queries))
    return indices, distances


def latent_metrics(model, data, labels=None, train=None, train_labels=None, k: int = 10, seed: int = 0) -> dict:
    """Linear-probe and k-NN accuracy of the codes next to raw pixels and PCA of the same dimension,
    and retrieval precision@k in the code space. Probes fit on `train` when given (with labels),
    otherwise on a stratified half of `data`; each set is limited to MAX_PROBE_EXAMPLES rows."""
    from sklearn.decomposition import PCA

    y = labels_of(data, labels)
    if y is None or len(np.unique(y)) < 2:  # a probe needs two classes (a folder with one sub-folder has one)
        return {}
    n = as_array(data, "data").shape[0]
    if len(y) != n:
        raise DataError(f"labels has {len(y)} entries for {n} examples")
    rows = probe_rows(len(y), seed)
    y, raw = y[rows], raw_rows(data, rows)
    z = codes(model, raw.reshape(len(rows), *model.config.input_shape))
    y_train = labels_of(train, train_labels) if train is not None else None
    if y_train is not None:
        train_rows = probe_rows(len(y_train), seed)
        y_tr, y_te, raw_tr, raw_te = y_train[train_rows], y, raw_rows(train, train_rows), raw
        z_tr, z_te = codes(model, raw_tr.reshape(len(train_rows), *model.config.input_shape)), z
    else:
        tr, te = _probe_split(len(z), y, seed)
        y_tr, y_te, z_tr, z_te, raw_tr, raw_te = y[tr], y[te], z[tr], z[te], raw[tr], raw[te]
    k_dim = min(z.shape[1], raw_tr.shape[1], raw_tr.shape[0])
    pca = PCA(n_components=k_dim, random_state=seed).fit(raw_tr)
    out = {"codes": probe_accuracy(z_tr, y_tr, z_te, y_te),
           "raw": probe_accuracy(raw_tr, y_tr, raw_te, y_te),
           f"pca_{k_dim}": probe_accuracy(pca.transform(raw_tr), y_tr, pca.transform(raw_te), y_te)}
    out["retrieval_precision_at_k"] = retrieval_precision(z, y, k)
    out["retrieval_k"] = k
    out["examples"], out["probe_train_examples"], out["probe_test_examples"] = len(z), len(y_tr), len(y_te)
    return out


def latent_2d(model, data, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """A 2-D view of the codes: the codes themselves when 2-D, else PCA ("pca") or t-SNE ("tsne")."""
    z = codes(model, data)
    if z.shape[1] == 1:
        return np.concatenate([z, np.zeros_like(z)], 1), "code (1-D)"
    if z.shape[1] == 2 and method in ("auto", "code"):
        return z, "code"
    method = "pca" if method in ("auto", "code") else method
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(z), "PCA of the codes"
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, random_state=seed, init="pca").fit_transform(z), "t-SNE of the codes"
    raise ValueError(f"method={method!r} is not one of 'auto', 'code', 'pca', 'tsne'")


# ----- compression -----


def quantize_8bit(z: np.ndarray, lo=None, hi=None) -> np.ndarray:
    """Codes rounded to 256 levels per dimension between lo and hi (from z when not given), back as floats."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32))
    lo = z.min(0).values if lo is None else torch.as_tensor(lo, dtype=torch.float32)
    hi = z.max(0).values if hi is None else torch.as_tensor(hi, dtype=torch.float32)
    return _quantized(z, lo, hi).numpy()


def _quantized(z: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, levels: int = 255) -> torch.Tensor:
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    q = torch.round((torch.minimum(torch.maximum(z, lo), hi) - lo) / span * levels)
    return q / levels * span + lo


def raw_dtype_of(data) -> np.dtype:
    """The dtype the data came in: a Dataset's file (uint8 pixels, say), else the array's or tensor's own."""
    recorded = (getattr(data, "info", None) or {}).get("raw_dtype")
    if recorded:
        return np.dtype(recorded)
    x = getattr(data, "x", data)
    if isinstance(x, torch.Tensor):
        return torch.empty((), dtype=x.dtype).numpy().dtype
    return np.dtype(getattr(x, "dtype", np.float32))


def compression(model, data, raw_bytes_per_feature: float | None = None, seed: int = 0) -> dict:
    """Bytes per example of the codes at float32, float16 and 8-bit, the ratio to the raw input (in the
    dtype the data came in: raw_dtype_of), and the
    reconstruction MSE at each size, next to PCA with the same number of components and precision
    (fitted on at most MAX_PROBE_EXAMPLES rows). Reads the data twice, batch by batch."""
    from sklearn.decomposition import PCA

    n = as_array(data, "data").shape[0]
    d = model.config.input_size
    raw_dtype = raw_dtype_of(data)
    if raw_bytes_per_feature is None:
        raw_bytes_per_feature = raw_dtype.itemsize
    k = model.config.latent_dim
    fit_rows = probe_rows(n, seed)
    pca = PCA(n_components=min(k, len(fit_rows), d), random_state=seed).fit(raw_rows(data, fit_rows))
    components = torch.from_numpy(pca.components_).float()
    mean = torch.from_numpy(pca.mean_).float()

    def pca_codes(b):
        return (b.flatten(1) - mean.to(b.device)) @ components.to(b.device).T

    z, zp = apply(model, data, lambda m, b: (m.code(b), pca_codes(b)), numpy=False, name="data")
    ranges = {"ae": (z.min(0).values, z.max(0).values), "pca": (zp.min(0).values, zp.max(0).values)}
    precisions = {"float32": (4, lambda c, _: c), "float16": (2, lambda c, _: c.half().float()),
                  "uint8": (1, lambda c, which: _quantized(c, *ranges[which]))}

    def errors(m, b):
        flat, out = b.flatten(1), []
        for fn in (spec[1] for spec in precisions.values()):
            rec = m.decoded(fn(m.code(b), "ae")).flatten(1)
            rec_pca = fn(pca_codes(b), "pca") @ components.to(b.device) + mean.to(b.device)
            out += [(rec - flat).pow(2).sum(1), (rec_pca - flat).pow(2).sum(1)]
        return tuple(out)

    sq = apply(model, data, errors, numpy=True, name="data")
    raw_bytes = raw_bytes_per_feature * d
    out = {"examples": n, "pca_fit_examples": len(fit_rows), "raw_bytes_per_example": raw_bytes,
           "raw_dtype": str(raw_dtype), "latent_dim": k}
    for i, (name, (bytes_per, _)) in enumerate(precisions.items()):
        out[name] = {"bytes_per_example": bytes_per * k, "ratio": raw_bytes / (bytes_per * k),
                     "mse_per_feature": float(sq[2 * i].sum()) / (n * d),
                     "pca_mse_per_feature": float(sq[2 * i + 1].sum()) / (n * d)}
    return out
