"""Tables (issue 13): CSV / TSV / Parquet files and DataFrames with mixed column types, their column
roles, overrides, a reusable schema, and clear errors for malformed files. Every file is written here."""

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest

import aekit as ae
from aekit.data.schema import TableSchema, TableWarning, infer_schema
from aekit.data.tables import decode, encode, read_frame
from helpers import assert_usage_error, cli

N = 200
NUMERIC = ["temp", "pressure", "vibration", "constant"]


def sensor_frame(n=N, seed=0) -> pd.DataFrame:
    """A sensor log: an integer id, a string key, a timestamp, a machine, a flag, sensors on scales
    from 0.2 to 5,000, a constant column, a free-text note and a 0/1 label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(1, n + 1),
        "order_key": [f"ord-{i:05d}" for i in rng.permutation(n)],
        "timestamp": pd.date_range("2024-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S"),
        "machine": rng.choice(["press", "lathe", "mill"], n),
        "running": rng.random(n) < 0.7,
        "temp": rng.normal(50, 5, n).round(3),
        "pressure": rng.normal(5000, 300, n).round(1),
        "vibration": rng.normal(0.2, 0.02, n).round(4),
        "constant": 7.0,
        "note": [f"checked by operator {i % 90}" for i in range(n)],
        "label": (rng.random(n) < 0.1).astype(int),
    })


@pytest.fixture
def sensors(tmp_path):
    path = tmp_path / "sensors.csv"
    sensor_frame().to_csv(path, index=False)
    return path


def quiet_load(data, **options):
    """load() with the free-text warning silenced (tests of it check it on their own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableWarning)
        return ae.data.load(data, **options)


# ----- column roles -----


def test_every_column_kind_gets_its_role(sensors):
    with pytest.warns(TableWarning, match=r"column 'note' holds free text .*categorical=\['note'\].*exclude="):
        ds = ae.data.load(sensors, label_column="label")
    schema = TableSchema.from_json(ds.info["table"])
    assert schema.roles == {"id": "id", "order_key": "id", "timestamp": "timestamp", "machine": "categorical",
                            "running": "categorical", "temp": "numeric", "pressure": "numeric",
                            "vibration": "numeric", "constant": "numeric", "note": "text", "label": "label"}
    assert schema.features == ["machine", "running", *NUMERIC] and schema.numeric == NUMERIC
    frame = sensor_frame()
    # the order the rows show them, then the levels an unseen and an empty cell fall into
    assert schema.categorical["machine"] == [*pd.unique(frame["machine"]), "(other)", "(missing)"]
    assert sorted(schema.categorical["running"]) == ["(missing)", "(other)", "False", "True"]
    assert ds.feature_names == ds.info["columns"] == schema.encoded_names()
    assert ds.feature_names[:5] == [f"machine={m}" for m in schema.categorical["machine"]]
    assert schema.groups() == [0] * 5 + [1] * 4 + [2, 3, 4, 5]
    assert list(ds.ids.columns) == ["id", "order_key", "timestamp", "note"] and len(ds.ids) == N
    assert ds.ids["id"].tolist() == frame["id"].tolist()
    np.testing.assert_array_equal(ds.y, frame["label"])
    assert ds.info["path"] == str(sensors) and ds.name == "sensors.csv"


def test_tables_are_robustly_scaled_by_default_and_constant_columns_map_to_zero(sensors):
    ds = quiet_load(sensors)
    assert ds.scaling["method"] == "robust" and len(ds.scaling["center"]) == len(ds.feature_names)
    x = ds.numpy()
    assert np.isfinite(x).all()
    assert (x[:, ds.feature_names.index("constant")] == 0).all()
    # sensors on scales from 0.2 to 5,000 end up on one scale
    spread = x[:, [ds.feature_names.index(c) for c in ("temp", "pressure", "vibration")]].std(0)
    assert spread.max() / spread.min() < 2
    assert quiet_load(sensors, scale="standard").scaling["method"] == "standard"


def test_one_hot_encoding_and_raw_numbers(sensors):
    frame = read_frame(sensors)
    schema = infer_schema(frame.drop(columns=["note"]), label_column="label")
    x = encode(frame, schema)
    names = schema.encoded_names()
    assert x.dtype == np.float64 and x.shape == (N, len(names))
    np.testing.assert_array_equal(x[:, names.index("temp")], frame["temp"])
    np.testing.assert_array_equal(x[:, names.index("machine=mill")], frame["machine"] == "mill")
    np.testing.assert_array_equal(x[:, names.index("running=True")], frame["running"])
    assert (x[:, :3].sum(1) == 1).all()


@pytest.mark.parametrize("name,values,role", [
    ("count", [3, 1, 2, 5, 4, 6], "numeric"),  # all distinct, but not an identifier's name
    ("userId", [3, 1, 2, 5, 4, 6], "id"),
    ("row_no", [3, 1, 2, 5, 4, 6], "id"),
    ("code", ["a1", "b2", "c3", "d4", "e5", "f6"], "id"),  # unique strings
    ("grade", ["a", "b", "a", "b", "a", "b"], "categorical"),
    ("day", ["2024-01-01", "2024-01-02", "", "2024-01-04", "2024-01-05", "2024-01-06"], "timestamp"),
    ("when", ["01/02/2024 10:00", "01/03/2024 11:00", "01/04/2024 12:00", "01/05/2024 13:00", "01/06/2024 14:00",
              "01/07/2024 15:00"], "timestamp"),
    ("range", ["1-2", "3-4", "5-6", "1-2", "3-4", "7-8"], "text"),  # digits and dashes, but no year: not dates
    ("month", ["Jan", "Feb", "Mar", "Jan", "Feb", "Apr"], "text"),
    ("flag", [True, False, True, True, False, None], "categorical"),
    ("empty", [None] * 6, "excluded"),
])
def test_guessed_roles(name, values, role):
    frame = pd.DataFrame({"x": np.arange(6.0), name: values})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TableWarning)
        assert infer_schema(frame).roles[name] == role


def test_columns_with_few_distinct_values_are_categorical_and_missing_is_a_category():
    frame = pd.DataFrame({"x": np.arange(20.0), "m": ["a", "b", None, "b"] * 5})
    schema = infer_schema(frame)
    assert schema.categorical == {"m": ["a", "b", "(other)", "(missing)"]}
    assert encode(frame, schema)[2].tolist() == [2.0, 0, 0, 0, 1]


def test_text_column_of_numbers_is_numeric_and_a_typo_names_row_and_column(tmp_path):
    frame = pd.DataFrame({"a": ["1", "2.5", " 3", None]})
    schema = infer_schema(frame)
    assert schema.numeric == ["a"] and np.isnan(encode(frame, schema)[3, 0])
    path = tmp_path / "typo.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(9)) + "9,1O\n")
    with pytest.raises(ae.DataError, match=r"typo.csv: row 11, column 'b': '1O' is not a number .*categorical="):
        ae.data.load(path)


# ----- overrides -----


@pytest.mark.parametrize("options,features", [
    ({"columns": "temp,pressure"}, ["temp", "pressure"]),
    ({"columns": ["pressure", "temp"]}, ["pressure", "temp"]),
    ({"columns": [5, 6]}, ["temp", "pressure"]),
    ({"columns": "5,6"}, ["temp", "pressure"]),
    ({"columns": ["machine", "note", "temp"]}, ["machine", "note", "temp"]),  # chosen text is a feature
    ({"exclude": "note,constant,running"}, ["machine", "temp", "pressure", "vibration", "label"]),
    ({"exclude": [9, "running", "3"], "categorical": "label"}, [*NUMERIC, "label"]),
    ({"categorical": ["id"], "exclude": "note"}, ["id", "machine", "running", *NUMERIC, "label"]),
    ({"id_columns": "machine,running", "exclude": "note"}, [*NUMERIC, "label"]),
])
def test_overrides_by_name_index_and_comma_string(sensors, options, features):
    ds = quiet_load(sensors, **options)
    schema = TableSchema.from_json(ds.info["table"])
    assert schema.features == features
    if "id_columns" in options:
        assert {"machine", "running"} <= set(ds.ids.columns)
    if options.get("categorical") == ["id"]:
        # every id is seen once: fewer than 5 times, so all join "(other)"
        assert ds.feature_names[:2] == ["id=(other)", "id=(missing)"]


def test_columns_keeps_carrying_ids_and_timestamps(sensors):
    ds = quiet_load(sensors, columns="temp,pressure", label_column="label")
    assert ds.feature_names == ["temp", "pressure"] and ds.input_shape == (2,)
    assert list(ds.ids.columns) == ["id", "order_key", "timestamp", "note"]
    assert TableSchema.from_json(ds.info["table"]).roles["machine"] == "excluded"


@pytest.mark.parametrize("options,message", [
    ({"columns": "temp,presure"}, r"columns: no column 'presure' \(did you mean 'pressure'\?\); columns: \['id'"),
    ({"exclude": ["nte"]}, r"exclude: no column 'nte' \(did you mean 'note'\?\)"),
    ({"categorical": 42}, r"categorical: column index 42 out of range 0..10"),
    ({"label_column": "lable"}, r"no column 'lable' \(did you mean 'label'\?\)"),
    ({"categorical": "machine", "id_columns": "machine"}, "column 'machine' is given two roles"),
    ({"exclude": 1.5}, "exclude must be a list"),
    ({"schema": 3}, "schema must be a table schema"),
    ({"columns": "note", "exclude": "note"}, "no feature columns left"),
])
def test_bad_overrides_are_data_errors(sensors, options, message):
    with pytest.raises(ae.DataError, match=message):
        quiet_load(sensors, **options)


def test_cli_data_option_lists_are_split_on_commas(sensors, tmp_path):
    cli("train", "ae", "--data", sensors, "--data-option", "columns=temp,pressure", "--data-option", "label_column=label",
        "--set", "reconstruction=mse", "--epochs", "1", "--out", tmp_path / "run", check=0)
    assert ae.load_run(tmp_path / "run").config.input_size == 2


# ----- other sources: Parquet, DataFrames, TSV, headerless text -----


def _same(a, b):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.feature_names == b.feature_names and a.info["table"] == b.info["table"] and a.scaling == b.scaling
    np.testing.assert_array_equal(a.y, b.y)
    assert a.ids.astype(str).equals(b.ids.astype(str))


def test_parquet_round_trip_equals_the_csv(sensors, tmp_path):
    from_csv = quiet_load(sensors, label_column="label")
    read_frame(sensors).to_parquet(tmp_path / "sensors.parquet")  # timestamps stored as timestamps
    _same(from_csv, quiet_load(tmp_path / "sensors.parquet", label_column="label"))
    pd.read_csv(sensors).to_parquet(tmp_path / "strings.parquet", index=False)  # ... or as text
    _same(from_csv, quiet_load(tmp_path / "strings.parquet", label_column="label"))
    pd.read_csv(sensors).set_index("id").to_parquet(tmp_path / "indexed.parquet")  # an index comes back as a column
    assert list(quiet_load(tmp_path / "indexed.parquet").ids.columns)[0] == "id"


def test_dataframe_input_equals_the_csv_and_records_no_source(sensors):
    from_csv = quiet_load(sensors, label_column="label")
    frame = pd.read_csv(sensors)
    from_frame = quiet_load(frame, label_column="label")
    _same(from_csv, from_frame)
    assert from_frame.name == "DataFrame" and from_frame.source is None and "path" not in from_frame.info
    assert from_csv.source["name"] == str(sensors)
    assert frame.attrs == {} and list(frame.columns) == list(pd.read_csv(sensors).columns)  # the user's frame untouched
    numbers = quiet_load(pd.DataFrame(np.arange(12.0).reshape(4, 3)), scale="none")  # integer column names
    assert numbers.feature_names == ["0", "1", "2"] and numbers.numpy()[1].tolist() == [3, 4, 5]


def test_tsv_txt_and_headerless_tables(tmp_path):
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n3\t4\n")
    (tmp_path / "spaces.txt").write_text("1 2\n3 4\n")
    (tmp_path / "commas.txt").write_text("\ufeffa,b\n1,2\n3,4\n")  # with a byte-order mark
    for name in ("t.tsv", "spaces.txt", "commas.txt"):
        assert ae.data.load(tmp_path / name, scale="none").numpy().tolist() == [[1, 2], [3, 4]]
    assert ae.data.load(tmp_path / "commas.txt").feature_names == ["a", "b"]
    headerless = ae.data.load(tmp_path / "spaces.txt", columns=[1], label_column=0)
    assert headerless.feature_names == ["1"] and headerless.y.tolist() == [1, 3]
    (tmp_path / "semi.csv").write_text("a;b\n1;2\n")
    assert ae.data.load(tmp_path / "semi.csv", delimiter=";").feature_names == ["a", "b"]


def test_class_name_labels(tmp_path):
    (tmp_path / "t.csv").write_text("x,kind\n1,cat\n2,dog\n3,cat\n4,\n")
    ds = ae.data.load(tmp_path / "t.csv", label_column="kind")
    assert ds.y.tolist() == [1, 2, 1, 0] and ds.info["classes"] == ["", "cat", "dog"]


# ----- the schema: reuse on new files, round trips, tampering -----


def test_schema_reuse_on_a_new_file(sensors, tmp_path):
    train = quiet_load(sensors, label_column="label")
    new = sensor_frame(20, seed=1).drop(columns=["label"])
    new.loc[0, "machine"] = "drill"  # a category training never saw
    new = new[new.columns[::-1]]  # columns in another order
    new.to_csv(tmp_path / "new.csv", index=False)
    for schema in (train.info["table"], json.dumps(train.info["table"]), TableSchema.from_json(train.info["table"])):
        ds = ae.data.load(tmp_path / "new.csv", schema=schema, scale="none")
        assert ds.feature_names == train.feature_names and ds.y is None
        machine = [i for i, n in enumerate(ds.feature_names) if n.startswith("machine=")]
        assert ds.numpy()[0, machine].tolist() == [0, 0, 0, 1, 0]  # unseen: "(other)"
        assert (ds.numpy()[1:, machine].sum(1) == 1).all()
    (tmp_path / "schema.json").write_text(json.dumps(train.info["table"]))
    assert ae.data.load(tmp_path / "new.csv", schema=str(tmp_path / "schema.json")).feature_names == train.feature_names
    new.drop(columns=["temp", "machine"]).to_csv(tmp_path / "missing.csv", index=False)
    with pytest.raises(ae.DataError, match=r"missing.csv: missing columns \['machine', 'temp'\]"):
        ae.data.load(tmp_path / "missing.csv", schema=train.info["table"])
    with pytest.raises(ae.DataError, match="schema= fixes the columns' roles; drop columns"):
        ae.data.load(tmp_path / "new.csv", schema=train.info["table"], columns="temp")


def test_schema_reuse_refuses_text_in_a_numeric_column(sensors, tmp_path):
    schema = quiet_load(sensors).info["table"]
    frame = sensor_frame(5, seed=2).astype({"temp": object})
    frame.loc[3, "temp"] = "hot"
    frame.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(ae.DataError, match=r"new.csv: row 5, column 'temp': 'hot' is not a number"):
        ae.data.load(tmp_path / "new.csv", schema=schema)


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("roles"), "missing fields"),
    (lambda s: s.update(extra=1), "unknown fields"),
    (lambda s: s.update(features=[]), "no features"),
    (lambda s: s.update(numeric=["temp", "nope"]), "either numeric or categorical"),
    (lambda s: s["categorical"].update(machine="press"), r"categorical\['machine'\] must be a list of strings"),
    (lambda s: s["categorical"].update(machine=["a", "a"]), "repeats an entry"),
    (lambda s: s["roles"].update(temp="categorical"), "disagree"),
    (lambda s: s["roles"].update(temp="weird"), "'roles' must map columns"),
    (lambda s: s.update(label_column=3), "'label_column' must be a column"),
])
def test_tampered_schema_is_a_data_error(sensors, change, message):
    data = json.loads(json.dumps(quiet_load(sensors, label_column="label").info["table"]))
    change(data)
    with pytest.raises(ae.DataError, match=message):
        TableSchema.from_json(data)
    with pytest.raises(ae.DataError, match=message):
        quiet_load(sensors, schema=data)


def test_schema_json_round_trip_and_decode_of_encode(sensors):
    frame = read_frame(sensors)
    with pytest.warns(TableWarning):
        schema = infer_schema(frame, label_column="label")
    assert TableSchema.from_json(json.loads(json.dumps(schema.to_json()))) == schema
    back = decode(encode(frame, schema), schema)
    assert list(back.columns) == schema.features
    np.testing.assert_array_equal(back[NUMERIC].to_numpy(), frame[NUMERIC].to_numpy())
    assert back["machine"].tolist() == frame["machine"].tolist()
    assert back["running"].tolist() == frame["running"].astype(str).tolist()
    soft = encode(frame, schema) * 0.6 + 0.1  # a reconstruction: the largest one-hot value wins
    assert decode(soft, schema)["machine"].tolist() == frame["machine"].tolist()
    with pytest.raises(ae.DataError, match="decode: expected rows of 13 inputs"):
        decode(np.zeros((2, 4)), schema)


# ----- missing values -----


def test_ids_stay_row_aligned_after_drop_nan(sensors, tmp_path):
    frame = sensor_frame()
    frame.loc[[3, 10, 11], "temp"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(ae.DataError, match=r"gaps.csv: 3 empty cells in 3 rows \(first: row 5, column 'temp'\)"):
        quiet_load(tmp_path / "gaps.csv", missing="error")
    ds = quiet_load(tmp_path / "gaps.csv", drop_nan=True, label_column="label", scale="none")
    kept = frame.drop(index=[3, 10, 11]).reset_index(drop=True)
    assert len(ds) == N - 3 and ds.info["dropped_rows"] == 3
    assert ds.ids["id"].tolist() == kept["id"].tolist() and ds.ids.index.tolist() == list(range(N - 3))
    np.testing.assert_allclose(ds.numpy()[:, ds.feature_names.index("temp")], kept["temp"], rtol=1e-6)
    np.testing.assert_array_equal(ds.y, kept["label"])


# ----- malformed files -----


def _garbage(path):
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8)))


def _truncated_parquet(path):
    sensor_frame().to_parquet(path)
    path.write_bytes(path.read_bytes()[:300])


MALFORMED = [
    ("ragged.csv", lambda p: p.write_text("a,b\n1,2\n3,4,5\n"), r"row 3 has 3 fields, expected 2 \(ragged rows\)"),
    ("short.csv", lambda p: p.write_text("a,b\n1,2\n3,4\n5\n"), r"row 4 has 1 fields, expected 2 \(ragged rows\)"),
    ("garbage.csv", _garbage, "not UTF-8"),
    ("latin1.csv", lambda p: p.write_bytes("a,b\n1,caf\xe9\n".encode("latin-1")), "not UTF-8"),
    ("empty.csv", lambda p: p.write_text(""), "the file is empty"),
    ("blank.tsv", lambda p: p.write_text("\n  \n\n"), "the file is empty"),
    ("header.csv", lambda p: p.write_text("a,b\n"), "a header but no data rows"),
    ("dupes.csv", lambda p: p.write_text("a,b,a\n1,2,3\n"), r"duplicate column names \['a'\]"),
    ("text.parquet", lambda p: p.write_text("a,b\n1,2\n"), "not a Parquet file"),
    ("cut.parquet", _truncated_parquet, "not a Parquet file"),
    ("empty.parquet", lambda p: pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(p), "holds no rows"),
]


@pytest.mark.parametrize("name,write,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_are_data_errors_naming_the_file(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(ae.DataError, match=message) as error:
        ae.data.load(tmp_path / name)
    assert str(error.value).startswith(str(tmp_path / name))


@pytest.mark.parametrize("name,write,message", [MALFORMED[i] for i in (0, 2, 6, 8)], ids=["ragged", "garbage",
                                                                                         "header", "parquet"])
def test_malformed_files_are_one_line_cli_errors(tmp_path, name, write, message):
    write(tmp_path / name)
    proc = cli("train", "ae", "--data", tmp_path / name, "--epochs", "1", "--out", tmp_path / "never")
    assert_usage_error(proc, name)
    assert not (tmp_path / "never").exists()


def test_a_table_too_large_for_memory_is_refused_before_reading(sensors, monkeypatch):
    monkeypatch.setenv("AEKIT_MAX_MEMORY", "4096")
    with pytest.raises(ae.DataError, match=r"sensors.csv .*bytes of text as a table\) needs .* of memory"):
        ae.data.load(sensors)


def test_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(ae.DataError, match="not a regular file"):
        read_frame(tmp_path / "pipe.csv")
