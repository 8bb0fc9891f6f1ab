"""autoencoders: the whole autoencoder family, one training loop, safe run folders.

    import autoencoders as ae
    model = ae.build("vae", input_shape=(1, 28, 28), latent_dim=16, hidden=(512, 256))
    ae.fit(model, x_train, epochs=20, out="runs/vae")
    model = ae.load("runs/vae")
"""

__version__ = "0.1.0"

from . import datasets, generation, metrics, quality
from .checkpoint import load
from .config import ModelConfig
from .errors import AutoencodersError, CheckpointError, ConfigError, DataError, TrainingError
from .metrics import evaluate
from .kinds import Kind, build, get_kind, kinds
from .models import Autoencoder, LossTerms, VariationalAutoencoder
from .training import History, evaluate_loss, fit

__all__ = [
    "Autoencoder",
    "AutoencodersError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "History",
    "Kind",
    "LossTerms",
    "ModelConfig",
    "TrainingError",
    "VariationalAutoencoder",
    "build",
    "datasets",
    "evaluate",
    "evaluate_loss",
    "generation",
    "metrics",
    "quality",
    "fit",
    "get_kind",
    "kinds",
    "load",
]
