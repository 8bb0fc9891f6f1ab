"""The two model classes: Autoencoder and VariationalAutoencoder.

Every kind is one of these with a configuration (config.py): the same encoder
and decoder, plus a term in the loss (sparsity, contractive, KL) or a change to
the input (corruption). Each formula lives once, in penalties.py,
corruption.py or here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import nets, penalties
from .config import ModelConfig
from .corruption import corrupt
from .errors import DataError

_LOG_2PI = math.log(2 * math.pi)


class LossTerms(Mapping):
    """Named loss terms of one batch: `total` keeps its graph, the others are detached.

    Indexing gives Python floats (``terms["kl"]``); ``terms.tensors`` gives the
    detached tensors without a host sync (what the training loop accumulates).
    Every term is per example: summed over features, averaged over the batch.
    """

    def __init__(self, total: torch.Tensor, **terms: torch.Tensor):
        self.total = total
        self.tensors = {"total": total.detach(), **{k: v.detach() for k, v in terms.items()}}

    def __getitem__(self, name: str) -> float:
        return float(self.tensors[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __repr__(self) -> str:
        return "LossTerms(" + ", ".join(f"{k}={float(v):.4g}" for k, v in self.tensors.items()) + ")"


def reconstruction_nll_per_example(kind: str, out: torch.Tensor, x: torch.Tensor, log_sigma=None) -> torch.Tensor:
    """Reconstruction loss of each example (N,), summed over its features.

    bce: -log Bernoulli(x | sigmoid(out)) in nats, computed from logits for stability.
    mse: sum of squared errors. gaussian: -log N(x | out, sigma^2 I) in nats.
    """
    if kind == "bce":
        per_feature = F.binary_cross_entropy_with_logits(out, x, reduction="none")
    elif kind == "mse":
        per_feature = (out - x) ** 2
    else:  # gaussian, with one learned log standard deviation
        per_feature = 0.5 * ((out - x) * torch.exp(-log_sigma)) ** 2 + log_sigma + 0.5 * _LOG_2PI
    return per_feature.flatten(1).sum(1)


def reconstruction_nll(kind: str, out: torch.Tensor, x: torch.Tensor, log_sigma=None) -> torch.Tensor:
    """The per-example reconstruction loss averaged over the batch (the training term)."""
    return reconstruction_nll_per_example(kind, out, x, log_sigma).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example, in nats, summed over latent dims.

    Kingma & Welling 2014, Appendix B: -KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


class Autoencoder(nn.Module):
    """Encoder f, decoder g, loss = reconstruction + optional penalties; see ModelConfig."""

    def __init__(self, config: ModelConfig, encoder: nn.Module | None = None, decoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        c = config
        code_size = 2 * c.latent_dim if c.variational else c.latent_dim
        if encoder is None:
            if c.architecture == "conv":
                encoder = nets.conv_encoder(c.input_shape, c.channels, c.hidden, code_size, c.activation, c.code_activation)
            else:
                encoder = nets.mlp_encoder(c.input_shape, c.hidden, code_size, c.activation, c.code_activation)
        if decoder is None:
            if c.architecture == "conv":
                decoder = nets.conv_decoder(c.latent_dim, c.channels, c.hidden, c.input_shape, c.activation)
            else:
                decoder = nets.mlp_decoder(c.latent_dim, c.hidden, c.input_shape, c.activation)
        self.encoder = encoder
        self.decoder = decoder
        if c.reconstruction == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(()))
        else:
            self.log_sigma = None

    # ----- inference API: tensors in -> tensors out, arrays in -> arrays out -----

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_input(self, x) -> torch.Tensor:
        """x as a float32 tensor on the model's device, with its shape checked."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.asarray(x, dtype=np.float32))
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
        shape = tuple(self.config.input_shape)
        if tuple(x.shape[1:]) != shape:
            hint = ""
            if x.dim() >= 2 and math.prod(x.shape[1:]) == math.prod(shape):
                hint = f"; reshape it with x.reshape(-1, *{shape})"
            raise DataError(f"x has shape {tuple(x.shape)}, expected (N, *input_shape) = (N, {', '.join(map(str, shape))}){hint}")
        return x.to(device=self.device, dtype=torch.float32)

    def _inference(self, fn, x):
        as_numpy = isinstance(x, np.ndarray)
        if as_numpy:
            with torch.no_grad():
                return fn(x).cpu().numpy()
        return fn(x)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code of already-checked input (posterior mean for a VAE)."""
        return self.encoder(x)

    def output(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output -> data space: probabilities for bce, means otherwise."""
        return torch.sigmoid(out) if self.config.reconstruction == "bce" else out

    def encode(self, x):
        """x (N, *input_shape) -> codes (N, latent_dim); deterministic."""
        return self._inference(lambda x: self.code(self.check_input(x)), x)

    def decode(self, z):
        """codes (N, latent_dim) -> data (N, *input_shape): probabilities or means, not logits."""

        def run(z):
            if isinstance(z, np.ndarray):
                z = torch.from_numpy(np.asarray(z, dtype=np.float32))
            if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
                raise DataError(f"z has shape {tuple(z.shape)}, expected (N, {self.config.latent_dim})")
            return self.output(self.decoder(z.to(device=self.device, dtype=torch.float32)))

        return self._inference(run, z)

    def reconstruct(self, x):
        """decode(encode(x)): deterministic (the posterior mean for a VAE)."""
        return self._inference(lambda x: self.output(self.decoder(self.code(self.check_input(x)))), x)

    # ----- training objective -----

    def corrupted(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: corrupted in training mode when the config asks for noise."""
        if self.training and self.config.noise is not None and self.config.noise_level > 0:
            return corrupt(x, self.config.noise, self.config.noise_level)
        return x

    def _closed_form_jacobian(self) -> bool:
        c = self.config
        return c.architecture == "mlp" and not c.hidden and c.code_activation == "sigmoid" and not c.variational

    def contractive_penalty(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """||J_f(x)||_F^2 for z = f(x): closed form for one sigmoid layer; otherwise exact VJPs
        (contractive_projections=0) or the unbiased random-projection estimate, which reuses
        z's forward pass when x requires grad."""
        c = self.config
        if self._closed_form_jacobian():
            weight = nets.linears(self.encoder)[0].weight
            return penalties.sigmoid_layer_frobenius(z.to(weight.dtype), weight)
        if c.contractive_projections == 0:
            return penalties.jacobian_frobenius(self.code, x)
        return penalties.jacobian_frobenius_estimate(self.code, x, c.contractive_projections, z)

    def loss(self, x) -> LossTerms:
        """Named per-example terms and the weighted total (works in eval mode and under no_grad)."""
        c = self.config
        x = self.check_input(x)
        x_in = self.corrupted(x)
        estimate_jacobian = c.contractive_weight > 0 and c.contractive_projections > 0 and not self._closed_form_jacobian()
        if estimate_jacobian and torch.is_grad_enabled():
            x_in = x_in.detach().requires_grad_(True)  # the penalty's VJP reuses this forward pass
        code = self.encoder(x_in)
        # .float(): under bf16/fp16 autocast the layers run in low precision, the losses in float32.
        z = code.float()
        nll = reconstruction_nll(c.reconstruction, self.decoder(z).float(), x, self.log_sigma)
        total, terms = nll, {"reconstruction": nll}
        if c.sparsity is not None:
            s = penalties.l1_activity(z) if c.sparsity == "l1" else penalties.kl_sparsity(z, c.sparsity_target)
            total = total + c.sparsity_weight * s
            terms["sparsity"] = s
        if c.contractive_weight > 0:
            j = self.contractive_penalty(x_in, code)
            total = total + c.contractive_weight * j
            terms["contractive"] = j
        return LossTerms(total, **terms)


class VariationalAutoencoder(Autoencoder):
    """Gaussian posterior q(z|x) = N(mu, diag sigma^2), standard normal prior."""

    def posterior(self, x):
        """(mu, logvar) of q(z|x), each (N, latent_dim)."""

        def run(x):
            return self.encoder(self.check_input(x)).chunk(2, dim=1)

        if isinstance(x, np.ndarray):
            with torch.no_grad():
                return tuple(t.cpu().numpy() for t in run(x))
        return run(x)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).chunk(2, dim=1)[0]

    def loss(self, x) -> LossTerms:
        """-ELBO with beta: reconstruction NLL + beta * KL(q(z|x) || N(0, I)), per example, in nats."""
        c = self.config
        x = self.check_input(x)
        mu, logvar = self.encoder(self.corrupted(x)).float().chunk(2, dim=1)  # float32 under autocast too
        # Reparameterisation (Kingma & Welling 2014, eq. 10): z = mu + sigma * eps, eps ~ N(0, I).
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        nll = reconstruction_nll(c.reconstruction, self.decoder(z).float(), x, self.log_sigma)
        kl = gaussian_kl(mu, logvar).mean()
        return LossTerms(nll + c.beta * kl, reconstruction=nll, kl=kl)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new examples decoded from the prior N(0, I)."""
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"n must be an int > 0, got {n!r}")
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        with torch.no_grad():
            return self.output(self.decoder(z))
