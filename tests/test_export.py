"""ONNX export (ae.export in aekit.onnx_export, `aekit export`): every kind and architecture, trained briefly on the real
digits, gives an encoder, a decoder and a scorer that onnxruntime runs at any batch size with PyTorch's
results; a table run's scorer takes the raw feature rows and gives `aekit detect`'s scores.

Tolerances: outputs within rtol 1e-5 and atol 1e-5 times the output's scale (max |PyTorch output|, at least
1): codes, posteriors, reconstructions (float32) and the model-only scores of image runs, whose -log p(x) can
be near 0 for a Gaussian model; a table run's scores (positive) within rtol 1e-5 of aekit detect's."""

import copy
import importlib
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.datasets import load_wine

import aekit as ae
from aekit.anomaly.detect import detect
from aekit.anomaly.detector import fit_detector
from aekit.cli import run as cli_run
from aekit.data.tables import encode
from aekit.onnx_export import DECODER, ENCODER, MANIFEST, OPSET, SCORER
from aekit.runs.run import Run

EXPORT = importlib.import_module("aekit.onnx_export")  # the module of ae.export
pytestmark = pytest.mark.usefixtures("one_thread")
BATCHES = (7, 64)  # two batch sizes through every file
CONV = dict(architecture="conv", channels=(4, 8))
CASES = [
    ("pca", {}),
    ("ae", {}),
    ("sparse", {}),
    ("denoising", {}),
    ("contractive", {}),
    ("stacked", dict(pretrain_epochs=1)),
    ("vae", {}),
    ("cvae", {}),
    ("factor_analysis", {}),
    ("ppca", {}),
    ("ae", CONV),
    ("ae", dict(architecture="fully_conv", channels=(4, 8), latent_dim=8)),
    ("vae", CONV),
    ("cvae", CONV),
]


@pytest.fixture(scope="module")
def digits_data():
    return ae.data.load("digits")  # 1,797 real 8x8 digits, (1, 8, 8), scaled from 0..16 to [0, 1]


def close(got, want, rtol=1e-5):
    """float32 parity: rtol, and atol relative to the output's scale."""
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, float(np.abs(want).max())))


def _train(kind, options, data, folder):
    small = {} if kind in ("pca", "factor_analysis", "ppca") else dict(hidden=(16,))
    model = ae.build(kind, data.input_shape, **{"latent_dim": 4, **small, **options})
    ae.fit(model, data, y=data.y if kind == "cvae" else None, epochs=1, out=folder, verbose=0)
    return ae.load_run(folder)


@pytest.mark.parametrize("kind, options", CASES, ids=[f"{k}-{o.get('architecture', 'mlp')}" for k, o in CASES])
def test_every_kind_runs_in_onnxruntime_as_in_pytorch(kind, options, digits_data, tmp_path):
    run = _train(kind, options, digits_data, tmp_path / "run")
    out = ae.export(run, tmp_path / "onnx")
    manifest = json.loads((out / MANIFEST).read_text())
    model, c = run.model, run.config
    assert (manifest["opset"], manifest["kind"], manifest["library_version"]) == (OPSET, kind, ae.__version__)
    assert set(manifest["files"]) == {ENCODER, DECODER, SCORER}
    sessions = {name: ort.InferenceSession(str(out / name)) for name in manifest["files"]}
    for name, session in sessions.items():  # the names and shapes the manifest states; dimension 0 is dynamic
        proto = onnx.load(str(out / name))
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
        assert [i.name for i in session.get_inputs()] == [s["name"] for s in manifest["files"][name]["inputs"]]
        assert [o.name for o in session.get_outputs()] == [s["name"] for s in manifest["files"][name]["outputs"]]
        for spec, arg in zip(manifest["files"][name]["inputs"], session.get_inputs()):
            assert isinstance(arg.shape[0], str) and list(arg.shape[1:]) == spec["shape"][1:]
    x_all = digits_data.numpy()[-100:]  # the last rows, with their labels for a conditional model
    labels_all = digits_data.y[-100:].astype(np.int64)
    labels_all[::9] = -1  # unknown class: the all-zero one-hot
    for n in BATCHES:
        x, labels = x_all[:n], labels_all[:n]
        feeds = {"x": x, "labels": labels} if c.n_classes else {"x": x}
        y = labels if c.n_classes else None
        got = sessions[ENCODER].run(None, feeds)
        if c.variational:  # the posterior mean, and the log-variance as a second output
            mean, logvar = model.posterior(x, labels=y)
            close(got[0], mean), close(got[1], logvar)
            codes = mean
        else:
            codes = model.encode(x, labels=y)
            close(got[0], codes)
        feeds = {"z": codes, "labels": labels} if c.n_classes else {"z": codes}
        (decoded,) = sessions[DECODER].run(None, feeds)
        close(decoded, model.decode(codes, labels=y))  # probabilities or means, as model.decode
        raw = x.reshape(n, -1).astype(np.float64) * 16.0  # the data's own units: digits are 0..16
        score, outlier = sessions[SCORER].run(None, {"x": raw.reshape(n, *c.input_shape)})
        want = run.detector.scores(model, digits_data.transform(raw).reshape(n, *c.input_shape))
        assert score.dtype == np.float64
        close(score, want)  # relative to the scores' scale: -log p(x) of a Gaussian model can be near 0
        assert (outlier == (want > run.detector.threshold)).all()
    if kind in ("factor_analysis", "ppca"):  # the exact posterior, read from the model as an affine map
        assert manifest["files"][ENCODER]["check"]["max_rel_error"] < 1e-5


def wine_csv(path):
    """scikit-learn's wine table (178 real wines, 13 measurements on scales from 0.1 to 1,680) with an
    identifier column and the cultivar as a categorical column."""
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame.insert(0, "cultivar", np.array(["barolo", "grignolino", "barbera"])[wine.target])
    frame.insert(0, "bottle", [f"b{i:04d}" for i in range(len(frame))])
    frame.to_csv(path, index=False)
    return frame


def feature_matrix(path, manifest):
    """The scorer's input from a CSV file with pandas alone, as docs/guides/export.md shows: each numeric
    column as it is, each categorical one as its one-hot columns in the manifest's order (an empty cell is
    the level "(missing)", a level the training rows did not keep is "(other)")."""
    table = manifest["scorer"]["table"]
    frame = pd.read_csv(path, dtype={column: str for column in table["categorical"]})
    columns = []
    for column in table["features"]:
        if column in table["categorical"]:
            levels = table["categorical"][column]
            values = frame[column].fillna("(missing)").str.strip()
            values = values.where(values.isin(levels), "(other)")
            columns += [(values == category).to_numpy(np.float64) for category in levels]
        else:
            columns.append(pd.to_numeric(frame[column]).to_numpy(np.float64))
    return np.column_stack(columns)


def test_a_table_run_exported_by_the_cli_scores_as_aekit_detect(tmp_path, capsys):
    frame = wine_csv(tmp_path / "wine.csv")
    run, out = tmp_path / "run", tmp_path / "onnx"
    assert cli_run(["train", "ae", "--data", str(tmp_path / "wine.csv"), "--out", str(run), "--quiet",
                    "--epochs", "20", "--seed", "0"]) == 0
    assert cli_run(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([DECODER, ENCODER, MANIFEST, SCORER])
    assert "scorer.onnx: score ('batch',), outlier ('batch',)" in capsys.readouterr().out
    manifest = json.loads((out / MANIFEST).read_text())
    loaded = ae.load_run(run)
    assert manifest["scorer"]["features"] == loaded.dataset(str(tmp_path / "wine.csv")).feature_names
    assert manifest["scorer"]["features"][:5] == ["cultivar=barolo", "cultivar=grignolino", "cultivar=barbera",
                                                  "cultivar=(other)", "cultivar=(missing)"]
    assert (manifest["scorer"]["score"], manifest["scorer"]["scaling"]) == ("combined", "robust")
    assert manifest["files"][SCORER]["inputs"] == [{"name": "x", "dtype": "float64", "shape": ["batch", 18]}]
    assert cli_run(["detect", str(run), "--data", str(tmp_path / "wine.csv"), "--out", str(tmp_path / "s.csv")]) == 0
    want = pd.read_csv(tmp_path / "s.csv")
    x = feature_matrix(tmp_path / "wine.csv", manifest)
    assert_allclose(x, encode(frame, manifest["scorer"]["table"]))  # the docs' recipe is aekit's encoding
    session = ort.InferenceSession(str(out / SCORER))
    for n in (len(x), 5):
        score, outlier = session.run(None, {"x": x[:n]})
        assert_allclose(score, want["score"][:n], rtol=1e-5)
        assert (outlier == want["outlier"][:n]).all()
    # New rows in their own units, one of them far off: the scorer ranks it first, as aekit does.
    odd = frame.iloc[:20].copy()
    odd.loc[3, "proline"] *= 8
    odd.to_csv(tmp_path / "odd.csv", index=False)
    score, _ = session.run(None, {"x": feature_matrix(tmp_path / "odd.csv", manifest)})
    ds = loaded.dataset(str(tmp_path / "odd.csv"))
    assert_allclose(score, detect(loaded, ds).scores, rtol=1e-5)
    assert int(np.argmax(score)) == 3


@pytest.mark.parametrize("kind", ["vae", "factor_analysis"])
def test_table_scorers_of_variational_and_exact_posterior_models(kind, tmp_path):
    wine_csv(tmp_path / "wine.csv")
    ds = ae.data.load(str(tmp_path / "wine.csv"))
    model = ae.build_for(kind, ds, seed=0)
    ae.fit(model, ds, epochs=5, out=tmp_path / "run", verbose=0)
    run = ae.load_run(tmp_path / "run")
    out = ae.export(tmp_path / "run", tmp_path / "onnx")
    manifest = json.loads((out / MANIFEST).read_text())
    score, _ = ort.InferenceSession(str(out / SCORER)).run(None, {"x": feature_matrix(tmp_path / "wine.csv", manifest)})
    assert_allclose(score, detect(run, run.dataset()).scores, rtol=1e-5)
    if kind == "factor_analysis":  # the exact posterior's map is read in float64: as close to the float64
        x = run.dataset().x  # model as PyTorch's float32 Cholesky path, or closer (its error grows with cond M)
        with torch.no_grad():
            truth = copy.deepcopy(run.model).double().posterior_of(x.double()).mean.numpy()
            float32 = run.model.posterior_of(x).mean.numpy()
        (mean, _) = ort.InferenceSession(str(out / ENCODER)).run(None, {"x": x.numpy()})
        scale = np.abs(truth).max()
        assert np.abs(mean - truth).max() <= max(np.abs(float32 - truth).max(), 1e-6 * scale)


def test_the_dynamo_exporter_gives_the_same_files(digits_data, tmp_path):
    assert ae.export is EXPORT.export and "export" in ae.__all__  # the function
    model = ae.build("vae", digits_data.input_shape, latent_dim=4, hidden=(16,))
    out = ae.export(model, tmp_path / "onnx", exporter="dynamo")
    manifest = json.loads((out / MANIFEST).read_text())
    assert {facts["exporter"] for facts in manifest["files"].values()} == {"dynamo"}
    assert SCORER in manifest["not_exported"]  # a model without its run: no detector, said so
    x = digits_data.numpy()[:BATCHES[0]]
    mean, logvar = ort.InferenceSession(str(out / ENCODER)).run(None, {"x": x})
    want_mean, want_logvar = model.posterior(x)
    close(mean, want_mean), close(logvar, want_logvar)
    (decoded,) = ort.InferenceSession(str(out / DECODER)).run(None, {"z": want_mean})
    close(decoded, model.decode(want_mean))


def test_without_the_export_extra_the_error_names_the_package(monkeypatch, tmp_path):
    model = ae.build("pca", (8,), latent_dim=2)
    for package in ("onnx", "onnxruntime"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, package, None)  # `import onnx` raises ImportError
            with pytest.raises(ae.ConfigError, match=rf"package '{package}'.*pip install 'aekit\[export\]'"):
                ae.export(model, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "not_a_run").mkdir()
    assert cli_run(["export", str(tmp_path / "not_a_run"), "--out", str(tmp_path / "a")]) == 2
    assert "is not a run folder: config.json is missing" in capsys.readouterr().err
    run = tmp_path / "run"
    ae.save(ae.build("pca", (6,), latent_dim=2), run)
    assert cli_run(["export", str(run), "--format", "tflite", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown export format 'tflite'" in err and "valid: onnx" in err
    assert cli_run(["export", str(run), "--out", str(tmp_path / "a")]) == 0
    assert "no scorer.onnx:" in capsys.readouterr().out  # a saved model without a detector: said, not dropped
    before = (tmp_path / "a" / ENCODER).read_bytes()
    assert cli_run(["export", str(run), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds encoder.onnx, decoder.onnx, export.json" in err
    assert "--overwrite" in err and (tmp_path / "a" / ENCODER).read_bytes() == before
    assert cli_run(["export", str(run), "--out", str(tmp_path / "a"), "--overwrite"]) == 0


def test_nothing_is_written_when_a_file_cannot_be_made(monkeypatch, digits_data, tmp_path):
    model = ae.build("ae", digits_data.input_shape, latent_dim=4, hidden=(16,))

    def broken(self, z, labels=None):
        raise RuntimeError("an operator ONNX lacks")

    monkeypatch.setattr(EXPORT.Decoder, "forward", broken)
    with pytest.raises(ae.ConfigError, match="decoder of this 'ae' \\(mlp\\) model cannot be exported.*operator ONNX"):
        ae.export(model, tmp_path / "onnx", exporter="torchscript")
    assert not (tmp_path / "onnx").exists()  # the encoder was made, but nothing is written


@pytest.mark.parametrize("scale", ["standard", "minmax", "robust", "rownorm", "none"])
def test_the_scorer_applies_every_scaling_as_aekit_does(scale, tmp_path):
    frame = wine_csv(tmp_path / "wine.csv")
    ds = ae.data.load(str(tmp_path / "wine.csv"), scale=scale)
    model = ae.build_for("ae", ds, seed=0)  # untrained: parity does not need a trained model
    detector, _ = fit_detector(model, ds.x)
    run = Run(tmp_path, model, data={"scaling": ds.scaling, "table": ds.info["table"]}, detector=detector)
    out = ae.export(run, tmp_path / "onnx")
    score, outlier = ort.InferenceSession(str(out / SCORER)).run(None, {"x": encode(frame, ds.info["table"])})
    want = detector.scores(model, ds.x)
    assert_allclose(score, want, rtol=1e-5)
    assert (outlier == (want > detector.threshold)).all()


@pytest.mark.parametrize("name", ["reconstruction", "squared_error", "smoothed_squared_error", "elbo"])
def test_the_scorer_gives_every_model_score_of_an_image_detector(name, digits_data, tmp_path):
    model = ae.build("vae", digits_data.input_shape, latent_dim=4, hidden=(16,), **CONV)
    detector, _ = fit_detector(model, digits_data.x[:500], name)
    run = Run(tmp_path, model, data={"scaling": digits_data.scaling}, detector=detector)
    out = ae.export(run, tmp_path / "onnx")
    assert json.loads((out / MANIFEST).read_text())["scorer"]["features"][:2] == ["c0y0x0", "c0y0x1"]
    raw = digits_data.numpy()[-40:].astype(np.float64) * 16.0
    score, _ = ort.InferenceSession(str(out / SCORER)).run(None, {"x": raw})
    close(score, detector.scores(model, digits_data.x[-40:]))
