"""A person's workflow on their own runs (issue 14): resume without repeating options, data reused,
reports that tell the truth, sampling and image grids, threads, enough optimizer steps, honest units."""

import json
import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import aekit as ae
from aekit.evaluation import metrics
from aekit.report import figures
from aekit.report import run as report_run
from aekit.sklearn import AutoencoderOutlierDetector, AutoencoderTransformer
from aekit.training import TrainingWarning
from helpers import assert_usage_error, cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small denoising run on the embedded digits, trained by the CLI, then resumed twice."""
    folder = tmp_path_factory.mktemp("workflow") / "run"
    cli("train", "denoising", "--data", "digits", "--hidden", "32", "--latent-dim", "4", "--epochs", "2",
        "--out", folder, "--quiet", "--threads", "1", check=0)
    return folder


# ----- resume: the model comes from the run; segments are recorded -----


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_resume_and_train_resume_need_no_model_options_and_record_every_segment(run):
    cli("resume", run, "--epochs", "3", "--batch-size", "64", "--quiet", check=0)
    cli("train", "--out", run, "--resume", "--epochs", "4", "--quiet", check=0)
    loaded = ae.load_run(run)
    assert len(loaded.history) == 4
    segments = loaded.segments
    assert [s["epochs_reached"] for s in segments] == [2, 3, 4]
    assert [s["training"]["epochs"] for s in segments] == [2, 3, 4]
    assert segments[1]["training"]["batch_size"] == 64 and segments[2]["training"]["batch_size"] == 64
    assert "resume" in segments[1]["command"] and "--resume" in segments[2]["command"]
    assert loaded.training["epochs"] == 4 and loaded.command == segments[0]["command"]
    html = (run / "report.html").read_text()
    assert all(re.sub("[<>&]", "", s["command"])[:30] in html for s in segments)  # the report shows them


def test_a_conflicting_model_option_on_resume_is_named_with_both_values(run):
    before = (run / "weights.safetensors").read_bytes()
    assert_usage_error(cli("train", "denoising", "--out", run, "--resume", "--latent-dim", "8", "--epochs", "9"),
                       "latent_dim=8 (the run has 4)")
    assert_usage_error(cli("train", "vae", "--out", run, "--resume", "--epochs", "9"), "kind='vae' (the run has 'denoising')")
    assert (run / "weights.safetensors").read_bytes() == before


def test_library_resume_continues_from_the_run(digits, tmp_path):
    model = ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2)
    ae.fit(model, digits[0][:300], epochs=2, out=tmp_path / "r", verbose=0)
    resumed = ae.resume(tmp_path / "r", x=digits[0][:300], epochs=5)
    assert len(resumed.history) == 5 and [s["epochs_reached"] for s in resumed.segments] == [2, 5]
    reference = ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2)
    ae.fit(reference, digits[0][:300], epochs=5, verbose=0)
    for k, v in reference.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_a_run_from_before_the_newer_model_options_loads_and_resumes(kind, digits, tmp_path):
    # config.json of a run written before issues 15 and 16 added model options: it lacks them, and
    # they take their defaults (the model is the same), for ae.load and for resume's same-model check.
    model = ae.build(kind, input_shape=(64,), hidden=(8,), latent_dim=2)
    ae.fit(model, digits[0][:300], epochs=2, out=tmp_path / "r", verbose=0)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    newer = ("posterior", "kl_warmup_epochs", "free_bits", "objective", "iwae_samples", "n_classes", "label_dropout",
             "code_noise", "rate_weight")
    config["model"] = {k: v for k, v in config["model"].items() if k not in newer}
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    assert ae.load(tmp_path / "r").config == model.config
    resumed = ae.resume(tmp_path / "r", x=digits[0][:300], epochs=3)
    assert len(resumed.history) == 3


# ----- data: every command reuses the recorded source -----


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_every_command_that_takes_data_reuses_the_recorded_source(run, tmp_path):
    cli("encode", run, "--out", tmp_path / "z.npy", check=0)
    assert np.load(tmp_path / "z.npy").shape == (1797, 4)
    cli("reconstruct", run, "--out", tmp_path / "r.npy", check=0)
    cli("detect", run, "--out", tmp_path / "s.csv", check=0)
    cli("interpolate", run, "--from", "0", "--to", "1", "--out", tmp_path / "p.npy", check=0)
    out = cli("evaluate", run, "--log-likelihood-samples", "0", check=0).stdout
    assert out.splitlines()[0].startswith("1797 examples of digits")


# ----- reports that tell the truth -----


def test_report_subset_is_seeded_stratified_and_never_the_first_rows():
    ds = ae.data.load("mnist-5k")  # sorted by class: its first 2,000 rows hold 0-3 only
    assert set(np.asarray(ds.y[:2000]).tolist()) == {0, 1, 2, 3}
    part = report_run.subset(ds, 2000)
    counts = np.bincount(part.y, minlength=10)
    assert len(part) == 2000 and counts.min() == counts.max() == 200
    np.testing.assert_array_equal(report_run.subset(ds, 2000).y, part.y)  # seeded


def test_report_shows_class_names_and_only_what_applies(tmp_path):
    rng = np.random.default_rng(0)
    table = tmp_path / "sensors.csv"
    rows = ["machine,temp,pressure"] + [f"{m},{t:.3f},{p:.3f}" for m, t, p in
                                       zip(rng.choice(["press", "lathe"], 300), rng.normal(50, 5, 300),
                                           rng.normal(1000, 50, 300))]
    table.write_text("\n".join(rows) + "\n")
    model = ae.build("ae", input_shape=(2,), hidden=(8,), latent_dim=2, reconstruction="mse")
    ds = ae.data.load(table, label_column="machine")
    ae.fit(model, ds, epochs=2, out=tmp_path / "r", verbose=0)
    html = report_run.write_report(tmp_path / "r").read_text()
    metrics_table = html[html.index("Metrics"):]
    assert "psnr" not in metrics_table and "log-likelihood" not in html  # a table, not a VAE
    assert ">channels<" not in html and ">noise_level<" not in html and ">beta<" not in html  # options that do not apply
    assert report_run._class_names(ds) == ["lathe", "press"]
    rows = report_run._one_per_class(np.repeat(np.arange(5), 40), 5)
    assert sorted(rows // 40) == [0, 1, 2, 3, 4]  # reconstructions across classes


def test_denoising_reports_show_the_corrupted_row_and_loss_curves_go_log_when_they_span_decades(digits):
    model = ae.build("denoising", input_shape=(1, 8, 8), hidden=(8,), latent_dim=2)
    rows = report_run._reconstruction_rows(model, digits[0][:4].reshape(-1, 1, 8, 8))
    assert [name for name, _ in rows] == ["input", "corrupted", "reconstruction"]
    assert not np.allclose(rows[0][1], rows[1][1])
    assert figures.log_scale([100.0, 20.0, 5.0]) and not figures.log_scale([30.0, 25.0, 20.0])


def test_reconstruct_png_shows_64_examples_and_a_clean_row_with_noise(run, tmp_path):
    cli("reconstruct", run, "--out", tmp_path / "a.png", check=0)
    cli("reconstruct", run, "--noise", "masking", "--out", tmp_path / "b.png", check=0)
    scale, pad, side = 7, 1, 8  # 8x8 digits drawn 7 pixels a pixel, 1 pixel apart
    for name, rows_per_example in (("a.png", 2), ("b.png", 3)):
        width, height = Image.open(tmp_path / name).size
        assert width == (8 * (side + pad) + pad) * scale  # 8 per row
        assert height == (8 * rows_per_example * (side + pad) + pad) * scale  # 64 examples x rows_per_example


# ----- interpolate between classes -----


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_interpolate_between_labels(run, tmp_path):
    cli("interpolate", run, "--from-label", "0", "--to-label", "7", "--steps", "5", "--out", tmp_path / "p.npy",
        check=0)
    path = np.load(tmp_path / "p.npy").reshape(5, -1)
    model, ds = ae.load(run), ae.data.load("digits")
    x, y = ds.x.numpy(), ds.y
    means = {c: model.reconstruct(x[y == c]).reshape((y == c).sum(), -1).mean(0) for c in (0, 7)}
    assert np.linalg.norm(path[0] - means[0]) < np.linalg.norm(path[0] - means[7])
    assert np.linalg.norm(path[-1] - means[7]) < np.linalg.norm(path[-1] - means[0])
    assert_usage_error(cli("interpolate", run, "--from-label", "42", "--to", "3", "--out", tmp_path / "q.npy"),
                       "no example of class '42'")
    assert_usage_error(cli("interpolate", run, "--from", "1", "--from-label", "0", "--to", "3", "--out",
                           tmp_path / "q.npy"), "give either --from")


# ----- sampling on every model, image grids, no stray warnings -----


@pytest.mark.parametrize("kind", [k.name for k in ae.kinds()])
def test_every_kind_samples_with_a_seed_as_numpy(kind, digits):
    model = ae.build(kind, input_shape=(64,), latent_dim=4, **({"pretrain_epochs": 1} if kind == "stacked" else {}))
    labels = digits[1][:200] if model.config.n_classes else None  # a conditional kind needs its labels
    ae.fit(model, digits[0][:200], y=labels, epochs=1, batch_size=50, verbose=0)
    a, b = model.sample(6, seed=3), model.sample(6, seed=3)
    assert isinstance(a, np.ndarray) and a.shape == (6, 64)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, model.sample(6, seed=4))


def test_an_unfitted_plain_model_says_how_to_sample(tmp_path):
    with pytest.raises(ae.ConfigError, match="no code density yet"):
        ae.build("ae", input_shape=(64,)).sample(3)


def test_save_image_grid(tmp_path, digits):
    path = ae.save_image_grid(digits[0][:10], tmp_path / "g.png", ncols=5, input_shape=(1, 8, 8))
    assert Image.open(path).size == ((5 * 9 + 1) * 7, (2 * 9 + 1) * 7)


def test_generate_prints_no_warning(run, tmp_path):
    proc = cli("generate", run, "-n", "50", "--out", tmp_path / "g.npy", check=0)
    assert proc.stderr == "" and np.load(tmp_path / "g.npy").shape == (50, 1, 8, 8)


# ----- threads -----


def test_threads_are_set_for_training_and_restored(digits):
    before = torch.get_num_threads()
    seen = []
    model = ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2)
    ae.fit(model, digits[0][:200], epochs=2, verbose=0, callback=lambda row, m: seen.append(torch.get_num_threads()))
    assert seen == [1, 1]  # a small model: one thread, whatever the machine
    ae.fit(model, digits[0][:200], epochs=1, verbose=0, n_threads=2,
           callback=lambda row, m: seen.append(torch.get_num_threads()))
    assert seen[-1] == 2 and torch.get_num_threads() == before
    assert AutoencoderOutlierDetector(n_threads=1).get_params()["n_threads"] == 1
    with pytest.raises(ae.ConfigError, match="n_threads must be an int"):
        ae.fit(model, digits[0][:200], n_threads=0, verbose=0)


# ----- enough optimizer steps -----


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_too_few_steps_warn_naming_the_count_and_the_default_gives_enough(digit_images):
    x = digit_images[0][:180]
    with pytest.warns(TrainingWarning, match=r"only 6 optimizer steps \(2 per epoch: 162 examples in batches of 128"):
        ae.fit(ae.build("denoising", input_shape=(1, 8, 8), architecture="conv", latent_dim=8), x, epochs=3,
               batch_size=128, verbose=0)
    model = ae.build("denoising", input_shape=(1, 8, 8), architecture="conv", latent_dim=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        history = ae.fit(model, x, verbose=0)
    steps = len(history) * int(np.ceil(162 / 20))  # the auto batch for 162 rows: 162 // 8 = 20
    assert steps >= 3000
    recon = model.reconstruct(x)
    # Not the mean image: reconstructions follow their inputs.
    assert np.corrcoef(recon.reshape(180, -1).std(0), x.reshape(180, -1).std(0))[0, 1] > 0.8


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_the_transformers_default_codes_beat_pca_in_a_linear_probe():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    ours, pca = [], []
    for seed in (0, 1):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=seed, stratify=y)

        def probe(ftr, fte, ytr=ytr, yte=yte):
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(ftr, ytr).score(fte, yte)

        codes = AutoencoderTransformer(random_state=seed).fit(Xtr)
        ours.append(probe(codes.transform(Xtr), codes.transform(Xte)))
        p = PCA(16, random_state=seed).fit(Xtr)
        pca.append(probe(p.transform(Xtr), p.transform(Xte)))
    assert np.mean(ours) >= np.mean(pca), (ours, pca)


# ----- units and honest headers -----


def test_raw_sizes_are_in_the_datas_own_dtype(tmp_path):
    ds = ae.data.load("digits")
    model = ae.build("ae", input_shape=(1, 8, 8), hidden=(8,), latent_dim=2)
    as_dataset = metrics.compression(model, ds)
    assert as_dataset["raw_dtype"] == "float32" and as_dataset["raw_bytes_per_example"] == 64 * 4
    np.save(tmp_path / "u8.npy", np.random.default_rng(0).integers(0, 256, (30, 1, 8, 8), dtype=np.uint8))
    u8 = ae.data.load(tmp_path / "u8.npy")
    result = metrics.compression(model, u8)
    assert result["raw_dtype"] == "uint8" and result["raw_bytes_per_example"] == 64 and result["examples"] == 30
    assert metrics.compression(model, u8.x)["raw_bytes_per_example"] == 64 * 4  # a float32 tensor: its own dtype


def test_evaluate_says_how_many_examples_each_figure_used(digits):
    model = ae.build("vae", input_shape=(64,), hidden=(8,), latent_dim=2)
    result = ae.evaluate(model, digits[0][:120], labels=digits[1][:120], log_likelihood_samples=5,
                         log_likelihood_examples=50, compression_sizes=True)
    assert result["examples"] == 120 and result["reconstruction"]["examples"] == 120
    assert result["vae"]["log_likelihood_examples"] == 50 and result["vae"]["examples"] == 120
    assert result["latent"]["examples"] == 120 and result["compression"]["examples"] == 120
    assert json.dumps(result)  # JSON-ready
