"""The project's own exception types.

Each one also derives from the built-in type a user would naturally catch
(``ValueError`` for bad input, ``RuntimeError`` for a failed run), so
``except ValueError`` keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AutoencodersError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(AutoencodersError, ValueError):
    """An unknown kind or option, or an option value out of its allowed range."""


class DataError(AutoencodersError, ValueError):
    """Data that cannot be used: wrong shape, NaN/inf, empty, unreadable file."""


class CheckpointError(AutoencodersError, ValueError):
    """A run folder that is missing, foreign, tampered with or from an incompatible version."""


class TrainingError(AutoencodersError, RuntimeError):
    """Training could not go on (for example the loss became NaN)."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(what: str, name: str, choices: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown name, listing the valid ones and the closest."""
    choices = sorted(choices)
    return ConfigError(
        f"unknown {what} {name!r}{suggest(name, choices)}; valid: {', '.join(choices)}"
    )
