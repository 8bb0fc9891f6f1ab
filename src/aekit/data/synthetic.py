"""Synthetic tables with known faults: what a user brings (ids, timestamps in several UTC offsets, a free-text
note, categoricals of a few and of many levels, correlated sensors on very different scales, empty
cells) with the faulty rows and the column at fault known, for the tests, benchmarks/mixed_tables.py and
the docs.

    frame, truth = mixed_table(seed=0)      # frame: what a CSV holds; truth: is_anomaly, culprit per row
    frame.to_csv("pump.csv", index=False)

The sensors follow two hidden factors (load, temperature) plus noise, so they move together: `pressure`
and `flow` are near copies of one factor's load, at different scales. The first categorical, `mode`,
shifts two sensors' levels (it matters); the others are drawn at random (they do not). Faults:

    relation  one sensor of a correlated pair takes a value of its usual range that its partner
              contradicts (load and flow disagree): no single column is out of range
    spike     one sensor jumps by 6 to 10 of its standard deviations
    category  an impossible pair of categories: a product made on a line that never makes it
    drift     one sensor's level slowly moves away over a block of consecutive rows

The culprit is the column the fault changed (the sensor, or `product`); `culprits` lists every column an
explanation may rightly blame, comma-separated: for an impossible pair both `line` and `product`.
"""

from __future__ import annotations

import numpy as np

from aekit.errors import check_choice, check_int, check_number

FAULTS = ("relation", "spike", "category", "drift")
SENSORS = ("load", "pressure", "flow", "temperature", "vibration", "current", "voltage", "speed")
# Each sensor: weights on the two factors (load, temperature), noise sd, scale and offset of its units.
_SENSOR_MODEL = {
    "load": ((1.0, 0.0), 0.10, 1.0, 50.0),
    "pressure": ((0.95, 0.1), 0.15, 0.2, 3.0),
    "flow": ((0.9, -0.2), 0.15, 5000.0, 20000.0),
    "temperature": ((0.1, 1.0), 0.10, 8.0, 60.0),
    "vibration": ((0.5, 0.5), 0.30, 0.05, 0.4),
    "current": ((0.8, 0.3), 0.20, 12.0, 40.0),
    "voltage": ((-0.2, 0.3), 0.25, 4.0, 400.0),
    "speed": ((0.7, -0.5), 0.20, 300.0, 1500.0),
}
_RELATED = {"pressure": "load", "flow": "load", "current": "load", "load": "flow"}  # a fault target and its partner
OFFSETS = ("+00:00", "+05:30", "-04:00", "+09:00")


def mixed_table(n_rows: int = 3000, n_sensors: int = 6, categoricals=(3, 50), missing: float = 0.02,
                anomalies: float = 0.03, faults=("relation", "spike"), seed: int = 0):
    """A messy sensor table as a pandas DataFrame, and its truth (a DataFrame row-aligned with it:
    `is_anomaly` 0/1, `fault`, `culprit`, the column the fault changed, and `culprits`, the columns an
    explanation may blame; None for normal rows).

    categoricals: the number of levels of each categorical column (`mode`, then `machine`, `operator`,
    `site`, ...); `missing`: the share of feature cells left empty (never the id or the timestamp);
    faults: the kinds drawn for the anomalies (FAULTS); "category" adds the `line` and `product` columns."""
    import pandas as pd

    check_int("n_rows", n_rows, 20, 10_000_000)
    check_int("n_sensors", n_sensors, 2, len(SENSORS))
    check_number("missing", missing, 0.0, 0.5)
    check_number("anomalies", anomalies, 0.0, 0.5)
    faults = tuple(faults)
    for fault in faults:
        check_choice("fault", fault, FAULTS)
    rng = np.random.default_rng(seed)
    n = n_rows
    sensors = list(SENSORS[:n_sensors])
    columns = {"id": [f"m-{i:06d}" for i in rng.permutation(n)], "timestamp": _timestamps(rng, n)}
    cats = {}
    for j, levels in enumerate(categoricals):
        name = ("mode", "machine", "operator", "site", "batch", "vendor")[j] if j < 6 else f"category_{j}"
        cats[name] = np.asarray([f"{name[:3]}-{v:02d}" for v in rng.integers(0, int(levels), n)], dtype=object)
    if "category" in faults:
        line = rng.integers(0, 3, n)
        cats["line"] = np.asarray([f"line-{v}" for v in line], dtype=object)
        cats["product"] = np.asarray([f"p{v * 3 + rng.integers(0, 3)}" for v in line], dtype=object)
    factors = rng.normal(size=(n, 2))
    values = {}
    mode_shift = _mode_shift(cats.get("mode"), categoricals[0] if categoricals else 0)
    for name in sensors:
        weights, noise, scale, offset = _SENSOR_MODEL[name]
        level = factors @ np.asarray(weights) + noise * rng.normal(size=n)
        if name in ("temperature", "vibration"):
            level = level + mode_shift
        values[name] = level
    truth = _inject(rng, n, anomalies, faults, sensors, values, cats, factors)
    for name in sensors:
        weights, noise, scale, offset = _SENSOR_MODEL[name]
        columns[name] = offset + scale * values[name]
    columns.update(cats)
    columns["note"] = [("checked " if i % 3 else "replaced seal on ") + f"unit {rng.integers(1, 99)}" for i in range(n)]
    frame = pd.DataFrame(columns)
    _blank(rng, frame, [*sensors, *cats], missing)
    return frame, truth


def _timestamps(rng, n: int) -> list[str]:
    """ISO-8601 times one minute apart, each written in one of four UTC offsets (as merged logs are)."""
    base = np.datetime64("2025-03-01T00:00:00") + np.arange(n) * np.timedelta64(60, "s")
    out = []
    for t, offset in zip(base, rng.choice(OFFSETS, n)):
        sign = 1 if offset[0] == "+" else -1
        local = t + sign * (np.timedelta64(int(offset[1:3]), "h") + np.timedelta64(int(offset[4:]), "m"))
        out.append(f"{str(local)[:19]}{offset}")
    return out


def _mode_shift(mode, levels: int) -> np.ndarray | float:
    if mode is None:
        return 0.0
    codes = np.asarray([int(m[-2:]) for m in mode])
    return 1.5 * (codes - (levels - 1) / 2) / max(1, levels - 1)


def _inject(rng, n, share, faults, sensors, values, cats, factors):
    """Change the values of the faulty rows in place; the truth table."""
    import pandas as pd

    count = int(round(share * n))
    rows = rng.choice(n, count, replace=False)
    kinds = rng.choice(np.asarray(faults, dtype=object), count) if count else np.asarray([], dtype=object)
    truth = pd.DataFrame({"is_anomaly": np.zeros(n, dtype=np.int64), "fault": None, "culprit": None, "culprits": None})
    targets = [s for s in sensors if s in _RELATED and _RELATED[s] in sensors]
    drift_target = sensors[rng.integers(0, len(sensors))]
    drift_rows = rows[kinds == "drift"]
    for row, kind in zip(rows, kinds):
        if kind == "relation":
            culprit = targets[rng.integers(0, len(targets))]
            # its partner's factor, reflected: a usual value for this sensor that the partner contradicts
            weights, noise, _, _ = _SENSOR_MODEL[culprit]
            flipped = np.asarray([-factors[row, 0] + np.sign(-factors[row, 0]) * 0.8, factors[row, 1]])
            values[culprit][row] = flipped @ np.asarray(weights) + noise * rng.normal()
        elif kind == "spike":
            culprit = sensors[rng.integers(0, len(sensors))]
            values[culprit][row] += rng.choice((-1, 1)) * rng.uniform(6, 10) * np.std(values[culprit])
        elif kind == "category":
            culprit = "product"
            line = int(cats["line"][row][-1])
            other = (line + rng.integers(1, 3)) % 3
            cats["product"][row] = f"p{other * 3 + rng.integers(0, 3)}"
        else:  # drift: rises over the drifting rows in time order, 3 to 6 standard deviations
            culprit = drift_target
            rank = np.searchsorted(np.sort(drift_rows), row)
            values[culprit][row] += (3 + 3 * rank / max(1, len(drift_rows) - 1)) * np.std(values[culprit])
        blamed = "line,product" if kind == "category" else culprit  # either half of an impossible pair
        truth.loc[row, ["is_anomaly", "fault", "culprit", "culprits"]] = (1, kind, culprit, blamed)
    return truth


def _blank(rng, frame, columns: list, share: float) -> None:
    """Empty a share of the cells of the feature columns, uniformly at random."""
    if share <= 0:
        return
    mask = rng.random((len(frame), len(columns))) < share
    for j, name in enumerate(columns):
        frame.loc[mask[:, j], name] = None
