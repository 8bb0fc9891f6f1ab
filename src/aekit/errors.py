"""The project's own exception types.

Each one also derives from the built-in type a user would naturally catch
(``ValueError`` for bad input, ``RuntimeError`` for a failed run), so
``except ValueError`` keeps working.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable


class AekitError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(AekitError, ValueError):
    """An unknown kind or option, or an option value out of its allowed range."""


class DataError(AekitError, ValueError):
    """Data that cannot be used: wrong shape, NaN/inf, empty, unreadable file."""


class CheckpointError(AekitError, ValueError):
    """A run folder that is missing, foreign, tampered with or from an incompatible version."""


class TrainingError(AekitError, RuntimeError):
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


# ----- the one set of argument checks: every option of the library goes through these -----


def check_int(name: str, value, low: int | None = None, high: int | None = None, *, low_open: bool = False,
              error=ConfigError) -> int:
    """value itself if it is an int (not a bool) within the bounds; else `error` naming name, value and bounds.

    low_open excludes the bound itself ("an int > 0").
    """
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not (ok and _within(value, low, high, low_open, False)):
        raise error(f"{name} must be an int{_bounds(low, high, low_open, False)}, got {value!r}")
    return value


def check_number(name: str, value, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, phrase: str = "must lie in", error=ConfigError) -> float:
    """value as a float if it is a finite real number (not a bool) within the bounds; else `error`.

    low_open / high_open exclude the bound itself (a learning rate must be > 0). A range
    with both bounds reads "<name> <phrase> (low, high]".
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and _within(value, low, high, low_open, high_open)):
        if low is not None and high is not None:
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise error(f"{name} {phrase} {interval}, got {value!r}")
        raise error(f"{name} must be a finite number{_bounds(low, high, low_open, high_open)}, got {value!r}")
    return float(value)


def check_choice(name: str, value, choices: Iterable, optional: bool = False, error=ConfigError):
    """value if it is one of choices (or None when optional); else `error` listing them and the closest."""
    choices = tuple(choices)
    if (optional and value is None) or (isinstance(value, str) and value in choices):
        return value
    allowed = ", ".join(repr(c) for c in ((None,) if optional else ()) + choices)
    raise error(f"{name}={value!r} is not one of {allowed}{suggest(str(value), choices)}")


def _within(value, low, high, low_open, high_open) -> bool:
    if low is not None and not (value > low if low_open else value >= low):
        return False
    return high is None or (value < high if high_open else value <= high)


def _bounds(low, high, low_open, high_open) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " " + " and ".join(parts) if parts else ""


class ConfigWarning(UserWarning):
    """A valid configuration that will probably not do what the user wants (a code as large as the input)."""
