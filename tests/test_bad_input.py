"""User mistakes raise clear errors naming the argument, the value and what is allowed."""

import numpy as np
import pytest
import torch

import aekit as ae


@pytest.mark.parametrize(
    "kind,options,message",
    [
        ("vea", {}, r"unknown kind 'vea' \(did you mean 'vae'\?\)"),
        ("ae", {"latent_dim": 0}, "latent_dim must be an int > 0, got 0"),
        ("ae", {"latent_dim": -3}, "latent_dim must be an int > 0, got -3"),
        ("ae", {"latnt_dim": 4}, r"'latnt_dim' \(did you mean 'latent_dim'\?\)"),
        ("vae", {"sparsity": "l1"}, "unknown option for kind 'vae'.*valid:.*beta"),
        ("sparse", {"sparsity_target": 1.5}, r"sparsity_target must lie in \(0, 1\), got 1.5"),
        ("sparse", {"sparsity_target": 0.0}, r"sparsity_target must lie in \(0, 1\)"),
        ("sparse", {"sparsity_weight": -1.0}, "sparsity_weight must be a finite number >= 0, got -1.0"),
        ("contractive", {"contractive_weight": -0.1}, "contractive_weight must be a finite number >= 0"),
        ("vae", {"beta": -1}, "beta must be a finite number >= 0"),
        ("denoising", {"noise": "gausian"}, r"noise='gausian' is not one of .*did you mean 'gaussian'"),
        ("denoising", {"noise": "masking", "noise_level": 2.0}, "noise_level is a probability"),
        ("ae", {"activation": "relu6"}, "unknown activation 'relu6'"),
        ("ae", {"architecture": "conv"}, r"needs input_shape \(C, H, W\)"),
        ("ae", {"hidden": (32, 0)}, "every entry of hidden must be an int > 0"),
        ("sparse", {"sparsity": "kl", "code_activation": "relu"}, "needs code_activation='sigmoid'"),
        ("pca", {"hidden": (3,)}, "fixed to"),
    ],
)
def test_bad_options(kind, options, message):
    with pytest.raises(ae.ConfigError, match=message):
        ae.build(kind, input_shape=(64,), **options)


def test_bad_input_shape():
    with pytest.raises(ae.ConfigError, match="input_shape"):
        ae.build("ae", input_shape=(0, 3))
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        ae.build("ae", input_shape="abc")


@pytest.fixture
def model():
    return ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2)


def test_data_of_the_wrong_shape(model, digits):
    with pytest.raises(ae.DataError, match=r"x has shape \(100, 8, 8\), expected \(N, 64\)"):
        ae.fit(model, digits[0][:100].reshape(-1, 8, 8), epochs=1, verbose=0)
    with pytest.raises(ae.DataError, match="x_val has shape"):
        ae.fit(model, digits[0][:100], x_val=digits[0][:10, :32], epochs=1, verbose=0)
    with pytest.raises(ae.DataError, match=r"reshape it with x.reshape\(-1, \*\(1, 8, 8\)\)"):
        ae.build("ae", input_shape=(1, 8, 8)).encode(digits[0][:3])


def test_empty_and_non_finite_data(model, digits, tmp_path):
    with pytest.raises(ae.DataError, match="empty"):
        ae.fit(model, np.zeros((0, 64), np.float32), epochs=1, verbose=0)
    x = digits[0][:100].copy()
    x[7, 3] = np.nan
    x[9, 1] = np.inf
    with pytest.raises(ae.DataError, match="2 NaN/inf values .first in example 7"):
        ae.fit(model, x, epochs=1, out=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_bce_needs_unit_range(model, digits):
    with pytest.raises(ae.DataError, match=r"reconstruction='bce' needs data in \[0, 1\]"):
        ae.fit(model, digits[0][:100] * 16, epochs=1, verbose=0)
    mse = ae.build("ae", input_shape=(64,), hidden=(8,), latent_dim=2, reconstruction="mse")
    ae.fit(mse, digits[0][:100] * 16, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "arg,value,message",
    [
        ("epochs", -1, "epochs must be an int >= 1, got -1"),
        ("batch_size", 0, "batch_size must be an int >= 1"),
        ("lr", 0.0, "lr must be a finite number > 0"),
        ("val_fraction", 1.0, r"val_fraction must lie in \[0, 1\)"),
        ("patience", 0, "patience must be an int >= 1"),
        ("device", "tpu", "device='tpu' is not a torch device"),
    ],
)
def test_bad_fit_arguments(model, digits, arg, value, message):
    with pytest.raises(ae.ConfigError, match=message):
        ae.fit(model, digits[0][:50], verbose=0, **{arg: value})


def test_wrong_types(model):
    with pytest.raises(TypeError, match="x must be a torch.Tensor, a numpy.ndarray or a Dataset"):
        ae.fit(model, [[0.0] * 64], verbose=0)
    with pytest.raises(ae.DataError, match="z has shape"):
        model.decode(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="n must be an int > 0"):
        ae.build("vae", input_shape=(4,)).sample(0)
