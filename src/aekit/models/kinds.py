"""The registry: each kind is a name, a one-line description and its options' defaults.

A kind is a configuration of the model classes, not a class of its own.
Options a kind does not list are errors; `fixed` values define the kind and
cannot be overridden.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from aekit.data.base import evenly_spaced
from aekit.data.schema import as_schema
from aekit.errors import ConfigError, ConfigWarning, unknown
from aekit.models.autoencoder import Autoencoder, VariationalAutoencoder
from aekit.models.config import ModelConfig
from aekit.models.linear_gaussian import LinearGaussian

# Options shared by the deterministic kinds: architecture, penalties and corruption,
# so that e.g. a sparse denoising autoencoder is `build("sparse", noise="masking")`.
_NETWORK = dict(latent_dim=16, hidden=(256, 64), activation="relu", architecture="mlp", channels=(32, 64),
                dropout=0.0, input_clip=None, categorical_groups=())
_PLAIN = dict(
    _NETWORK,
    code_activation="linear",
    reconstruction="bce",
    sparsity=None,
    sparsity_weight=1e-3,
    sparsity_target=0.05,
    noise=None,
    noise_level=0.3,
    contractive_weight=0.0,
    contractive_projections=1,
    code_noise=0.0,
    rate_weight=0.0,
)


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    options: dict  # option -> default
    fixed: dict = field(default_factory=dict)  # what makes the kind; not user-settable

    def __str__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{self.name}: {self.description}\n    options: {opts}"


_REGISTRY: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    _REGISTRY[kind.name] = kind
    return kind


register(Kind(
    "pca",
    "linear encoder and decoder with squared error: learns the principal subspace (PCA as an autoencoder)",
    dict(latent_dim=16, init="pca"),
    fixed=dict(hidden=(), code_activation="linear", reconstruction="mse", architecture="mlp"),
))
register(Kind(
    "ae",
    "deep autoencoder: MLP or convolutional encoder/decoder with a bottleneck",
    dict(_PLAIN),
))
register(Kind(
    "sparse",
    "sparse autoencoder: penalty on the code, KL(rho || rho_hat) on sigmoid units or L1; may be overcomplete",
    dict(_PLAIN, code_activation="sigmoid", sparsity="kl", sparsity_weight=1.0, sparsity_target=0.05),
))
register(Kind(
    "denoising",
    "denoising autoencoder: the encoder sees a corrupted input, the loss compares with the clean one",
    dict(_PLAIN, noise="gaussian", noise_level=0.3),
))
register(Kind(
    "contractive",
    "contractive autoencoder: adds lambda * ||J_f(x)||_F^2, the encoder Jacobian's Frobenius norm",
    dict(_PLAIN, code_activation="sigmoid", contractive_weight=0.1),
))
register(Kind(
    "stacked",
    "stacked autoencoder: greedy layer-wise pretraining of shallow autoencoders, then end-to-end fine-tuning",
    dict(_PLAIN, pretrain_epochs=10),
))
# beta="auto": decided from the data when the model is configured (conditional_beta).
AUTO = "auto"
# The conditional VAE's beta grows as sqrt(D / CONDITIONAL_BETA_INPUTS) for D inputs (conditional_beta).
CONDITIONAL_BETA_INPUTS = 100
# The options of the VAE's objective: beta, KL warm-up, free bits, the importance-weighted bound.
_VARIATIONAL = dict(_NETWORK, reconstruction="bce", beta=1.0, kl_warmup_epochs=0, free_bits=0.0, objective="elbo",
                    iwae_samples=5, noise=None, noise_level=0.3)
register(Kind(
    "vae",
    "variational autoencoder: Gaussian posterior, reparameterised sampling, ELBO with beta, generates from the prior",
    dict(_VARIATIONAL),
    fixed=dict(variational=True, code_activation="linear"),
))
register(Kind(
    "cvae",
    "conditional VAE: encoder q(z|x, y) and decoder p(x|z, y) see the class y; generates the class asked for "
    "(beta 'auto': max(1, sqrt(D / 100)) for D inputs, conditional_beta)",
    dict(_VARIATIONAL, beta=AUTO, n_classes=10, label_dropout=0.0),
    fixed=dict(variational=True, code_activation="linear"),
))
# Linear-Gaussian models: one linear decoder, the exact posterior, the exact likelihood as the loss.
_LINEAR_GAUSSIAN = dict(variational=True, posterior="exact", hidden=(), code_activation="linear", architecture="mlp")
register(Kind(
    "factor_analysis",
    "factor analysis: x = W z + mu + e, e ~ N(0, diag psi) with psi learnt per feature; exact posterior and likelihood",
    dict(latent_dim=16, init="pca"),
    fixed=dict(_LINEAR_GAUSSIAN, reconstruction="gaussian_per_feature"),
))
register(Kind(
    "ppca",
    "probabilistic PCA: x = W z + mu + e, e ~ N(0, sigma^2 I); maximum-likelihood start in closed form, exact likelihood",
    dict(latent_dim=16, init="pca"),
    fixed=dict(_LINEAR_GAUSSIAN, reconstruction="gaussian"),
))


def kinds() -> list[Kind]:
    """Every registered kind with its description and options' defaults."""
    return list(_REGISTRY.values())


def get_kind(name: str) -> Kind:
    if name not in _REGISTRY:
        raise unknown("kind", name, _REGISTRY)
    return _REGISTRY[name]


def make_config(kind: str, input_shape, **options) -> ModelConfig:
    """Defaults of the kind, updated with options; unknown options list the valid ones."""
    spec = get_kind(kind)
    seed = options.pop("seed", 0)
    for name in options:
        if name in spec.fixed:
            raise ConfigError(f"option {name!r} is fixed to {spec.fixed[name]!r} for kind {kind!r}")
        if name not in spec.options:
            raise unknown(f"option for kind {kind!r}:", name, spec.options)
    values = {**spec.options, **spec.fixed, **options}
    if values.get("beta") == AUTO:
        values["beta"] = conditional_beta(_input_size(input_shape), values.get("n_classes", 0))
    config = ModelConfig(kind=kind, input_shape=input_shape, seed=seed, **values).validate()
    # A variational code is priced by its KL term, so it cannot copy the input for free (the tour's ring: a 2-D
    # VAE on 2-D points); sparse and denoising codes are regularised by their penalty and their corruption.
    if (config.latent_dim >= config.input_size and config.sparsity is None and config.noise is None
            and not config.variational):
        warnings.warn(f"latent_dim={config.latent_dim} for {config.input_size} input features: a code at least as "
                      "large as the input can learn to copy it (an identity map) and explains nothing; give a "
                      "smaller latent_dim (or a sparse or denoising kind)", ConfigWarning, stacklevel=2)
    return config


def conditional_beta(input_size: int, n_classes: int) -> float:
    """beta="auto": 1 for an unconditional model (the ELBO itself), max(1, sqrt(D / 100)) for a conditional one
    with D inputs.

    Why (issue 25, benchmarks/cvae_defaults.py, docs/guides/vae-options.md): the encoder q(z|x, y) sees the
    class, and early in training it writes the class into z as well (log K nats at most), because the decoder
    has not yet learnt to read it from y. Only the KL term's weight pushes it out again: once the decoder reads
    y, that information buys no reconstruction. Until then a prior draw z ~ N(0, I) carries a class of its
    own that fights the label: with beta = 1, 30 epochs on mnist-5k (784 inputs) gave the asked digit for
    53% of the samples, the automatic 84 epochs for 70%. The reconstruction term is a sum over D inputs, so
    its minibatch gradient noise, which Adam's steps are scaled by, grows like sqrt(D); a KL weight growing
    like sqrt(D) keeps its push on the code comparable. Calibrated on digit images of three sizes, ~3,000
    Adam steps (the automatic length): at 64 inputs (8x8) beta = 1 gives the asked class every time and a
    larger one empties the code (KL 1.3 nats at beta 1, 0.4 at 2, 0.07 at 3); at 196 (MNIST pooled to
    14x14) beta = 1 gives 99%; at 784 beta = 2 gives 94% and 3 gives 98%. The rule: 1, 1.4 and 2.8 there
    (98% on mnist-5k over three seeds; the ELBO 8 nats below beta = 1's, the code still 7 nats).
    """
    if not n_classes:
        return 1.0
    return max(1.0, math.sqrt(input_size / CONDITIONAL_BETA_INPUTS))


def _input_size(input_shape) -> int:
    """The number of inputs of input_shape (an int is one dimension); 1 for a malformed shape, which
    ModelConfig.validate then refuses, naming it."""
    try:
        return max(1, math.prod(int(s) for s in ((input_shape,) if isinstance(input_shape, int) else input_shape)))
    except (TypeError, ValueError):
        return 1


# Table defaults (README, "Anomaly detection on your tables"): a hidden layer twice as wide as the
# input (32 to 256 units) and a code of about 1.5 sqrt(D) units (2 to 32, never more than D), dropout 0.2,
# the robust-scaled input clipped at 1.5 spreads. Chosen on the 14 tables of ../shared/data/adbench and
# checked on variants of them (raw units, other splits, heavy tails, constant columns, clean training data).
TABLE_DROPOUT = 0.2
TABLE_INPUT_CLIP = 1.5


def table_network(n_features: int) -> dict:
    """hidden and latent_dim for a table of n_features columns."""
    width = int(min(256, max(32, 2 * n_features)))
    code = int(min(n_features, max(2, min(32, round(1.5 * math.sqrt(n_features))))))
    return {"hidden": (width,), "latent_dim": code}


def data_defaults(kind: str, n_features: int, binary: bool = False, scaling: str | None = "robust",
                  groups=()) -> dict:
    """The options a table decides when the user does not set them: the network's size from the number
    of features, squared error unless every column is binary (then the Bernoulli likelihood), dropout,
    for robust-scaled input the input clip, and the categorical columns' groups of one-hot inputs
    (categorical_groups, from the table's schema). Only options the kind has and does not fix."""
    spec = get_kind(kind)
    wanted = {**table_network(n_features), "reconstruction": "bce" if binary else "mse", "dropout": TABLE_DROPOUT,
              "input_clip": TABLE_INPUT_CLIP if scaling == "robust" else None}
    if groups:
        wanted["categorical_groups"] = tuple(tuple(g) for g in groups)
    if spec.options.get("pretrain_epochs"):  # greedy pretraining pairs plain Linear layers (config.validate)
        wanted.pop("dropout"), wanted.pop("input_clip")
    return {k: v for k, v in wanted.items() if k in spec.options and k not in spec.fixed}


def data_defaults_for(kind: str, data) -> dict:
    """data_defaults for a Dataset of a table (Dataset.feature_names set), {} for anything else. The
    Bernoulli loss only when every scaled value is 0 or 1 (binary columns, scale='none' or 'minmax')."""
    if getattr(data, "feature_names", None) is None:
        return {}
    x = np.asarray(data.x[evenly_spaced(len(data), 100_000)])  # a sample from the whole file, not its head
    table = (getattr(data, "info", None) or {}).get("table")
    groups = as_schema(table).softmax_groups() if table is not None and len(data.input_shape) == 1 else ()
    return data_defaults(kind, math.prod(data.input_shape), binary=bool(np.isin(x, (0, 1)).all()),
                         scaling=(data.scaling or {}).get("method"), groups=groups)


def model_class(config: ModelConfig) -> type[Autoencoder]:
    """The class a configuration is an instance of."""
    if config.posterior == "exact":
        return LinearGaussian
    return VariationalAutoencoder if config.variational else Autoencoder


def model_from_config(config: ModelConfig) -> Autoencoder:
    """A freshly initialised model; weights depend only on config.seed."""
    cls = model_class(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return cls(config)


def build(kind: str, input_shape, **options) -> Autoencoder:
    """Build a model of a registered kind, e.g. build("vae", input_shape=(1, 28, 28), latent_dim=16).

    `seed` (default 0) fixes the initial weights; every other keyword is an
    option of the kind (see `kinds()`).
    """
    return model_from_config(make_config(kind, input_shape, **options))


def build_for(kind: str, data, **options) -> Autoencoder:
    """build(kind, data.input_shape, **options) with what a table's columns decide (data_defaults_for)
    wherever options leave it open; data: a Dataset (or an array: its shape only)."""
    shape = data.input_shape if hasattr(data, "input_shape") else tuple(np.shape(data)[1:])
    return build(kind, shape, **{**data_defaults_for(kind, data), **options})
