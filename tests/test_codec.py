"""The codec: an exact entropy coder, files that round-trip at every bit depth, damaged or foreign
files refused with the project's errors, and the command line (README, "Compression")."""

import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import aekit as ae
from aekit import codec
from aekit.models import penalties
from helpers import assert_usage_error, cli


@pytest.fixture(scope="module")
def model():
    return ae.build("ae", input_shape=(1, 8, 8), latent_dim=6, hidden=(16,), seed=1).eval()


@pytest.fixture(scope="module")
def x(digit_images):
    return digit_images[0][:300]


@pytest.fixture(scope="module")
def blob(model, x):
    return codec.compress(model, x, bits=6)


# ----- the entropy coder -----


@pytest.mark.parametrize("alphabet", [2, 3, 17, 256, 300, 4096])
@pytest.mark.parametrize("shape", ["uniform", "skewed"])
def test_entropy_coder_is_exact(alphabet, shape):
    rng = np.random.default_rng(alphabet)
    levels = np.array([alphabet, 1, max(2, alphabet // 3), alphabet])  # one dimension with a single level
    n = 1000
    if shape == "uniform":
        symbols = rng.integers(0, levels, size=(n, len(levels)))
    else:  # geometric: most symbols 0, a long tail up to the last level
        symbols = np.minimum(rng.geometric(0.3, size=(n, len(levels))) - 1, levels - 1)
    payload = codec.encode_symbols(symbols, levels)
    np.testing.assert_array_equal(codec.decode_symbols(payload, levels, n), symbols)
    bits = 8 * len(payload) / n
    if shape == "uniform":  # the adaptive counts' learning cost over log2(levels): measured at most 18%, for
        assert bits <= 1.2 * np.log2(levels).sum() + 0.1  # 4,096 levels seen 1,000 times (0.25 times each)
    else:  # within 3 bits per example of the empirical entropy (measured: 0.03 to 1.4)
        entropy = sum(_entropy_bits(symbols[:, j]) for j in range(len(levels)))
        assert bits <= entropy + 3, (bits, entropy)


def _entropy_bits(column):
    p = np.bincount(column) / len(column)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_entropy_coder_refuses_symbols_outside_their_levels():
    with pytest.raises(ae.DataError, match="levels"):
        codec.encode_symbols(np.array([[0, 3]]), np.array([4, 3]))


# ----- the quantiser and round trips -----


@pytest.mark.parametrize("bits", [1, 3, 8, 12])
def test_quantiser_uses_one_step_and_bounds_the_error(bits):
    z = np.random.default_rng(bits).normal(size=(500, 5)).astype(np.float32) * np.array([3, 1, 0.1, 0, 2], np.float32)
    q = codec.Quantiser.fit(z, bits)
    assert q.levels.max() == 2**bits and q.levels[3] == 1 and (q.levels >= 1).all()
    symbols = q.quantise(z)
    assert (symbols >= 0).all() and (symbols < q.levels).all()
    err = np.abs(q.dequantise(symbols) - z)
    assert err.max() <= q.step / 2 * (1 + 1e-5) + 1e-6  # half a step, up to float32 rounding


@pytest.mark.parametrize("bits", [1, 2, 5, 8, 12])
def test_round_trip_equals_decoding_the_dequantised_codes(model, x, bits):
    blob = codec.compress(model, x, bits=bits)
    out = codec.decompress(model, blob)
    q = codec.Quantiser.fit(model.encode(x), bits)
    expected = model.decode(q.dequantise(q.quantise(model.encode(x))))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)  # exactly: same symbols, same float32 arithmetic
    np.testing.assert_array_equal(codec.decompress(model, blob), out)  # deterministic
    assert codec.compress(model, x, bits=bits) == blob


def test_more_bits_cost_more_and_err_less(model, x):
    sizes, errors = [], []
    for bits in (2, 4, 6, 8):
        blob = codec.compress(model, x, bits=bits)
        sizes.append(len(blob))
        errors.append(float(((codec.decompress(model, blob) - model.reconstruct(x)) ** 2).mean()))
    assert sizes == sorted(sizes) and errors == sorted(errors, reverse=True)


def test_header_states_what_the_file_holds(model, x, blob):
    header = codec.read_header(blob)
    assert header.count == len(x) and header.input_shape == (1, 8, 8) and header.latent_dim == 6
    assert header.bits == 6 and header.fingerprint == codec.fingerprint(model)
    assert header.header_bytes + len(header.payload) == len(blob)
    assert header.header_bytes == 18 + 34 + 3 * 4 + 6 * 6 + 4


def test_constant_codes_cost_only_the_padding(x):
    model = ae.build("ae", input_shape=(1, 8, 8), latent_dim=3, hidden=(4,))
    blob = codec.compress(model, np.zeros((1000, 1, 8, 8), np.float32), bits=8)
    header = codec.read_header(blob)
    assert (header.quantiser.levels == 1).all()  # nothing to code: the payload is the padding, in whole words
    assert 1000 / codec.EXAMPLES_PER_BYTE <= len(header.payload) < 1000 / codec.EXAMPLES_PER_BYTE + 4
    assert codec.decompress(model, blob).shape == (1000, 1, 8, 8)


@pytest.mark.parametrize("bits", [0, 13, 2.5, True])
def test_bits_out_of_range_is_a_config_error(model, x, bits):
    with pytest.raises(ae.ConfigError, match="bits"):
        codec.compress(model, x, bits=bits)


def test_data_of_the_wrong_shape_is_a_data_error(model):
    with pytest.raises(ae.DataError, match="shape"):
        codec.compress(model, np.zeros((3, 64), np.float32))


def test_step_sets_the_grid(model, x):
    z = model.encode(x)
    step = float(z.max() - z.min()) / 50
    blob = codec.compress(model, x, step=step)
    header = codec.read_header(blob)
    assert header.quantiser.step == pytest.approx(step, rel=1e-6) and header.quantiser.levels.max() <= 51
    assert header.bits == int(np.ceil(np.log2(header.quantiser.levels.max())))
    q = codec.Quantiser.fit(z, step=step)
    np.testing.assert_array_equal(codec.decompress(model, blob), model.decode(q.dequantise(q.quantise(z))))
    with pytest.raises(ae.ConfigError, match="at most 4096"):
        codec.compress(model, x, step=step / 1000)
    with pytest.raises(ae.ConfigError, match="step"):
        codec.compress(model, x, step=0.0)


# ----- the learned codec's training: fully convolutional codes, code noise, the rate term -----


def test_fully_conv_code_is_maps_on_the_last_grid():
    model = ae.build("ae", input_shape=(1, 28, 28), architecture="fully_conv", channels=(4, 8), latent_dim=3 * 49)
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    assert model.encode(x).shape == (5, 147) and model.reconstruct(x).shape == x.shape
    vae = ae.build("vae", input_shape=(1, 28, 28), architecture="fully_conv", channels=(4, 8), latent_dim=98)
    assert vae.posterior(x)[1].shape == (5, 98)
    with pytest.raises(ae.ConfigError, match="multiple of 49"):
        ae.build("ae", input_shape=(1, 28, 28), architecture="fully_conv", latent_dim=100)


def test_rate_is_the_discretised_logistic_in_bits():
    density = torch.tensor([[0.3, -1.0], [0.0, np.log(2.0)]])  # (loc, log scale) of two dimensions
    grid = torch.arange(-60, 61, dtype=torch.float32)[:, None]  # bins of width 1 covering both densities
    for j in range(2):
        p = 2.0 ** -torch.stack([penalties.code_rate_bits(v[None], density[:, j:j + 1], 1.0) for v in grid])
        assert p.sum().item() == pytest.approx(1.0, abs=1e-5)  # the bins' probabilities sum to one
    z = torch.tensor([[1.7, -3.2]])
    loc, scale = density[0].numpy(), np.exp(density[1].numpy())
    cdf = 1 / (1 + np.exp(-(z.numpy()[0][:, None] + np.array([0.5, -0.5]) - loc[:, None]) / scale[:, None]))
    expected = -np.log2(cdf[:, 0] - cdf[:, 1]).sum()
    assert penalties.code_rate_bits(z, density, 1.0).item() == pytest.approx(expected, rel=1e-5)


def test_code_noise_and_rate_in_training(digit_images):
    model = ae.build("ae", input_shape=(1, 8, 8), latent_dim=4, hidden=(16,), reconstruction="mse", code_noise=0.5,
                     rate_weight=0.01)
    z = torch.zeros(1000, 4)
    model.train()
    noisy = model.noisy_code(z)
    assert noisy.abs().max() <= 0.25 and noisy.std() == pytest.approx(0.5 / np.sqrt(12), rel=0.1)  # U(-w/2, w/2)
    model.eval()
    assert torch.equal(model.noisy_code(z), z)
    terms = model.loss(digit_images[0][:50])
    assert terms["total"] == pytest.approx(terms["reconstruction"] + 0.01 * terms["rate"], rel=1e-5)
    with pytest.raises(ae.ConfigError, match="code_noise"):
        ae.build("ae", input_shape=(64,), rate_weight=0.1)


# ----- files that must be refused -----


def _forge(blob: bytes, offset: int, fmt: str, value) -> bytes:
    """blob with one header field replaced and the checksum made valid again (a deliberate forgery)."""
    body = bytearray(blob[:-4])
    struct.pack_into(fmt, body, offset, value)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def test_another_model_is_refused(x, blob):
    other = ae.build("ae", input_shape=(1, 8, 8), latent_dim=6, hidden=(16,), seed=2)
    with pytest.raises(ae.CheckpointError, match="another model"):
        codec.decompress(other, blob)


@pytest.mark.parametrize("keep", [0, 5, 20, 60, -1])
def test_a_truncated_file_is_refused(model, blob, keep):
    with pytest.raises(ae.DataError, match="truncated|not an aekit codec file"):
        codec.decompress(model, blob[:keep])


@pytest.mark.parametrize("where", [30, 100, -10, -1])
def test_an_altered_file_is_refused(model, blob, where):
    damaged = bytearray(blob)
    damaged[where] ^= 0x10
    with pytest.raises(ae.DataError, match="checksum"):
        codec.decompress(model, bytes(damaged))


def test_a_newer_format_version_is_refused(model, blob):
    with pytest.raises(ae.DataError, match=f"format version {codec.FORMAT_VERSION + 1}.*upgrade"):
        codec.decompress(model, _forge(blob, 8, "<H", codec.FORMAT_VERSION + 1))


def test_other_files_and_trailing_bytes_are_refused(model, blob):
    with pytest.raises(ae.DataError, match="not an aekit codec file"):
        codec.decompress(model, b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ae.DataError, match="after its end"):
        codec.decompress(model, blob + b"\0")


def test_a_huge_declared_count_is_refused_before_allocating(model, blob):
    forged = _forge(blob, 18 + 16, "<Q", 3_000_000_000)  # the count, right after the fingerprint
    tracemalloc.start()
    try:
        with pytest.raises(ae.DataError, match="declares 3000000000 examples"):
            codec.decompress(model, forged)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, peak  # refused from the header: nothing the size of the count was allocated


def test_a_forged_quantiser_is_refused(model, blob):
    with pytest.raises(ae.DataError, match="header is invalid"):
        codec.decompress(model, _forge(blob, 18 + 16 + 8 + 4, "<B", 40))  # bits
    with pytest.raises(ae.DataError, match="header is invalid"):
        codec.decompress(model, _forge(blob, 18 + 16 + 8 + 4 + 2, "<f", float("nan")))  # step


# ----- the PCA baseline and the image codecs -----


def test_pca_codec_is_pca(x):
    model = codec.pca_model(x, 5)
    flat = x.reshape(len(x), -1)
    reference = PCA(5, svd_solver="full").fit(flat)
    z = model.encode(x)
    np.testing.assert_allclose(np.abs(z), np.abs(reference.transform(flat)), atol=1e-4)
    np.testing.assert_allclose(model.reconstruct(x).reshape(len(x), -1), reference.inverse_transform(reference.transform(flat)),
                               atol=1e-4)
    out = codec.decompress(model, codec.compress(model, x, bits=8))
    assert codec.distortion(x, out)["psnr_db"] > codec.distortion(x, model.reconstruct(x))["psnr_db"] - 0.5
    with pytest.raises(ae.ConfigError, match="latent_dim"):
        codec.pca_model(x, 65)


def test_image_codecs_measure_real_files(x):
    x = np.rint(x * 255) / 255  # 8-bit pixels, as PNG stores them
    png = codec.image_codec_points(x[:20], "png")[0]
    assert png["setting"] == "lossless" and png["mean_psnr_db"] == 100.0
    jpeg, webp = codec.image_codec_points(x[:20], "jpeg", (10, 90)), codec.image_codec_points(x[:20], "webp", (50,))
    assert jpeg[0]["bytes_per_example"] < jpeg[1]["bytes_per_example"] and jpeg[0]["psnr_db"] < jpeg[1]["psnr_db"]
    assert webp[0]["bytes_per_example"] > 20 and 10 < webp[0]["psnr_db"] < 60


def test_rate_distortion_curves(x):
    model = ae.build("ae", input_shape=(1, 8, 8), latent_dim=4, hidden=(16,), code_noise=0.5)
    curves = codec.rate_distortion(model, x[:30], train=x, bits=(4,), qualities=(50,))
    assert list(curves) == ["autoencoder", "pca", "png", "jpeg", "webp"]
    settings = [p["setting"] for p in curves["autoencoder"]]
    assert settings[:3] == ["4-d, 4 bits", "4-d, step 0.25", "4-d, step 0.35"]  # steps around the trained grid
    assert all(p["bytes_per_example"] > 0 and "mean_psnr_db" in p for pts in curves.values() for p in pts)


@pytest.mark.slow
def test_the_recipe_beats_the_pca_codec_at_equal_bytes():
    """The README's recipe, shortened (4 maps, 30 epochs on 4,000 of the mnist-5k digits, about a minute):
    at the grid it was trained for and at twice its step, its files hold better digits than any PCA codec
    file of no more bytes (measured: +2.1 and +3.5 dB)."""
    x = np.asarray(ae.data.load("mnist-5k").x)
    rows = np.random.default_rng(0).permutation(len(x))
    train, test = x[rows[:4000]], x[rows[4000:]]
    model = ae.build("ae", input_shape=(1, 28, 28), architecture="fully_conv", latent_dim=196, reconstruction="mse",
                     code_noise=1.0, rate_weight=0.003)
    ae.fit(model, train, epochs=30, batch_size=64, lr=2e-3, lr_schedule="cosine", val_fraction=0, verbose=0)
    ours = codec.codec_points(model, test, bits=(), steps=(1.0, 2.0))
    pca = [p for k in (32, 64, 128, 256) for p in codec.codec_points(codec.pca_model(train, k), test, bits=range(3, 9))]
    for p in ours:
        best_pca = max(q["mean_psnr_db"] for q in pca if q["bytes_per_example"] <= p["bytes_per_example"])
        assert p["mean_psnr_db"] > best_pca + 1, (p, best_pca)


# ----- the command line -----


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder trained in this process on the embedded digits (its source and scaling recorded)."""
    folder = tmp_path_factory.mktemp("codec") / "ae"
    model = ae.build("ae", input_shape=(1, 8, 8), latent_dim=6, hidden=(16,))
    ae.fit(model, ae.data.load("digits"), epochs=1, out=folder, verbose=0)
    return folder


def in_process(capsys, *args) -> tuple[int, str, str]:
    """The command line's entry point called in this process (the subprocess tests cover the real start)."""
    from aekit.cli import run as cli_run

    code = cli_run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_round_trip(run, tmp_path, digit_images):
    data = tmp_path / "x.npy"
    np.save(data, digit_images[0][:50] * 16)  # raw 0-16 values: the run's scaling applies
    out = cli("compress", run, "--data", data, "--out", tmp_path / "x.aec", "--bits", "5", check=0).stdout
    assert "50 examples" in out and "per example" in out
    cli("decompress", run, tmp_path / "x.aec", "--out", tmp_path / "back.npy", check=0)
    expected = codec.decompress(ae.load(run), (tmp_path / "x.aec").read_bytes())
    np.testing.assert_array_equal(np.load(tmp_path / "back.npy"), expected)


def test_cli_decompresses_to_images(run, tmp_path, digit_images, capsys):
    (tmp_path / "x.aec").write_bytes(codec.compress(ae.load(run), digit_images[0][:30]))
    assert in_process(capsys, "decompress", run, tmp_path / "x.aec", "--out", tmp_path / "grid.png")[0] == 0
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = in_process(capsys, "decompress", run, tmp_path / "x.aec", "--out", tmp_path / "images")
    assert code == 0 and "wrote 30 images" in out
    assert sorted(p.name for p in (tmp_path / "images").iterdir())[:2] == ["00000.png", "00001.png"]
    assert len(list((tmp_path / "images").glob("*.png"))) == 30


def test_cli_refuses_a_bad_file_in_one_line(run, tmp_path, digit_images, capsys):
    bad = tmp_path / "bad.aec"
    bad.write_bytes(codec.compress(ae.load(run), digit_images[0][:20])[:-3])
    assert_usage_error(cli("decompress", run, bad, "--out", tmp_path / "y.npy"), "truncated")
    code, _, err = in_process(capsys, "compress", run, "--data", "digits", "--out", tmp_path / "z.aec", "--bits", "13")
    assert code == 2 and "bits must be an int >= 1 and <= 12" in err and not (tmp_path / "z.aec").exists()
    code, _, err = in_process(capsys, "decompress", run, tmp_path / "missing.aec", "--out", tmp_path / "y.npy")
    assert code == 2 and "missing.aec: file not found" in err
    code, _, err = in_process(capsys, "compress", run, "--data", "digits", "--out", tmp_path / "z.aec", "--bits", "4",
                              "--step", "1")
    assert code == 2 and "--bits or --step, not both" in err


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_cli_help(command, capsys):
    code, out, _ = in_process(capsys, command, "--help")
    assert code == 0 and "Usage:" in out and "--out" in out


def test_cli_evaluate_rate_distortion_report(run, tmp_path, digit_images, capsys):
    np.save(tmp_path / "x.npy", digit_images[0][:40] * 16)
    code, out, err = in_process(capsys, "evaluate", run, "--data", tmp_path / "x.npy", "--rate-distortion",
                                "--report", tmp_path / "rd.html")
    assert code == 0, err
    assert "rate_distortion  autoencoder" in out and "rate_distortion  pca" in out and "rate_distortion  webp" in out
    page = (tmp_path / "rd.html").read_text()
    assert "Rate and distortion" in page and "data:image/png;base64" in page and "quality 90" in page
