"""Models: the one configuration (config.py), the kinds registry (kinds.py), encoder and decoder networks
(nets.py), the model classes (autoencoder.py), the probability formulas (distributions.py), penalties,
input corruption and stacked pre-training."""

from aekit.models.autoencoder import Autoencoder, LossTerms, VariationalAutoencoder
from aekit.models.config import ModelConfig
from aekit.models.kinds import Kind, build, get_kind, kinds
from aekit.models.linear_gaussian import LinearGaussian

__all__ = ["Autoencoder", "Kind", "LinearGaussian", "LossTerms", "ModelConfig", "VariationalAutoencoder", "build",
           "get_kind", "kinds"]
