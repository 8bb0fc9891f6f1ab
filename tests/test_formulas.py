"""Each formula against an independent computation, with stated tolerances."""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import aekit as ae
from aekit.models import penalties
from aekit.models.corruption import corrupt
from aekit.models.distributions import DiagonalGaussian, reconstruction_nll


def _jacobian_norm_reference(encoder, x):
    """||J||_F^2 per example by torch.autograd.functional.jacobian, averaged."""
    total = 0.0
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: encoder(v.unsqueeze(0)).squeeze(0), xi)
        total += jac.pow(2).sum().item()
    return total / len(x)


@pytest.mark.parametrize(
    "options",
    [
        dict(hidden=(), code_activation="sigmoid"),  # closed form (Rifai et al. eq. 5)
        dict(hidden=(20, 12), activation="tanh", code_activation="sigmoid"),  # deep: exact VJPs
        dict(hidden=(16,), architecture="conv", channels=(4,), activation="elu"),  # conv encoder
    ],
)
def test_contractive_penalty_matches_autograd_jacobian(options):
    torch.manual_seed(0)
    shape = (1, 6, 6) if options.get("architecture") == "conv" else (36,)
    model = ae.build("contractive", input_shape=shape, latent_dim=5, contractive_weight=1.0,
                     contractive_projections=0, **options).double()
    x = torch.rand(7, *shape, dtype=torch.float64)
    z = model.encoder(x)
    ours = model.contractive_penalty(x, z).item()
    ref = _jacobian_norm_reference(model.encoder, x)
    assert ours == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_contractive_estimate_is_unbiased(architecture):
    # Hutchinson: E ||J^T u||^2 = ||J||_F^2. With P projections the estimate's relative
    # standard deviation is about sqrt(2 / (P * k)) per example; averaged over 4,000
    # projections it must land within 3% of the exact value (about 6 standard deviations).
    torch.manual_seed(0)
    shape = (1, 6, 6) if architecture == "conv" else (36,)
    model = ae.build("contractive", input_shape=shape, latent_dim=5, hidden=(12,), architecture=architecture,
                     channels=(4,), activation="tanh", contractive_weight=1.0, contractive_projections=4000).double()
    x = torch.rand(7, *shape, dtype=torch.float64)
    ref = _jacobian_norm_reference(model.encoder, x)
    estimate = model.contractive_penalty(x, model.encoder(x)).item()
    assert estimate == pytest.approx(ref, rel=0.03)
    model.config.contractive_projections = 1
    draws = torch.tensor([model.contractive_penalty(x, model.encoder(x)).item() for _ in range(20)])
    assert draws.std() > 0  # one projection is random: the draws differ


def test_contractive_training_step_reuses_the_forward_pass_and_counts_gradients():
    # The penalty's VJP runs on the forward pass of the loss: its gradient reaches the encoder's
    # parameters, and the batch itself gets none (training asks only for parameter gradients).
    torch.manual_seed(0)
    model = ae.build("contractive", input_shape=(36,), latent_dim=5, hidden=(12,), contractive_weight=1.0)
    x = torch.rand(16, 36)
    terms = model.loss(x)
    first = next(model.encoder.parameters())
    (grad_total,) = torch.autograd.grad(terms.total, first, retain_graph=True)
    model.zero_grad()
    assert terms["contractive"] > 0 and torch.isfinite(grad_total).all() and grad_total.abs().sum() > 0


def test_contractive_penalty_is_differentiable_and_trains_down(digits):
    x = torch.from_numpy(digits[0])
    model = ae.build("contractive", input_shape=(64,), latent_dim=8, hidden=(32,), code_activation="sigmoid",
                     contractive_weight=1.0)
    before = model.loss(x)["contractive"]
    ae.fit(model, x, epochs=10, lr=3e-3, verbose=0, val_fraction=0)
    plain = ae.build("ae", input_shape=(64,), latent_dim=8, hidden=(32,), code_activation="sigmoid")
    ae.fit(plain, x, epochs=10, lr=3e-3, verbose=0, val_fraction=0)
    model.eval(), plain.eval()
    # The penalised encoder ends less sensitive than the same network trained without it.
    assert model.loss(x)["contractive"] < 0.5 * penalties.jacobian_frobenius(plain.code, x).item()
    assert before > 0


def test_kl_sparsity_matches_hand_computation():
    z = torch.tensor([[0.1, 0.9], [0.3, 0.5]])
    rho = 0.2
    expected = 0.0
    for rho_hat in (0.2, 0.7):
        expected += rho * math.log(rho / rho_hat) + (1 - rho) * math.log((1 - rho) / (1 - rho_hat))
    assert penalties.kl_sparsity(z, rho).item() == pytest.approx(expected, rel=1e-6)
    assert penalties.kl_sparsity(torch.full((4, 3), rho), rho).item() == pytest.approx(0.0, abs=1e-6)


def test_l1_activity_is_per_example_sum():
    z = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert penalties.l1_activity(z).item() == pytest.approx(3.0)


def test_gaussian_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.2, -0.7, 0.4]])
    closed = DiagonalGaussian(mu, logvar).kl().item()
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(400_000, 3, dtype=torch.float64)
    log_q = torch.distributions.Normal(mu.double(), std.double()).log_prob(z).sum(1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    mc = (log_q - log_p).mean().item()
    assert closed == pytest.approx(mc, rel=0.01)


def test_bernoulli_reconstruction_is_nats_per_example():
    model = ae.build("ae", input_shape=(4,), latent_dim=2)
    x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    with torch.no_grad():
        p = model.decode(model.encode(x))
        expected = -(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean().item()
    assert model.eval().loss(x)["reconstruction"] == pytest.approx(expected, rel=1e-5)


def test_gaussian_reconstruction_is_a_log_likelihood():
    model = ae.build("ae", input_shape=(3,), latent_dim=2, reconstruction="gaussian").eval()
    with torch.no_grad():
        model.log_sigma.fill_(math.log(0.5))
    x = torch.randn(5, 3)
    with torch.no_grad():
        mean = model.reconstruct(x)
        expected = -torch.distributions.Normal(mean, 0.5).log_prob(x).sum(1).mean().item()
    assert model.loss(x)["reconstruction"] == pytest.approx(expected, rel=1e-5)


def test_corruptions():
    torch.manual_seed(0)
    x = torch.full((200, 500), 0.5)
    masked = corrupt(x, "masking", 0.3)
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    sp = corrupt(x, "salt_and_pepper", 0.2)
    changed = sp != 0.5
    assert changed.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(sp[changed].unique().tolist()) == {0.0, 1.0}
    g = corrupt(x, "gaussian", 0.1)
    assert (g - x).std().item() == pytest.approx(0.1, rel=0.02)


def test_denoising_corrupts_only_in_training_and_targets_clean_input(digits):
    x = torch.from_numpy(digits[0][:64])
    model = ae.build("denoising", input_shape=(64,), latent_dim=8, noise="masking", noise_level=0.5)
    seen = []
    model.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    model.eval()
    eval_terms = model.loss(x)
    assert torch.equal(seen[-1], x)  # no corruption at evaluation time
    model.train()
    torch.manual_seed(0)
    train_terms = model.loss(x)
    torch.manual_seed(0)
    noisy = corrupt(x, "masking", 0.5)
    assert torch.equal(seen[-1], noisy) and not torch.equal(noisy, x)
    # The loss compares the reconstruction of the noisy input with the clean input.
    with torch.no_grad():
        expected = reconstruction_nll("bce", model.decoder(model.encoder(noisy)), x)
    assert train_terms["reconstruction"] == pytest.approx(expected.item(), rel=1e-6)
    assert eval_terms["reconstruction"] != pytest.approx(expected.item(), rel=1e-6)


def test_linear_autoencoder_reaches_pca_error(digits):
    """The lectures' claim: a linear AE with squared error learns the principal subspace."""
    x = digits[0]
    k = 10
    pca = PCA(n_components=k).fit(x)
    pca_mse = float(((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean())
    model = ae.build("pca", input_shape=(64,), latent_dim=k, init="random")
    ae.fit(model, x, epochs=150, batch_size=256, lr=1e-2, val_fraction=0, verbose=0)
    ours = float(((model.reconstruct(x) - x) ** 2).mean())
    assert ours <= 1.05 * pca_mse, (ours, pca_mse)
    # Same subspace: the decoder's columns span the principal components (principal angles ~ 0).
    w = model.decoder[0].weight.detach().numpy()
    q, _ = np.linalg.qr(w)
    cosines = np.linalg.svd(pca.components_ @ q, compute_uv=False)
    assert cosines.min() > 0.95


def test_pca_initialisation_is_pca(digits):
    x = digits[0]
    pca = PCA(n_components=6, svd_solver="full").fit(x)
    model = ae.build("pca", input_shape=(64,), latent_dim=6)  # init="pca" by default
    ae.fit(model, x, epochs=1, lr=1e-5, val_fraction=0, verbose=0)
    ours = float(((model.reconstruct(x) - x) ** 2).mean())
    theirs = float(((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean())
    assert ours == pytest.approx(theirs, rel=1e-3)
