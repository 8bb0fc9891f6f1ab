"""Issue 24, the command line's side of messy tables: the user's ids, timestamps and text come back as
written in every output; `--help` shows each option's type, default and range, and the keys of
--data-option; --missing; Ctrl-C says how to resume; a resumed run's summary counts both segments."""

import re
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import aekit as ae
from aekit.cli import run as aekit
from aekit.cli.flags import RANGES
from aekit.cli.options import MISSING
from aekit.cli.train import trained_line
from aekit.data.synthetic import mixed_table
from aekit.data.tables import load_table
from helpers import cli

CARRIED = ["id", "timestamp", "note"]


def _quiet_load(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ae.data.load(path, **options)


def _train(path, folder, **options):
    """A small run on a table (in this process: the command line's train is tested elsewhere)."""
    ds = _quiet_load(path, **options)
    model = ae.build_for("ae", ds, hidden=(8,), latent_dim=2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(model, ds, epochs=2, batch_size=32, out=folder, verbose=0)
    return folder


def _text(path) -> pd.DataFrame:
    """A CSV as its cells' text (empty cells as "")."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """mixed_table (string ids, four UTC offsets, free text) as a CSV, and a run trained on it."""
    folder = tmp_path_factory.mktemp("messy")
    frame, _ = mixed_table(n_rows=240, missing=0.0, seed=1)
    frame.to_csv(folder / "pump.csv", index=False)
    return folder / "pump.csv", _train(folder / "pump.csv", folder / "run")


def test_every_output_file_keeps_ids_timestamps_and_text_as_written(messy, tmp_path, capsys):
    csv, run = messy
    carried = ae.load_run(run).data["table"]["ids"]  # id, timestamp, note (and machine: 50 levels in 240 rows)
    assert set(CARRIED) <= set(carried)
    written = _text(csv)[carried]
    assert {t[-6:] for t in written["timestamp"]} == {"+00:00", "+05:30", "-04:00", "+09:00"}
    outputs = {"scores.csv": ["detect", run, "--data", csv, "--out", tmp_path / "scores.csv", "--explain",
                              "--report", tmp_path / "detect.html"],
               "recon.csv": ["reconstruct", run, "--data", csv, "--out", tmp_path / "recon.csv"],
               "codes.csv": ["encode", run, "--data", csv, "--out", tmp_path / "codes.csv"]}
    for name, args in outputs.items():
        assert aekit([str(a) for a in args]) == 0, capsys.readouterr().err
        out = _text(tmp_path / name)
        assert list(out.columns[:len(carried)]) == carried, name
        pd.testing.assert_frame_equal(out[carried], written, obj=name)  # the very same text, row by row
    scores = pd.read_csv(tmp_path / "scores.csv", dtype=str)
    html = (tmp_path / "detect.html").read_text(encoding="utf-8")
    top = scores.iloc[scores["score"].astype(float).idxmax()]
    assert top["id"] in html and top["timestamp"] in html  # the report names the row as the file does
    assert "2025-02-28 18:30:00+00:00" not in _text(tmp_path / "scores.csv").to_csv()  # no UTC rewriting


def _plain_csv(path, n=60):
    """Integer ids, zero-padded string ids, naive ISO timestamps (with a T), a few numeric sensors."""
    rng = np.random.default_rng(0)
    lines = ["row_id,badge,logged,temp,load,flow"]
    for i in range(n):
        t = pd.Timestamp("2025-03-01T08:00:00") + pd.Timedelta(minutes=7 * i)
        lines.append(f"{i + 1},{i:03d},{t.strftime('%Y-%m-%dT%H:%M:%S')},{rng.normal(50, 5):.3f},"
                     f"{rng.normal(1, 0.1):.4f},{rng.normal(900, 30):.1f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_integer_ids_zero_padded_ids_and_naive_timestamps_come_back_as_written(tmp_path, capsys):
    csv = _plain_csv(tmp_path / "plain.csv")
    options = {"id_columns": "row_id,badge"}
    ds = _quiet_load(csv, **options)
    assert ds.ids["row_id"].dtype.kind == "i" and ds.ids["row_id"].tolist()[:3] == [1, 2, 3]  # integers stay integers
    assert ds.ids["badge"].tolist()[:3] == ["000", "001", "002"]  # not 0, 1, 2
    assert ds.ids["logged"].iloc[0] == "2025-03-01T08:00:00"
    run = _train(csv, tmp_path / "run", **options)
    carried = ["row_id", "badge", "logged"]
    written = _text(csv)[carried]
    for command, name in (("detect", "s.csv"), ("reconstruct", "r.csv"), ("encode", "z.csv")):
        assert aekit([command, str(run), "--data", str(csv), "--out", str(tmp_path / name)]) == 0, \
            capsys.readouterr().err
        pd.testing.assert_frame_equal(_text(tmp_path / name)[carried], written, obj=command)
    # its own training data, replayed with the options it was read with (the schema fixes the roles)
    assert aekit(["detect", str(run), "--out", str(tmp_path / "own.csv")]) == 0, capsys.readouterr().err
    pd.testing.assert_frame_equal(_text(tmp_path / "own.csv")[carried], written, obj="detect on its own data")


def test_parquet_and_dataframes_keep_their_types(tmp_path):
    frame = pd.DataFrame({"unit_id": pd.array([1, 2, None, 4, 5, 6, 7, 8], dtype="Int64"),
                          "at": pd.date_range("2025-03-01", periods=8, freq="h", tz="Asia/Kolkata"),
                          "a": np.arange(8.0), "b": np.arange(8.0) ** 2})
    frame.to_parquet(tmp_path / "t.parquet")
    ds = load_table(tmp_path / "t.parquet", id_columns="unit_id")
    assert str(ds.ids["unit_id"].dtype) == "Int64" and ds.ids["unit_id"].tolist()[:2] == [1, 2]
    assert str(ds.ids["at"].dtype).endswith("Asia/Kolkata]")  # not converted to UTC
    ds = load_table(frame, id_columns="unit_id")
    pd.testing.assert_frame_equal(ds.ids, frame[["unit_id", "at"]])
    # a text file's integer id column with an empty cell: nullable integers, written back as "7", not "7.0"
    (tmp_path / "gap.csv").write_text("unit_id,a,b\n1,1,2\n,2,3\n3,3,5\n4,4,4\n5,5,1\n", encoding="utf-8")
    ds = load_table(tmp_path / "gap.csv", id_columns="unit_id")
    assert str(ds.ids["unit_id"].dtype) == "Int64" and ds.ids["unit_id"].isna().tolist() == [0, 1, 0, 0, 0]


def test_rows_dropped_for_empty_cells_keep_their_own_ids(tmp_path):
    frame, _ = mixed_table(n_rows=120, missing=0.05, seed=2)
    frame.to_csv(tmp_path / "holes.csv", index=False)
    ds = _quiet_load(tmp_path / "holes.csv", drop_nan=True)
    kept = frame[frame[ds.info["table"]["features"]].notna().all(axis=1)]
    assert 0 < ds.info["dropped_rows"] == len(frame) - len(kept)
    assert ds.ids["id"].tolist() == kept["id"].tolist()
    assert ds.ids["timestamp"].tolist() == kept["timestamp"].tolist()


# ----- --help: types, defaults, ranges, choices, the data options' keys -----


def _help(*command) -> str:
    proc = cli(*command, "--help", check=0)
    return " ".join(proc.stdout.split())  # one line: click wraps the help text


def test_train_help_shows_every_options_type_default_and_range():
    text = _help("train")
    for expected in ("--epochs INTEGER", "[default: chosen from the data; x>=1]", "--lr FLOAT",
                     "[default: 0.001; x>0]", "--contamination FLOAT", "0<x<=0.5", "--hidden INT,INT,...",
                     "--latent-dim INTEGER", "[default: 16; a table: chosen from its columns; x>=1]",
                     "--activation [relu|sigmoid|tanh|", "--reconstruction [bce|mse|gaussian|gaussian_per_feature]",
                     "--architecture [mlp|conv|fully_conv]", "--noise [gaussian|masking|salt_and_pepper|downsample|none]",
                     "--lr-schedule [constant|cosine]", "--precision [auto|fp32|bf16|fp16]",
                     "--code-activation [relu|", "[default: linear; sigmoid for sparse, contractive]",
                     "--beta FLOAT", "(kinds: vae, cvae)", "--patience INTEGER", "[default: none; x>=1]"):
        assert expected in text, expected
    options = re.findall(r"(--[a-z-]+) ([A-Z,.\[][^ ]*)", text)
    typed = dict(options)
    for flag in ("--epochs", "--batch-size", "--val-fraction", "--dropout", "--input-clip", "--sparsity-weight",
                 "--noise-level", "--iwae-samples", "--seed", "--pretrain-epochs", "--channels"):
        assert flag in typed and typed[flag] != "TEXT", flag


def test_every_flag_has_help_and_a_default():
    import click

    from aekit.cli import main

    for name in ("train", "resume"):
        command = main.get_command(click.Context(main), name)
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help",):
                assert param.help, (name, param.name)
        flags = {p.name: p for p in command.params}
        for field in ("epochs", "lr", "precision", "contamination"):
            assert "default:" in flags[field].help, field


def _bound(text: str):
    """'x>=1' -> [(1, '>=')]; '0<x<=0.5' -> [(0, '>'), (0.5, '<=')]: the bounds on x."""
    low = re.match(r"^([\d.e*]+)(<=?)x", text)
    high = re.search(r"x(<=?)([\d.e*]+)$", text)
    above = re.match(r"^x(>=?)([\d.e*]+)$", text)
    out = []
    if low:
        out.append((eval(low.group(1)), ">=" if low.group(2) == "<=" else ">"))
    if above:
        out.append((eval(above.group(2)), above.group(1)))
    if high:
        out.append((eval(high.group(2)), high.group(1)))
    return out


def _accepts(name, value) -> bool:
    from aekit.errors import ConfigError
    from aekit.models.config import ModelConfig
    from aekit.training.options import FitOptions

    try:
        if name in {f for f in FitOptions.__dataclass_fields__} and name != "seed":
            FitOptions(**{name: value}).validate()
        else:
            variational = name in ("beta", "kl_warmup_epochs", "free_bits", "iwae_samples", "n_classes", "label_dropout")
            extra = {"n_classes": 2} if name == "label_dropout" else {}
            ModelConfig(kind="ae", input_shape=(8,), reconstruction="mse", variational=variational,
                        **{**extra, name: value}).validate()
        return True
    except ConfigError:
        return False


@pytest.mark.parametrize("name", sorted(RANGES))
def test_the_ranges_help_shows_are_the_ones_the_library_checks(name):
    integer = name in ("epochs", "batch_size", "patience", "latent_dim", "kl_warmup_epochs", "iwae_samples",
                       "n_classes", "contractive_projections", "pretrain_epochs", "seed")
    step = 1 if integer else 1e-9
    for bound, op in _bound(RANGES[name]):
        inside, outside = {">=": (bound, bound - step), ">": (bound + step, bound),
                           "<=": (bound, bound + step), "<": (bound - step, bound)}[op]
        if integer:
            inside, outside = int(inside), int(outside)
        assert _accepts(name, inside), (name, inside)
        assert not _accepts(name, outside), (name, outside)


@pytest.mark.parametrize("command", ["train", "resume", "evaluate", "detect", "encode", "reconstruct",
                                     "interpolate", "compress"])
def test_data_option_keys_and_missing_are_listed_on_every_command_that_reads_data(command):
    text = _help(command)
    assert "--missing [impute|drop|error]" in text
    keys = text[text.index("Keys:"):]
    for key in ("label_column", "columns", "exclude", "categorical", "id_columns", "scale", "drop_nan", "missing",
                "split", "image_size", "input_shape"):
        assert re.search(rf"\b{key}\b", keys), (command, key)


def test_missing_choices_are_the_data_layers():
    from aekit.data.options import check_options
    from aekit.errors import DataError

    for policy in MISSING:
        assert check_options({"missing": policy}) == {"missing": policy}
    with pytest.raises(DataError, match="missing"):
        check_options({"missing": "ignore"})


def test_missing_flag_is_the_data_option(messy, tmp_path, capsys):
    csv, run = messy
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[[3, 7], "load"] = ""  # two empty sensor cells
    frame.to_csv(tmp_path / "holes.csv", index=False)
    assert aekit(["detect", str(run), "--data", str(tmp_path / "holes.csv"), "--out", str(tmp_path / "d.csv"),
                  "--missing", "drop"]) == 0
    assert len(pd.read_csv(tmp_path / "d.csv")) == len(frame) - 2
    assert aekit(["detect", str(run), "--data", str(tmp_path / "holes.csv"), "--out", str(tmp_path / "e.csv"),
                  "--missing", "error"]) == 2
    assert "load" in capsys.readouterr().err and not (tmp_path / "e.csv").exists()
    # the flag wins over a --data-option of the same key
    assert aekit(["encode", str(run), "--data", str(tmp_path / "holes.csv"), "--out", str(tmp_path / "z.csv"),
                  "--data-option", "missing=error", "--missing", "drop"]) == 0
    assert len(pd.read_csv(tmp_path / "z.csv")) == len(frame) - 2


# ----- Ctrl-C and resume -----


def test_ctrl_c_during_train_says_what_was_kept_and_how_to_resume(tmp_path):
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "aekit", "train", "ae", "--data", "digits", "--hidden", "8",
                             "--latent-dim", "2", "--epochs", "400", "--quiet", "--out", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while not (folder / "weights.safetensors").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the first epoch is committed: Ctrl-C now
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    match = re.fullmatch(rf"interrupted: {re.escape(str(folder))} keeps the last finished epoch \(epoch (\d+)\); "
                         rf"continue with: aekit resume {re.escape(str(folder))}", line)
    assert match, line
    kept = int(match.group(1))
    assert len(ae.load_run(folder).history) == kept >= 1
    proc = cli("resume", folder, "--epochs", kept + 2, "--quiet", check=0)
    assert f"ae: trained 2 more epochs ({kept + 2} in total) in " in proc.stdout


def test_the_summary_counts_this_segment_and_the_total():
    assert trained_line(10, None) == "10 epochs"
    assert trained_line(10, 5) == "trained 5 more epochs (10 in total)"
    assert trained_line(6, 5) == "trained 1 more epoch (6 in total)"
    assert trained_line(6, 6) == "trained 0 more epochs (6 in total)"  # the run had them all already
