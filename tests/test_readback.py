"""Parse, then validate, everything read back (issue 25, mechanism 3): every field of a run folder's JSON
(config.json, metrics.json, the detector and the history in weights.safetensors) tampered with (a wrong type,
a value out of range, missing) is a CheckpointError naming the file and the field, through ae.load_run and the
command line (one line, exit 2); the files' widths against each other; the format version a folder says it
needs; and codec files whose header or payload was forged (a valid checksum) refused before allocating."""

import json
import math
import re
import shutil
import struct
import typing
import zlib

import numpy as np
import pytest
import torch

import aekit as ae
from aekit import budget, codec
from aekit.models.config import ModelConfig
from aekit.runs import fields, storage
from aekit.runs import run as runs
from helpers import MEMORY_LIMIT, assert_usage_error, cli

# ----- a trained run, copied for each tampering -----


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained on the digits (recorded source, scaling, detector, history, metrics) and a table run."""
    root = tmp_path_factory.mktemp("readback")
    ae.fit(ae.build("ae", input_shape=(1, 8, 8), hidden=(8,), latent_dim=3), ae.data.load("digits"), epochs=1,
           out=root / "run", verbose=0)
    rng = np.random.default_rng(0)
    rows = [f"{i},{rng.normal():.4f},{rng.normal():.4f},{'abc'[i % 3]}" for i in range(120)]
    (root / "t.csv").write_text("id,a,b,colour\n" + "\n".join(rows) + "\n")
    table = ae.data.load(str(root / "t.csv"))
    ae.fit(ae.build("ae", input_shape=table.x.shape[1:], hidden=(4,), latent_dim=2, reconstruction="mse"), table,
           epochs=1,
           out=root / "table_run", verbose=0)
    return root


@pytest.fixture
def run(trained, tmp_path):
    shutil.copytree(trained / "run", tmp_path / "run")
    return tmp_path / "run"


def _path(path: str) -> list:
    """'segments[0].training.lr' -> ['segments', 0, 'training', 'lr']."""
    return [int(p) if p.isdigit() else p for p in re.split(r"\.|\[|\]\.?", path) if p != ""]


def _put(doc, path: str, value=..., delete=False):
    *parents, last = _path(path)
    for key in parents:
        if isinstance(key, str) and doc.get(key) is None:
            doc[key] = {}
        doc = doc[key]
    if delete:
        doc.pop(last, None)
    else:
        doc[last] = value


def _edit_json(file, path, value=..., delete=False):
    doc = json.loads(file.read_text())
    _put(doc, path, value, delete)
    file.write_text(json.dumps(doc))


def _edit_weights_metadata(folder, path, value=..., delete=False, tensors=None):
    weights = folder / runs.WEIGHTS
    meta = storage.read_tensor_metadata(weights)
    stored = storage.read_tensors(weights)
    if path:
        _put(meta, path, value, delete)
    storage.write_tensors(weights, {**stored, **(tensors or {})}, meta)


def _wrong_type(spec: fields.Field):
    return {"int": "abc", "number": "abc", "str": 5, "bool": "yes", "mapping": [1], "list": 5}[spec.kind]


def _out_of_range(spec: fields.Field):
    if spec.choices:
        return "no-such-value"
    if spec.low is not None:
        return spec.low if spec.low_open else spec.low - 1
    return spec.high + 1 if spec.high is not None else None


def _cases(table: dict, prefix: str) -> list:
    """(field path, value or 'missing') for every field of a table: a wrong type, out of range, missing."""
    out = []
    for name, spec in table.items():
        out.append((prefix + name, _wrong_type(spec)))
        if _out_of_range(spec) is not None:
            out.append((prefix + name, _out_of_range(spec)))
        if spec.required:
            out.append((prefix + name, "missing"))
    return out


CONFIG_SECTIONS = [("", fields.CONFIG), ("data.", fields.DATA), ("data.source.", fields.SOURCE),
                   ("training.", fields.TRAINING), ("segments[0].", fields.SEGMENT),
                   ("segments[0].training.", fields.TRAINING), ("estimator.", fields.ESTIMATOR)]
CONFIG_CASES = [case for prefix, table in CONFIG_SECTIONS for case in _cases(table, prefix)]


def _assert_named(folder, file: str, field: str):
    with pytest.raises(ae.CheckpointError, match=re.escape(f"{file}: field '{field}'")):
        ae.load_run(folder)


@pytest.mark.parametrize("field,value", CONFIG_CASES, ids=[f"{f}={v!r}" for f, v in CONFIG_CASES])
def test_every_field_of_config_json_is_checked(run, field, value):
    _edit_json(run / runs.CONFIG, field, value, delete=value == "missing")
    _assert_named(run, runs.CONFIG, field)


MODEL_HINTS = typing.get_type_hints(ModelConfig)


@pytest.mark.parametrize("name", sorted(MODEL_HINTS))
def test_every_model_field_of_config_json_is_type_checked(run, name):
    # a value of another JSON type than ModelConfig's annotation (5 for a string, "abc" for anything else)
    value = 5 if fields._fits("abc", MODEL_HINTS[name]) else "abc"
    _edit_json(run / runs.CONFIG, f"model.{name}", value)
    _assert_named(run, runs.CONFIG, f"model.{name}")


@pytest.mark.parametrize("name", ["kind", "input_shape"])
def test_the_model_fields_without_a_default_must_be_there(run, name):
    _edit_json(run / runs.CONFIG, f"model.{name}", delete=True)
    with pytest.raises(ae.CheckpointError, match=re.escape(f"field 'model.{name}' is missing")):
        ae.load_run(run)


def test_an_unknown_kind_or_a_float_width_is_named(run):
    _edit_json(run / runs.CONFIG, "model.kind", "transformer")
    with pytest.raises(ae.CheckpointError, match="model section is invalid.*unknown kind 'transformer'"):
        ae.load_run(run)
    _edit_json(run / runs.CONFIG, "model.kind", "ae")
    _edit_json(run / runs.CONFIG, "model.hidden", [8.7])  # int(8.7) would have built a model of width 8
    _assert_named(run, runs.CONFIG, "model.hidden")


METRICS_CASES = _cases(fields.METRICS, "") + [("train", [1, 2]), ("validation", {"total": "abc"})]


@pytest.mark.parametrize("field,value", METRICS_CASES, ids=[f"{f}={v!r}" for f, v in METRICS_CASES])
def test_every_field_of_metrics_json_is_checked(run, field, value):
    _edit_json(run / runs.METRICS, field, value)
    _assert_named(run, runs.METRICS, field)


DETECTOR_CASES = _cases(fields.DETECTOR, "detector.")
HISTORY_CASES = [("state.history[0].stage", 5), ("state.history[0].stage", "missing"),
                 ("state.history[0].epoch", "abc"), ("state.history[0].epoch", -1),
                 ("state.history[0].epoch", "missing"), ("state.history[0].train_total", "abc")]


@pytest.mark.parametrize("field,value", DETECTOR_CASES + HISTORY_CASES,
                         ids=[f"{f}={v!r}" for f, v in DETECTOR_CASES + HISTORY_CASES])
def test_every_field_of_the_weights_metadata_is_checked(run, field, value):
    _edit_weights_metadata(run, field, value, delete=value == "missing")
    _assert_named(run, runs.WEIGHTS, field)


def test_the_tables_cover_every_field_a_run_writes(run):
    """A field added to what training writes must be added to the tables (and so be checked)."""
    config = json.loads((run / runs.CONFIG).read_text())
    for prefix, table in CONFIG_SECTIONS:
        section = config
        for key in _path(prefix):
            section = section.get(key) if isinstance(section, dict) else section[key]
        if section is None:  # a section this run has not (estimator)
            continue
        assert set(section) <= set(table) | ({"format", "format_version"} if not prefix else set()), prefix
    assert set(json.loads((run / runs.METRICS).read_text())) <= set(fields.METRICS) | {"train", "validation"}
    meta = storage.read_tensor_metadata(run / runs.WEIGHTS)
    assert set(meta["detector"]) == set(fields.DETECTOR)
    assert set(meta["state"]["history"][0]) >= set(fields.HISTORY_ROW)


@pytest.fixture(scope="module")
def estimator_folder(tmp_path_factory):
    from aekit.sklearn import AutoencoderOutlierDetector

    x = np.random.default_rng(0).normal(size=(120, 4)).astype(np.float32)
    folder = tmp_path_factory.mktemp("estimator") / "det"
    AutoencoderOutlierDetector(hidden=(4,), latent_dim=2, epochs=1, batch_size=16, random_state=0,
                               n_threads=1).fit(x).save(folder)
    return folder


def _estimator_cases():
    from aekit import sklearn_folder as sf

    return (_cases(sf.SECTION, "estimator.") + _cases(sf.FITTED_FIELDS, "estimator.fitted.")
            + _cases(sf.SCALER, "estimator.fitted.scaler."))


ESTIMATOR_CASES = _estimator_cases()


@pytest.mark.parametrize("field,value", ESTIMATOR_CASES, ids=[f"{f}={v!r}" for f, v in ESTIMATOR_CASES])
def test_every_field_of_a_saved_estimators_section_is_checked(estimator_folder, tmp_path, field, value):
    from aekit.sklearn import AutoencoderOutlierDetector

    folder = shutil.copytree(estimator_folder, tmp_path / "det")
    _edit_json(folder / runs.CONFIG, field, value, delete=value == "missing")
    with pytest.raises(ae.CheckpointError, match=re.escape(f"{runs.CONFIG}: field '{field}")):
        AutoencoderOutlierDetector.load(folder)


# ----- consistency between the files -----


def test_a_table_schema_of_another_width_is_named_not_a_broadcasting_error(trained, tmp_path):
    folder = tmp_path / "table_run"
    shutil.copytree(trained / "table_run", folder)
    config = json.loads((folder / runs.CONFIG).read_text())
    config["data"]["table"]["categorical"]["colour"].append("d")  # one more one-hot input than the model has
    (folder / runs.CONFIG).write_text(json.dumps(config))
    message = "field 'data.table' encodes"
    with pytest.raises(ae.CheckpointError, match=message):
        ae.load_run(folder)
    assert_usage_error(cli("detect", folder, "--data", trained / "t.csv", "--out", tmp_path / "s.csv"), message)
    assert not (tmp_path / "s.csv").exists()


def test_a_scaling_or_a_detector_array_of_another_width_is_named(run):
    good = (run / runs.CONFIG).read_text()
    _edit_json(run / runs.CONFIG, "data.scaling", {"method": "minmax", "min": [0.0] * 3, "max": [1.0] * 3})  # 64 inputs
    _assert_named(run, runs.CONFIG, "data.scaling")
    (run / runs.CONFIG).write_text(good)
    _edit_weights_metadata(run, None, tensors={"detector.calibration": torch.zeros(4, 2, dtype=torch.float64)})
    with pytest.raises(ae.CheckpointError, match=re.escape("tensor 'detector.calibration' has shape [4, 2]")):
        ae.load_run(run)


@pytest.mark.parametrize("version", [-1, 0, runs.FORMAT_VERSION + 1, "2", True, 2.0, None])
def test_a_format_version_outside_what_this_aekit_reads_is_refused(run, version):
    _edit_json(run / runs.CONFIG, "format_version", version)
    with pytest.raises(ae.CheckpointError, match=re.escape(f"format_version {version!r}")):
        ae.load_run(run)


# ----- the command line: one line, exit 2, for each file -----


@pytest.mark.parametrize("file,field,value", [
    (runs.CONFIG, "data.n_train", -3),
    pytest.param(runs.CONFIG, "model.variational", "yes", marks=pytest.mark.slow),  # 3-10 s each: torch starts
    pytest.param(runs.METRICS, "seconds", "abc", marks=pytest.mark.slow),
    pytest.param(runs.WEIGHTS, "detector.k", 2.5, marks=pytest.mark.slow),
])
def test_the_command_line_names_the_file_and_the_field_in_one_line(run, tmp_path, file, field, value):
    if file == runs.WEIGHTS:
        _edit_weights_metadata(run, field, value)
    else:
        _edit_json(run / file, field, value)
    assert_usage_error(cli("encode", run, "--out", tmp_path / "z.npy"), f"{file}: field '{field}'")
    assert not (tmp_path / "z.npy").exists()


# ----- the format version a folder needs -----


def test_a_run_says_the_lowest_format_version_that_describes_it(tmp_path):
    plain = ae.build("ae", input_shape=(6,), hidden=(4,), latent_dim=2)
    ae.save(plain, tmp_path / "plain")
    config = json.loads((tmp_path / "plain" / runs.CONFIG).read_text())
    assert config["format_version"] == 2 and not set(config["model"]) & set(runs.LATER_OPTIONS)
    assert ae.load(tmp_path / "plain").config == plain.config  # the options left out read as their defaults
    learned = ae.build("ae", input_shape=(6,), hidden=(4,), latent_dim=2, code_noise=0.5, rate_weight=0.1)
    ae.save(learned, tmp_path / "learned")
    config = json.loads((tmp_path / "learned" / runs.CONFIG).read_text())
    assert config["format_version"] == 3 and config["model"]["code_noise"] == 0.5
    assert "posterior" not in config["model"]
    assert ae.load(tmp_path / "learned").config == learned.config


def test_an_older_reader_refuses_a_folder_that_uses_a_newer_option_by_its_version(tmp_path, monkeypatch):
    ae.save(ae.build("ae", input_shape=(6,), hidden=(4,), latent_dim=2, code_noise=0.5), tmp_path / "learned")
    ae.save(ae.build("ae", input_shape=(6,), hidden=(4,), latent_dim=2), tmp_path / "plain")
    monkeypatch.setattr(runs, "FORMAT_VERSION", 2)  # an aekit that reads versions 1 and 2 only
    with pytest.raises(ae.CheckpointError, match="format_version 3; this aekit reads versions 1 to 2"):
        ae.load(tmp_path / "learned")
    ae.load(tmp_path / "plain")


# ----- codec files: a forged header or payload, its checksum made valid again -----


@pytest.fixture(scope="module")
def codec_run(trained):
    return trained / "run"


@pytest.fixture(scope="module")
def blob(codec_run, digit_images):
    return codec.compress(ae.load(codec_run), digit_images[0][:200], bits=6)


def _forge(blob: bytes, payload: bytes | None = None, count: int | None = None) -> bytes:
    """blob with another payload and/or count, its total length and checksum made valid again."""
    header = codec.read_header(blob)
    head = bytearray(blob[: header.header_bytes - 4])
    payload = header.payload if payload is None else payload
    struct.pack_into("<Q", head, 10, len(head) + len(payload) + 4)  # the total length, after magic and version
    if count is not None:
        struct.pack_into("<Q", head, 18 + 16, count)  # the count, after the fingerprint
    body = bytes(head) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def test_a_header_claiming_a_million_examples_is_refused_before_allocating(codec_run, blob, tmp_path):
    forged = _forge(blob, bytes(math.ceil(10**6 / codec.EXAMPLES_PER_BYTE)), count=10**6)  # a payload that may hold them
    model = ae.load(codec_run)
    budget.set_max_memory(64 << 20)
    try:
        with pytest.raises(ae.DataError, match="1,000,000 examples needs about .* more than the limit of 64.0 MiB"):
            codec.decompress(model, forged)
    finally:
        budget.set_max_memory(None)
    (tmp_path / "big.aec").write_bytes(forged)
    proc = cli("decompress", codec_run, tmp_path / "big.aec", "--out", tmp_path / "x.npy", memory=MEMORY_LIMIT,
               env={"AEKIT_MAX_MEMORY": "256M"})
    assert_usage_error(proc, "big.aec: decoding the codec file's 1,000,000 examples needs about")
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("damage", ["zeros", "zero-padded", "truncated", "flipped", "extra words"])
def test_a_forged_payload_is_a_data_error_naming_it(codec_run, blob, damage):
    payload = codec.read_header(blob).payload
    forged = {"zeros": bytes(len(payload)),
              "zero-padded": payload + bytes(4 * 64),
              "truncated": payload[: len(payload) // 2 // 4 * 4],
              "flipped": payload[:20] + bytes([payload[20] ^ 0x41]) + payload[21:],
              "extra words": payload + b"\x01\x02\x03\x04" * 3}[damage]
    with pytest.raises(ae.DataError, match="coded payload"):
        codec.decompress(ae.load(codec_run), _forge(blob, forged))


def test_a_format_version_zero_is_refused(codec_run, blob):
    body = bytearray(blob[:-4])
    struct.pack_into("<H", body, 8, 0)  # the version, after the magic
    with pytest.raises(ae.DataError, match="format version 0; there is no such version"):
        codec.decompress(ae.load(codec_run), bytes(body) + struct.pack("<I", zlib.crc32(body)))


def test_an_intact_file_still_decodes_exactly(codec_run, blob, digit_images):
    model = ae.load(codec_run)
    q = codec.Quantiser.fit(model.encode(digit_images[0][:200]), 6)
    expected = model.decode(q.dequantise(q.quantise(model.encode(digit_images[0][:200]))))
    np.testing.assert_array_equal(codec.decompress(model, blob), expected)


def test_an_out_of_range_recorded_fit_option_names_the_file(tmp_path, digits):
    folder = tmp_path / "run"
    ae.fit(ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2), digits[0][:100], epochs=1, out=folder, verbose=0)
    config = json.loads((folder / "config.json").read_text())
    config["training"]["lr"] = -1.0
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ae.CheckpointError, match=r"config.json: field .training. is invalid: lr must be"):
        ae.resume(folder, digits[0][:100], epochs=2)
    assert_usage_error(cli("resume", folder, "--data", "digits", "--epochs", "2"), "field 'training' is invalid")
    ae.resume(folder, digits[0][:100], epochs=2, lr=1e-3)  # the user's own lr replaces the tampered one
