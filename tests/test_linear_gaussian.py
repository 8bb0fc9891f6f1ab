"""Factor analysis and probabilistic PCA (kinds 'factor_analysis' and 'ppca'): the exact posterior and
likelihood against scikit-learn and torch.distributions, training by EM epochs against scikit-learn,
PPCA's closed form against gradient training of the same likelihood.

Data: scikit-learn's 8x8 digits, uniformly dequantised ((pixel + u) / 17, u ~ U(0, 1)) so that every
pixel has a continuous density (a constant pixel would give an unbounded Gaussian likelihood).
"""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA, FactorAnalysis

import aekit as ae
from aekit.evaluation import metrics
from aekit.models.distributions import CorrelatedGaussian

K = 8


@pytest.fixture(scope="module")
def dequantised():
    from sklearn.datasets import load_digits

    raw = load_digits().data
    return ((raw + np.random.default_rng(0).random(raw.shape)) / 17.0).astype(np.float32)


pytestmark = pytest.mark.usefixtures("one_thread")


def _with_sklearn_parameters(fa: FactorAnalysis) -> ae.Autoencoder:
    model = ae.build("factor_analysis", input_shape=(fa.mean_.size,), latent_dim=fa.n_components).double()
    with torch.no_grad():
        model.decoder[0].weight.copy_(torch.from_numpy(fa.components_.T))
        model.decoder[0].bias.copy_(torch.from_numpy(fa.mean_))
        model.log_sigma.copy_(torch.from_numpy(0.5 * np.log(fa.noise_variance_)))
    return model.eval()


def _gradient_ascent(model, x, steps=300, lr=3e-2):
    """Adam on the exact -log p(x) (model.loss), full batches (the exact gradient), cosine-decayed lr."""
    x = torch.from_numpy(x)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x).total.backward()
        optimizer.step()
        schedule.step()


def test_factor_analysis_likelihood_is_scikit_learns_for_the_same_parameters(dequantised):
    x = dequantised.astype(np.float64)
    fa = FactorAnalysis(K, random_state=0).fit(x)
    model = _with_sklearn_parameters(fa)
    with torch.no_grad():  # the tensor level, in float64
        ours = model.log_marginal(torch.from_numpy(x)).numpy()
        posterior_mean = model.code(torch.from_numpy(x)).numpy()
    # The same formula in float64: agreement to rounding (1e-9 relative).
    np.testing.assert_allclose(ours, fa.score_samples(x), rtol=1e-9)
    np.testing.assert_allclose(posterior_mean, fa.transform(x), rtol=1e-7, atol=1e-9)


def test_factor_analysis_trained_by_em_epochs_agrees_with_scikit_learn(dequantised):
    model = ae.build("factor_analysis", input_shape=(64,), latent_dim=K)
    history = ae.fit(model, dequantised, epochs=30, val_fraction=0, verbose=0)  # the defaults otherwise
    ours = ae.evaluate(model, dequantised, compression_sizes=False)["vae"]
    reference = FactorAnalysis(K, random_state=0).fit(dequantised.astype(np.float64)).score(dequantised.astype(np.float64))
    assert ours["log_likelihood_method"].startswith("exact")
    # The bar is 0.5%; measured -0.02% after 30 EM epochs (scikit-learn: its own SVD-based iteration).
    assert ours["log_likelihood_nats"] == pytest.approx(reference, rel=0.005)
    assert ours["log_likelihood_nats"] > reference - 0.05
    totals = [row["train_total"] for row in history]
    assert all(b <= a + 1e-6 for a, b in zip(totals, totals[1:]))  # EM never lowers the likelihood


def test_ppca_em_epochs_from_a_random_start_reach_the_closed_form(dequantised):
    x = torch.from_numpy(dequantised)
    closed = ae.build("ppca", input_shape=(64,), latent_dim=K)
    closed.initialise_from_data(x)
    em = ae.build("ppca", input_shape=(64,), latent_dim=K, init="random", seed=1)
    ae.fit(em, dequantised, epochs=100, val_fraction=0, verbose=0)
    assert em.log_marginal(x).mean().item() == pytest.approx(closed.log_marginal(x).mean().item(), abs=0.02)


def test_ppca_closed_form_is_scikit_learns_pca_likelihood(dequantised):
    model = ae.build("ppca", input_shape=(64,), latent_dim=K)
    model.initialise_from_data(torch.from_numpy(dequantised))  # init='pca': Tipping & Bishop's ML solution
    ours = metrics.exact_log_likelihood(model, dequantised).mean()
    reference = PCA(K).fit(dequantised.astype(np.float64)).score(dequantised.astype(np.float64))
    # scikit-learn's covariance divides by N - 1, ours (the maximum-likelihood one) by N: 1e-6 apart here.
    assert ours == pytest.approx(reference, rel=1e-4)


def test_ppca_closed_form_matches_gradient_training_from_a_random_start(dequantised):
    x = torch.from_numpy(dequantised)
    closed = ae.build("ppca", input_shape=(64,), latent_dim=K)
    closed.initialise_from_data(x)
    trained = ae.build("ppca", input_shape=(64,), latent_dim=K, init="random", seed=3)
    trained.initialise_from_data(x)  # init='random': only mu at the data mean
    before = trained.log_marginal(x).mean().item()
    _gradient_ascent(trained, dequantised)
    ll_closed, ll_trained = closed.log_marginal(x).mean().item(), trained.log_marginal(x).mean().item()
    assert before < ll_closed - 50
    # Gradient ascent finds the closed form's maximum (no other local maxima: Tipping & Bishop 1999).
    assert ll_trained == pytest.approx(ll_closed, abs=2e-3 * abs(ll_closed))
    assert ll_trained <= ll_closed + 1e-3  # the closed form is the maximum
    assert trained.log_sigma.item() == pytest.approx(closed.log_sigma.item(), abs=0.01)
    # The same principal subspace: cosines of the principal angles between the column spaces of W.
    q1, _ = np.linalg.qr(closed.decoder[0].weight.detach().numpy())
    q2, _ = np.linalg.qr(trained.decoder[0].weight.detach().numpy())
    assert np.linalg.svd(q1.T @ q2, compute_uv=False).min() > 0.98


def test_exact_posterior_makes_the_bounds_tight(dequantised):
    x = dequantised[:200]
    model = ae.build("factor_analysis", input_shape=(64,), latent_dim=K)
    model.initialise_from_data(torch.from_numpy(dequantised))
    exact = metrics.exact_log_likelihood(model, x)
    # q(z|x) is the true posterior: every importance weight p(x, z) / q(z|x) equals p(x).
    np.testing.assert_allclose(metrics.log_likelihood(model, x, samples=3), exact, rtol=1e-4, atol=1e-3)
    # The loss is the exact -log p(x), N(x | mu, W W^T + Psi) by torch.distributions.
    w, mu = model.decoder[0].weight.double().detach(), model.decoder[0].bias.double().detach()
    psi = torch.exp(2 * model.log_sigma.double().detach())
    mvn = torch.distributions.MultivariateNormal(mu, w @ w.T + torch.diag(psi))
    reference = mvn.log_prob(torch.from_numpy(x).double())
    np.testing.assert_allclose(exact, reference.numpy(), rtol=1e-4)
    assert model.loss(x)["total"] == pytest.approx(-reference.mean().item(), rel=1e-4)
    assert model.loss(x)["total"] == pytest.approx(model.loss(x)["reconstruction"] + model.loss(x)["kl"], rel=1e-6)


def test_correlated_gaussian_matches_torch_distributions():
    torch.manual_seed(0)
    a = torch.randn(3, 3, dtype=torch.float64)
    precision = a @ a.T + 3 * torch.eye(3, dtype=torch.float64)
    mean = torch.randn(4, 3, dtype=torch.float64)
    q = CorrelatedGaussian(mean, torch.linalg.cholesky(precision))
    ref = torch.distributions.MultivariateNormal(mean, precision_matrix=precision)
    z = torch.randn(5, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(q.log_prob(z), ref.log_prob(z))
    prior = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(q.kl(), torch.distributions.kl_divergence(ref, prior))
    torch.testing.assert_close(q.logvar[0], ref.covariance_matrix[0].diagonal().log())
    draws = q.sample(200_000, generator=torch.Generator().manual_seed(1))[:, 0]  # (S, k) of example 0
    # Sample covariance within 2% (relative standard error of a variance is sqrt(2 / S) ~ 0.3%).
    covariance = ref.covariance_matrix[0]
    torch.testing.assert_close(torch.cov(draws.T), covariance, rtol=0.02, atol=0.02 * covariance.abs().max().item())


def test_linear_gaussian_kinds_encode_sample_save_and_load(dequantised, tmp_path):
    for kind in ("factor_analysis", "ppca"):
        model = ae.build(kind, input_shape=(1, 8, 8), latent_dim=4)
        x = dequantised.reshape(-1, 1, 8, 8)
        ae.fit(model, x, epochs=2, out=tmp_path / kind, verbose=0)
        assert type(model).__name__ == "LinearGaussian"
        assert model.log_sigma.shape == ((1, 8, 8) if kind == "factor_analysis" else ())
        assert model.encode(x[:5]).shape == (5, 4) and model.sample(6).shape == (6, 1, 8, 8)
        mu, logvar = model.posterior(x[:5])
        assert np.allclose(logvar, logvar[0])  # one posterior covariance for every example
        loaded = ae.load(tmp_path / kind)
        assert loaded.config == model.config and loaded.config.posterior == "exact"
        np.testing.assert_array_equal(metrics.exact_log_likelihood(loaded, x), metrics.exact_log_likelihood(model, x))


@pytest.mark.parametrize(
    "kind,options,message",
    [
        ("factor_analysis", {"hidden": (8,)}, "option 'hidden' is fixed to ()"),
        ("ppca", {"reconstruction": "bce"}, "option 'reconstruction' is fixed to 'gaussian'"),
        ("factor_analysis", {"latent_dim": 0}, "latent_dim must be an int > 0, got 0"),
        ("vae", {"posterior": "exact"}, "unknown option for kind 'vae'"),
    ],
)
def test_linear_gaussian_bad_options(kind, options, message):
    with pytest.raises(ae.ConfigError, match=message):
        ae.build(kind, input_shape=(64,), **options)


def test_em_training_resumes_exactly(dequantised, tmp_path, monkeypatch):
    from aekit.training import loop

    reference = ae.build("factor_analysis", input_shape=(64,), latent_dim=4)
    ae.fit(reference, dequantised, epochs=4, out=tmp_path / "ref", verbose=0)
    real, calls = loop.em_epoch, []

    def crashing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "em_epoch", crashing)
    with pytest.raises(KeyboardInterrupt):
        ae.fit(ae.build("factor_analysis", input_shape=(64,), latent_dim=4), dequantised, epochs=4,
               out=tmp_path / "run", verbose=0)
    monkeypatch.setattr(loop, "em_epoch", real)
    resumed = ae.build("factor_analysis", input_shape=(64,), latent_dim=4)
    ae.fit(resumed, dequantised, epochs=4, out=tmp_path / "run", resume=True, verbose=0)
    for name, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_an_em_fit_gets_no_warning_about_few_optimizer_steps():
    # An epoch of factor analysis is one exact EM iteration over all rows: 3 of them on 100 rows are no
    # "undertrained" gradient run (the tour's factor-analysis section printed that warning).
    import warnings

    from aekit.training.options import TrainingWarning

    x = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        ae.fit(ae.build("factor_analysis", input_shape=(8,), latent_dim=2), x, epochs=3, verbose=0)
    with pytest.warns(TrainingWarning, match="optimizer steps"):  # a gradient-trained model still gets it
        ae.fit(ae.build("ae", input_shape=(8,), latent_dim=2, reconstruction="mse"), x, epochs=3, verbose=0)
