"""What the commands read: the option schema (every model option of every kind, every fit option), the
conversion of flags, --set pairs and --config files to the library's types, the shared flags (--data,
--threads, the model and fit flags), and the run and data a command works on.

The schema lives in modules that import torch, so it is read on first use: `aekit --help` lists the
commands without it (LateOptions, LateChoice).
"""

from __future__ import annotations

import functools
import types
import typing
from pathlib import Path

import click

from aekit.errors import suggest

SEED = click.IntRange(0, 2**32 - 1)
RUN_OPTIONS = ("device", "out", "resume", "overwrite", "verbose")
DATA_HELP = "dataset name or path (default: the run's training data)"


# ----- options whose definition needs the library (read on first use) -----


class LateOptions(click.Command):
    """A command whose last options come from `late_options()`, called when they are first needed (its
    own --help, parsing, the docs), not when the command is registered."""

    def __init__(self, *args, late_options=None, **kwargs):
        self._late_options = late_options
        super().__init__(*args, **kwargs)

    @property
    def params(self) -> list[click.Parameter]:
        if self._late_options is not None:
            late, self._late_options = self._late_options, None
            self._params.extend(late())
        return self._params

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._params = value


class LateChoice(click.Choice):
    """click.Choice over a list that `load()` returns on first use (a constant of a module that imports torch)."""

    def __init__(self, load, case_sensitive: bool = True):
        self._load = load
        self.case_sensitive = case_sensitive

    @functools.cached_property
    def choices(self) -> tuple:
        return tuple(self._load())

    def to_info_dict(self) -> dict:
        return {**super().to_info_dict(), "param_type": "Choice"}  # what it describes: a click.Choice


def fit_fields() -> dict:
    """FitOptions' fields by name, in their order."""
    import dataclasses

    from aekit.training.options import FitOptions

    return {f.name: f for f in dataclasses.fields(FitOptions)}


@functools.cache
def _types() -> dict:
    """The type of every option, read from the dataclasses' annotations (and the run options')."""
    from aekit.models.config import ModelConfig
    from aekit.training.options import FitOptions

    return {**typing.get_type_hints(ModelConfig), **typing.get_type_hints(FitOptions),
            "device": str | None, "out": str | None, "resume": bool, "overwrite": bool, "verbose": int,
            "kind": str, "data": str, "data_options": dict}


def model_options() -> list[str]:
    """The model options of every kind (and seed), in the kinds' order."""
    from aekit.models.kinds import kinds

    names = []
    for k in kinds():
        names += [n for n in k.options if n not in names]
    return names + (["seed"] if "seed" not in names else [])


def fit_flags() -> list[click.Option]:
    """One flag per fit option (kebab-case); n_threads is --threads (with_threads)."""
    return [click.Option([f"--{name.replace('_', '-')}"], default=None, help=f"fit option {name}")
            for name in fit_fields() if name not in ("seed", "n_threads")]


def model_flags() -> list[click.Option]:
    """One flag per model option of every kind (kebab-case)."""
    return [click.Option([f"--{name.replace('_', '-')}"], default=None,
                         help=f"{name}: comma-separated ints, e.g. 256,64" if name in ("hidden", "channels")
                         else f"model option {name} (see `kinds`)")
            for name in model_options()]


# ----- converting what the user typed -----


def convert(name: str, value):
    """A value from the command line, a --set or a config file, converted to the option's type."""
    return as_type(_types().get(name, str), value)


def as_type(hint, value):
    """value as `hint` (bool, int, float, str, dict, tuple[int, ...] or an Optional of one); ValueError if it is not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        return as_type(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [v for v in str(value).strip().strip("()[]").split(",")
                                                              if v.strip()]
        return tuple(as_type(int, v) for v in items)
    if hint is bool:
        text = str(value).lower()
        if isinstance(value, bool) or text in ("true", "1", "yes", "false", "0", "no"):
            return value if isinstance(value, bool) else text in ("true", "1", "yes")
        raise ValueError("expected true or false")
    if hint is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected an integer")
        try:
            return int(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError("expected an integer") from None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("expected a number")
        try:
            return float(value)
        except ValueError:
            raise ValueError("expected a number") from None
    if hint is dict:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping")
        return value
    if isinstance(value, (list, dict)):
        raise ValueError("expected a single value")
    return value if value is None else str(value)


def settings_from(pairs: dict, where: str) -> dict:
    """{option: value} from flags, --set or a config file: names checked, values converted."""
    out = {}
    known = model_options() + list(fit_fields()) + list(RUN_OPTIONS) + ["kind", "data", "data_options"]
    for raw_key, value in pairs.items():
        key = raw_key.replace("-", "_")
        if key not in known:
            raise click.UsageError(f"{where}: unknown option {raw_key!r}{suggest(key, known)}")
        try:
            out[key] = convert(key, value)
        except (TypeError, ValueError) as e:
            raise click.UsageError(f"{where}: {raw_key}={value!r}: {e}") from None
    return out


def key_values(items, flag: str) -> dict:
    """KEY=VALUE strings -> {key: value}, values read as YAML scalars (3 -> int, 0.5 -> float, true -> bool)."""
    import yaml

    pairs = {}
    for item in items:
        if "=" not in item:
            raise click.UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            pairs[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            pairs[key.strip()] = value
    return pairs


def data_options(items) -> dict:
    """The --data-option KEY=VALUE pairs, keys in snake_case."""
    return {k.replace("-", "_"): v for k, v in key_values(items, "--data-option").items()}


def config_file_settings(config_file) -> dict:
    """The options of a YAML --config file, converted like the flags."""
    if not config_file:
        return {}
    import yaml

    path = Path(config_file)
    if not path.is_file():
        raise click.UsageError(f"--config {path}: file not found")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise click.UsageError(f"--config {path}: not valid YAML: {where}{problem}") from None
    except UnicodeDecodeError:
        raise click.UsageError(f"--config {path}: not UTF-8 text") from None
    if not isinstance(loaded, dict):
        raise click.UsageError(f"--config {path}: expected a mapping of option: value")
    return settings_from(loaded, f"--config {path}")


# ----- shared flags -----


def with_data(data_help: str = DATA_HELP, required: bool = False, option_help: str | None = None):
    """--data and --data-option KEY=VALUE (repeatable)."""

    def decorate(fn):
        fn = click.option("--data-option", multiple=True, metavar="KEY=VALUE", help=option_help)(fn)
        return click.option("--data", required=required, help=data_help)(fn)

    return decorate


def with_threads(fn):
    """--threads N: torch threads for this command (training: fit's n_threads; default: 1 for small
    models or a busy machine, see the README)."""
    fn = click.option("--threads", type=click.IntRange(1, 1024), default=None,
                      help="torch threads (default: chosen from the model size and the machine's load)")(fn)
    return fn


def set_threads(threads) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


# ----- the run and the data a command works on -----


def load_run(run: str):
    from aekit.runs.run import load_run as load

    return load(run)


def run_data(run, data, data_option):
    """--data (default: the run's recorded training source) in the run's scaling."""
    return run.dataset(data, data_options(data_option))
