"""What VAE users ask for next: the conditional VAE, KL warm-up, free bits, the importance-weighted bound;
and the downsample corruption (super-resolution). Seeded, on scikit-learn's 8x8 digits."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit as ae
from aekit.evaluation import metrics, quality
from aekit.models.autoencoder import kl_weight
from aekit.models.corruption import corrupt
from aekit.models.distributions import DiagonalGaussian, free_bits_kl
from aekit.training import loop

MNIST_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"  # ../shared beside the repository


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def split(digits):
    """Two thirds of the digits to train on, the rest held out (seeded)."""
    x, y = digits
    order = np.random.default_rng(0).permutation(len(x))
    return x[order[:1200]], y[order[:1200]], x[order[1200:]], y[order[1200:]]


# ----- the conditional VAE -----


def test_cvae_generates_the_requested_digit(split):
    x, y, x_test, y_test = split
    # The judge: an MLP classifier (quality.train_judge) on the same 1,200 training digits; 0.98 on the
    # 597 held-out ones (asserted > 0.95).
    judge = quality.train_judge(x, y, epochs=20, seed=0)
    assert judge.accuracy(x_test, y_test) > 0.95
    model = ae.build("cvae", input_shape=(64,), latent_dim=8, hidden=(128,))
    ae.fit(model, x, y=y, epochs=10, lr=3e-3, batch_size=64, verbose=0)
    labels = np.repeat(np.arange(10), 30)
    # model.sample returns NumPy on every model since issue 14 (it returned a tensor when this test was written).
    samples = model.sample(300, generator=torch.Generator().manual_seed(0), labels=labels)
    accuracy = (judge.predict_proba(samples).argmax(1) == labels).mean()
    assert accuracy >= 0.9  # measured 1.00
    # The same class from the CLI's single label, and from the generation module.
    sevens = ae.evaluation.generation.sample(model, 20, labels=7, seed=1)
    assert (judge.predict_proba(sevens).argmax(1) == 7).mean() >= 0.9


def test_cvae_labels_reach_every_path(split, tmp_path):
    x, y, x_test, y_test = split
    ds = ae.data.Dataset(torch.from_numpy(x), y, "digits-train", None)
    model = ae.build("cvae", input_shape=(64,), latent_dim=4, hidden=(32,), n_classes=10)
    history = ae.fit(model, ds, epochs=2, verbose=0, out=tmp_path / "run")  # the Dataset's labels are used
    config = ae.load_run(tmp_path / "run")
    assert config.data["labelled"] == 1080 and config.config.n_classes == 10
    assert "val_kl" in history[-1]
    # Labelled and 'unknown' codes differ: the encoder sees the class.
    assert not np.allclose(model.encode(x_test[:20], labels=y_test[:20]), model.encode(x_test[:20]))
    assert model.reconstruct(x_test[:5], labels=3).shape == (5, 64)
    mu, logvar = model.posterior(x_test[:5], labels=y_test[:5])
    assert mu.shape == logvar.shape == (5, 4)
    # Validation used the labels: its deterministic reconstruction error is evaluate_loss's with them.
    rows, xt = loop.split(len(x), 0.1, 0)[1], torch.from_numpy(x)
    with_labels = ae.evaluate_loss(model, xt, rows, labels=torch.from_numpy(y))["mse_per_feature"]
    assert with_labels == pytest.approx(history[-1]["val_mse_per_feature"], rel=1e-5)
    assert ae.evaluate_loss(model, xt, rows)["mse_per_feature"] != pytest.approx(with_labels, rel=1e-5)
    report = ae.evaluate(model, ae.data.Dataset(torch.from_numpy(x_test), y_test, "t", None),
                         log_likelihood_samples=20, log_likelihood_examples=50, compression_sizes=False)
    unconditioned = metrics.log_likelihood(model, x_test[:50], samples=20).mean()
    assert report["vae"]["log_likelihood_nats"] > unconditioned  # log p(x|y) > log p(x|unknown)
    loaded = ae.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.sample(4, generator=torch.Generator().manual_seed(2), labels=[1, 2, 3, 4]),
                                  model.sample(4, generator=torch.Generator().manual_seed(2), labels=[1, 2, 3, 4]))


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda m, v, x, y: ae.fit(m, x, y=y + 1, epochs=1, verbose=0), ae.DataError, r"must lie in \[-1, 10\).*got 10"),
        (lambda m, v, x, y: ae.fit(m, x, y=y[:-1], epochs=1, verbose=0), ae.DataError, r"y has shape \(1199,\), expected \(1200,\)"),
        (lambda m, v, x, y: ae.fit(m, x, y=y * 0.5, epochs=1, verbose=0), ae.DataError, "must be integer class labels"),
        (lambda m, v, x, y: ae.fit(v, x, y=y, epochs=1, verbose=0), ae.ConfigError, "y: class labels are for a conditional model"),
        (lambda m, v, x, y: v.sample(3, labels=1), ae.ConfigError, "labels: class labels are for a conditional model"),
        (lambda m, v, x, y: m.sample(3, labels=[1, 2]), ae.DataError, r"labels has shape \(2,\), expected \(3,\)"),
        (lambda m, v, x, y: ae.fit(m, x, y_val=y, epochs=1, verbose=0), ae.DataError, "y_val was given without x_val"),
    ],
)
def test_bad_labels_are_refused(split, call, error, message):
    x, y, _, _ = split
    model = ae.build("cvae", input_shape=(64,), latent_dim=2, hidden=(8,))
    vae = ae.build("vae", input_shape=(64,), latent_dim=2, hidden=(8,))
    with pytest.raises(error, match=message):
        call(model, vae, x, y)


@pytest.mark.slow
def test_cvae_on_mnist_5k_is_judged_the_requested_digit_90_percent_of_the_time():
    # The README's figure: judge = quality.judge_for(mnist-5k) (784-512-256-10 MLP, 20 epochs), its
    # accuracy on the official 10,000 MNIST test digits asserted above 0.9 (measured 0.943).
    if not (MNIST_TEST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the official MNIST test split is not in {MNIST_TEST}")
    train = ae.data.load("mnist-5k")
    test = ae.data.load("mnist", split="test", data_dir=str(MNIST_TEST), download=False)
    judge = quality.judge_for(train)
    assert judge.accuracy(test.x, test.y) > 0.9
    # The README's recipe: beta = 2 keeps the class out of the code (with beta = 1 the code carries it and
    # 30 epochs give 60%, 100 epochs 88%).
    model = ae.build("cvae", input_shape=(1, 28, 28), latent_dim=16, hidden=(512, 256), beta=2.0, seed=0)
    ae.fit(model, train, epochs=50, seed=0, verbose=0)
    labels = np.repeat(np.arange(10), 100)
    samples = model.sample(1000, generator=torch.Generator().manual_seed(0), labels=labels)  # NumPy (issue 14)
    assert (judge.predict_proba(samples).argmax(1) == labels).mean() >= 0.9


# ----- KL warm-up and free bits -----


def test_kl_warmup_schedule_values():
    assert [kl_weight(1.0, 4, e) for e in (0, 1, 2, 3.5, 4, 10)] == [0.0, 0.25, 0.5, 0.875, 1.0, 1.0]
    assert kl_weight(2.0, 4, 1) == 0.5 and kl_weight(2.0, 0, 0) == 2.0 and kl_weight(3.0, 4, None) == 3.0


def test_the_loop_passes_the_fractional_epoch_and_validation_uses_full_beta(digits, monkeypatch):
    x = digits[0][:100]
    model = ae.build("vae", input_shape=(64,), latent_dim=2, hidden=(8,), kl_warmup_epochs=2)
    seen, real = [], type(model).loss

    def spy(self, xb, labels=None, *, epoch=None):
        terms = real(self, xb, labels, epoch=epoch)
        if self.training:
            expected = terms["reconstruction"] + kl_weight(1.0, 2, epoch) * terms["kl"]
            assert terms["total"] == pytest.approx(expected, rel=1e-5)
        else:  # validation: the plain -ELBO
            assert terms["total"] == pytest.approx(terms["reconstruction"] + terms["kl"], rel=1e-5)
        seen.append(epoch)
        return terms

    monkeypatch.setattr(type(model), "loss", spy)
    ae.fit(model, x, epochs=3, batch_size=25, val_fraction=0.2, verbose=0)  # 80 rows: 4 steps an epoch
    steps = [e for e in seen if e is not None]
    assert steps == [i / 4 for i in range(12)]


def test_free_bits_clamp_the_batch_mean_kl_of_each_dimension():
    mean = torch.tensor([[0.0, 2.0, 0.1], [0.0, -2.0, 0.1]], requires_grad=True)
    q = DiagonalGaussian(mean, torch.zeros(2, 3))
    per_dim = q.kl_per_dimension().mean(0)  # [0, 2, 0.005] nats
    assert per_dim.tolist() == pytest.approx([0.0, 2.0, 0.005])
    term = free_bits_kl(q.kl_per_dimension(), 0.5)
    assert term.item() == pytest.approx(0.5 + 2.0 + 0.5)
    term.backward()
    assert mean.grad[:, 0].abs().sum() == 0 and mean.grad[:, 2].abs().sum() == 0  # clamped: no push to the prior
    assert mean.grad[:, 1].abs().sum() > 0
    assert free_bits_kl(q.kl_per_dimension(), 0.0).item() == pytest.approx(q.kl().mean().item())


def test_free_bits_in_the_training_objective(digits):
    x = torch.from_numpy(digits[0][:64])
    model = ae.build("vae", input_shape=(64,), latent_dim=4, hidden=(16,), free_bits=0.3).train()
    torch.manual_seed(0)
    terms = model.loss(x, epoch=1.0)
    torch.manual_seed(0)
    q = model.posterior_of(x)
    expected = terms["reconstruction"] + free_bits_kl(q.kl_per_dimension(), 0.3).item()
    assert terms["total"] == pytest.approx(expected, rel=1e-5)
    assert terms["total"] >= terms["reconstruction"] + 4 * 0.3 - 1e-4
    measured = model.eval().loss(x)  # evaluation: the plain -ELBO, no clamp
    assert measured["total"] == pytest.approx(measured["reconstruction"] + measured["kl"], rel=1e-5)


# ----- the importance-weighted bound -----


def test_iwae_bound_is_above_the_elbo_and_grows_with_k(digits):
    x = digits[0]
    model = ae.build("vae", input_shape=(64,), latent_dim=4, hidden=(32,))
    ae.fit(model, x, epochs=20, lr=3e-3, verbose=0)
    xb = torch.from_numpy(x[:500])
    with torch.no_grad():
        torch.manual_seed(0)
        one_draw = model.importance_weighted(xb, 1)
        torch.manual_seed(0)
        q = model.posterior_of(xb)
        z = q.sample()
        # The one-sample ELBO with the same draw: log p(x|z) + log p(z) - log q(z|x).
        from aekit.models.distributions import log_likelihood_per_example, standard_normal_log_prob

        one = log_likelihood_per_example("bce", model.decoder(z), xb) + standard_normal_log_prob(z) - q.log_prob(z)
        torch.testing.assert_close(one_draw, one)  # K = 1 is the ELBO
        # Each bound per example, averaged over seeds so that Monte Carlo noise stays small.
        bound = {k: np.mean([_seeded(lambda k=k: model.importance_weighted(xb, k).numpy(), s) for s in range(4)], 0)
                 for k in (5, 50)}
    elbo = np.mean([metrics.elbo(model, x[:500], seed=s) for s in range(20)], 0)
    # Burda et al. 2016, theorem 1: ELBO <= L_5 <= L_50. Measured gaps 0.13 and 0.20 nats; each asserted
    # above 4 standard errors of the mean difference over the 500 examples.
    for low, high in ((elbo, bound[5]), (bound[5], bound[50]), (elbo, bound[50])):
        gap = high - low
        assert gap.mean() > 4 * gap.std() / math.sqrt(len(gap)), (gap.mean(), gap.std())


def _seeded(fn, seed):
    torch.manual_seed(seed)
    return fn()


def test_iwae_objective_trains_and_reports_its_terms(digits):
    x = digits[0]
    model = ae.build("vae", input_shape=(64,), latent_dim=4, hidden=(32,), objective="iwae", iwae_samples=5)
    history = ae.fit(model, x, epochs=3, lr=3e-3, verbose=0)
    last = history[-1]
    assert last["val_total"] < history[0]["val_total"]
    # -IWAE bound <= -ELBO (reconstruction + KL, estimated with the same K draws).
    assert last["val_total"] <= last["val_reconstruction"] + last["val_kl"]


@pytest.mark.parametrize(
    "kind,options,message",
    [
        ("vae", {"objective": "iwae", "beta": 2.0}, "objective='iwae' is a bound on log p.x. itself: it needs beta=1"),
        ("vae", {"objective": "iwea"}, r"objective='iwea' is not one of 'elbo', 'iwae' \(did you mean 'iwae'\?\)"),
        ("vae", {"iwae_samples": 0}, "iwae_samples must be an int >= 1, got 0"),
        ("vae", {"free_bits": -0.5}, "free_bits must be a finite number >= 0, got -0.5"),
        ("vae", {"kl_warmup_epochs": 2.5}, "kl_warmup_epochs must be an int >= 0, got 2.5"),
        ("cvae", {"label_dropout": 1.0}, r"label_dropout must lie in \[0, 1\), got 1.0"),
        ("cvae", {"n_classes": -1}, "n_classes must be an int >= 0, got -1"),
        ("ae", {"n_classes": 3}, "unknown option for kind 'ae'"),
        ("denoising", {"noise": "downsample", "noise_level": 3}, r"integer >= 2 that divides the image's 8 x 8 pixels \(2, 4, 8\), got 3"),
        ("denoising", {"noise": "downsample", "noise_level": 2.5}, "divides the image's 8 x 8 pixels"),
    ],
)
def test_bad_options_name_option_value_and_bound(kind, options, message):
    shape = (1, 8, 8) if options.get("noise") == "downsample" else (64,)
    with pytest.raises(ae.ConfigError, match=message):
        ae.build(kind, input_shape=shape, **options)


def test_a_conditional_model_refuses_the_fully_convolutional_code():
    # fully_conv (issue 16) decodes code maps with no input for the one-hot class: refused by name,
    # not left to fail as a shape error in the decoder.
    with pytest.raises(ae.ConfigError, match="n_classes > 0 .a conditional model. needs architecture 'mlp' or 'conv'"):
        ae.build("cvae", input_shape=(1, 8, 8), architecture="fully_conv", channels=(8,), latent_dim=16)
    model = ae.build("cvae", input_shape=(1, 8, 8), architecture="conv", channels=(8,), hidden=(16,), latent_dim=4)
    assert model.encode(np.zeros((3, 1, 8, 8), np.float32), labels=[0, 1, 2]).shape == (3, 4)


def test_downsample_needs_images():
    with pytest.raises(ae.ConfigError, match=r"noise='downsample' shrinks images: it needs input_shape \(C, H, W\)"):
        ae.build("denoising", input_shape=(64,), noise="downsample", noise_level=2)


# ----- super-resolution -----


def test_downsample_corruption_shapes_and_block_averages():
    torch.manual_seed(0)
    x = torch.rand(5, 3, 8, 12)
    for factor in (2, 4):
        low = corrupt(x, "downsample", factor)
        assert low.shape == x.shape
        blocks = x.reshape(5, 3, 8 // factor, factor, 12 // factor, factor)
        means = blocks.mean(dim=(3, 5), keepdim=True)
        torch.testing.assert_close(low.reshape(blocks.shape), means.expand_as(blocks))  # each block is its mean
        torch.testing.assert_close(low.mean(dim=(2, 3)), x.mean(dim=(2, 3)))  # the image's mean is kept
    torch.testing.assert_close(corrupt(x, "downsample", 2.0), corrupt(x, "downsample", 2))  # deterministic


def test_a_denoising_model_learns_super_resolution(digit_images):
    x = digit_images[0]
    model = ae.build("denoising", input_shape=(1, 8, 8), latent_dim=16, hidden=(64,), noise="downsample",
                     noise_level=2, reconstruction="mse")
    ae.fit(model, x, epochs=30, lr=3e-3, verbose=0)
    r = metrics.denoising(model, x[:400])
    assert r["noise"] == "downsample" and r["noise_level"] == 2
    assert r["psnr_gain_db"] > 1.5  # measured 4 dB over the blocky 4x4 input
    assert math.isfinite(r["denoised_psnr_db"])
