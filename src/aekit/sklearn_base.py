"""What the scikit-learn estimators of sklearn.py share: parameters checked once, scaling, fitting the
model, the one batched inference path, pickling. Only sklearn.py uses this module."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils import check_random_state

# scikit-learn's own parameter validation: the same messages and exception type
# (InvalidParameterError, a ValueError and TypeError) as its estimators give.
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from aekit.anomaly import scores as anomaly
from aekit.anomaly.detector import group_columns
from aekit.data.base import choose_scaling, keep_unit, scaled, unscaled
from aekit.data.missing import empty_cells, imputed_inputs
from aekit.data.schema import infer_schema
from aekit.data.tables import encode, encode_rows, is_frame
from aekit.errors import ConfigError, DataError
from aekit.inference import BATCH_SIZE, apply
from aekit.models.config import RECONSTRUCTIONS, ModelConfig
from aekit.models.kinds import get_kind, make_config, model_from_config
from aekit.training import fit as fit_model
from aekit.training.options import threads_for, torch_threads

_FLOATS = [np.float64, np.float32]  # kept as given; anything else becomes float64
# Estimator parameters that are passed to the model builder directly: `options` must not repeat them.
_RESERVED = ("latent_dim", "hidden", "reconstruction", "input_shape", "seed")


def torch_dtype(X: np.ndarray) -> torch.dtype:
    """float64 X is computed in float64 (see inference.apply), anything else in float32."""
    return torch.float64 if X.dtype == np.float64 else torch.float32


class _OwnScaling:
    """The toolkit's own scalings ('robust', 'rownorm'; datasets.base) with scikit-learn's
    fit / transform / inverse_transform ('rownorm' forgets each row's norm: inverse_transform
    returns rows in scaled units)."""

    def __init__(self, method: str):
        self.method = method

    def fit(self, X):
        self.scaling_ = choose_scaling(X, self.method, images=False)
        return self

    def transform(self, X):
        return scaled(X, self.scaling_)

    def inverse_transform(self, X):
        return unscaled(X, self.scaling_)


def _mixed_frame(X) -> bool:
    """A pandas DataFrame with a column that is not numeric (text, categories, booleans, dates)."""
    if not is_frame(X):
        return False
    types = pd.api.types
    return not all(types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype) for dtype in X.dtypes)


def _scaler(method: str | None, bce: bool, X):
    """The fitted scaler of a scaling method, or None for X as given."""
    if method == "standard" and bce:
        raise ConfigError(
            "scaling='standard' gives values outside [0, 1], which reconstruction='bce' cannot model: "
            "use scaling='minmax', or reconstruction='mse' (or 'gaussian')"
        )
    if method in ("robust", "rownorm") and bce:
        raise ConfigError(f"scaling={method!r} gives values outside [0, 1], which reconstruction='bce' cannot "
                          "model: use scaling='minmax', or reconstruction='mse' (or 'gaussian')")
    if method == "minmax":
        # Clipping keeps unseen extremes inside the Bernoulli likelihood's domain; squared
        # error is defined everywhere, so there they are left as they are.
        return MinMaxScaler(clip=bce).fit(X)
    if method == "standard":
        return StandardScaler().fit(X)
    return _OwnScaling(method).fit(X) if method is not None else None


class AutoencoderEstimator(BaseEstimator):
    """What the transformer and the detector share: parameters, fitting, scaling, inference, pickling."""

    # What hidden=None and reconstruction=None stand for (None here: the kind's own default).
    # Not applied to a kind that fixes the option (pca: no hidden layers, squared error).
    _default_hidden: tuple | None = None
    _default_reconstruction: str | None = None

    _parameter_constraints: dict = {
        "kind": [str],
        "latent_dim": [Interval(Integral, 1, None, closed="left"), None],
        "hidden": [tuple, list, Interval(Integral, 1, None, closed="left"), None],
        "reconstruction": [StrOptions(set(RECONSTRUCTIONS)), None],
        "input_shape": [tuple, list, None],
        "options": [dict, None],
        "scaling": [StrOptions({"auto", "minmax", "standard", "robust", "rownorm"}), None],
        "epochs": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "lr": [Interval(Real, 0, None, closed="neither"), None],
        "random_state": ["random_state"],
        "device": [str, None],
        "verbose": ["verbose"],
    }

    # ----- fitting -----

    def _fit_model(self, X, score: str | None = None, held_out: float = 0.0):
        """Validate everything, scale X, build and train model_; returns X in the model's space and, with
        held_out > 0, that fraction of its rows (seeded by random_state), not trained on, in the same space."""
        self._validate_params()
        spec = get_kind(self.kind)  # an unknown kind: ConfigError naming the valid ones and the closest
        X = self._input(X, reset=True)
        held = None
        if held_out:
            rows = check_random_state(self.random_state).permutation(len(X))
            count = max(1, round(held_out * len(X)))
            X, held = X[np.sort(rows[count:])], X[np.sort(rows[:count])]
        method = self._scaling_method(X)
        options = {**self._data_defaults(X, method), **self._given_options(spec)}
        rng = check_random_state(self.random_state)
        init_seed, fit_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=2))
        config = make_config(self.kind, self._example_shape(X.shape[1]), seed=init_seed, **options)
        if score is not None:  # before training: a score the model cannot give is a mistake in the parameters
            anomaly.check_score(score, config)
        self.scaler_ = _scaler(method, config.reconstruction == "bce", X)
        if getattr(self, "table_schema_", None) is not None and isinstance(self.scaler_, _OwnScaling):
            self.scaler_.scaling_ = keep_unit(self.scaler_.scaling_, self.table_schema_.unit_inputs())
        x = self._to_model_space(X, config)
        self.model_ = model_from_config(config)
        given = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}  # None: ae.fit's or the table rule
        length = {**{k: v for k, v in given.items() if v is not None}, **self._fit_length(len(X))}
        self.history_ = fit_model(
            # A conditional kind refuses to train without labels (issue 25); the estimators take no labels
            # (scikit-learn's y is a target, not a class to condition on), so they say so explicitly: every
            # class "unknown" (-1), the label-dropout input the model also learns (README: cvae).
            self.model_, x, y=-1 if config.n_classes else None, seed=fit_seed, **length,
            # All of X is training data: validation would only report a number nobody reads.
            val_fraction=0.0, device=self.device, verbose=self.verbose, n_threads=self.n_threads,
        )
        return (x, self._to_model_space(held)) if held_out else x

    def _input(self, X, reset: bool) -> np.ndarray:
        """X as float rows for the model. A DataFrame with non-numeric columns (text, booleans) is a table:
        its schema (datasets.tables) one-hot encodes the categorical columns and keeps identifier,
        timestamp and free-text columns out; feature_names_in_ and n_features_in_ stay its own columns."""
        if reset:
            self.table_schema_ = infer_schema(X) if _mixed_frame(X) else None
        schema = getattr(self, "table_schema_", None)
        if schema is None:
            return validate_data(self, X, reset=reset, dtype=_FLOATS)
        if reset:
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            self.n_features_in_ = len(self.feature_names_in_)
        elif not is_frame(X) or [str(c) for c in X.columns] != list(self.feature_names_in_):
            raise ValueError(f"{type(self).__name__} was fitted on a DataFrame with columns "
                             f"{list(self.feature_names_in_)}: give a DataFrame with those columns")
        return check_array(encode_rows(X, schema)[0], dtype=_FLOATS)  # empty cells imputed (the schema's policy)

    def _imputed_inputs(self, X) -> np.ndarray | None:
        """(n, model inputs) bool: the inputs of a table's rows that hold an imputed value, or None."""
        schema = getattr(self, "table_schema_", None)
        if schema is None:
            return None
        return imputed_inputs(schema, empty_cells(X, schema, encode(X, schema)))

    def _by_input_column(self, contributions: np.ndarray) -> np.ndarray:
        """Per-model-input contributions as (n, n_features_in_): for a table, each categorical column's
        one-hot inputs summed into it, 0 for the columns kept out of the features (ids, timestamps, text)."""
        schema = getattr(self, "table_schema_", None)
        if schema is None:
            return contributions
        out = np.zeros((len(contributions), self.n_features_in_))
        columns = list(self.feature_names_in_)
        out[:, [columns.index(c) for c in schema.features]] = group_columns(contributions, schema.groups())
        return out

    def _given_options(self, spec) -> dict:
        """The model options the parameters set: options, latent_dim, hidden, reconstruction."""
        options = dict(self.options or {})
        for name in _RESERVED:
            if name in options:
                raise ConfigError(
                    f"options[{name!r}] repeats a parameter of {type(self).__name__}: set {name}=... instead"
                    if name != "seed" else "options['seed'] is not allowed: set random_state instead"
                )
        if self.latent_dim is not None:
            options["latent_dim"] = self.latent_dim
        for name, value, default in (("hidden", self.hidden, self._default_hidden),
                                     ("reconstruction", self.reconstruction, self._default_reconstruction)):
            if value is not None:
                options[name] = value  # asked for: a kind that fixes it refuses it with a clear error
            elif default is not None and name not in spec.fixed and not (
                    name == "reconstruction" and spec.fixed.get("variational")):
                # A VAE keeps its Bernoulli likelihood on the [0, 1]-scaled features: with squared error
                # (a fixed variance of 1/2) its KL term outweighs the reconstruction and the codes collapse
                # (relative error 0.96 against 0.72 with bce on the digits, 10 epochs).
                options[name] = default
        return options

    def _scaling_method(self, X) -> str | None:
        """The scaling the parameter names ('auto': minmax here; the detector decides from the data)."""
        return "minmax" if self.scaling == "auto" else self.scaling

    def _data_defaults(self, X, method) -> dict:
        """Model options decided by the data when the parameters leave them open (none here)."""
        return {}

    def _fit_length(self, n: int) -> dict:
        """epochs / batch_size / lr decided by the data when left as None (here: ae.fit's own rule)."""
        return {}

    def _example_shape(self, n_features: int) -> tuple[int, ...]:
        if self.input_shape is None:
            return (n_features,)
        shape = tuple(self.input_shape)
        if not all(isinstance(s, Integral) and s > 0 for s in shape):
            raise ConfigError(f"input_shape must be a tuple of positive ints, got {self.input_shape!r}")
        if math.prod(shape) != n_features:
            raise ConfigError(
                f"input_shape={shape} holds {math.prod(shape)} values per example, but X has {n_features} features"
            )
        return shape

    def _to_model_space(self, X: np.ndarray, config: ModelConfig | None = None) -> np.ndarray:
        """Scaled and reshaped to (n_samples, *input_shape), keeping X's float dtype."""
        config = config if config is not None else self.model_.config
        x = self.scaler_.transform(X) if self.scaler_ is not None else X
        if config.reconstruction == "bce" and self.scaler_ is None and (x.min() < 0 or x.max() > 1):
            raise DataError(
                f"X has values in [{x.min():.4g}, {x.max():.4g}], but reconstruction='bce' with scaling=None "
                "needs data in [0, 1]: use scaling='minmax'"
            )
        return np.ascontiguousarray(x, dtype=X.dtype).reshape(len(X), *config.input_shape)

    # ----- inference -----

    def _apply(self, X, fn) -> tuple[np.ndarray, np.dtype]:
        """fn(model, batch) over X in the model's space; float64 X is computed in float64 (see inference.apply)."""
        check_is_fitted(self)
        X = self._input(X, reset=False)
        with torch_threads(threads_for(self.model_, BATCH_SIZE, self.n_threads)):
            return apply(self.model_, self._to_model_space(X), fn, dtype=torch_dtype(X)), X.dtype

    def _decode(self, Z) -> np.ndarray:
        """Codes (n_samples, latent_dim) -> data (n_samples, n_features) in the original units."""
        check_is_fitted(self)
        Z = check_array(Z, dtype=_FLOATS)
        k = self.model_.config.latent_dim
        if Z.shape[1] != k:
            raise ValueError(f"Z has {Z.shape[1]} features, but {type(self).__name__} is expecting {k} features "
                             "(its latent_dim) as input.")
        x = apply(self.model_, Z, lambda m, z: m.decoded(z), dtype=torch_dtype(Z), shape=(k,), name="Z")
        x = x.reshape(len(Z), -1)
        x = self.scaler_.inverse_transform(x) if self.scaler_ is not None else x
        return x.astype(Z.dtype, copy=False)

    # ----- pickling: the model travels as its config and weights, not as a pickled torch module -----

    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.get("model_")
        if model is not None:
            # Plain arrays on the CPU: a model trained on a GPU unpickles on a machine without one,
            # and the pickle does not depend on torch's own pickling of modules.
            state["model_"] = {
                "config": model.config.to_json(),
                "weights": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()},
            }
        return state

    def __setstate__(self, state):
        packed = state.get("model_")
        if isinstance(packed, dict):
            model = model_from_config(ModelConfig.from_json(dict(packed["config"])))
            model.load_state_dict({k: torch.tensor(v) for k, v in packed["weights"].items()})
            state = dict(state, model_=model.eval())
        super().__setstate__(state)

