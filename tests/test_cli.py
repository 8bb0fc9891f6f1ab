"""The command line as a person runs it: real commands in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aekit as ae
from helpers import assert_usage_error, cli, python


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One small trained run on the embedded digits, shared by the commands that use a run."""
    folder = tmp_path_factory.mktemp("cli") / "vae"
    cli("train", "vae", "--data", "digits", "--latent-dim", "2", "--hidden", "32", "--epochs", "3", "--out", folder,
        "--quiet", check=0)
    return folder


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_help_on_every_command():
    for command in ("", "kinds", "datasets", "train", "evaluate", "generate", "encode", "reconstruct", "interpolate",
                    "detect", "report", "tour"):
        proc = cli(*([command] if command else []), "--help", check=0)
        assert "Usage:" in proc.stdout


def test_kinds_and_datasets_list_everything():
    out = cli("kinds", check=0).stdout
    for k in ae.kinds():
        assert f"{k.name}:" in out
    assert "sparsity_target=0.05" in out
    out = cli("datasets", check=0).stdout
    assert "mnist-5k:" in out and "spiral:" in out and "split='train'" in out


def test_train_writes_the_run_folder_and_summary(run):
    for name in ("config.json", "weights.safetensors", "history.csv", "metrics.json", "report.html"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["command"].startswith("aekit train vae --data digits --latent-dim 2")
    assert config["data"]["source"] == {"name": "digits", "options": {}}
    html = (run / "report.html").read_text()
    assert "Loss curves" in html and "Samples from the prior" in html and "aekit train vae" in html
    model = ae.load(run)
    assert model.config.latent_dim == 2 and model.config.hidden == (32,)


def test_config_file_and_set_overrides(tmp_path):
    (tmp_path / "run.yaml").write_text("kind: sparse\ndata: digits\nlatent_dim: 8\nhidden: [16]\nepochs: 1\n"
                                       "sparsity_weight: 0.5\n")
    proc = cli("train", "--config", tmp_path / "run.yaml", "--set", "latent_dim=6", "--set", "sparsity-target=0.1",
               "--out", tmp_path / "r", "--quiet", check=0)
    assert "sparse: 1 epochs" in proc.stdout and "validation" in proc.stdout
    config = ae.load(tmp_path / "r").config
    assert (config.latent_dim, config.sparsity_weight, config.sparsity_target) == (6, 0.5, 0.1)


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "vea", "--data", "digits"], "unknown kind 'vea' (did you mean 'vae'?)"),
        (["train", "ae", "--data", "mnsit"], "unknown dataset 'mnsit' (did you mean 'mnist'?)"),
        (["train", "ae", "--data", "digits", "--latnt-dim", "3"], "No such option '--latnt-dim'. (Did you mean one of: '--latent-dim'"),
        (["train", "vae", "--data", "digits", "--sparsity", "l1"], "unknown option for kind 'vae': 'sparsity'"),
        (["train", "ae", "--data", "digits", "--set", "epochs=abc"], "--set: epochs='abc': "),
        (["train", "ae", "--data", "digits", "--set", "epoch=3"], "unknown option 'epoch' (did you mean 'epochs'?)"),
        (["train", "ae", "--data", "digits", "--epochs", "-1"], "epochs must be an int >= 1, got -1"),
        (["train", "ae", "--data", "digits", "--sparsity-target", "2"], "sparsity_target must lie in (0, 1)"),
        (["train", "ae", "--data", "digits", "--config", "missing.yaml"], "--config missing.yaml: file not found"),
        (["evaluate", "no/such/run"], "no/such/run: no such run folder"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_leave_nothing(tmp_path, args, message):
    proc = cli(*args, "--out", tmp_path / "out", cwd=tmp_path) if args[0] == "train" else cli(*args, cwd=tmp_path)
    assert_usage_error(proc, message)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_foreign_and_incompatible_run_folders(tmp_path, run):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "config.json").write_text('{"hello": 1}')
    assert_usage_error(cli("evaluate", tmp_path / "foreign"), "was not written by aekit")
    newer = tmp_path / "newer"
    newer.mkdir()
    config = json.loads((run / "config.json").read_text())
    config["format_version"] = 999
    (newer / "config.json").write_text(json.dumps(config))
    assert_usage_error(cli("generate", newer, "--out", tmp_path / "g.npy"), "format_version 999")


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_use_commands(run, tmp_path):
    out = cli("evaluate", run, "--log-likelihood-samples", "20", "--json", tmp_path / "m.json", check=0).stdout
    assert "vae.elbo_nats" in out and "reconstruction.mse_per_feature" in out
    assert json.loads((tmp_path / "m.json").read_text())["kind"] == "vae"

    cli("generate", run, "-n", "16", "--out", tmp_path / "grid.png", check=0)
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    cli("generate", run, "-n", "5", "--out", tmp_path / "s.npy", check=0)
    assert np.load(tmp_path / "s.npy").shape == (5, 1, 8, 8)

    cli("encode", run, "--data", "digits", "--out", tmp_path / "codes.csv", check=0)
    codes = np.loadtxt(tmp_path / "codes.csv", delimiter=",", skiprows=1)
    assert codes.shape == (1797, 2)
    np.testing.assert_allclose(codes, ae.load(run).encode(ae.data.load("digits").x.numpy()), rtol=1e-4, atol=1e-5)

    cli("reconstruct", run, "--data", "digits", "--noise", "masking", "--noise-level", "0.3", "--out",
        tmp_path / "r.npy", check=0)
    assert np.load(tmp_path / "r.npy").shape == (1797, 1, 8, 8)
    cli("interpolate", run, "--data", "digits", "--from", "0", "--to", "5", "--steps", "6", "--out",
        tmp_path / "path.npy", check=0)
    assert np.load(tmp_path / "path.npy").shape == (6, 1, 8, 8)

    proc = cli("detect", run, "--data", "digits", "--out", tmp_path / "scores.csv", "--contamination", "0.05", check=0)
    table = np.loadtxt(tmp_path / "scores.csv", delimiter=",", skiprows=1)
    assert table.shape == (1797, 4) and abs(table[:, 2].mean() - 0.05) < 0.01
    assert "flagged as outliers" in proc.stdout
    assert_usage_error(cli("detect", run, "--data", "digits", "--out", tmp_path / "s.csv", "--contamination", "0.9"),
                       "0.9 is not in (0, 0.5]")
    assert_usage_error(cli("interpolate", run, "--data", "digits", "--from", "0", "--to", "99999", "--out",
                           tmp_path / "p.npy"), "99999 is out of range")

    (run / "report.html").unlink()
    cli("report", run, check=0)
    assert (run / "report.html").is_file()


@pytest.mark.slow  # over 14 s: the default run keeps under 8 minutes (issue 24)
def test_resume_from_the_command_line(tmp_path):
    args = ["train", "ae", "--data", "digits", "--hidden", "8", "--latent-dim", "2", "--out", tmp_path / "r", "--quiet"]
    cli(*args, "--epochs", "1", check=0)
    assert_usage_error(cli(*args, "--epochs", "2"), "already holds a run")
    cli(*args, "--epochs", "2", "--resume", check=0)
    assert len((tmp_path / "r" / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs


def test_python_dash_m_and_entry_point_agree():
    exe = Path(sys.executable).with_name("aekit")
    if exe.exists():
        proc = subprocess.run([exe, "kinds"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout == cli("kinds").stdout


def test_conditional_vae_from_the_command_line(tmp_path, run):
    # Trained in this process (`train cvae` is `fit` on the dataset, whose labels it uses; the report costs
    # the subprocess 15 s here), sampled by the command line.
    folder = tmp_path / "cvae"
    model = ae.build("cvae", input_shape=(1, 8, 8), latent_dim=4, hidden=(64,))
    ae.fit(model, ae.data.load("digits"), epochs=10, lr=3e-3, out=folder, verbose=0)
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["n_classes"] == 10 and config["data"]["labelled"] == 1617  # the dataset's labels
    cli("generate", folder, "-n", "40", "--label", "7", "--out", tmp_path / "sevens.npy", check=0)
    sevens = np.load(tmp_path / "sevens.npy")
    assert sevens.shape == (40, 1, 8, 8)
    digits = ae.data.load("digits")
    judge = ae.evaluation.quality.train_judge(digits.x, digits.y, epochs=10)
    assert (judge.predict_proba(sevens).argmax(1) == 7).mean() >= 0.9
    assert_usage_error(cli("generate", run, "--label", "3", "--out", tmp_path / "y.npy"),
                       "--label is for a conditional model (kind cvae)")


def test_help_and_version_start_without_torch():
    # The command starts fast: `aekit --help` and `--version` do not load torch (aekit's public names are
    # imported on first use; the commands import what they need when they run).
    code = ("import sys, aekit.cli\n"
            "codes = [aekit.cli.run(args) for args in (['--help'], ['--version'])]\n"
            "print(codes, 'torch' in sys.modules, 'aekit.models' in sys.modules)")
    proc = python(code)
    assert proc.returncode == 0, proc.stderr
    assert "Commands:" in proc.stdout and "aekit, version" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "[0, 0] False False"
