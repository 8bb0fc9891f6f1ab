"""`evaluate`: every metric that applies to a model and its data, in one dict whose keys say their unit.

This layer sits above the metric functions (metrics.py), generation and the judge
(quality.py); the metric modules know nothing of each other.
"""

from __future__ import annotations

import math

import torch

from aekit.data.validation import as_array, check_data
from aekit.errors import check_int
from aekit.evaluation import metrics
from aekit.evaluation.generation import sample
from aekit.evaluation.quality import generation_quality
from aekit.models.autoencoder import VariationalAutoencoder
from aekit.models.linear_gaussian import LinearGaussian


def evaluate(model, data, *, labels=None, train=None, log_likelihood_samples: int = 1000,
             log_likelihood_examples: int | None = 1000, jacobian_examples: int = 500, k: int = 10,
             activity_threshold: float = 0.1, compression_sizes: bool = True, generation: bool = False,
             judge=None, generated: int = 1000, seed: int = 0) -> dict:
    """Measure a trained model on data (array, tensor or Dataset). Key names carry the units.

    log_likelihood_examples limits the (costly) importance-sampled log p(x) to the
    first N examples (None: all). `train` (a Dataset or array with labels) is used
    to fit the latent probes and, for plain autoencoders, the latent density for
    generation; `judge` (quality.Judge) scores generated samples when generation=True.
    A conditional model's likelihood and reconstruction metrics condition on the labels
    (`labels` or the Dataset's); its codes (latent probes, compression) do not see them.
    """
    check_int("log_likelihood_samples", log_likelihood_samples, 0)
    if log_likelihood_examples is not None:
        check_int("log_likelihood_examples", log_likelihood_examples, 1)
    check_int("jacobian_examples", jacobian_examples, 0)
    check_int("k", k, 1)
    check_int("generated", generated, 1)
    check_int("seed", seed, 0, 2**32 - 1)
    x = as_array(data, "data")
    check_data(x, model.config.input_shape, "data")
    n = int(x.shape[0])
    if log_likelihood_samples and isinstance(model, VariationalAutoencoder) and not isinstance(model, LinearGaussian):
        # before any metric runs: a count off by orders of magnitude is refused at once, not after the others
        metrics.check_log_likelihood_time(model, min(n, log_likelihood_examples or n), log_likelihood_samples)
    y = metrics.conditioning(model, data, labels)
    out: dict = {"kind": model.config.kind, "examples": n,
                 "reconstruction": metrics.reconstruction(model, x, psnr=metrics.is_image_data(model, data), labels=y)}
    if model.config.noise is not None:
        out["denoising"] = metrics.denoising(model, x, seed=seed)
    if isinstance(model, VariationalAutoencoder):
        out["vae"] = _variational(model, x, log_likelihood_samples, log_likelihood_examples, seed, y)
    else:
        out["code_activity"] = {**metrics.activity(metrics.codes(model, x), activity_threshold), "examples": n}
        if jacobian_examples:
            out["jacobian_frobenius_sq"] = metrics.jacobian_norm(model, x, max_examples=jacobian_examples)
            out["jacobian_examples"] = min(jacobian_examples, n)
    latent = metrics.latent_metrics(model, data, labels=labels, train=train, k=k, seed=seed)
    if latent:
        out["latent"] = latent
    if compression_sizes:
        out["compression"] = metrics.compression(model, data, seed=seed)
    if generation:
        density_data = None if isinstance(model, VariationalAutoencoder) else (train if train is not None else x)
        samples = sample(model, generated, train=density_data, seed=seed)
        if judge is not None:
            out["generation"] = generation_quality(judge, samples, x)
    return out


def _variational(model, x, samples: int, examples: int | None, seed: int, labels=None) -> dict:
    """ELBO, KL per dimension, active dimensions and the log-likelihood: importance-sampled, or exact
    (closed form, every example) for factor analysis and PPCA."""
    kl = metrics.kl_per_dimension(model, x, labels=labels)
    v = {"examples": int(x.shape[0]), "elbo_nats": float(metrics.elbo(model, x, seed=seed, labels=labels).mean()),
         "kl_per_dimension_nats": kl.tolist(),
         "active_dimensions": int((kl > 0.01).sum()), "active_dimension_threshold_nats": 0.01}
    if isinstance(model, LinearGaussian):
        ll = metrics.exact_log_likelihood(model, x)
        v.update({"log_likelihood_method": "exact (closed-form Gaussian marginal)"})
    elif samples:
        rows = torch.arange(min(x.shape[0], examples or x.shape[0]))
        ll = metrics.log_likelihood(model, x, samples=samples, seed=seed, rows=rows, labels=labels)
        v.update({"log_likelihood_method": "importance sampling", "log_likelihood_samples": samples})
    else:
        return v
    v.update({"log_likelihood_nats": float(ll.mean()),
              "log_likelihood_standard_error_nats": float(ll.std(ddof=1) / math.sqrt(len(ll))) if len(ll) > 1 else 0.0,
              "log_likelihood_examples": int(len(ll)),
              "bits_per_dimension": float(-ll.mean() / (model.config.input_size * math.log(2)))})
    return v
