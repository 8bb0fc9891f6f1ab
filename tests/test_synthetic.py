"""The synthetic messy tables (aekit.data.synthetic): what they promise the tests and benchmarks that use them."""

import numpy as np
import pytest

import aekit as ae
from aekit.data.synthetic import FAULTS, mixed_table


def test_a_mixed_table_holds_what_a_user_brings_and_its_truth():
    frame, truth = mixed_table(n_rows=2000, categoricals=(3, 50), missing=0.05, anomalies=0.04,
                               faults=FAULTS, seed=3)
    assert len(frame) == len(truth) == 2000 and frame["id"].is_unique
    assert {"id", "timestamp", "mode", "machine", "line", "product", "note"} <= set(frame.columns)
    assert frame["machine"].nunique() == 50 and frame["mode"].nunique() == 3
    offsets = {t[-6:] for t in frame["timestamp"]}
    assert len(offsets) == 4
    features = frame.drop(columns=["id", "timestamp", "note"])
    assert 0.04 < features.isna().to_numpy().mean() < 0.06  # the stated share of empty cells, +-1 point
    assert frame[["id", "timestamp", "note"]].notna().all().all()
    assert truth["is_anomaly"].sum() == 80 and set(truth["fault"].dropna()) == set(FAULTS)
    assert set(truth["culprit"].dropna()) <= set(frame.columns)
    wrong_line = [p for p, line, fault in zip(frame["product"], frame["line"], truth["fault"])
                  if isinstance(p, str) and isinstance(line, str) and int(p[1:]) // 3 != int(line[-1])]
    assert len(wrong_line) <= (truth["fault"] == "category").sum()  # impossible pairs come from the faults only
    again, _ = mixed_table(n_rows=2000, categoricals=(3, 50), missing=0.05, anomalies=0.04, faults=FAULTS, seed=3)
    assert frame.equals(again)


def test_a_relation_fault_stays_inside_the_sensors_usual_range():
    frame, truth = mixed_table(n_rows=3000, anomalies=0.05, faults=("relation",), seed=1)
    for culprit in truth["culprit"].dropna().unique():
        normal = frame.loc[truth["is_anomaly"] == 0, culprit].dropna()
        faulty = frame.loc[truth["culprit"] == culprit, culprit].dropna()
        low, high = np.percentile(normal, [0.5, 99.5])
        assert ((faulty > low) & (faulty < high)).mean() > 0.8, culprit  # most stay inside; the partner tells


def test_bad_parameters_are_named():
    with pytest.raises(ae.ConfigError, match="fault"):
        mixed_table(faults=("meltdown",))
    with pytest.raises(ae.ConfigError, match="missing"):
        mixed_table(missing=0.9)
