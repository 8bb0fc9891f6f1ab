"""Measuring trained models: each estimator against a closed form or a hand computation."""

import math

import numpy as np
import pytest
import torch

import aekit as ae
from aekit.evaluation import generation, metrics, quality


@pytest.fixture(scope="module")
def trained(digits):
    """A small VAE and a plain AE trained briefly on the digits (flattened)."""
    x = digits[0]
    vae = ae.build("vae", input_shape=(64,), latent_dim=4, hidden=(64,))
    ae.fit(vae, x, epochs=15, lr=3e-3, verbose=0)
    plain = ae.build("ae", input_shape=(64,), latent_dim=4, hidden=(64,))
    ae.fit(plain, x, epochs=15, lr=3e-3, verbose=0)
    return vae, plain


def _ppca_vae(w, b, sigma, input_dim):
    """A linear-Gaussian VAE: p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I), a diagonal-Gaussian encoder
    at the exact posterior mean with the diagonal of the exact posterior covariance (Tipping & Bishop 1999)."""
    k = w.shape[1]
    model = ae.build("vae", input_shape=(input_dim,), latent_dim=k, hidden=(), reconstruction="gaussian")
    m = w.T @ w + sigma**2 * np.eye(k)
    m_inv = np.linalg.inv(m)
    a = m_inv @ w.T  # posterior mean = M^-1 W^T (x - b)
    post_var = np.diag(sigma**2 * m_inv)
    enc, dec = model.encoder[1], model.decoder[0]
    with torch.no_grad():
        enc.weight.copy_(torch.tensor(np.concatenate([a, np.zeros_like(a)])))
        enc.bias.copy_(torch.tensor(np.concatenate([-a @ b, np.log(post_var)])))
        dec.weight.copy_(torch.tensor(w))
        dec.bias.copy_(torch.tensor(b))
        model.log_sigma.fill_(math.log(sigma))
    return model.eval()


def test_log_likelihood_matches_probabilistic_pca_closed_form():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    d, k, sigma = 6, 2, 0.5
    w = rng.normal(size=(d, k))  # not orthogonal: the diagonal encoder is only an approximate posterior
    b = rng.normal(size=d)
    model = _ppca_vae(w, b, sigma, d)
    z = rng.normal(size=(200, k))
    x = z @ w.T + b + sigma * rng.normal(size=(200, d))
    exact = multivariate_normal(b, w @ w.T + sigma**2 * np.eye(d)).logpdf(x)
    estimate = metrics.log_likelihood(model, x.astype(np.float32), samples=5000)
    assert abs(estimate.mean() - exact.mean()) < 0.05, (estimate.mean(), exact.mean())
    assert np.abs(estimate - exact).max() < 0.2


def test_log_likelihood_is_above_the_elbo_and_grows_with_k(trained, digits):
    vae, _ = trained
    x = digits[0][:300]
    e = metrics.elbo(vae, x).mean()
    ll = {k: metrics.log_likelihood(vae, x, samples=k, seed=1).mean() for k in (1, 10, 200)}
    assert ll[1] == pytest.approx(e, abs=0.5)  # K = 1 is a one-sample ELBO estimate
    assert ll[200] > e and ll[200] > ll[10] > ll[1]


def test_log_likelihood_batching_does_not_change_the_estimate(trained, digits):
    vae, _ = trained
    x = digits[0][:40]
    a = metrics.log_likelihood(vae, x, samples=64, batch_size=40, max_elements=1 << 30, seed=3)
    b = metrics.log_likelihood(vae, x, samples=64, batch_size=40, max_elements=40 * 64 * 7, seed=3)
    assert np.allclose(a, b, atol=1e-4)


def test_frechet_distance_is_zero_for_the_same_data_and_grows_with_noise(digits):
    judge = quality.train_judge(digits[0], digits[1], epochs=5)
    x = digits[0]
    half_a, half_b = x[::2], x[1::2]
    base = quality.frechet_distance(judge.features(half_a), judge.features(half_b))
    rng = np.random.default_rng(0)
    noisy = [quality.frechet_distance(judge.features(np.clip(half_a + s * rng.normal(size=half_a.shape), 0, 1)),
                                      judge.features(half_b)) for s in (0.2, 0.4, 0.8)]
    unrelated = quality.frechet_distance(judge.features(rng.random(half_a.shape)), judge.features(half_b))
    # Two halves of one data set: only the finite-sample bias, small against real differences.
    assert base < 0.05 * unrelated
    assert base < noisy[0] < noisy[1] < noisy[2]
    f = judge.features(x)
    # Zero up to rounding: square roots of eigenvalues at float64 rounding level (~1e-14 x trace) add ~1e-7 x trace.
    assert quality.frechet_distance(f, f) == pytest.approx(0, abs=1e-7 * np.trace(np.cov(f, rowvar=False)))


def test_frechet_distance_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 2))
    b = rng.normal(1, 2, (20000, 2))
    # Means differ by (1, 1); covariances I and 4I: 2 + (2 + 8 - 2 * 2 * 2) = 4.
    assert quality.frechet_distance(a, b) == pytest.approx(4.0, rel=0.05)


def test_judge_quality_and_cache(digits, tmp_path):
    x, y = digits
    judge = quality.judge_for(x[:1200], y[:1200], cache_dir=tmp_path, epochs=10)
    assert judge.accuracy(x[1200:], y[1200:]) > 0.9
    assert len(list(tmp_path.rglob("weights.safetensors"))) == 1
    again = quality.judge_for(x[:1200], y[:1200], cache_dir=tmp_path, epochs=10)
    np.testing.assert_array_equal(again.predict_proba(x[:5]), judge.predict_proba(x[:5]))
    real = quality.generation_quality(judge, x[1200:], x[:600])
    assert real["valid_fraction"] > 0.7 and real["class_coverage"] == 1.0
    noise = quality.generation_quality(judge, np.random.default_rng(0).random((300, 64)), x[:600])
    assert noise["frechet_distance"] > 3 * real["frechet_distance"]


def test_retrieval_precision_of_a_perfect_embedding():
    labels = np.repeat(np.arange(4), 20)
    z = labels[:, None] * 100.0 + np.random.default_rng(0).normal(size=(80, 3))
    assert metrics.retrieval_precision(z, labels, k=10) == 1.0
    shuffled = np.random.default_rng(1).permutation(labels)
    assert metrics.retrieval_precision(z, shuffled, k=10) < 0.5


def test_activity_matches_hand_computation():
    z = np.array([[0.0, 0.5, 0.05], [0.2, -0.01, 0.0]])
    stats = metrics.activity(z, threshold=0.1)
    assert stats["active_fraction"] == pytest.approx(2 / 6)
    assert stats["mean_activation"] == pytest.approx((0.5 + 0.05 + 0.2 + 0.01) / 6)
    assert stats["dead_unit_fraction"] == pytest.approx(1 / 3)


def test_sparse_model_codes_are_mostly_inactive(digits):
    x = digits[0]
    sparse = ae.build("sparse", input_shape=(64,), latent_dim=32, hidden=(64,), sparsity_weight=3.0,
                      sparsity_target=0.05)
    ae.fit(sparse, x, epochs=20, lr=3e-3, verbose=0)
    plain = ae.build("ae", input_shape=(64,), latent_dim=32, hidden=(64,), code_activation="sigmoid")
    ae.fit(plain, x, epochs=20, lr=3e-3, verbose=0)
    s, p = metrics.activity(metrics.codes(sparse, x)), metrics.activity(metrics.codes(plain, x))
    assert s["mean_activation"] < 0.5 * p["mean_activation"]


def test_evaluate_keys_and_units(trained, digits):
    vae, plain = trained
    ds = ae.data.Dataset(torch.from_numpy(digits[0]), digits[1], "digits", {"method": "pixels", "max": 16.0})
    r = ae.evaluate(vae, ds, log_likelihood_samples=50, log_likelihood_examples=200)
    assert r["vae"]["log_likelihood_nats"] >= r["vae"]["elbo_nats"] - 0.5
    assert r["vae"]["bits_per_dimension"] == pytest.approx(-r["vae"]["log_likelihood_nats"] / (64 * math.log(2)))
    assert len(r["vae"]["kl_per_dimension_nats"]) == 4
    assert r["reconstruction"]["psnr_db"] == pytest.approx(10 * math.log10(1 / r["reconstruction"]["mse_per_feature"]))
    assert {"codes", "raw", "pca_4"} <= set(r["latent"])
    # raw size: the dataset records no raw dtype here, so it counts the float array it holds
    assert r["compression"]["uint8"]["bytes_per_example"] == 4
    assert r["compression"]["raw_bytes_per_example"] == 64 * digits[0].itemsize
    assert r["compression"]["float32"]["ratio"] == 64 * digits[0].itemsize / (4 * 4)  # 4 float32 code units
    p = ae.evaluate(plain, ds, generation=True, judge=quality.train_judge(digits[0], digits[1], epochs=5), generated=200)
    assert "jacobian_frobenius_sq" in p and "code_activity" in p and "generation" in p
    assert 0 <= p["generation"]["valid_fraction"] <= 1


def test_denoising_gain(digits):
    x = digits[0]
    model = ae.build("denoising", input_shape=(64,), latent_dim=16, hidden=(64,), noise="gaussian", noise_level=0.3)
    ae.fit(model, x, epochs=20, lr=3e-3, verbose=0)
    r = metrics.denoising(model, x)
    assert r["psnr_gain_db"] > 3 and r["denoised_psnr_db"] > r["noisy_psnr_db"]
    assert r == metrics.denoising(model, x)  # seeded: repeatable


def test_compression_quantisation_costs_little(trained, digits):
    _, plain = trained
    r = metrics.compression(plain, digits[0], raw_bytes_per_feature=1)
    assert r["uint8"]["mse_per_feature"] <= 1.1 * r["float32"]["mse_per_feature"]
    assert r["uint8"]["pca_mse_per_feature"] >= r["float32"]["pca_mse_per_feature"] - 1e-9


def test_generation_tools(trained, digits):
    vae, plain = trained
    x = digits[0]
    assert generation.sample(vae, 7, seed=1).shape == (7, 64)
    np.testing.assert_array_equal(generation.sample(vae, 7, seed=1), generation.sample(vae, 7, seed=1))
    with pytest.raises(ValueError, match="has no prior: pass train="):
        generation.sample(plain, 5)
    s = generation.sample(plain, 50, train=x, density="gaussian")
    assert s.shape == (50, 64) and 0 <= s.min() and s.max() <= 1
    path = generation.interpolate(plain, x[0], x[1], steps=5)
    np.testing.assert_allclose(path[0], plain.reconstruct(x[:1])[0], atol=1e-6)
    np.testing.assert_allclose(path[-1], plain.reconstruct(x[1:2])[0], atol=1e-6)
    sph = generation.interpolate(vae, x[0], x[1], steps=5)  # spherical for the VAE
    assert sph.shape == (5, 64)
    t = np.linspace(0, 1, 5)
    z = generation.slerp(np.array([1.0, 0.0]), np.array([0.0, 1.0]), t)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-9)
    assert generation.extrapolate(plain, x[0], x[1], steps=4).shape == (4, 64)
    with pytest.raises(ValueError, match="latent_dim=2"):
        generation.latent_grid(vae)
    vae2 = ae.build("vae", input_shape=(64,), latent_dim=2, hidden=(16,))
    images, grid = generation.latent_grid(vae2, n=5)
    assert images.shape == (25, 64) and grid.shape == (25, 2)


def test_latent_2d_views(trained, digits):
    vae, _ = trained
    view, how = metrics.latent_2d(vae, digits[0][:200])
    assert view.shape == (200, 2) and how == "PCA of the codes"
    view, how = metrics.latent_2d(vae, digits[0][:100], method="tsne")
    assert view.shape == (100, 2) and how.startswith("t-SNE")


def test_retrieve_finds_the_query_itself_first(trained, digits):
    _, plain = trained
    x = digits[0]
    indices, distances = metrics.retrieve(plain, x[[5, 9]], x, k=3)
    assert indices.shape == (2, 3) and indices[:, 0].tolist() == [5, 9]
    assert np.all(np.diff(distances, axis=1) >= 0) and np.allclose(distances[:, 0], 0, atol=1e-5)
