"""aekit: the whole autoencoder family, one training loop, safe run folders.

    import aekit as ae
    model = ae.build("vae", input_shape=(1, 28, 28), latent_dim=16, hidden=(512, 256))
    ae.fit(model, x_train, epochs=20, out="runs/vae")
    model = ae.load("runs/vae")          # the model;  ae.load_run("runs/vae"): model, config, data, history
    blob = ae.codec.compress(model, x)   # a file of our own; ae.codec.decompress(model, blob) reads it back

The subpackages follow the pipeline: data -> models -> training -> inference -> anomaly / evaluation /
codec -> runs -> the ways in (sklearn estimators, cli, report, tour).

The public names are imported on first use (PEP 562, as scikit-image and SciPy do), so that `import aekit`
costs nothing and the `aekit` command starts without loading torch: `ae.build` imports aekit.models.kinds
the first time it is read. `from aekit import *`, `dir(aekit)` and every `aekit.<subpackage>` work as before.
"""

import importlib
import importlib.util

from aekit._version import __version__ as __version__  # the one eager import: light

# Each public name and the module it lives in (the subpackages are public too: anomaly, codec, data, evaluation).
_EXPORTS = {
    "AekitError": "aekit.errors",
    "Autoencoder": "aekit.models.autoencoder",
    "CheckpointError": "aekit.errors",
    "ConfigError": "aekit.errors",
    "DataError": "aekit.errors",
    "History": "aekit.runs.run",
    "Kind": "aekit.models.kinds",
    "LossTerms": "aekit.models.autoencoder",
    "ModelConfig": "aekit.models.config",
    "Run": "aekit.runs.run",
    "TrainingError": "aekit.errors",
    "VariationalAutoencoder": "aekit.models.autoencoder",
    "build": "aekit.models.kinds",
    "build_for": "aekit.models.kinds",
    "evaluate": "aekit.evaluation.evaluate",
    "evaluate_loss": "aekit.training",
    "export": "aekit.onnx_export",
    "fit": "aekit.training",
    "get_kind": "aekit.models.kinds",
    "kinds": "aekit.models.kinds",
    "load": "aekit.runs.run",
    "load_run": "aekit.runs.run",
    "resume": "aekit.training",
    "save": "aekit.runs.run",
    "save_image_grid": "aekit.data.images",
}

__all__ = sorted(["__version__", "anomaly", "codec", "data", "evaluation", *_EXPORTS])


def __getattr__(name: str):
    """A public name, or a subpackage (aekit.data, aekit.models, ...), imported the first time it is read."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # read once: later reads do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
