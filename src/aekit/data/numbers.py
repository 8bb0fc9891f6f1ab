"""Numbers as people write them (issue 25, mechanism 5): thousands separators and decimal commas.

A text column whose cells are not all plain numbers is tried in every FORMAT, a thousands separator
(",", ".", a space, a no-break space, a narrow no-break space or "'") and a decimal mark ("." or ","):

    1,000   12,345.6   1 000   1'000   1.000,5   0,25   -3.5

A cell is a number in a format when it is, whole, an optional sign, then digits either plain or grouped
by the separator in threes after a first group of one to three (1,000 and 12,345,678, not 1,00 or
1,2,3), then optionally the decimal mark and digits. The column's reading is the one under which the
most cells are numbers; among equals, plain numbers first (pandas' own reading: "1.000" is one), then
the FORMATS in their order, so that a column of only "1,000" and "12,345" reads one thousand and twelve
thousand (the English convention) rather than decimal commas, and a single "1,5" or "1.000,5" decides
for decimal commas. Any letter, a second kind of mark in the wrong place or a group that is not three
digits keeps a cell from being a number: codes such as "A-1,2", "1.2.3" or "12,34,56" stay text.

The reading of a numeric column is recorded in its table schema (TableSchema.formats) so that new files
are read the same way.
"""

from __future__ import annotations

import re

import numpy as np

THOUSANDS = (",", ".", " ", "\u00a0", "\u202f", "'")
DECIMALS = (".", ",")
FORMATS = tuple((t, d) for d in DECIMALS for t in THOUSANDS if t != d)  # in the order ties are decided
MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none", "<na>", "nat"}  # cells that mean "no value"
# What a written number can be made of: digits, signs, separators and marks (a cheap first filter).
_NUMBERISH = r"[+-]?[\d.,' \u00a0\u202f]*\d[\d.,' \u00a0\u202f]*"


def as_format(fmt) -> tuple[str, str] | None:
    """(thousands, decimal) from a schema's {"thousands": ..., "decimal": ...} (None: plain numbers)."""
    return None if fmt is None else (fmt["thousands"], fmt["decimal"])


def to_json(fmt: tuple[str, str]) -> dict:
    return {"thousands": fmt[0], "decimal": fmt[1]}


def is_format(value) -> bool:
    """Whether a schema's recorded format is one of FORMATS."""
    return (isinstance(value, dict) and set(value) == {"thousands", "decimal"}
            and (value["thousands"], value["decimal"]) in FORMATS)


def _pattern(fmt: tuple[str, str]) -> str:
    t, d = re.escape(fmt[0]), re.escape(fmt[1])
    return rf"[+-]?(?:(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)(?:{d}\d+)?|{d}\d+)"


def describe(fmt: tuple[str, str] | None) -> str:
    if fmt is None:
        return "plain numbers"
    names = {",": "','", ".": "'.'", " ": "a space", "\u00a0": "a no-break space", "\u202f": "a narrow no-break space",
             "'": '"\'"'}
    return f"{names[fmt[0]]} as the thousands separator and {names[fmt[1]]} as the decimal mark"


def readings(text) -> list[tuple[tuple[str, str] | None, np.ndarray]]:
    """(format, which cells are numbers in it) for plain numbers (format None) and, when some cells are
    not, for every FORMAT. text: a column's non-empty cells as stripped strings (a pandas Series)."""
    import pandas as pd

    plain = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    out = [(None, plain)]
    if plain.all():
        return out
    numberish = text.str.fullmatch(_NUMBERISH).to_numpy(dtype=bool, na_value=False)
    if not numberish.any():
        return out
    candidates = text[numberish]
    present = {t for t in THOUSANDS if candidates.str.contains(t, regex=False).any()}
    unused = set()  # decimal marks already tried with a separator that no cell holds: the same reading again
    for fmt in FORMATS:
        if fmt[0] not in present:
            if fmt[1] in unused:
                continue
            unused.add(fmt[1])
        mask = np.zeros(len(text), dtype=bool)
        mask[numberish] = candidates.str.fullmatch(_pattern(fmt)).to_numpy(dtype=bool, na_value=False)
        out.append((fmt, mask))
    return out


def best_reading(text) -> tuple[tuple[str, str] | None, np.ndarray, np.ndarray]:
    """(format, its number cells, the cells that are numbers in some format): the reading under which the
    most cells are numbers, the first of equals (module docstring)."""
    found = readings(text)
    counts = [int(mask.sum()) for _, mask in found]
    fmt, mask = found[counts.index(max(counts))]
    return fmt, mask, np.logical_or.reduce([m for _, m in found])


def to_numbers(text, fmt: tuple[str, str] | None) -> np.ndarray:
    """float64 values of text cells (stripped strings) read in `fmt` (None: plain numbers); NaN for a cell
    that is no number in it."""
    import pandas as pd

    if fmt is None:
        return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = text.str.fullmatch(_pattern(fmt)).fillna(False).astype(bool)
    plain = text.where(ok).str.replace(fmt[0], "", regex=False).str.replace(fmt[1], ".", regex=False)
    return pd.to_numeric(plain, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def mixed_reason(text, any_number: np.ndarray, best: np.ndarray) -> str | None:
    """Why a column of written numbers is not read as numbers, when every cell is a number in some format
    but no one format reads most of them; else None."""
    if not any_number.all() or best.all():
        return None
    first = text.iloc[int(np.argmax(best))] if best.any() else text.iloc[0]
    other = text.iloc[int(np.argmin(best))]
    return (f"holds numbers written in more than one way ({first!r} and {other!r}: no one thousands separator "
            "and decimal mark reads them all), so it is not read as numbers")


def cell_text(series):
    """A text column's cells as stripped strings, "" for a missing one."""
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


def column_format(series):
    """How a column's numbers are written: None for numbers (or plain numbers in text), the (thousands,
    decimal) format of numbers.py that reads every cell, or False when none does."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype):
        return None
    text = cell_text(series)
    text = text[~text.str.lower().isin(MISSING_TEXT)]
    fmt, mask, _ = best_reading(text)
    return fmt if mask.all() else False


def column_numbers(series, fmt) -> np.ndarray:
    """A column as float64 (NaN for a missing cell or one that is no number), text read in `fmt`."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_complex_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return to_numbers(cell_text(series), fmt)
