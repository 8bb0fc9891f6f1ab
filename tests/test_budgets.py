"""A budget before any allocation (issue 25): every size that comes from a user or a file is estimated and
checked against the memory (or time) limit before anything is allocated, and refused with the estimate, the
limit and how to raise it. Library calls, and the command line under an address-space limit (`memory=`),
where an allocation of the refused size could not even start."""

import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import aekit as ae
from aekit import budget
from aekit.evaluation import generation, metrics
from aekit.inference import threads_for_work
from aekit.training.options import step_memory
from helpers import MEMORY_LIMIT, assert_usage_error, cli, python

MEMORY = r"needs about [\d.]+ [KMGTPE]?i?B of memory, more than the limit of [\d.]+ [KMGTPE]?i?B \(--max-memory or AEKIT_MAX_MEMORY raises it\)"
TIME = r"would take about .* or more, more than the limit of .* \(--max-seconds or AEKIT_MAX_SECONDS raises it\)"
HUGE = 10**9


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    """Each test starts from the default limits, whatever the environment running the suite says."""
    monkeypatch.delenv("AEKIT_MAX_MEMORY", raising=False)
    monkeypatch.delenv("AEKIT_MAX_SECONDS", raising=False)
    budget.set_max_memory(None)
    budget.set_max_seconds(None)
    yield
    budget.set_max_memory(None)
    budget.set_max_seconds(None)


@pytest.fixture(scope="module")
def vae(digits):
    model = ae.build("vae", input_shape=(64,), hidden=(16,), latent_dim=2)
    ae.fit(model, digits[0][:200], epochs=1, verbose=0)
    return model


def _png_header(path, width, height):
    """A PNG that declares width x height pixels: signature, IHDR, an empty IDAT, IEND (a few dozen bytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind,shape,options", [
    ("ae", (64,), {"latent_dim": HUGE}),
    ("ae", (64,), {"hidden": (HUGE,)}),
    ("ae", (HUGE,), {}),
    ("ae", (64,), {"latent_dim": 10**5, "hidden": ()}),  # the plain autoencoder's latent_dim^2 code covariance
    ("vae", (1, 28, 28), {"architecture": "conv", "channels": (HUGE,)}),
    ("vae", (3, 10**5, 10**5), {"architecture": "fully_conv", "channels": (8,), "latent_dim": 8 * 50_000**2}),
    ("cvae", (64,), {"n_classes": HUGE}),
], ids=["latent_dim", "hidden", "input_shape", "code_covariance", "conv_channels", "image_canvas", "n_classes"])
def test_model_sizes_are_refused_before_the_model_is_built(kind, shape, options):
    with pytest.raises(ae.ConfigError, match=rf"a '{kind}' model of [\d,]+ parameters \(input_shape=.*\) {MEMORY}"):
        ae.build(kind, shape, **options)


def test_the_memory_limit_is_set_by_the_environment_or_the_call(monkeypatch):
    monkeypatch.setenv("AEKIT_MAX_MEMORY", "1M")  # a default MNIST model's weights: 1.7 MiB
    assert budget.max_memory() == 1 << 20
    with pytest.raises(ae.ConfigError, match=r"1\.0 MiB \(--max-memory"):
        ae.build("ae", (1, 28, 28))
    monkeypatch.setenv("AEKIT_MAX_MEMORY", "1G")
    ae.build("ae", (1, 28, 28))
    budget.set_max_memory(1 << 20)  # the call (the CLI's --max-memory) wins over the environment
    with pytest.raises(ae.ConfigError, match=MEMORY):
        ae.build("ae", (1, 28, 28))
    with pytest.raises(ae.ConfigError, match="memory size 'lots'"):
        budget.parse_size("lots")


def test_training_steps_and_passes_are_checked_before_they_run(digits):
    x = digits[0][:64]
    model = ae.build("ae", (64,), hidden=(32,), latent_dim=4)
    with pytest.raises(ae.ConfigError, match=rf"a training step of batch_size={HUGE} examples .* {MEMORY}"):
        ae.fit(model, x, batch_size=HUGE, epochs=1, verbose=0)
    budget.set_max_memory(40_000)  # the weights (a few KiB) fit; a batch of 64 rows does not
    with pytest.raises(ae.ConfigError, match=rf"a batch of 64 rows of x {MEMORY}"):
        model.reconstruct(x)
    budget.set_max_memory(None)
    assert model.reconstruct(x).shape == x.shape


@pytest.mark.parametrize("call,what", [
    (lambda m, x: generation.interpolate(m, x[0], x[1], steps=HUGE), f"steps={HUGE} interpolation points"),
    (lambda m, x: generation.extrapolate(m, x[0], x[1], steps=HUGE), f"steps={HUGE} extrapolation points"),
    (lambda m, x: generation.latent_grid(m, n=10**5), "a latent grid of n=100000"),
    (lambda m, x: m.sample(HUGE), f"n={HUGE} samples"),
    (lambda m, x: generation.sample(m, HUGE), f"n={HUGE} samples"),
], ids=["interpolate", "extrapolate", "latent_grid", "model.sample", "generation.sample"])
def test_generated_counts_are_checked(vae, digits, call, what):
    with pytest.raises(ae.ConfigError, match=rf"{what}.* {MEMORY}"):
        call(vae, digits[0])


def test_log_likelihood_samples_get_a_time_estimate(vae, digits, monkeypatch):
    x = digits[0][:1000]  # evaluate's default log_likelihood_examples
    for call in (lambda: metrics.log_likelihood(vae, x, samples=HUGE),
                 lambda: ae.evaluate(vae, x, log_likelihood_samples=HUGE)):
        with pytest.raises(ae.ConfigError, match=rf"log-likelihood of 1000 examples with log_likelihood_samples={HUGE} {TIME}"):
            call()
    monkeypatch.setenv("AEKIT_MAX_SECONDS", "1e-9")
    with pytest.raises(ae.ConfigError, match="time limit '1e-9'"):
        budget.max_seconds()
    monkeypatch.setenv("AEKIT_MAX_SECONDS", "0.000000001")  # below any real work: even 10 samples are refused
    with pytest.raises(ae.ConfigError, match=TIME):
        metrics.log_likelihood(vae, x, samples=10)
    monkeypatch.setenv("AEKIT_MAX_SECONDS", "2h")
    assert budget.max_seconds() == 7200
    assert metrics.log_likelihood(vae, x[:5], samples=10).shape == (5,)


def test_image_grids_and_folders_are_checked(tmp_path, digits):
    with pytest.raises(ae.DataError, match=rf"a grid drawn at scale=100000 .* {MEMORY}"):
        ae.save_image_grid(digits[0][:4], tmp_path / "g.png", scale=100_000)
    assert not (tmp_path / "g.png").exists()
    folder = tmp_path / "canvas"
    folder.mkdir()
    _png_header(folder / "a.png", 100_000, 100_000)  # a header of a few dozen bytes claiming 10^10 pixels
    with pytest.raises(ae.DataError, match="decompression bomb"):
        ae.data.load(folder)


def test_threads_are_capped_at_the_cores():
    assert threads_for_work(1e12, requested=1024) == budget.cores()
    assert threads_for_work(1e12, requested=1) == 1


def test_defaults_stay_far_below_the_limits(digits):
    """Every kind with its defaults on MNIST-sized images: weights and a training step of the default
    batch (128) under 1% of 8 GiB, and evaluate's default log-likelihood (1,000 examples, 1,000 samples)
    estimated under 1% of the default hour, so that the limits only ever meet sizes off by orders of magnitude."""
    for kind in ae.kinds():
        options = {"n_classes": 10} if kind.name == "cvae" else {}
        config = ae.build(kind.name, (1, 28, 28), **options).config
        assert step_memory(config, 128) < 0.01 * (8 << 30), kind.name
        if config.variational:
            size = config.size()
            seconds = budget.seconds_for(1000 * 1000 * size.flops / 2, 1000 * 1000 * size.activations / 2)
            assert seconds < 0.01 * budget.DEFAULT_MAX_SECONDS, (kind.name, seconds)


def test_the_parameter_count_is_exact():
    """ModelConfig.size() counts what the builders make, for every architecture (conditional and variational too)."""
    for kind, shape, options in (("ae", (64,), {"hidden": (32, 8)}), ("vae", (1, 28, 28), {"architecture": "conv"}),
                                 ("vae", (3, 12, 10), {"architecture": "fully_conv", "latent_dim": 18}),
                                 ("cvae", (1, 8, 8), {"architecture": "conv", "n_classes": 10}),
                                 ("ae", (64,), {"reconstruction": "gaussian_per_feature"})):
        model = ae.build(kind, shape, **options)
        assert model.config.size().parameters == sum(p.numel() for p in model.parameters()), (kind, options)


@pytest.mark.parametrize("case", ["latent_dim", "image_header"])
def test_the_command_line_refuses_before_allocating(tmp_path, case):
    if case == "latent_dim":
        args, message = ["--data", "digits", "--latent-dim", str(HUGE)], "parameters (input_shape="
    else:
        folder = tmp_path / "canvas"
        folder.mkdir()
        _png_header(folder / "a.png", 100_000, 100_000)
        args, message = ["--data", folder], "decompression bomb"
    proc = cli("train", "ae", *args, "--epochs", "1", "--out", tmp_path / "never", memory=MEMORY_LIMIT)
    assert_usage_error(proc, message)
    assert not (tmp_path / "never").exists()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("budgets") / "run"
    digits = ae.data.load("digits")
    ae.fit(ae.build("vae", digits.input_shape, hidden=(8,), latent_dim=2), digits, epochs=1, out=folder, verbose=0)
    return folder


@pytest.mark.parametrize("command", ["interpolate", "evaluate"])
def test_run_commands_refuse_huge_counts(run, tmp_path, command):
    if command == "interpolate":
        args, message = ["--from", "0", "--to", "1", "--steps", str(HUGE), "--out", tmp_path / "p.npy"], "interpolation points needs about"
    else:
        args, message = ["--log-likelihood-samples", str(HUGE)], f"log_likelihood_samples={HUGE} would take about"
    assert_usage_error(cli(command, run, "--data", "digits", *args, memory=MEMORY_LIMIT), message)
    assert not (tmp_path / "p.npy").exists()


def test_a_resized_image_folder_is_checked(tmp_path):
    """image_size (--data-option image_size=...) decides the decoded size: checked before resizing. Both under
    an address-space limit: without the check the resize would allocate 10 GB."""
    folder = tmp_path / "small"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "a.png")
    proc = python("import sys, aekit as ae; ae.data.load(sys.argv[1], image_size=100_000)", folder, memory=MEMORY_LIMIT)
    assert re.search(rf"DataError: .*{MEMORY}", proc.stderr), proc.stderr[-2000:]
    proc = cli("train", "ae", "--data", folder, "--data-option", "image_size=100000", "--out", tmp_path / "never",
               memory=MEMORY_LIMIT)
    assert_usage_error(proc, "of memory, more than the limit of")


@pytest.mark.parametrize("name", ["line", "circle", "ring", "spiral", "swiss_roll"])
def test_a_toy_set_of_a_huge_size_is_refused_before_drawing(name):
    from aekit.data import toy

    with pytest.raises(ae.ConfigError, match=MEMORY):
        getattr(toy, name)(n=10**12)
    assert len(getattr(toy, name)(n=50)) > 0  # a normal size still draws
