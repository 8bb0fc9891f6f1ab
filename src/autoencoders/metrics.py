"""Measuring a trained autoencoder: reconstruction, likelihood, regularisers,
latent space, compression. `evaluate` gathers them into one dict whose keys say
their unit (`_nats`, `_db`, `_bytes`, ...).

Every function takes data as an array, tensor or Dataset of shape
(N, *input_shape) and works in batches without gradients (except the Jacobian).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import penalties
from .corruption import corrupt
from .models import VariationalAutoencoder, gaussian_kl, reconstruction_nll_per_example
from .validation import as_array, check_data, take

_LOG_2PI = math.log(2 * math.pi)


def _tensor(data, model) -> torch.Tensor:
    x = as_array(data, "data")
    check_data(x, model.config.input_shape, "data")
    return x


def _labels(data, labels):
    if labels is not None:
        return np.asarray(labels)
    y = getattr(data, "y", None)
    return None if y is None or not np.issubdtype(np.asarray(y).dtype, np.integer) else np.asarray(y)


def _batches(x, batch_size):
    for start in range(0, x.shape[0], batch_size):
        yield take(x, torch.arange(start, min(start + batch_size, x.shape[0])))


@torch.no_grad()
def codes(model, data, batch_size: int = 1024) -> np.ndarray:
    """The deterministic codes (posterior means for a VAE) of every example, (N, latent_dim)."""
    model.eval()
    x = _tensor(data, model)
    return torch.cat([model.code(b.to(model.device)).cpu() for b in _batches(x, batch_size)]).numpy()


def psnr_db(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio, 10 log10(peak^2 / MSE), for data in [0, peak]."""
    return float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse)


@torch.no_grad()
def reconstruction(model, data, batch_size: int = 1024) -> dict:
    """Per-example BCE (for data in [0, 1]), MSE per feature and PSNR of the deterministic reconstruction."""
    model.eval()
    x = _tensor(data, model)
    sq, bce, n, unit = 0.0, 0.0, 0, True
    for b in _batches(x, batch_size):
        b = b.to(model.device)
        logits = model.decoder(model.code(b))
        x_hat = model.output(logits)
        sq += float((x_hat - b).pow(2).sum())
        unit = unit and bool((b >= 0).all() and (b <= 1).all())
        if model.config.reconstruction == "bce" and unit:
            bce += float(reconstruction_nll_per_example("bce", logits, b).sum())
        n += b.shape[0]
    d = model.config.input_size
    out = {"mse_per_feature": sq / (n * d), "sse_per_example": sq / n}
    if unit:
        out["psnr_db"] = psnr_db(out["mse_per_feature"])
        if model.config.reconstruction == "bce":
            out["bce_nats_per_example"] = bce / n
    return out


@torch.no_grad()
def denoising(model, data, noise: str | None = None, noise_level: float | None = None, seed: int = 0,
              batch_size: int = 1024) -> dict:
    """Reconstruct corrupted inputs, compare with the clean ones: MSE, PSNR and the gain over the noisy input.

    The corruption is seeded, so the figures are repeatable.
    """
    model.eval()
    noise = noise or model.config.noise or "gaussian"
    level = noise_level if noise_level is not None else model.config.noise_level
    x = _tensor(data, model)
    sq_noisy, sq_rec, n = 0.0, 0.0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for b in _batches(x, batch_size):
            b = b.to(model.device)
            noisy = corrupt(b, noise, level)
            sq_noisy += float((noisy - b).pow(2).sum())
            sq_rec += float((model.output(model.decoder(model.code(noisy))) - b).pow(2).sum())
            n += b.numel()
    noisy_mse, rec_mse = sq_noisy / n, sq_rec / n
    return {
        "noise": noise, "noise_level": level,
        "noisy_mse_per_feature": noisy_mse, "denoised_mse_per_feature": rec_mse,
        "noisy_psnr_db": psnr_db(noisy_mse), "denoised_psnr_db": psnr_db(rec_mse),
        "psnr_gain_db": psnr_db(rec_mse) - psnr_db(noisy_mse),
    }


def _log_px_given_z(model, out, x) -> torch.Tensor:
    """log p(x | z) per example, in nats. For 'mse', the Gaussian with sigma^2 = 1/2 that
    summed squared error is the negative log of (up to this constant)."""
    kind = model.config.reconstruction
    nll = reconstruction_nll_per_example(kind, out, x, model.log_sigma)
    if kind == "mse":
        nll = nll + 0.5 * x[0].numel() * math.log(math.pi)
    return -nll


@torch.no_grad()
def elbo(model: VariationalAutoencoder, data, batch_size: int = 1024, seed: int = 0) -> np.ndarray:
    """The ELBO of each example, E_q[log p(x|z)] - KL(q(z|x) || p(z)), one reparameterised sample, in nats."""
    model.eval()
    x = _tensor(data, model)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for b in _batches(x, batch_size):
            b = b.to(model.device)
            mu, logvar = model.encoder(b).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            out.append((_log_px_given_z(model, model.decoder(z), b) - gaussian_kl(mu, logvar)).cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def log_likelihood(model: VariationalAutoencoder, data, samples: int = 1000, batch_size: int = 100,
                   max_elements: int = 1 << 20, seed: int = 0) -> np.ndarray:
    """Importance-sampled log p(x) of each example with K = `samples` draws from q(z|x) (Burda et al. 2016):

        log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K.

    Batched over examples and samples (at most `max_elements` decoder outputs at
    once), with a running log-sum-exp, so memory stays bounded for any K.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"log_likelihood_samples must be an int >= 1, got {samples!r}")
    model.eval()
    x = _tensor(data, model)
    d = model.config.input_size
    results = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for b in _batches(x, batch_size):
            b = b.to(model.device)
            n = b.shape[0]
            mu, logvar = model.encoder(b).chunk(2, dim=1)
            std = torch.exp(0.5 * logvar)
            chunk = max(1, min(samples, max_elements // max(1, n * d)))
            running = torch.full((n,), -math.inf, device=b.device)
            for start in range(0, samples, chunk):
                s = min(chunk, samples - start)
                eps = torch.randn(s, *mu.shape, device=b.device)
                z = mu + std * eps  # (s, n, k)
                out = model.decoder(z.reshape(s * n, -1))
                log_px = _log_px_given_z(model, out, b.repeat(s, *([1] * (b.dim() - 1)))).reshape(s, n)
                log_pz = -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
                log_qz = -0.5 * (eps.pow(2) + _LOG_2PI + logvar).sum(-1)
                running = torch.logaddexp(running, torch.logsumexp(log_px + log_pz - log_qz, dim=0))
            results.append((running - math.log(samples)).cpu())
    return torch.cat(results).numpy()


@torch.no_grad()
def kl_per_dimension(model: VariationalAutoencoder, data, batch_size: int = 1024) -> np.ndarray:
    """Mean KL(q(z_j|x) || N(0, 1)) of each latent dimension, in nats."""
    model.eval()
    x = _tensor(data, model)
    total, n = 0, 0
    for b in _batches(x, batch_size):
        mu, logvar = model.encoder(b.to(model.device)).chunk(2, dim=1)
        total = total + 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(0)
        n += b.shape[0]
    return (total / n).cpu().numpy()


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
    """Mean ||J_f(x)||_F^2 of the encoder (the code, posterior mean for a VAE) over examples."""
    model.eval()
    x = _tensor(data, model)
    x = take(x, torch.arange(min(max_examples, x.shape[0])))
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        b = x[start : start + batch_size].to(model.device)
        with torch.no_grad():  # the penalty switches autograd on for itself; no graph is kept
            total += float(penalties.jacobian_frobenius(model.code, b)) * b.shape[0]
    return total / x.shape[0]


# ----- latent space -----


def _probe_split(n, labels, seed):
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    stratify = labels if np.bincount(labels).min() >= 2 else None
    return train_test_split(idx, test_size=0.5, random_state=seed, stratify=stratify)


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
    otherwise on a stratified half of `data`."""
    from sklearn.decomposition import PCA

    y = _labels(data, labels)
    if y is None:
        return {}
    z = codes(model, data)
    raw = np.asarray(as_array(data, "data"), dtype=np.float32).reshape(len(z), -1)
    if train is not None and _labels(train, train_labels) is not None:
        y_tr, y_te = _labels(train, train_labels), y
        z_tr, z_te = codes(model, train), z
        raw_tr, raw_te = np.asarray(as_array(train, "train"), dtype=np.float32).reshape(len(y_tr), -1), raw
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
    lo = z.min(0) if lo is None else lo
    hi = z.max(0) if hi is None else hi
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.round((np.clip(z, lo, hi) - lo) / span * 255)
    return (q / 255 * span + lo).astype(np.float32)


def compression(model, data, raw_bytes_per_feature: float | None = None, seed: int = 0) -> dict:
    """Bytes per example of the codes at float32, float16 and 8-bit, the ratio to the raw input, and the
    reconstruction MSE at each size, next to PCA with the same number of components and precision."""
    from sklearn.decomposition import PCA

    x = np.asarray(as_array(data, "data"), dtype=np.float32)
    flat = x.reshape(len(x), -1)
    if raw_bytes_per_feature is None:
        scaling = getattr(data, "scaling", None) or {}
        raw_bytes_per_feature = 1 if scaling.get("method") == "pixels" else 4
    raw_bytes = raw_bytes_per_feature * flat.shape[1]
    z = codes(model, x)
    k = z.shape[1]
    pca = PCA(n_components=min(k, *flat.shape), random_state=seed).fit(flat)
    zp = pca.transform(flat)
    out = {"raw_bytes_per_example": raw_bytes, "latent_dim": k}

    def decode(codes_):
        with torch.no_grad():
            return np.asarray(model.decode(codes_.astype(np.float32))).reshape(len(flat), -1)

    for name, bytes_per, fn in (("float32", 4, lambda c: c), ("float16", 2, lambda c: c.astype(np.float16).astype(np.float32)),
                                ("uint8", 1, quantize_8bit)):
        ours = float(((decode(fn(z)) - flat) ** 2).mean())
        theirs = float(((pca.inverse_transform(fn(zp)) - flat) ** 2).mean())
        out[name] = {"bytes_per_example": bytes_per * k, "ratio": raw_bytes / (bytes_per * k),
                     "mse_per_feature": ours, "pca_mse_per_feature": theirs}
    return out


# ----- everything -----


def evaluate(model, data, *, labels=None, train=None, log_likelihood_samples: int = 1000,
             log_likelihood_examples: int | None = 1000, jacobian_examples: int = 500, k: int = 10,
             activity_threshold: float = 0.1, compression_sizes: bool = True, generation: bool = False,
             judge=None, generated: int = 1000, seed: int = 0) -> dict:
    """Measure a trained model on data (array, tensor or Dataset). Key names carry the units.

    log_likelihood_examples limits the (costly) importance-sampled log p(x) to the
    first N examples (None: all). `train` (a Dataset or array with labels) is used
    to fit the latent probes and, for plain autoencoders, the latent density for
    generation; `judge` (quality.Judge) scores generated samples when generation=True.
    """
    model.eval()
    x = _tensor(data, model)
    d = model.config.input_size
    out: dict = {"kind": model.config.kind, "examples": int(x.shape[0]), "reconstruction": reconstruction(model, x)}
    if model.config.noise is not None:
        out["denoising"] = denoising(model, x, seed=seed)
    if isinstance(model, VariationalAutoencoder):
        e = elbo(model, x, seed=seed)
        kl = kl_per_dimension(model, x)
        v = {"elbo_nats": float(e.mean()), "kl_per_dimension_nats": kl.tolist(),
             "active_dimensions": int((kl > 0.01).sum()), "active_dimension_threshold_nats": 0.01}
        if log_likelihood_samples:
            sub = take(x, torch.arange(min(x.shape[0], log_likelihood_examples or x.shape[0])))
            ll = log_likelihood(model, sub, samples=log_likelihood_samples, seed=seed)
            v.update({"log_likelihood_nats": float(ll.mean()),
                      "log_likelihood_standard_error_nats": float(ll.std(ddof=1) / math.sqrt(len(ll))) if len(ll) > 1 else 0.0,
                      "log_likelihood_samples": log_likelihood_samples, "log_likelihood_examples": int(len(ll)),
                      "bits_per_dimension": float(-ll.mean() / (d * math.log(2)))})
        out["vae"] = v
    else:
        z = codes(model, x)
        out["code_activity"] = activity(z, activity_threshold)
        if jacobian_examples:
            out["jacobian_frobenius_sq"] = jacobian_norm(model, x, max_examples=jacobian_examples)
    latent = latent_metrics(model, data, labels=labels, train=train, k=k, seed=seed)
    if latent:
        out["latent"] = latent
    if compression_sizes:
        out["compression"] = compression(model, data, seed=seed)
    if generation:
        from .generation import sample
        from .quality import generation_quality

        samples = sample(model, generated, train=None if isinstance(model, VariationalAutoencoder) else
                         (train if train is not None else x), seed=seed)
        if judge is not None:
            out["generation"] = generation_quality(judge, samples, x)
    return out
