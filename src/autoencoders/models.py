"""The two model classes: Autoencoder and VariationalAutoencoder.

Every kind is one of these with a configuration (config.py): the same encoder
and decoder, plus a term in the loss (sparsity, contractive, KL) or a change to
the input (corruption). Each formula lives once, in distributions.py,
penalties.py, corruption.py or here.

Two levels of API. Tensor level, for training and for code that wants gradients:
`code(x)`, `decoder(z)` (logits or means), `output(raw)`, `forward(x)` (the
deterministic reconstruction in data space) and `loss(x)`. Inference level, for
users: `encode`, `decode`, `reconstruct`, `posterior`, `sample`, which take
tensors, arrays or Datasets of any size and go through inference.apply (batches,
eval mode, no gradients; NumPy in gives NumPy out, tensors give tensors).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from . import inference, nets, penalties
from .config import ModelConfig
from .corruption import corrupt
from .distributions import DiagonalGaussian, reconstruction_nll
from .errors import check_int
from .validation import check_shape


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
        code_size = 2 * c.latent_dim if c.variational else c.latent_dim
        if encoder is None:
            encoder = nets.encoder(c.architecture, c.input_shape, c.channels, c.hidden, code_size, c.activation,
                                   c.code_activation)
        if decoder is None:
            decoder = nets.decoder(c.architecture, c.latent_dim, c.channels, c.hidden, c.input_shape, c.activation)
        self.encoder = encoder
        self.decoder = decoder
        if c.reconstruction == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(()))
        else:
            self.log_sigma = None
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

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code of already-checked input (posterior mean for a VAE)."""
        return self.encoder(x)

    def output(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output -> data space: probabilities for bce, means otherwise."""
        return torch.sigmoid(out) if self.config.reconstruction == "bce" else out

    def decoded(self, z: torch.Tensor) -> torch.Tensor:
        """Codes -> data space (probabilities or means)."""
        return self.output(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic reconstruction of a checked batch, in data space (posterior mean for a VAE)."""
        return self.decoded(self.code(x))

    # ----- inference level: tensors in -> tensors out, arrays (or Datasets) in -> arrays out -----

    def encode(self, x):
        """x (N, *input_shape) -> codes (N, latent_dim); deterministic."""
        return inference.apply(self, x, lambda m, b: m.code(b))

    def decode(self, z):
        """codes (N, latent_dim) -> data (N, *input_shape): probabilities or means, not logits."""
        return inference.apply(self, z, lambda m, b: m.decoded(b), shape=(self.config.latent_dim,), name="z")

    def reconstruct(self, x):
        """decode(encode(x)): deterministic (the posterior mean for a VAE)."""
        return inference.apply(self, x, lambda m, b: m(b))

    # ----- training objective -----

    def corrupted(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: corrupted in training mode when the config asks for noise."""
        if self.training and self.config.noise is not None and self.config.noise_level > 0:
            return corrupt(x, self.config.noise, self.config.noise_level)
        return x

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
        z_noisy = self.noisy_code(z)
        nll = reconstruction_nll(c.reconstruction, self.decoder(z_noisy).float(), x, self.log_sigma)
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


class VariationalAutoencoder(Autoencoder):
    """Gaussian posterior q(z|x) = N(mu, diag sigma^2), standard normal prior."""

    def posterior_of(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) of an already-checked batch (tensor level)."""
        return DiagonalGaussian.from_encoder(self.encoder(x))

    def posterior(self, x):
        """(mu, logvar) of q(z|x), each (N, latent_dim)."""
        return inference.apply(self, x, _mean_and_logvar)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior_of(x).mean

    def loss(self, x) -> LossTerms:
        """-ELBO with beta: reconstruction NLL + beta * KL(q(z|x) || N(0, I)), per example, in nats."""
        c = self.config
        x = self.check_input(x)
        q = self.posterior_of(self.corrupted(x))  # float32 under autocast too
        z = q.sample()
        nll = reconstruction_nll(c.reconstruction, self.decoder(z).float(), x, self.log_sigma)
        kl = q.kl().mean()
        return LossTerms(nll + c.beta * kl, reconstruction=nll, kl=kl)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new examples decoded from the prior N(0, I)."""
        check_int("n", n, 0, low_open=True)
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        with inference.evaluating(self):
            return self.decoded(z)


def _mean_and_logvar(model: VariationalAutoencoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q = model.posterior_of(x)
    return q.mean, q.logvar
