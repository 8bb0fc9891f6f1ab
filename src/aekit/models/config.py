"""The one configuration every model is built from.

A kind (kinds.py) is a named set of defaults for these fields; the model
classes read nothing else. Saved as JSON in every run folder.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from aekit.budget import check_memory
from aekit.errors import ConfigError, check_choice, check_int, check_number, unknown
from aekit.models import nets
from aekit.models.nets import ACTIVATIONS, code_grid

RECONSTRUCTIONS = ("bce", "mse", "gaussian", "gaussian_per_feature")
GAUSSIAN_RECONSTRUCTIONS = ("gaussian", "gaussian_per_feature")
SPARSITIES = ("l1", "kl")
NOISES = ("gaussian", "masking", "salt_and_pepper", "downsample")
ARCHITECTURES = ("mlp", "conv", "fully_conv")
INITS = ("random", "pca")
POSTERIORS = ("amortised", "exact")
OBJECTIVES = ("elbo", "iwae")
FLOAT_BYTES = 4  # float32 weights, activations and examples


@dataclass
class ModelConfig:
    kind: str  # registered kind name (kinds.py)
    input_shape: tuple[int, ...]  # one example's shape: (D,) for vectors, (C, H, W) for images
    latent_dim: int = 16  # code size; may exceed the input size (overcomplete) with sparsity
    hidden: tuple[int, ...] = (256, 64)  # MLP widths from the input towards the code
    activation: str = "relu"  # non-linearity of hidden layers (the lectures use "sigmoid")
    # "mlp"; "conv" (image input (C, H, W): stride-2 convolutions, then the MLP `hidden` to the code);
    # "fully_conv" (no dense layer: the code is latent_dim / (h * w) maps on the last layer's h x w grid)
    architecture: str = "mlp"
    channels: tuple[int, ...] = (32, 64)  # conv, fully_conv: channels of each stride-2 layer
    code_activation: str = "linear"  # non-linearity on the code ("sigmoid" for KL sparsity)
    # "bce": Bernoulli likelihood from logits (data in [0, 1]); "mse": summed squared error;
    # "gaussian": Gaussian likelihood in nats with one learned variance (Rybkin et al. 2021);
    # "gaussian_per_feature": one learned variance per feature, the noise psi of factor analysis
    # (with a nonlinear decoder: the recitation's "nonlinear factor analysis").
    reconstruction: str = "bce"
    variational: bool = False  # Gaussian posterior + KL to N(0, I) (Kingma & Welling 2014)
    # "amortised": an encoder network outputs q(z|x); "exact": the closed-form posterior of a linear
    # decoder with Gaussian noise (factor analysis, probabilistic PCA), computed from the decoder's weights.
    posterior: str = "amortised"
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017); cvae: "auto", max(1, sqrt(D/100))
    # beta rises linearly from 0 over this many epochs (KL annealing: Bowman et al. 2016, Sonderby et al. 2016);
    # validation and evaluation use the full beta.
    kl_warmup_epochs: int = 0
    # Free bits (Kingma et al. 2016, appendix C.8): the training KL term is sum_j max(free_bits, KL_j), KL_j the
    # batch-mean KL of latent dimension j in nats, so no dimension is pushed below free_bits nats. 0 = off.
    free_bits: float = 0.0
    # "elbo", or "iwae": the importance-weighted bound log 1/K sum_k p(x, z_k) / q(z_k|x) with K = iwae_samples
    # draws (Burda et al. 2016, eq. 8); K = 1 is the ELBO.
    objective: str = "elbo"
    iwae_samples: int = 5
    # > 0: a conditional VAE (Sohn et al. 2015): encoder q(z|x, y) and decoder p(x|z, y) see the class y as a
    # one-hot vector; label -1 (or none given) is "unknown", an all-zero vector.
    n_classes: int = 0
    # Conditional: the fraction of training labels hidden at random (made "unknown"), so that the model also
    # encodes and decodes without labels. Off by default: on mnist-5k 0.1 cost 20 points of class accuracy
    # (the code learns to carry the class for the unlabelled rows, and then carries it for all).
    label_dropout: float = 0.0
    sparsity: str | None = None  # None, "l1" (lambda * |z|_1) or "kl" (lambda * sum_j KL(rho||rho_hat_j))
    sparsity_weight: float = 1e-3  # lambda of the sparsity penalty
    sparsity_target: float = 0.05  # rho for the KL penalty, in (0, 1)
    noise: str | None = None  # training-time input corruption: "gaussian", "masking", "salt_and_pepper", "downsample"
    noise_level: float = 0.3  # std for gaussian, probability for masking / salt_and_pepper, factor for downsample
    contractive_weight: float = 0.0  # lambda * ||J_f(x)||_F^2 (Rifai et al. 2011)
    # Random projections per step for the unbiased estimate of ||J_f(x)||_F^2 in training
    # (Hutchinson 1990; one vector-Jacobian product each); 0 = exact, one product per code unit.
    # A single sigmoid layer always uses its exact closed form.
    contractive_projections: int = 1
    # Dropout after every hidden layer of an MLP while training (Srivastava et al. 2014): a regulariser
    # for small tables, where an autoencoder otherwise learns to copy the anomalies too.
    dropout: float = 0.0
    # The encoder sees each (scaled) input clipped to +-input_clip and training reconstructs the clipped
    # values: the network learns the bulk of every feature, never its tails, while a score compares the
    # reconstruction with the unclipped input, so a value far out counts fully. None: no clipping.
    input_clip: float | None = None
    # Tables: [start, width] of each categorical column's one-hot inputs (TableSchema.softmax_groups). The
    # decoder gives such a group logits, its reconstruction is a distribution over the levels (softmax) and
    # its loss the cross-entropy of the observed level, in nats: one term per column, not one squared
    # error per level. Vector input only; reconstruction "mse" or "bce" for the other inputs.
    categorical_groups: tuple[tuple[int, int], ...] = ()
    # Learned compression (Balle et al. 2017): uniform noise U(-w/2, w/2) added to the code in training,
    # w = code_noise, stands in for rounding it to a grid of step w; rate_weight (lambda) adds lambda *
    # the code's rate in bits under a learned per-dimension logistic density. codec.compress(..., step=w)
    # quantises such a model's codes on the grid it was trained for.
    code_noise: float = 0.0
    rate_weight: float = 0.0
    init: str = "random"  # "pca": closed-form PCA weights before training (linear models)
    pretrain_epochs: int = 0  # stacked: greedy epochs per layer before end-to-end fine-tuning
    seed: int = 0  # seeds the weight initialisation
    extra: dict = field(default_factory=dict)  # reserved for later versions; saved as is

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def code_size(self) -> int:
        """The encoder's outputs: the code, or a VAE's means and log-variances."""
        return 2 * self.latent_dim if self.variational else self.latent_dim

    @property
    def encoder_input_shape(self) -> tuple[int, ...]:
        """What the encoder sees: the input and, for a conditional model, the one-hot class as n_classes more
        channels of an image (conv) or n_classes more inputs of a vector."""
        k = self.n_classes
        if not k:
            return tuple(self.input_shape)
        if self.architecture != "mlp":
            return (self.input_shape[0] + k, *self.input_shape[1:])
        return (self.input_size + k,)

    def size(self) -> nets.Size:
        """One example's pass through the model, counted from the shapes before anything is built
        (nets.network_size), with the parameters beside the networks: the learned noise scale (one, or one
        per feature) and the rate term's code density."""
        net = nets.network_size(self.architecture, self.encoder_input_shape, self.channels, self.hidden,
                                self.code_size, self.latent_dim + self.n_classes, self.input_shape)
        extra = {"gaussian": 1, "gaussian_per_feature": self.input_size}.get(self.reconstruction, 0)
        extra += 2 * self.latent_dim if self.rate_weight > 0 else 0
        return dataclasses.replace(net, parameters=net.parameters + extra)

    @property
    def buffer_count(self) -> int:
        """Values held beside the parameters: a plain autoencoder's code mean and Cholesky factor (latent_dim^2)."""
        return 0 if self.variational else self.latent_dim + self.latent_dim**2

    def check_examples(self, n: int, what: str) -> None:
        """ConfigError unless n examples and their codes (float32) fit the memory limit: checked before
        sampling, interpolating or decoding a grid allocates them."""
        check_memory(what, n * FLOAT_BYTES * (self.input_size + self.latent_dim))

    def _check_memory(self) -> None:
        """The model's weights and one example's pass against the memory limit, from the shapes alone: a typo
        such as latent_dim=10**9 or hidden=(10**9,), or an image canvas no pass could hold, is refused here,
        before torch allocates anything."""
        size = self.size()
        params = size.parameters
        shapes = f"input_shape={self.input_shape}, latent_dim={self.latent_dim}"
        shapes += "" if self.architecture == "fully_conv" else f", hidden={self.hidden}"
        shapes += f", channels={self.channels}" if self.architecture != "mlp" else ""
        shapes += f", n_classes={self.n_classes}" if self.n_classes else ""
        check_memory(f"a {self.kind!r} model of {params:,} parameters ({shapes})",
                     FLOAT_BYTES * (params + self.buffer_count + size.activations))

    def validate(self) -> ModelConfig:
        """Check every field once; raise ConfigError naming the option, value and bound."""
        shape = self.input_shape
        if isinstance(shape, int):
            shape = (shape,)
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise ConfigError(f"input_shape must be a tuple of positive ints, got {self.input_shape!r}") from None
        if not shape or any(s <= 0 for s in shape):
            raise ConfigError(f"input_shape must be a non-empty tuple of positive ints, got {self.input_shape!r}")
        self.input_shape = shape
        check_int("latent_dim", self.latent_dim, 0, low_open=True)
        self.hidden = _int_tuple("hidden", self.hidden)
        self.channels = _int_tuple("channels", self.channels)
        for name in ("activation", "code_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise unknown(name, getattr(self, name), ACTIVATIONS)
        check_choice("architecture", self.architecture, ARCHITECTURES)
        if self.architecture in ("conv", "fully_conv"):
            if len(shape) != 3:
                raise ConfigError(f"architecture={self.architecture!r} needs input_shape (C, H, W), got {shape}")
            if not self.channels:
                raise ConfigError(f"architecture={self.architecture!r} needs at least one entry in channels")
        if self.architecture == "fully_conv":
            h, w = code_grid(shape, self.channels)
            if self.latent_dim % (h * w):
                raise ConfigError(f"architecture='fully_conv' makes the code maps of {h}x{w} on input {shape}: "
                                  f"latent_dim must be a multiple of {h * w}, got {self.latent_dim}")
        check_choice("reconstruction", self.reconstruction, RECONSTRUCTIONS)
        check_choice("sparsity", self.sparsity, SPARSITIES, optional=True)
        check_choice("noise", self.noise, NOISES, optional=True)
        check_choice("init", self.init, INITS)
        for name in ("beta", "sparsity_weight", "contractive_weight", "noise_level", "free_bits", "code_noise",
                     "rate_weight"):
            check_number(name, getattr(self, name), 0)
        check_number("sparsity_target", self.sparsity_target, 0, 1, low_open=True, high_open=True)
        check_noise_level(self.noise, self.noise_level, shape)
        self._validate_variational()
        if self.sparsity == "kl" and self.code_activation != "sigmoid":
            raise ConfigError(
                "sparsity='kl' compares mean activations with rho, so it needs code_activation='sigmoid', "
                f"got {self.code_activation!r}"
            )
        check_number("dropout", self.dropout, 0, 1, high_open=True)
        if self.input_clip is not None:
            check_number("input_clip", self.input_clip, 0, low_open=True)
        if self.dropout > 0 and self.architecture != "mlp":
            raise ConfigError(f"dropout applies to MLP layers: architecture={self.architecture!r} has none to drop")
        if self.rate_weight > 0 and self.code_noise == 0:
            raise ConfigError("rate_weight prices the code on a grid of step code_noise: set code_noise > 0 "
                              "(e.g. 1.0) with it")
        if self.variational and (self.code_noise > 0 or self.rate_weight > 0):
            raise ConfigError("code_noise and rate_weight are for deterministic codes, not a variational model")
        exact = self.posterior == "exact"
        if self.init == "pca" and (self.hidden or self.code_activation != "linear" or (self.variational and not exact)):
            raise ConfigError("init='pca' needs a linear model: hidden=(), code_activation='linear', not variational "
                              "(except the exact posterior of factor analysis and PPCA)")
        check_int("pretrain_epochs", self.pretrain_epochs, 0)
        if self.pretrain_epochs > 0 and (self.dropout > 0 or self.input_clip is not None):
            raise ConfigError("greedy pretraining (pretrain_epochs > 0) pairs plain Linear layers: "
                              "it cannot be combined with dropout or input_clip")
        if self.pretrain_epochs > 0:  # greedy layer-wise pretraining (stacked.py)
            if self.architecture != "mlp":
                raise ConfigError(f"kind {self.kind!r} pretrains MLP layers: use architecture='mlp'")
            if self.sparsity == "kl" and self.hidden and self.activation != "sigmoid":
                raise ConfigError(
                    f"{self.kind} with sparsity='kl' pretrains every layer with that penalty, so it needs "
                    f"activation='sigmoid', got {self.activation!r} (or use sparsity='l1')"
                )
        check_int("contractive_projections", self.contractive_projections, 0)
        check_int("seed", self.seed, 0, 2**63 - 1)
        self._validate_groups()
        self._check_memory()
        return self

    def _validate_groups(self) -> None:
        """categorical_groups: sorted, non-overlapping [start, width] pairs (width >= 2) inside a vector input."""
        try:
            groups = tuple((int(start), int(width)) for start, width in self.categorical_groups)
            exact = all(int(a) == a and int(b) == b and not isinstance(a, bool) and not isinstance(b, bool)
                        for a, b in self.categorical_groups)
        except (TypeError, ValueError):
            groups, exact = (), False
        if not exact:
            raise ConfigError(f"categorical_groups must be a list of [start, width] pairs of ints, "
                              f"got {self.categorical_groups!r}")
        self.categorical_groups = groups
        if not groups:
            return
        if len(self.input_shape) != 1:
            raise ConfigError(f"categorical_groups are columns of a table: they need a vector input_shape (D,), "
                              f"got {self.input_shape}")
        if self.reconstruction not in ("mse", "bce"):
            raise ConfigError(f"categorical_groups need reconstruction 'mse' or 'bce' for the other inputs, "
                              f"got {self.reconstruction!r}")
        end = 0
        for start, width in groups:
            if start < end or width < 2 or start + width > self.input_size:
                raise ConfigError(f"categorical_groups: [{start}, {width}] does not fit the input of "
                                  f"{self.input_size} features (groups sorted, non-overlapping, width >= 2)")
            end = start + width

    def inactive_options(self) -> set[str]:
        """Options whose value has no effect with the others (a report lists the rest)."""
        off = set()
        if self.architecture == "mlp":
            off.add("channels")
        if self.architecture == "fully_conv":
            off.add("hidden")  # no dense layer: the code is maps on the last grid
        if self.sparsity is None:
            off |= {"sparsity_weight", "sparsity_target"}
        elif self.sparsity != "kl":
            off.add("sparsity_target")
        if self.noise is None:
            off.add("noise_level")
        if self.contractive_weight == 0:
            off.add("contractive_projections")
        if not self.variational:
            off |= {"beta", "posterior", "kl_warmup_epochs", "free_bits", "objective", "iwae_samples", "n_classes"}
        if self.code_noise == 0:
            off.add("rate_weight")
        if self.objective != "iwae":
            off.add("iwae_samples")
        if self.n_classes == 0:
            off.add("label_dropout")
        return off

    def _validate_variational(self) -> None:
        """The options of variational models: posterior, objective, warm-up, free bits, conditioning."""
        check_choice("posterior", self.posterior, POSTERIORS)
        check_choice("objective", self.objective, OBJECTIVES)
        check_int("kl_warmup_epochs", self.kl_warmup_epochs, 0)
        check_int("iwae_samples", self.iwae_samples, 1)
        check_int("n_classes", self.n_classes, 0)
        check_number("label_dropout", self.label_dropout, 0, 1, high_open=True)
        if not self.variational:
            for name, off in (("posterior", "amortised"), ("objective", "elbo"), ("n_classes", 0),
                              ("kl_warmup_epochs", 0), ("free_bits", 0.0)):
                if getattr(self, name) != off:
                    raise ConfigError(f"{name}={getattr(self, name)!r} needs a variational model (kind 'vae' or 'cvae')")
        if self.n_classes and self.architecture == "fully_conv":
            raise ConfigError("n_classes > 0 (a conditional model) needs architecture 'mlp' or 'conv': a fully "
                              "convolutional decoder has no input for the class")
        if self.objective == "iwae" and (self.beta != 1 or self.free_bits or self.kl_warmup_epochs):
            raise ConfigError("objective='iwae' is a bound on log p(x) itself: it needs beta=1, free_bits=0 and "
                              f"kl_warmup_epochs=0, got beta={self.beta}, free_bits={self.free_bits}, "
                              f"kl_warmup_epochs={self.kl_warmup_epochs}")
        if self.posterior == "exact":
            check_choice("reconstruction (exact posterior)", self.reconstruction, GAUSSIAN_RECONSTRUCTIONS)
            if self.hidden or self.architecture != "mlp" or self.n_classes or self.objective != "elbo" or self.noise:
                raise ConfigError("posterior='exact' is the closed form of a linear-Gaussian model: it needs "
                                  "hidden=(), architecture='mlp', n_classes=0, objective='elbo' and no noise")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        foreign = sorted(set(data) - names)
        if foreign:
            raise ConfigError(f"config has unknown fields {foreign}")
        return cls(**data).validate()


def check_noise_level(noise: str | None, level, input_shape) -> None:
    """noise_level for the noise: a probability (masking, salt_and_pepper), or for "downsample" an integer
    factor >= 2 that divides the images' height and width (C, H, W); ConfigError naming the option, the
    value and the bound."""
    if noise in ("masking", "salt_and_pepper") and level > 1:
        raise ConfigError(f"noise_level is a probability for noise={noise!r}: must be <= 1, got {level}")
    if noise == "downsample":
        if len(input_shape) != 3:
            raise ConfigError(f"noise='downsample' shrinks images: it needs input_shape (C, H, W), got {tuple(input_shape)}")
        h, w = input_shape[1:]
        if float(level) != int(level) or level < 2 or h % int(level) or w % int(level):
            factors = [f for f in range(2, min(h, w) + 1) if h % f == 0 and w % f == 0]
            raise ConfigError(f"noise_level is the downsampling factor for noise='downsample': an integer >= 2 "
                              f"that divides the image's {h} x {w} pixels ({', '.join(map(str, factors)) or 'none'}), "
                              f"got {level}")


def _int_tuple(name, value) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"{name} must be a tuple of positive ints, got {value!r}") from None
    for v in items:
        check_int(f"every entry of {name}", v, 0, low_open=True)
    return items
