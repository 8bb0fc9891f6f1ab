"""One contract, every registered kind: builds, learns, has the right shapes, saves and loads exactly."""

import numpy as np
import pytest
import torch

import aekit as ae
from aekit.training.state import TrainingState

KINDS = [k.name for k in ae.kinds()]
# Small networks so that the whole registry trains in seconds on 2 cores.
SMALL = {"hidden": (32,)}


def _options(kind, architecture="mlp"):
    opts = dict(SMALL) if "hidden" in ae.get_kind(kind).options else {}  # linear kinds fix hidden=()
    if architecture == "conv":
        opts.update(architecture="conv", channels=(8, 16))
    if kind == "stacked":
        opts["pretrain_epochs"] = 2
    return opts


def test_registry_lists_every_kind_with_description_and_options():
    assert set(KINDS) >= {"pca", "ae", "sparse", "denoising", "contractive", "stacked", "vae"}
    for k in ae.kinds():
        assert k.description and "latent_dim" in k.options


CASES = [(k, "mlp") for k in KINDS] + [(k, "conv") for k in ("ae", "denoising", "contractive", "vae")]


@pytest.mark.parametrize("kind,architecture", CASES)
def test_kind_learns_and_round_trips(kind, architecture, digits, digit_images, tmp_path):
    x = digit_images[0] if architecture == "conv" else digits[0]
    model = ae.build(kind, input_shape=x.shape[1:], latent_dim=8, **_options(kind, architecture))
    x_val = x[:300]
    before = ae.evaluate_loss(model, torch.from_numpy(x_val))["total"]
    y = digits[1] if model.config.n_classes else None  # a conditional kind trains with its labels
    labels = {} if y is None else {"y": y[300:], "y_val": y[:300]}
    history = ae.fit(model, x[300:], x_val=x_val, epochs=4, batch_size=64, lr=3e-3, verbose=0, out=tmp_path / "run",
                     **labels)
    after = history[-1]["val_total"]
    assert after < 0.9 * before, f"{kind}: validation loss {before:.3f} -> {after:.3f}"

    z = model.encode(x[:10])
    assert isinstance(z, np.ndarray) and z.shape == (10, 8)
    assert model.decode(z).shape == (10, *x.shape[1:])
    assert model.reconstruct(torch.from_numpy(x[:10])).shape == (10, *x.shape[1:])
    terms = model.loss(x[:10])
    assert "total" in terms and "reconstruction" in terms and np.isfinite(terms["total"])

    loaded = ae.load(tmp_path / "run")
    assert type(loaded) is type(model) and loaded.config == model.config
    np.testing.assert_array_equal(loaded.encode(x[:50]), model.encode(x[:50]))
    np.testing.assert_array_equal(loaded.reconstruct(x[:50]), model.reconstruct(x[:50]))
    for name in ("config.json", "weights.safetensors", "history.csv", "metrics.json"):
        assert (tmp_path / "run" / name).is_file(), name
    # The training state (what resume needs) is committed with the weights, in the same file.
    state = TrainingState.load(tmp_path / "run" / "weights.safetensors")
    assert state is not None and len(state.history) == len(history) and state.stage_done


def test_expected_terms_per_kind(digits):
    x = torch.from_numpy(digits[0][:32])
    expected = {
        "pca": {"reconstruction"}, "ae": {"reconstruction"}, "sparse": {"reconstruction", "sparsity"},
        "denoising": {"reconstruction"}, "contractive": {"reconstruction", "contractive"},
        "stacked": {"reconstruction"}, "vae": {"reconstruction", "kl"},
    }
    for kind, names in expected.items():
        terms = ae.build(kind, input_shape=(64,), latent_dim=4).loss(x)
        assert set(terms) == names | {"total"}, kind


def test_decode_gives_probabilities_not_logits(digits):
    model = ae.build("ae", input_shape=(64,), latent_dim=4)
    out = model.decode(torch.randn(100, 4) * 10)
    assert out.min() >= 0 and out.max() <= 1


def test_loss_works_in_eval_mode_and_no_grad(digits):
    x = torch.from_numpy(digits[0][:16])
    for kind in KINDS:
        # Switch the contractive term on where the kind allows it: it needs autograd internally.
        options = {"contractive_weight": 0.5} if "contractive_weight" in ae.get_kind(kind).options else {}
        model = ae.build(kind, input_shape=(64,), latent_dim=4, **options).eval()
        with torch.no_grad():
            terms = model.loss(x)
        assert np.isfinite(terms["total"]) and not terms.total.requires_grad


def test_vae_api(digits):
    model = ae.build("vae", input_shape=(64,), latent_dim=3)
    mu, logvar = model.posterior(digits[0][:5])
    assert mu.shape == logvar.shape == (5, 3)
    np.testing.assert_array_equal(model.encode(digits[0][:5]), mu)
    samples = model.sample(7)
    assert samples.shape == (7, 64) and samples.min() >= 0 and samples.max() <= 1


def test_same_seed_same_weights(digits):
    def run(seed):
        model = ae.build("denoising", input_shape=(64,), latent_dim=4, hidden=(16,), seed=seed)
        ae.fit(model, digits[0][:400], epochs=2, seed=seed, verbose=0)
        return torch.cat([p.flatten() for p in model.parameters()])

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_overcomplete_sparse_code_is_allowed(digits):
    model = ae.build("sparse", input_shape=(64,), latent_dim=128, hidden=())
    ae.fit(model, digits[0][:500], epochs=2, verbose=0)
    assert model.encode(digits[0][:3]).shape == (3, 128)


def test_sparse_denoising_is_a_configuration(digits):
    model = ae.build("sparse", input_shape=(64,), latent_dim=8, noise="masking", noise_level=0.5)
    assert type(model) is ae.Autoencoder
    x = torch.from_numpy(digits[0][:64])
    model.train()
    torch.manual_seed(0)
    assert set(model.loss(x)) == {"total", "reconstruction", "sparsity"}
