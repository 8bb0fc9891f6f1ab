"""aekit: the whole autoencoder family, one training loop, safe run folders.

    import aekit as ae
    model = ae.build("vae", input_shape=(1, 28, 28), latent_dim=16, hidden=(512, 256))
    ae.fit(model, x_train, epochs=20, out="runs/vae")
    model = ae.load("runs/vae")          # the model;  ae.load_run("runs/vae"): model, config, data, history
    blob = ae.codec.compress(model, x)   # a file of our own; ae.codec.decompress(model, blob) reads it back

The subpackages follow the pipeline: data -> models -> training -> inference -> anomaly / evaluation /
codec -> runs -> the ways in (sklearn estimators, cli, report, tour).
"""

from aekit import anomaly, codec, data, evaluation
from aekit._version import __version__
from aekit.data.images import save_image_grid
from aekit.errors import AekitError, CheckpointError, ConfigError, DataError, TrainingError
from aekit.evaluation.evaluate import evaluate
from aekit.models.autoencoder import Autoencoder, LossTerms, VariationalAutoencoder
from aekit.models.config import ModelConfig
from aekit.models.kinds import Kind, build, build_for, get_kind, kinds
from aekit.runs.run import History, Run, load, load_run, save
from aekit.training import evaluate_loss, fit, resume

__all__ = [
    "AekitError",
    "Autoencoder",
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
    "anomaly",
    "build",
    "build_for",
    "codec",
    "data",
    "evaluate",
    "evaluate_loss",
    "evaluation",
    "fit",
    "get_kind",
    "kinds",
    "load",
    "load_run",
    "resume",
    "save",
    "save_image_grid",
]
