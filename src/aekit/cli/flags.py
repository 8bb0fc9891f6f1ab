"""The model and fit flags of `train` and `resume`, built from ModelConfig's and FitOptions' fields: each
flag's type from the field's type hint (INTEGER, FLOAT, a choice, INT,INT,...), its help from the comment
the dataclass writes beside the field, its default (the kinds' defaults for a model option; "chosen from
the data" where None means the data decide) and its range.

The flags only check the type of a value: ranges are shown, and checked by the library (one message for a
flag, a --set pair and a config file). A flag that is not given stays None, so that the kind's and the
data's defaults apply; "none" sets an optional option to None.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections import Counter

import click

# The bounds that FitOptions.validate and ModelConfig.validate check, as `--help` shows them.
RANGES = {
    "epochs": "x>=1", "batch_size": "x>=1", "lr": "x>0", "val_fraction": "0<=x<1", "patience": "x>=1",
    "clip_grad_norm": "x>0", "weight_decay": "x>=0", "contamination": "0<x<=0.5", "latent_dim": "x>=1",
    "beta": "x>=0", "kl_warmup_epochs": "x>=0", "free_bits": "x>=0", "iwae_samples": "x>=1",
    "n_classes": "x>=0", "label_dropout": "0<=x<1", "sparsity_weight": "x>=0", "sparsity_target": "0<x<1",
    "noise_level": "x>=0", "contractive_weight": "x>=0", "contractive_projections": "x>=0", "dropout": "0<=x<1",
    "input_clip": "x>0", "code_noise": "x>=0", "rate_weight": "x>=0", "pretrain_epochs": "x>=0",
    "seed": "0<=x<2**63",
}
# None for these means "decided from the data" (FitOptions.resolved, table_fit_length), not "off".
DATA_DECIDED = ("epochs", "batch_size")
# Model options a table's schema sets and no person types (the one-hot groups of its categorical columns):
# no flag (a config file or --set can still name them).
NO_FLAG = ("categorical_groups",)


def _choices() -> dict:
    """The allowed values of the choice options (the library's own constants)."""
    from aekit.models import config
    from aekit.models.nets import ACTIVATIONS
    from aekit.training.options import LR_SCHEDULES
    from aekit.training.precision import PRECISIONS

    return {"activation": tuple(ACTIVATIONS), "code_activation": tuple(ACTIVATIONS),
            "reconstruction": config.RECONSTRUCTIONS, "architecture": config.ARCHITECTURES,
            "sparsity": config.SPARSITIES, "noise": config.NOISES, "init": config.INITS,
            "posterior": config.POSTERIORS, "objective": config.OBJECTIVES, "precision": PRECISIONS,
            "lr_schedule": LR_SCHEDULES}


class Typed(click.ParamType):
    """A value of a type hint (int, float, bool, tuple[int, ...] or an Optional of one), checked when the
    command line is parsed; "none" for an Optional (kept as the text: the caller converts it)."""

    def __init__(self, hint):
        self.hint = hint
        inner, self.optional = _unwrap(hint)
        self.name = {int: "integer", float: "float", bool: "boolean"}.get(inner, "ints" if inner is tuple else "text")
        self.inner = inner

    def get_metavar(self, param, ctx=None) -> str:
        metavar = {"ints": "INT,INT,...", "integer": "INTEGER", "float": "FLOAT", "boolean": "BOOLEAN"}.get(self.name)
        return metavar or "TEXT"

    def convert(self, value, param, ctx):
        from aekit.cli.options import as_type

        if self.optional and isinstance(value, str) and value.strip().lower() in ("none", "null"):
            return "none"
        try:
            return as_type(self.hint, value)
        except (TypeError, ValueError) as e:
            self.fail(f"{value!r}: {e}", param, ctx)


def _unwrap(hint) -> tuple:
    """(the type inside an Optional, whether it was one); tuple for tuple[int, ...]."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (_unwrap(rest[0])[0] if len(rest) == 1 else str), True
    if origin is tuple:
        return (tuple if args[-1:] == (Ellipsis,) and args[0] is int else str), False
    return hint, False


def _type(name: str, hint) -> click.ParamType:
    choices = _choices().get(name)
    if choices is None:
        return Typed(hint)
    return click.Choice([*choices, *(["none"] if _unwrap(hint)[1] else [])])


@functools.cache
def field_docs(cls) -> dict:
    """{field: its comment} from a dataclass's source: the comment lines above a field and the one beside it."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (a frozen or byte-compiled install): the flags keep short help
        return {}
    docs, above, previous = {}, [], ""
    for line in lines[1:]:
        text = line.strip()
        if text.startswith(("def ", "@")):
            break
        if text.startswith("#"):
            above.append(text.lstrip("# "))
            continue
        field = re.match(r"(\w+)\s*:[^=#]+(=[^#]*)?(#\s*(.*))?$", text)
        if field:
            own = " ".join([*above, *([field.group(4)] if field.group(4) else [])]).strip()
            # a field without a comment right after one with a comment shares it (code_noise, rate_weight)
            doc = own or previous
            docs[field.group(1)] = re.sub(r"\bNone\b", "none", doc)  # what a person types on the command line
        above, previous = [], (doc if field else "")
    return docs


def _kind_defaults(name: str) -> str:
    """The kinds' defaults of a model option: one value, or the usual one and the kinds that differ."""
    from aekit.models.kinds import kinds

    values = {k.name: k.options[name] for k in kinds() if name in k.options}
    if not values:
        return ""
    count = Counter(_shown(v) for v in values.values())
    usual = count.most_common(1)[0][0]
    others = {}
    for kind, value in values.items():
        if _shown(value) != usual:
            others.setdefault(_shown(value), []).append(kind)
    return "; ".join([usual, *(f"{value} for {', '.join(ks)}" for value, ks in others.items())])


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "() (none)"
    return str(value)


def _kinds_of(name: str) -> str:
    """' (kinds: vae, cvae)' when only some kinds take the option."""
    from aekit.models.kinds import kinds

    takes = [k.name for k in kinds() if name in k.options]
    return "" if len(takes) == len(kinds()) or not takes else f" (kinds: {', '.join(takes)})"


def _table_decided() -> set:
    """The model options a table's columns decide when the user leaves them open (kinds.data_defaults)."""
    from aekit.models.kinds import data_defaults, kinds

    return {name for k in kinds() for name in data_defaults(k.name, 10)} - set(NO_FLAG)


def _help(doc: str, default: str, bound: str | None) -> str:
    extra = "; ".join(filter(None, [f"default: {default}" if default else "", bound]))
    return f"{doc} [{extra}]" if extra else doc


def fit_flags() -> list[click.Option]:
    """One flag per fit option (kebab-case); n_threads is --threads and seed --seed (model_flags)."""
    import dataclasses

    from aekit.training.options import FitOptions

    hints, docs = typing.get_type_hints(FitOptions), field_docs(FitOptions)
    flags = []
    for f in dataclasses.fields(FitOptions):
        if f.name in ("seed", "n_threads"):
            continue
        default = "chosen from the data" if f.name in DATA_DECIDED else _shown(f.default)
        flags.append(click.Option([f"--{f.name.replace('_', '-')}"], type=_type(f.name, hints[f.name]),
                                  default=None, help=_help(docs.get(f.name) or f"fit option {f.name}", default,
                                                           RANGES.get(f.name))))
    return flags


def model_flags(names: list[str]) -> list[click.Option]:
    """One flag per model option (kebab-case), with the kinds' defaults."""
    from aekit.models.config import ModelConfig

    hints, docs, by_table = typing.get_type_hints(ModelConfig), field_docs(ModelConfig), _table_decided()
    flags = []
    for name in (n for n in names if n not in NO_FLAG):
        default = _kind_defaults(name) or "0"
        if name in by_table:
            default += "; a table: chosen from its columns"
        doc = (docs.get(name) or f"model option {name}") + _kinds_of(name)
        flags.append(click.Option([f"--{name.replace('_', '-')}"], type=_type(name, hints.get(name, str)),
                                  default=None, help=_help(doc, default, RANGES.get(name))))
    return flags
