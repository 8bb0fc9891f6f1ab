"""autoencoders: the whole autoencoder family, one training loop, safe run folders.

    import autoencoders as ae
    model = ae.build("vae", input_shape=(1, 28, 28), latent_dim=16, hidden=(512, 256))
    ae.fit(model, x_train, epochs=20, out="runs/vae")
    model = ae.load("runs/vae")          # the model;  ae.load_run("runs/vae"): model, config, data, history
    blob = ae.codec.compress(model, x)   # a file of our own; ae.codec.decompress(model, blob) reads it back
"""

from . import codec, datasets, detection, generation, metrics, quality
from ._version import __version__
from .config import ModelConfig
from .errors import AutoencodersError, CheckpointError, ConfigError, DataError, TrainingError
from .evaluate import evaluate
from .images import save_image_grid
from .kinds import Kind, build, build_for, get_kind, kinds
from .models import Autoencoder, LossTerms, VariationalAutoencoder
from .runs import History, Run, load, load_run, save
from .training import evaluate_loss, fit, resume

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
    "Run",
    "TrainingError",
    "VariationalAutoencoder",
    "__version__",
    "build",
    "build_for",
    "codec",
    "datasets",
    "detection",
    "evaluate",
    "evaluate_loss",
    "generation",
    "metrics",
    "quality",
    "fit",
    "resume",
    "save_image_grid",
    "get_kind",
    "kinds",
    "load",
    "load_run",
    "save",
]
