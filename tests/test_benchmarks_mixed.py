"""benchmarks/mixed_tables.py on a tiny run: the design, the raw results' shape and ranges, a failure kept as a note."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def mixed(one_thread):
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling `common` as the scripts do
    try:
        import mixed_tables
        yield mixed_tables
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_designs(mixed):
    ofat = [mixed.label(s) for s in mixed.settings("ofat")]
    assert len(ofat) == len(set(ofat)) == 10 and ofat[0] == mixed.label(mixed.BASE)
    assert len(mixed.settings("grid")) == 4 * 3 * 4
    assert mixed.matches(mixed.BASE, "missing=0.02") and not mixed.matches(mixed.BASE, "missing=0")


def test_tiny_run(mixed, tmp_path, capsys):
    detectors = ["cli", "ours", "IsolationForest"] + (["ECOD"] if importlib.util.find_spec("pyod") else [])
    out = tmp_path / "raw.csv"
    results = mixed.main(["--seeds", "0", "--rows", "200", "--settings", "missing=0 fault=relation+spike",
                          "--detectors", *detectors, "--threads", "1", "--out", str(out)])
    assert results.shape[0] == len(detectors) and list(results["detector"]) == detectors
    assert pd.read_csv(out).shape == results.shape
    assert results["auc"].notna().all(), results["note"].tolist()  # no empty cells: every detector runs
    assert results["auc"].between(0, 1).all()
    ours = results["detector"].isin(["cli", "ours"])
    assert results.loc[ours, "top1"].between(0, 1).all() and results.loc[~ours, "top1"].isna().all()
    printed = capsys.readouterr().out
    assert "load average" in printed and all(f"| {d} |" in printed for d in detectors)


def test_failure_is_a_note(mixed, tmp_path):
    # 2% empty cells: ours either copes (after issue 24's work) or the error becomes the row's note
    [row] = mixed.benchmark({**mixed.BASE, "missing": 0.02}, 0, 100, ["ours"], 1)
    assert (row["auc"] is None and row["note"]) or (0 <= row["auc"] <= 1 and not row["note"])
    assert np.isfinite(row["seconds"])
