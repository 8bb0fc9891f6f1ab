"""What the commands read: the option schema (every model option of every kind, every fit option), the
conversion of flags, --set pairs and --config files to the library's types, the shared flags (--data,
--threads, --max-memory, the model and fit flags), and the run and data a command works on (each one
recorded as read: no output of the command goes onto it, runs/storage.py).

Every command is a `Command`: an option that takes one value, given twice, is a usage error (click would
keep the last one silently); repeatable options (--data-option, --set) accumulate.

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
DATA_OPTION_HELP = "an option of the data source, KEY=VALUE (repeatable)"
# The data option `missing` (aekit.data, tables): what an empty feature cell does.
MISSING = ("impute", "drop", "error")
MISSING_HELP = ("empty cells of a table: impute them (the training rows' median, or an empty category), drop "
                "their rows, or stop with an error (default: what the run recorded; for a new run, impute); "
                "the data option missing=")


# ----- commands -----


class Command(click.Command):
    """A command whose single-valued options may be given once: `--epochs 3 --epochs 5` is a usage error
    naming the option, not 5 (multiple=True options, counts and flags are not single values)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing:  # shell completion: no errors
            return super().parse_args(ctx, args)
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        seen = set()
        for param in order:
            single = isinstance(param, click.Option) and not (param.multiple or param.count or param.is_flag)
            if single and param.name in seen:
                raise click.UsageError(f"option {param.opts[-1]} is given more than once: give it once "
                                       "(a later value would silently replace the first)", ctx=ctx)
            seen.add(param.name)
        return super().parse_args(ctx, args)


# ----- options whose definition needs the library (read on first use) -----


class LateOptions(Command):
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
    """One flag per fit option (kebab-case), typed, with its default and range (flags.py)."""
    from aekit.cli import flags

    return flags.fit_flags()


def model_flags() -> list[click.Option]:
    """One flag per model option of every kind (kebab-case), typed, with the kinds' defaults (flags.py)."""
    from aekit.cli import flags

    return flags.model_flags(model_options())


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


class LateHelp(click.Option):
    """An option whose help `late_help()` writes when it is first shown (it reads modules that import torch)."""

    def __init__(self, *args, late_help=None, **kwargs):
        self._late_help = late_help
        super().__init__(*args, **kwargs)

    @property
    def help(self) -> str | None:
        if self._late_help is not None:
            late, self._late_help = self._late_help, None
            self._help = late()
        return self._help

    @help.setter
    def help(self, value) -> None:
        self._help = value


def data_option_keys() -> str:
    """The keys --data-option takes, per kind of source (read from the loaders' signatures)."""
    import inspect

    from aekit import data
    from aekit.data import files

    def keys(loader) -> str:
        return ", ".join(p for p in inspect.signature(loader).parameters if p not in ("path", "path_or_frame"))

    suffixes: dict = {}
    for suffix, loader in data.FILE_FORMATS.items():
        suffixes.setdefault(loader, []).append(suffix)
    parts = [f"{' '.join(names)} files: {keys(loader)}" for loader, names in suffixes.items()]
    named: list = []
    for source in data.list():
        named += [k for k in source.options if k not in named]
    return "; ".join([*parts, f"image folders: {keys(files.load_image_folder)}",
                      f"named datasets: {', '.join(named)} (each one's: `aekit datasets`)"])


def with_data(data_help: str = DATA_HELP, required: bool = False, option_help: str = DATA_OPTION_HELP):
    """--data, --data-option KEY=VALUE (repeatable; its help lists the keys) and --missing, which the
    command receives as one more data option (missing=...), after the --data-option ones."""

    def decorate(fn):
        @functools.wraps(fn)
        def command(*args, missing=None, **kwargs):
            if missing is not None:
                kwargs["data_option"] = (*kwargs["data_option"], f"missing={missing}")
            return fn(*args, **kwargs)

        command = click.option("--missing", type=click.Choice(MISSING), default=None, help=MISSING_HELP)(command)
        command = click.option("--data-option", cls=LateHelp, multiple=True, metavar="KEY=VALUE",
                               late_help=lambda: f"{option_help}. Keys: {data_option_keys()}")(command)
        return click.option("--data", required=required, help=data_help)(command)

    return decorate


class Size(click.ParamType):
    """A memory size: 8G, 512M, 2.5GB or bytes (aekit.budget.parse_size)."""

    name = "size"

    def get_metavar(self, param, ctx=None) -> str:
        return "SIZE"

    def convert(self, value, param, ctx):
        from aekit.budget import parse_size
        from aekit.errors import ConfigError

        try:
            return value if isinstance(value, int) else parse_size(value)
        except ConfigError as e:
            self.fail(str(e), param, ctx)


def with_threads(fn):
    """--threads N: torch threads for this command (training: fit's n_threads; default: 1 for small
    models or a busy machine, see the README), at most the cores this process may use: more is capped,
    with a one-line warning (threads beyond the cores only wait for each other; 1024 of them exhausted
    the process's thread limit, and pyarrow then failed to import).
    --max-memory SIZE: the memory limit every size is checked against before it is allocated
    (aekit.budget), set before the command does anything else; --max-seconds S the same for the time
    limit of work whose length is estimated first (log-likelihood samples)."""

    @functools.wraps(fn)
    def command(*args, threads=None, max_memory=None, max_seconds=None, **kwargs):
        from aekit import budget

        if max_memory is not None:
            budget.set_max_memory(max_memory)
        if max_seconds is not None:
            budget.set_max_seconds(max_seconds)
        if threads is not None and threads > budget.cores():
            click.echo(f"warning: --threads {threads} is more than the {budget.cores()} cores this process may "
                       f"use: using {budget.cores()}", err=True)
            threads = budget.cores()
        return fn(*args, threads=threads, **kwargs)

    command = click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
                           help="time limit for work whose length can be estimated before it starts "
                                "(default: AEKIT_MAX_SECONDS, else one hour)")(command)
    command = click.option("--max-memory", type=Size(), default=None,
                           help="memory limit for the sizes this command allocates, e.g. 8G "
                                "(default: AEKIT_MAX_MEMORY, else 75% of the machine's memory)")(command)
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="torch threads, at most the machine's cores (default: chosen from the model "
                             "size and the machine's load)")(command)


def set_threads(threads) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


# ----- the run and the data a command works on (each recorded as read: runs/storage.py) -----


def load_run(run: str, reads: bool = True):
    """The run in folder `run`; with `reads`, its folder is recorded as read (nothing this command writes
    goes into it). train, resume and report write their own run folder: they pass reads=False."""
    from aekit.runs import storage
    from aekit.runs.run import load_run as load

    if reads:
        storage.note_read(run, f"the run folder {run}")
    return load(run)


def note_data(run, data) -> None:
    """Record the data a command reads: --data when it is a path, else the run's recorded training source."""
    from aekit.runs import storage

    if data is None and run is not None and run.source:
        data = run.source.get("name")
    if isinstance(data, str):
        storage.note_read(data, f"the data ({data})")


def run_data(run, data, data_option):
    """--data (default: the run's recorded training source) in the run's scaling."""
    note_data(run, data)
    return run.dataset(data, data_options(data_option))
