"""Factor analysis and probabilistic PCA as a linear-Gaussian VAE whose posterior is exact (LinearGaussian),
trained by EM from PCA's closed-form start. The other model classes: autoencoder.py."""

from __future__ import annotations

import math

import torch
from torch import nn

from aekit.models import nets
from aekit.models.autoencoder import LossTerms, VariationalAutoencoder
from aekit.models.config import ModelConfig
from aekit.models.distributions import (
    CorrelatedGaussian,
    reconstruction_nll_per_example,
)


class LinearGaussian(VariationalAutoencoder):
    """Factor analysis and probabilistic PCA: x = W z + mu + e, z ~ N(0, I), e ~ N(0, Psi).

    Psi = diag(psi), one variance per feature (factor analysis; reconstruction='gaussian_per_feature'),
    or sigma^2 I (PPCA, Tipping & Bishop 1999; reconstruction='gaussian'). The decoder is one linear
    layer (weight W, bias mu) and log_sigma holds log sqrt(psi); there are no encoder weights: the
    posterior is exact, from the decoder's (Bishop 2006, eqs. 12.42, 12.66-12.67):

        q(z|x) = p(z|x) = N(M^-1 W^T Psi^-1 (x - mu), M^-1),  M = I + W^T Psi^-1 W,

    so KL(q || p(z|x)) = 0, the ELBO equals log p(x), and `loss` is the exact -log p(x), the Gaussian
    marginal N(x | mu, W W^T + Psi), in closed form. init='pca' starts at PPCA's maximum-likelihood
    solution (Tipping & Bishop 1999, eqs. 7-8); every training epoch is then one EM iteration, its
    E-step summed over the batches (em_statistics, em_update), which never lowers the likelihood.
    (Adam on this likelihood does: it moves every parameter by about lr per step, and a pixel with
    almost no noise cannot afford that in its row of W.)
    """

    # psi >= 1e-12 (scikit-learn's FactorAnalysis floor): a constant feature has an unbounded likelihood.
    MIN_LOG_SIGMA = 0.5 * math.log(1e-12)

    def __init__(self, config: ModelConfig):
        super().__init__(config, encoder=nn.Flatten(),
                         decoder=nets.mlp_decoder(config.latent_dim, (), config.input_shape, "linear"))

    def noise_log_sigma(self) -> torch.Tensor:
        """log sqrt(psi), floored."""
        return self.log_sigma.clamp(min=self.MIN_LOG_SIGMA)

    def _posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> CorrelatedGaussian:
        linear = self.decoder[0]
        w = linear.weight  # (D, k)
        inv_psi = torch.exp(-2 * self.noise_log_sigma()).flatten().expand(w.shape[0])
        a = w.T * inv_psi  # W^T Psi^-1, (k, D)
        precision = torch.eye(w.shape[1], dtype=w.dtype, device=w.device) + a @ w  # M
        tril = torch.linalg.cholesky(precision)
        mean = torch.cholesky_solve(a @ (x.flatten(1) - linear.bias).T, tril).T  # M^-1 W^T Psi^-1 (x - mu)
        return CorrelatedGaussian(mean, tril)

    def _expected_nll(self, x: torch.Tensor, q: CorrelatedGaussian) -> torch.Tensor:
        """E_q[-log p(x|z)] per example, in closed form: the NLL at the posterior mean plus
        1/2 tr(Psi^-1 W Sigma W^T) = 1/2 (k - tr Sigma), as W^T Psi^-1 W = M - I and Sigma = M^-1."""
        at_mean = reconstruction_nll_per_example(self.config.reconstruction, self.decoder(q.mean), x,
                                                 self.noise_log_sigma())
        return at_mean + 0.5 * (q.mean.shape[1] - q.logvar[0].exp().sum())

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x) of each example of a checked batch, in nats: E_q[log p(x|z)] - KL(q || p(z))
        with q the exact posterior, which is log N(x | mu, W W^T + Psi)."""
        q = self._posterior(x)
        return -(self._expected_nll(x, q) + q.kl())

    def loss(self, x, labels=None, *, epoch: float | None = None) -> LossTerms:
        """The exact -log p(x) per example = E_q[-log p(x|z)] (reconstruction) + KL(q(z|x) || N(0, I)) (kl)."""
        x = self.check_input(x)
        self.condition(labels, len(x))  # refuses labels
        q = self._posterior(x)
        nll, kl = self._expected_nll(x, q).mean(), q.kl().mean()
        return LossTerms(nll + kl, reconstruction=nll, kl=kl)

    # ----- training by EM: one iteration per epoch, its E-step summed over batches (training/loop.em_epoch) -----

    def _em_posterior(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """W, mu, psi (D,) and G = (I + W^T Psi^-1 W)^-1, in float64."""
        w, mu = self.decoder[0].weight.double(), self.decoder[0].bias.double()
        psi = torch.exp(2 * self.noise_log_sigma().double()).flatten().expand(w.shape[0])
        return w, mu, psi, torch.linalg.inv(torch.eye(w.shape[1], dtype=w.dtype, device=w.device) + (w.T / psi) @ w)

    def em_statistics(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """A batch's E-step statistics (float64): with r = x - mu and m = E[z|x] = G W^T Psi^-1 r, the sums of
        1 (n), r (r), r m^T (rm), m m^T (mm) and r^2 per feature (rr)."""
        w, mu, psi, g = self._em_posterior()
        r = x.flatten(1).double() - mu
        m = r @ (g @ (w.T / psi)).T
        return {"n": torch.tensor([len(x)], dtype=r.dtype, device=r.device), "r": r.sum(0), "rm": r.T @ m,
                "mm": m.T @ m, "rr": r.pow(2).sum(0)}

    def em_update(self, stats: dict[str, torch.Tensor]) -> None:
        """The M-step (Rubin & Thayer 1982; Ghahramani & Hinton 1996, eqs. 5-6): with sum E[z z^T] = n G +
        sum m m^T, W <- (sum r m^T)(sum E[z z^T])^-1 and psi_i <- (sum r_i^2 - sum_j W_ij (sum r m^T)_ij) / n
        (PPCA: their mean, Tipping & Bishop 1999, appendix B); mu <- the mean of x."""
        _, mu, _, g = self._em_posterior()
        n = stats["n"][0]
        w = stats["rm"] @ torch.linalg.inv(n * g + stats["mm"])
        psi = ((stats["rr"] - (w * stats["rm"]).sum(1)) / n).clamp(min=math.exp(2 * self.MIN_LOG_SIGMA))
        if self.config.reconstruction == "gaussian":
            psi = psi.mean()
        linear = self.decoder[0]
        with torch.no_grad():
            linear.weight.copy_(w.to(linear.weight))
            linear.bias.copy_((mu + stats["r"] / n).to(linear.bias))
            self.log_sigma.copy_((0.5 * psi.log()).reshape(self.log_sigma.shape).to(self.log_sigma))

    # ----- the closed-form start -----

    def _pca_init(self, x: torch.Tensor) -> None:
        """The closed-form start. PPCA: its maximum-likelihood solution (Tipping & Bishop 1999, eqs. 7-8): mu the
        mean, W = U_k (L_k - sigma^2 I)^1/2 from the top k eigenpairs of the covariance S (divided by N),
        sigma^2 the mean of the other D - k eigenvalues. Factor analysis starts there with psi_i = S_ii -
        (W W^T)_ii, the variance W leaves unexplained (its EM epochs then take it to its maximum)."""
        flat = x.flatten(1).double()
        n, d = flat.shape
        k = self.config.latent_dim
        if k >= min(n, d):
            self._output_bias_init(x)  # no closed form with fewer examples or features than k + 1
            return
        floor = math.exp(2 * self.MIN_LOG_SIGMA)
        mean = flat.mean(0)
        centred = flat - mean
        _, s, vt = torch.linalg.svd(centred, full_matrices=False)
        eig = s.pow(2) / n
        variance = centred.pow(2).mean(0)
        sigma2 = ((variance.sum() - eig[:k].sum()) / (d - k)).clamp(min=floor)
        w = vt[:k].T * (eig[:k] - sigma2).clamp(min=0).sqrt()
        w[variance == 0] = 0
        if self.config.reconstruction == "gaussian":
            psi = sigma2.expand(1)
        else:
            psi = (variance - w.pow(2).sum(1)).clamp(min=floor)
        linear = self.decoder[0]
        with torch.no_grad():
            linear.weight.copy_(w.to(linear.weight))
            linear.bias.copy_(mean.to(linear.bias))
            self.log_sigma.copy_((0.5 * psi.log()).reshape(self.log_sigma.shape).to(self.log_sigma))

