"""Issue 25, mechanism 5 and two leftovers: numbers as people write them (thousands separators, decimal
commas, times with and without a UTC offset), output columns that never collide with the user's own,
a conditional VAE without labels, and precision="auto" for fully convolutional models on a CPU."""

import warnings

import numpy as np
import pytest
import torch

import aekit as ae
from aekit.anomaly.detect import detect, output_names
from aekit.data.schema import TableSchema, TableWarning, infer_schema
from aekit.data.tables import load_table, read_frame
from aekit.training import precision


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _csv(tmp_path, header, cells, delimiter=",", name="t.csv"):
    """A table of a written column `v` beside a numeric column `n`, one row per cell."""
    rows = [f"{header}{delimiter}n"] + [f"{cell}{delimiter}{i}" for i, cell in enumerate(cells)]
    return _write(tmp_path / name, "\n".join(rows) + "\n")


# ----- thousands separators and decimal commas -----

@pytest.mark.parametrize("cells, delimiter, values", [
    (['"1,000"', '"12,345.6"', '"-2,500"', "7", '"1,234,567"', "0.5"], ",", [1000, 12345.6, -2500, 7, 1234567, 0.5]),
    (["1 000", "12 345", "3", "250 000", "1 000 000", "9"], ",", [1000, 12345, 3, 250000, 1000000, 9]),
    (["1.000,5", "2,25", "12.345", "0,5", "3", "1.234.567,125"], ";", [1000.5, 2.25, 12345, 0.5, 3, 1234567.125]),
    (["0,25", "1,5", "10,75", "3", "2,5", "4"], ";", [0.25, 1.5, 10.75, 3, 2.5, 4]),
    (["1'000", "25'000", "3.5", "12", "1'000'000", "7"], ",", [1000, 25000, 3.5, 12, 1000000, 7]),
    (["1\u00a0000", "2\u00a0500", "3", "12\u00a0345,5", "5", "6"], ";", [1000, 2500, 3, 12345.5, 5, 6]),
])
def test_written_numbers_are_read_as_numbers(tmp_path, cells, delimiter, values):
    path = _csv(tmp_path, "v", cells, delimiter)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read without a word of doubt
        ds = load_table(path, delimiter=delimiter, scale="none")
    schema = TableSchema.from_json(ds.info["table"])
    assert schema.roles["v"] == "numeric" and "v" in schema.formats
    np.testing.assert_allclose(np.asarray(ds.x)[:, schema.features.index("v")], values, rtol=1e-7)  # float32 inputs


def test_one_thousand_reads_as_a_thousand_and_the_schema_reads_new_files_the_same_way(tmp_path):
    path = _csv(tmp_path, "price", ['"1,000"', '"12,345"', "", '"2,000"', '"5,500"'])
    ds = load_table(path, scale="none")
    schema = TableSchema.from_json(ds.info["table"])
    assert schema.formats == {"price": {"thousands": ",", "decimal": "."}}
    assert schema.fill["price"] == 3750.0  # the median of the written numbers, for the empty cell
    x = np.asarray(ds.x)[:, 0]
    np.testing.assert_array_equal(x, [1000, 12345, 3750, 2000, 5500])
    # A new file of plain numbers and "1,000" alone (decimal commas would read 1.0): read as the schema says.
    new = load_table(_csv(tmp_path, "price", ['"1,000"', "250"], name="new.csv"), schema=ds.info["table"],
                     scale="none")
    np.testing.assert_array_equal(np.asarray(new.x)[:, 0], [1000, 250])
    bad = _csv(tmp_path, "price", ['"1,000"', '"1,5"'], name="bad.csv")
    with pytest.raises(ae.DataError, match=r"row 3, column 'price': '1,5' is not a number written with ','"):
        load_table(bad, schema=ds.info["table"])


@pytest.mark.parametrize("cells", [
    ["A-1,2", "B-3,4", "A-1,2", "C-5,6", "B-3,4", "A-1,2"],  # codes with commas
    ["1.2.3", "1.10.0", "2.0.1", "1.2.3", "2.0.1", "1.10.0"],  # versions
    ["12,34,56", "1,2,3", "12,34,56", "1,2,3", "1,2,3", "12,34,56"],  # lists, not groups of three
])
def test_codes_that_only_look_like_numbers_stay_categories(tmp_path, cells):
    path = _csv(tmp_path, "code", [f'"{c}"' for c in cells] * 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schema = infer_schema(read_frame(path))
    assert schema.roles["code"] == "categorical" and schema.formats == {}


def test_a_typo_in_a_column_of_written_numbers_names_the_row(tmp_path):
    path = _csv(tmp_path, "amount", ['"1,000"', '"2,500"', "twelve", '"3,000"'])
    with pytest.raises(ae.DataError, match=r"row 4, column 'amount': 'twelve' is not a number \(most of the column "
                                           r"is, with ',' as the thousands separator"):
        load_table(path)


def test_numbers_in_several_formats_are_named_in_a_warning_with_the_reason(tmp_path):
    path = _csv(tmp_path, "v", ['"1,000.5"', '"1.000,5"', "1'000.5"] * 4)
    with pytest.warns(TableWarning, match=r"column 'v' holds numbers written in more than one way .*not read "
                                          r"as numbers.*exclude=\['v'\]"):
        schema = infer_schema(read_frame(path))
    assert schema.roles["v"] != "numeric"


def test_times_with_and_without_a_utc_offset_are_a_timestamp(tmp_path):
    times = ["2025-03-01T08:00:00+01:00", "2025-03-01T09:00:00", "2025-03-01T10:30:00+05:30",
             "2025-03-01T11:00:00Z", "2025-03-01T12:00:00", "2025-03-01T13:00:00-04:00"]
    path = _csv(tmp_path, "time", times)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_table(path)
    schema = TableSchema.from_json(ds.info["table"])
    assert schema.roles["time"] == "timestamp" and schema.features == ["n"]
    assert list(ds.ids["time"]) == times  # carried as written


# ----- output columns -----

def test_output_names_prefix_ours_only_where_the_data_has_the_name():
    assert output_names(["id"], ["score", "outlier"]) == {"score": "score", "outlier": "outlier"}
    assert output_names(["score", "aekit_score"], ["score", "outlier"]) == {"score": "aekit_aekit_score",
                                                                            "outlier": "outlier"}


def test_detect_keeps_the_users_score_column_and_prefixes_ours(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    rows = ["score,outlier,a,b,c"] + [f"s-{i:03d},o-{i:03d},{a:.4f},{b:.4f},{c:.4f}"
                                       for i, (a, b, c) in enumerate(rng.normal(size=(n, 3)))]
    path = _write(tmp_path / "t.csv", "\n".join(rows) + "\n")
    ds = ae.data.load(str(path))
    assert list(ds.ids.columns) == ["score", "outlier"]
    model = ae.build("ae", input_shape=ds.input_shape, hidden=(8,), latent_dim=2, reconstruction="mse")
    ae.fit(model, ds, epochs=2, out=tmp_path / "run", verbose=0)
    run = ae.load_run(tmp_path / "run")
    with pytest.warns(TableWarning, match=r"own columns 'score', 'outlier'.*written as 'aekit_score', 'aekit_outlier'"):
        result = detect(run, run.dataset(str(path)), explain=True)
    frame = result.frame
    assert list(frame.columns[:4]) == ["score", "outlier", "aekit_score", "aekit_outlier"]
    assert len(set(frame.columns)) == len(frame.columns)
    assert list(frame["score"]) == [f"s-{i:03d}" for i in range(n)]  # the user's, untouched
    np.testing.assert_array_equal(frame["aekit_score"], result.scores)
    assert result.names["score"] == "aekit_score" and result.names["top_features"] == "top_features"
    assert result.flagged == int(frame["aekit_outlier"].sum()) > 0


# ----- leftovers -----

def test_a_cvae_without_labels_is_a_data_error_naming_the_fix(digits):
    model = ae.build("cvae", input_shape=(64,), hidden=(8,), latent_dim=2)
    with pytest.raises(ae.DataError, match=r"y: a conditional model \(kind 'cvae', n_classes=10\) needs class "
                                           r"labels and x has none: give y="):
        ae.fit(model, digits[0][:100], epochs=1, verbose=0)
    with pytest.raises(ae.DataError, match="y_val: .* x_val has none"):
        ae.fit(model, digits[0][:100], digits[0][100:150], y=digits[1][:100], epochs=1, verbose=0)
    ae.fit(model, digits[0][:100], y=-1, epochs=1, verbose=0)  # all unknown, said explicitly: allowed


@pytest.mark.parametrize("architecture, expected", [("fully_conv", "fp32"), ("conv", "fp32"), ("mlp", "bf16")])
def test_auto_precision_keeps_convolutional_models_in_fp32_on_a_cpu(monkeypatch, architecture, expected):
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: 10.0)  # a CPU where bf16 multiplies fast
    options = {"mlp": dict(hidden=(512, 512), latent_dim=16), "conv": dict(channels=(32, 64), hidden=(64,), latent_dim=16),
               "fully_conv": dict(channels=(32, 64), latent_dim=49)}[architecture]
    model = ae.build("ae", input_shape=(1, 28, 28), architecture=architecture, **options)
    assert precision.forward_flops(model) > precision.MIN_FORWARD_FLOPS  # big enough that only the rule decides
    assert precision.resolve("auto", torch.device("cpu"), model) == expected
