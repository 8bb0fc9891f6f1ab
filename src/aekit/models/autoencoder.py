"""The model classes: Autoencoder and VariationalAutoencoder (LinearGaussian, factor analysis and PPCA:
linear_gaussian.py).

Every kind is one of these with a configuration (config.py): the same encoder
and decoder, plus a term in the loss (sparsity, contractive, KL) or a change to
the input (corruption). A conditional VAE is the VAE with n_classes > 0: encoder and
decoder also see the class as a one-hot vector. Each formula lives once, in
distributions.py, penalties.py, corruption.py or here.

Two levels of API. Tensor level, for training and for code that wants gradients:
`code(x, labels)`, `decoder_out(z, labels)` (logits or means), `output(raw)`,
`forward(x, labels)` (the deterministic reconstruction in data space) and
`loss(x, labels)`; labels are int64 class tensors, only for conditional models.
Inference level, for users: `encode`, `decode`, `reconstruct`, `posterior`,
`sample`, which take tensors, arrays or Datasets of any size and go through
inference.apply (batches, eval mode, no gradients; NumPy in gives NumPy out,
tensors give tensors).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from aekit import inference
from aekit.data.validation import check_labels, check_shape
from aekit.errors import ConfigError, check_int
from aekit.models import nets, penalties
from aekit.models.config import ModelConfig
from aekit.models.corruption import corrupt
from aekit.models.distributions import (
    DiagonalGaussian,
    free_bits_kl,
    log_likelihood_per_example,
    reconstruction_nll,
    softmax_groups,
    standard_normal_log_prob,
)


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


class Autoencoder(nn.Module):
    """Encoder f, decoder g, loss = reconstruction + optional penalties; see ModelConfig."""

    def __init__(self, config: ModelConfig, encoder: nn.Module | None = None, decoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        c = config
        k = c.n_classes  # a conditional model's encoder and decoder take the one-hot class as k more inputs
        if encoder is None:
            encoder = nets.encoder(c.architecture, c.encoder_input_shape, c.channels, c.hidden, c.code_size,
                                   c.activation, c.code_activation, c.dropout)
            if c.input_clip is not None:  # see ModelConfig.input_clip
                encoder = nn.Sequential(nn.Hardtanh(-c.input_clip, c.input_clip), *encoder)
        if decoder is None:
            decoder = nets.decoder(c.architecture, c.latent_dim + k, c.channels, c.hidden, c.input_shape, c.activation,
                                   c.dropout)
        self.encoder = encoder
        self.decoder = decoder
        if c.reconstruction in ("gaussian", "gaussian_per_feature"):
            shape = c.input_shape if c.reconstruction == "gaussian_per_feature" else ()
            self.log_sigma = nn.Parameter(torch.zeros(shape))
        else:
            self.log_sigma = None
        if not c.variational:
            # A Gaussian fitted to the codes of the training data by ae.fit (fit_code_density), so that a
            # plain autoencoder can sample too; a zero Cholesky factor means "not fitted yet".
            self.register_buffer("code_mean", torch.zeros(c.latent_dim))
            self.register_buffer("code_cholesky", torch.zeros(c.latent_dim, c.latent_dim))
        # Per code dimension: the location and log-scale of the logistic density the rate term prices it with.
        self.code_density = nn.Parameter(torch.zeros(2, c.latent_dim)) if c.rate_weight > 0 else None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ----- tensor level: checked float tensors on the model's device -----

    def check_input(self, x) -> torch.Tensor:
        """x as a float32 tensor on the model's device, with its shape checked."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.asarray(x, dtype=np.float32))
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
        check_shape(x, self.config.input_shape)
        return x.to(device=self.device, dtype=torch.float32)

    def condition(self, labels: torch.Tensor | None, n: int, drop: bool = False) -> torch.Tensor | None:
        """The one-hot class (n, n_classes) a conditional model's encoder and decoder see; label -1 and
        labels=None give all-zero rows ("unknown"). `drop` hides each label with probability label_dropout
        (training). None for an unconditional model, which refuses labels."""
        k = self.config.n_classes
        if not k:
            if labels is not None:
                check_labels(labels, n, k)  # the ConfigError: this model takes no labels
            return None
        if labels is None:
            return torch.zeros(n, k, device=self.device)
        labels = labels.to(self.device)
        if drop and self.config.label_dropout > 0:
            hidden = torch.rand(labels.shape, device=labels.device) < self.config.label_dropout
            labels = torch.where(hidden, torch.full_like(labels, -1), labels)
        return (labels.unsqueeze(1) == torch.arange(k, device=labels.device)).float()

    def _encoded(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The encoder's output for input x and one-hot class y (None: unconditional)."""
        if y is not None:
            if self.config.architecture != "mlp":  # conv (fully_conv takes no class)
                x = torch.cat([x, y.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
            else:
                x = torch.cat([x.flatten(1), y.to(x.dtype)], 1)
        return self.encoder(x)

    def _decoder_out(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.decoder(z if y is None else torch.cat([z, y.to(z.dtype)], 1))

    def code(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic code of already-checked input (posterior mean for a VAE)."""
        return self._encoded(x, self.condition(labels, len(x)))

    def decoder_out(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's raw output for codes z: logits for bce, means otherwise."""
        return self._decoder_out(z, self.condition(labels, len(z)))

    def output(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output -> data space: probabilities for bce, means otherwise; a categorical group's
        logits -> the probabilities of its levels (softmax)."""
        values = torch.sigmoid(out) if self.config.reconstruction == "bce" else out
        return softmax_groups(values, out, self.config.categorical_groups)

    def decoded(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Codes -> data space (probabilities or means)."""
        return self.output(self.decoder_out(z, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic reconstruction of a checked batch, in data space (posterior mean for a VAE)."""
        return self.decoded(self.code(x, labels), labels)

    # ----- inference level: tensors in -> tensors out, arrays (or Datasets) in -> arrays out -----
    # `labels`: one class per example (or one int for all) for a conditional model; -1 = unknown.

    def encode(self, x, labels=None):
        """x (N, *input_shape) -> codes (N, latent_dim); deterministic."""
        return inference.apply(self, x, lambda m, b, y=None: m.code(b, y), labels=labels)

    def decode(self, z, labels=None):
        """codes (N, latent_dim) -> data (N, *input_shape): probabilities or means, not logits."""
        return inference.apply(self, z, lambda m, b, y=None: m.decoded(b, y), shape=(self.config.latent_dim,),
                               name="z", labels=labels)

    def reconstruct(self, x, labels=None):
        """decode(encode(x)): deterministic (the posterior mean for a VAE)."""
        return inference.apply(self, x, lambda m, b, y=None: m(b, y), labels=labels)

    # ----- training objective -----

    def corrupted(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: corrupted in training mode when the config asks for noise."""
        if self.training and self.config.noise is not None and self.config.noise_level > 0:
            return corrupt(x, self.config.noise, self.config.noise_level)
        return x

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What training reconstructs: x, clipped to +-input_clip when the config clips the input."""
        clip = self.config.input_clip
        return x if clip is None else x.clamp(-clip, clip)

    def noisy_code(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's input in training: z + U(-w/2, w/2) when the config asks for code_noise w, which
        has the statistics of rounding z to a grid of step w (Balle et al. 2017), so the decoder learns to
        work from quantised codes; z itself otherwise."""
        if self.training and self.config.code_noise > 0:
            return z + (torch.rand_like(z) - 0.5) * self.config.code_noise
        return z

    def _closed_form_jacobian(self) -> bool:
        c = self.config
        return c.architecture == "mlp" and not c.hidden and c.code_activation == "sigmoid" and not c.variational

    def contractive_penalty(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """||J_f(x)||_F^2 for z = f(x): closed form for one sigmoid layer; otherwise exact VJPs
        (contractive_projections=0, and always in eval mode, so that validation losses and
        reported values are exact) or, in training steps, the unbiased random-projection
        estimate, which reuses z's forward pass when x requires grad."""
        c = self.config
        if self._closed_form_jacobian():
            weight = nets.linears(self.encoder)[0].weight
            return penalties.sigmoid_layer_frobenius(z.to(weight.dtype), weight)
        if c.contractive_projections == 0 or not self.training:
            return penalties.jacobian_frobenius(self.code, x)
        return penalties.jacobian_frobenius_estimate(self.code, x, c.contractive_projections, z)

    def loss(self, x, labels=None, *, epoch: float | None = None) -> LossTerms:
        """Named per-example terms and the weighted total (works in eval mode and under no_grad).

        `epoch`: the training progress in epochs (fractional; the loop passes it), for schedules.
        """
        c = self.config
        x = self.check_input(x)
        self.condition(labels, len(x))  # refuses labels: a deterministic autoencoder takes none
        x_in = self.corrupted(x)
        estimate_jacobian = (c.contractive_weight > 0 and c.contractive_projections > 0 and self.training
                             and not self._closed_form_jacobian())
        if estimate_jacobian and torch.is_grad_enabled():
            x_in = x_in.detach().requires_grad_(True)  # the penalty's VJP reuses this forward pass
        code = self.encoder(x_in)
        # .float(): under bf16/fp16 autocast the layers run in low precision, the losses in float32.
        z = code.float()
        z_noisy = self.noisy_code(z)
        nll = reconstruction_nll(c.reconstruction, self.decoder(z_noisy).float(), self.target(x), self.log_sigma,
                                 c.categorical_groups)
        total, terms = nll, {"reconstruction": nll}
        if c.rate_weight > 0:
            r = penalties.code_rate_bits(z_noisy, self.code_density, c.code_noise)
            total = total + c.rate_weight * r
            terms["rate"] = r
        if c.sparsity is not None:
            s = penalties.l1_activity(z) if c.sparsity == "l1" else penalties.kl_sparsity(z, c.sparsity_target)
            total = total + c.sparsity_weight * s
            terms["sparsity"] = s
        if c.contractive_weight > 0:
            j = self.contractive_penalty(x_in, code)
            total = total + c.contractive_weight * j
            terms["contractive"] = j
        return LossTerms(total, **terms)

    # ----- sampling -----

    def fit_code_density(self, codes: torch.Tensor) -> None:
        """Fit the Gaussian that `sample` draws codes from: mean and covariance of `codes` (N, latent_dim).

        A plain autoencoder has no prior; the lectures' remedy ("sample the region we guess is
        the latent space") in its simplest form. generation.sample offers a Gaussian mixture.
        """
        z = codes.detach().to(torch.float64)
        centred = z - z.mean(0)
        cov = centred.T @ centred / max(1, len(z) - 1)
        jitter = 1e-6 * float(cov.diagonal().mean().clamp(min=1e-12))
        cholesky = torch.linalg.cholesky(cov + jitter * torch.eye(len(cov), dtype=cov.dtype, device=cov.device))
        self.code_mean.copy_(z.mean(0).float())
        self.code_cholesky.copy_(cholesky.float())

    def sample(self, n: int, seed: int | None = None, generator: torch.Generator | None = None, *,
               labels=None) -> np.ndarray:
        """n new examples (n, *input_shape) as a NumPy array, decoded in batches from codes drawn
        (seeded by `seed` or `generator`) from the Gaussian fitted to the training codes by ae.fit.
        `labels` is for conditional models (the signature is the same on every model): refused here."""
        if labels is not None:
            check_labels(labels, n, self.config.n_classes)  # the ConfigError: this model takes no labels
        if not bool(self.code_cholesky.any()):
            raise ConfigError(f"this {self.config.kind!r} model has no code density yet: it is fitted by ae.fit "
                              "(or call fit_code_density(codes)); or use ae.generation.sample(model, n, train=x)")
        eps = self._standard_normal(n, seed, generator)
        return self._decode_samples(self.code_mean.cpu() + eps @ self.code_cholesky.cpu().T)

    def _standard_normal(self, n: int, seed, generator) -> torch.Tensor:
        check_int("n", n, 0, low_open=True)
        self.config.check_examples(n, f"n={n} samples")
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(check_int("seed", seed, 0, 2**63 - 1))
        return torch.randn(n, self.config.latent_dim, generator=generator)  # no seed: torch's global generator

    def _decode_samples(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        return inference.apply(self, z.to(self.device), lambda m, b, y=None: m.decoded(b, y),
                               shape=(self.config.latent_dim,), name="z", numpy=True, labels=labels)

    # ----- initialisation from the training data -----

    def initialise_from_data(self, x: torch.Tensor) -> None:
        """Data-dependent start, from (a sample of) the training rows: PCA weights for init='pca',
        otherwise the decoder's output bias at the data mean."""
        if self.config.init == "pca":
            self._pca_init(x)
        else:
            self._output_bias_init(x)

    def _output_bias_init(self, x: torch.Tensor) -> None:
        """Start the decoder's output at the data mean: its last bias = logit(mean) for bce, the mean otherwise.

        Without it, sigmoid (or tanh) codes on MNIST-like data can saturate in the first
        steps while the decoder learns the mean image, and never recover (seen with a
        single sigmoid code layer; the usual remedy of initialising the final bias from
        the data, cf. Karpathy, "A recipe for training neural networks", 2019).
        """
        last = next((m for m in reversed(list(self.decoder.modules()))
                     if isinstance(m, (nn.Linear, nn.ConvTranspose2d)) and m.bias is not None), None)
        if last is None:
            return
        mean = x.mean(dim=0)
        if isinstance(last, nn.ConvTranspose2d):
            mean = mean.flatten(1).mean(1)  # one bias per output channel
        else:
            mean = mean.flatten()
        if mean.shape != last.bias.shape:
            return
        if self.config.reconstruction == "bce":
            mean = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
        for start, width in self.config.categorical_groups:  # softmax logits: the levels' log frequencies
            mean[start : start + width] = x.flatten(1)[:, start : start + width].mean(0).clamp(min=1e-3).log()
        with torch.no_grad():
            last.bias.copy_(mean.to(last.bias.device))

    def _pca_init(self, x: torch.Tensor) -> None:
        """Closed-form start for the linear autoencoder: encoder = top components, decoder = their transpose."""
        from sklearn.decomposition import PCA

        flat = x.flatten(1).cpu().numpy()
        k = self.config.latent_dim
        if k > min(flat.shape):
            return  # more components than the data has: random start instead
        pca = PCA(n_components=k, svd_solver="full").fit(flat)
        w = torch.from_numpy(pca.components_).float()
        mean = torch.from_numpy(pca.mean_).float()
        enc, dec = nets.linears(self.encoder)[0], nets.linears(self.decoder)[0]
        with torch.no_grad():
            enc.weight.copy_(w.to(enc.weight.device))
            enc.bias.copy_(-(w @ mean).to(enc.bias.device))
            dec.weight.copy_(w.T.to(dec.weight.device))
            dec.bias.copy_(mean.to(dec.bias.device))


def kl_weight(beta: float, warmup_epochs: int, epoch: float | None) -> float:
    """The KL term's weight after `epoch` epochs of training: beta * min(1, epoch / warmup_epochs), rising
    linearly from 0 (KL annealing, Bowman et al. 2016; warm-up, Sonderby et al. 2016); beta when there is
    no warm-up or no epoch (evaluation)."""
    if not warmup_epochs or epoch is None:
        return beta
    return beta * min(1.0, epoch / warmup_epochs)


class VariationalAutoencoder(Autoencoder):
    """Gaussian posterior q(z|x) = N(mu, diag sigma^2), standard normal prior; conditional when n_classes > 0."""

    def _posterior(self, x: torch.Tensor, y: torch.Tensor | None) -> DiagonalGaussian:
        return DiagonalGaussian.from_encoder(self._encoded(x, y))

    def posterior_of(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z|x) of an already-checked batch (tensor level)."""
        return self._posterior(x, self.condition(labels, len(x)))

    def posterior(self, x, labels=None):
        """(mu, logvar) of q(z|x), each (N, latent_dim)."""
        return inference.apply(self, x, _mean_and_logvar, labels=labels)

    def code(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.posterior_of(x, labels).mean

    def loss(self, x, labels=None, *, epoch: float | None = None) -> LossTerms:
        """-ELBO with beta: reconstruction NLL + beta * KL(q(z|x) || N(0, I)), per example, in nats.

        In training mode the KL term's weight follows the warm-up (kl_weight, `epoch` from the loop) and
        free bits clamp it (free_bits_kl); in eval mode it is the plain beta-weighted -ELBO, so validation
        totals compare across epochs. objective='iwae': the negative importance-weighted bound.
        """
        c = self.config
        x = self.check_input(x)
        y = self.condition(labels, len(x), drop=self.training)
        q = self._posterior(self.corrupted(x), y)  # float32 under autocast too
        if c.objective == "iwae":
            bound, log_px = self._importance_weighted(x, q, y, c.iwae_samples)
            return LossTerms(-bound.mean(), reconstruction=-log_px.mean(), kl=q.kl().mean())
        z = q.sample()
        nll = reconstruction_nll(c.reconstruction, self._decoder_out(z, y).float(), self.target(x), self.log_sigma,
                                 c.categorical_groups)
        kl_dims = q.kl_per_dimension()
        kl = kl_dims.sum(1).mean()
        if not self.training:
            return LossTerms(nll + c.beta * kl, reconstruction=nll, kl=kl)
        penalty = free_bits_kl(kl_dims, c.free_bits) if c.free_bits > 0 else kl
        return LossTerms(nll + kl_weight(c.beta, c.kl_warmup_epochs, epoch) * penalty, reconstruction=nll, kl=kl)

    def _importance_weighted(self, x: torch.Tensor, q: DiagonalGaussian, y: torch.Tensor | None, samples: int,
                             chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The importance-weighted bound of each example (Burda et al. 2016, eq. 8) and the mean log p(x|z_k):

            log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x), K = samples.

        K = 1 is the ELBO; as K grows it tends to log p(x) (metrics.log_likelihood). Draws go through the
        decoder `chunk` at a time with a running log-sum-exp, so memory stays bounded for any K.
        """
        n, chunk = x.shape[0], chunk or samples
        running = torch.full((n,), -math.inf, device=x.device, dtype=q.mean.dtype)
        log_px_sum = torch.zeros((n,), device=x.device, dtype=q.mean.dtype)
        for start in range(0, samples, chunk):
            s = min(chunk, samples - start)
            z = q.sample(s)  # (s, n, k)
            out = self._decoder_out(z.reshape(s * n, -1), None if y is None else y.repeat(s, 1)).float()
            log_px = log_likelihood_per_example(self.config.reconstruction, out, x.repeat(s, *([1] * (x.dim() - 1))),
                                                self.log_sigma, self.config.categorical_groups).reshape(s, n)
            log_w = log_px + standard_normal_log_prob(z) - q.log_prob(z)
            running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
            log_px_sum = log_px_sum + log_px.sum(0)
        return running - math.log(samples), log_px_sum / samples

    def importance_weighted(self, x: torch.Tensor, samples: int, labels: torch.Tensor | None = None,
                            chunk: int | None = None) -> torch.Tensor:
        """The importance-weighted bound with K = samples of each example of a checked batch (tensor level)."""
        y = self.condition(labels, len(x))
        return self._importance_weighted(x, self._posterior(x, y), y, samples, chunk)[0]

    def sample(self, n: int, seed: int | None = None, generator: torch.Generator | None = None, *,
               labels=None) -> np.ndarray:
        """n new examples (n, *input_shape) as a NumPy array, decoded in batches from draws of the
        prior N(0, I), seeded by `seed` or `generator`; a conditional model generates the class in
        `labels` (one int, or one per example; None or -1: unknown)."""
        z = self._standard_normal(n, seed, generator)  # checks n first
        y = None if labels is None else check_labels(labels, n, self.config.n_classes)
        return self._decode_samples(z, y)


def _mean_and_logvar(model: VariationalAutoencoder, x: torch.Tensor, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
    q = model.posterior_of(x, labels)
    return q.mean, q.logvar
