"""The probability formulas, each written once: reconstruction likelihoods p(x|z) and the
diagonal-Gaussian posterior q(z|x) with its reparameterised sample, KL to the prior and log-density.

Every function returns one value per example (summed over features or latent dimensions);
callers average over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """t in float32 when autocast made it bf16/fp16; float32 and float64 stay as they are."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def reconstruction_nll_per_feature(kind: str, out: torch.Tensor, x: torch.Tensor, log_sigma=None,
                                   groups=()) -> torch.Tensor:
    """Reconstruction loss of each feature of each example (x's shape).

    bce: -log Bernoulli(x | sigmoid(out)) in nats, computed from logits for stability.
    mse: squared error. gaussian: -log N(x | out, sigma^2) in nats; gaussian_per_feature:
    -log N(x | out, diag sigma^2), log_sigma holding one value per feature (it broadcasts).
    groups: [start, width] of one-hot categorical inputs whose `out` are logits (categorical_terms).
    """
    if kind == "bce":
        terms = F.binary_cross_entropy_with_logits(out, x, reduction="none")
    elif kind == "mse":
        terms = (out - x) ** 2
    else:  # gaussian: one learned log standard deviation, or one per feature
        terms = 0.5 * ((out - x) * torch.exp(-log_sigma)) ** 2 + log_sigma + 0.5 * LOG_2PI
    return categorical_terms(terms, out, x, groups)


def categorical_terms(terms: torch.Tensor, logits: torch.Tensor, x: torch.Tensor, groups) -> torch.Tensor:
    """terms (N, D) with each group's inputs replaced by the cross-entropy of the observed level under
    softmax(logits of the group): -x_l log p_l per level l, which sums to -log p(observed) over the group
    (all zeros, a level the group lacks, gives 0)."""
    if not groups:
        return terms
    pieces, end = [], 0
    for start, width in groups:
        pieces.append(terms[:, end:start])
        pieces.append(-x[:, start : start + width] * F.log_softmax(logits[:, start : start + width], dim=1))
        end = start + width
    pieces.append(terms[:, end:])
    return torch.cat(pieces, dim=1)


def softmax_groups(values: torch.Tensor, logits: torch.Tensor, groups) -> torch.Tensor:
    """values (N, D) with each group's inputs replaced by softmax(logits of the group): probabilities."""
    if not groups:
        return values
    pieces, end = [], 0
    for start, width in groups:
        pieces.append(values[:, end:start])
        pieces.append(torch.softmax(logits[:, start : start + width], dim=1))
        end = start + width
    pieces.append(values[:, end:])
    return torch.cat(pieces, dim=1)


def reconstruction_nll_per_example(kind: str, out: torch.Tensor, x: torch.Tensor, log_sigma=None,
                                   groups=()) -> torch.Tensor:
    """Reconstruction loss of each example (N,), summed over its features (reconstruction_nll_per_feature)."""
    return reconstruction_nll_per_feature(kind, out, x, log_sigma, groups).flatten(1).sum(1)


def reconstruction_nll(kind: str, out: torch.Tensor, x: torch.Tensor, log_sigma=None, groups=()) -> torch.Tensor:
    """The per-example reconstruction loss averaged over the batch (the training term)."""
    return reconstruction_nll_per_example(kind, out, x, log_sigma, groups).mean()


def log_likelihood_per_example(kind: str, out: torch.Tensor, x: torch.Tensor, log_sigma=None,
                               groups=()) -> torch.Tensor:
    """log p(x | z) per example, in nats. For 'mse', the Gaussian with sigma^2 = 1/2, of which the
    summed squared error is the negative log up to the constant added here (for the inputs that are
    not categorical groups: those are already a log-probability)."""
    nll = reconstruction_nll_per_example(kind, out, x, log_sigma, groups)
    if kind == "mse":
        nll = nll + 0.5 * (x[0].numel() - sum(w for _, w in groups)) * math.log(math.pi)
    return -nll


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z | 0, I), summed over the last dimension (the prior's density of codes)."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(exp(logvar))): what a VAE's encoder outputs, split in two halves."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean, self.logvar = mean, logvar

    @classmethod
    def from_encoder(cls, h: torch.Tensor) -> DiagonalGaussian:
        """The encoder's (N, 2k) output: first k columns the mean, last k the log-variance."""
        mean, logvar = full_precision(h).chunk(2, dim=1)
        return cls(mean, logvar)

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, samples: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised draws z = mean + std * eps, eps ~ N(0, I) (Kingma & Welling 2014, eq. 10).

        (N, k), or (samples, N, k) when `samples` is given.
        """
        shape = self.mean.shape if samples is None else (samples, *self.mean.shape)
        eps = torch.randn(shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.std * eps

    def kl_per_dimension(self) -> torch.Tensor:
        """KL(q(z_j|x) || N(0, 1)) of every example and dimension, (N, k), in nats.

        Kingma & Welling 2014, Appendix B: -KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
        """
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1 - self.logvar)

    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per example, in nats, summed over latent dimensions."""
        return self.kl_per_dimension().sum(1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over the latent dimensions; z is (N, k) or (S, N, k)."""
        return -0.5 * (((z - self.mean) / self.std).pow(2) + LOG_2PI + self.logvar).sum(-1)


def free_bits_kl(kl_per_dimension: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The free-bits KL term of a batch: sum_j max(free_bits, mean_n KL_nj), in nats per example.

    Kingma et al. 2016 (inverse autoregressive flow), appendix C.8: a latent dimension whose
    batch-mean KL is below `free_bits` nats contributes the constant free_bits (no gradient), so
    the objective stops pushing it towards the prior.
    """
    return kl_per_dimension.mean(0).clamp(min=free_bits).sum()


class CorrelatedGaussian(DiagonalGaussian):
    """q(z|x) = N(mean, (L L^T)^-1): a full covariance shared by every example, given by the lower Cholesky
    factor L of its inverse (the precision). The exact posterior of factor analysis and probabilistic PCA,
    whose precision I + W^T Psi^-1 W does not depend on x (Bishop 2006, eq. 12.42 and section 12.2.4).

    `logvar` holds the log of the marginal variances, so `std` and `kl_per_dimension` (the KL of each
    marginal q(z_j|x)) are the diagonal case's; `sample`, `log_prob` and `kl` use the whole covariance.
    """

    def __init__(self, mean: torch.Tensor, precision_tril: torch.Tensor):
        self.precision_tril = precision_tril
        # Sigma = L^-T L^-1, so its diagonal holds the squared column norms of L^-1.
        self.inverse_tril = torch.linalg.solve_triangular(
            precision_tril, torch.eye(len(precision_tril), dtype=mean.dtype, device=mean.device), upper=False)
        super().__init__(mean, self.inverse_tril.pow(2).sum(0).log().expand_as(mean))

    def sample(self, samples: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean + L^-T eps, eps ~ N(0, I): covariance L^-T L^-1 = Sigma. (N, k) or (samples, N, k)."""
        shape = self.mean.shape if samples is None else (samples, *self.mean.shape)
        eps = torch.randn(shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + eps @ self.inverse_tril  # row vectors: (L^-T eps)^T = eps^T L^-1

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z | mean, Sigma) = -1/2 (||L^T (z - mean)||^2 + k log 2 pi) + sum_j log L_jj."""
        white = (z - self.mean) @ self.precision_tril  # row vectors: (L^T d)^T = d^T L
        return -0.5 * (white.pow(2) + LOG_2PI).sum(-1) + self.precision_tril.diagonal().log().sum()

    def kl(self) -> torch.Tensor:
        """KL(N(mean, Sigma) || N(0, I)) = 1/2 (tr Sigma + ||mean||^2 - k - log det Sigma), per example.

        The sum of the marginals' KLs plus the correlation term 1/2 (sum_j log Sigma_jj - log det Sigma).
        """
        log_det = -2 * self.precision_tril.diagonal().log().sum()
        return super().kl() + 0.5 * (self.logvar[0].sum() - log_det)
