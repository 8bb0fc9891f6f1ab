"""The conditional VAE's defaults keep their promise (issue 25): a cvae built with nothing but its input shape
generates the class it is asked for. The rule (kinds.conditional_beta), a small real check on the 8x8 digits,
and behind `slow` the promise itself: >= 90% of samples judged the asked digit on mnist-5k, three seeds."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import aekit as ae
from aekit.errors import ConfigWarning
from aekit.evaluation import quality
from aekit.models.kinds import AUTO, conditional_beta, get_kind, make_config

MNIST_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"  # ../shared beside the repository

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape,beta", [((1, 28, 28), 2.8), ((784,), 2.8), ((1, 14, 14), 1.4), ((1, 8, 8), 1.0),
                                        ((64,), 1.0), ((3, 32, 32), 5.54)])
def test_the_cvae_beta_grows_with_the_square_root_of_the_input_size(shape, beta):
    config = make_config("cvae", shape)
    assert config.beta == pytest.approx(beta, abs=0.005)
    assert isinstance(config.beta, float) and config.to_json()["beta"] == config.beta  # the run records the number


def test_the_rule_applies_only_where_left_open_and_only_with_labels():
    assert get_kind("cvae").options["beta"] == AUTO and get_kind("vae").options["beta"] == 1.0
    assert make_config("cvae", (784,), beta=1.0).beta == 1.0  # the user's beta is kept
    assert make_config("cvae", (784,), beta=AUTO).beta == pytest.approx(2.8)
    assert make_config("vae", (784,)).beta == 1.0 and make_config("vae", (784,), beta=AUTO).beta == 1.0
    assert conditional_beta(784, 0) == 1.0 and conditional_beta(10_000, 10) == 10.0
    assert make_config("cvae", (784,), n_classes=3).beta == pytest.approx(2.8)
    # The rest of the defaults: the code and network of the VAE, no label dropout, no warm-up, no free bits
    # (both let the code keep the class: free bits make the first nats of every dimension free).
    config = make_config("cvae", (1, 28, 28))
    assert (config.latent_dim, config.hidden, config.label_dropout, config.kl_warmup_epochs, config.free_bits) == (
        16, (256, 64), 0.0, 0, 0.0)
    with pytest.raises(ae.ConfigError, match="input_shape"):  # a malformed shape is still named, not the rule's
        make_config("cvae", ("a", 3))
    assert "sqrt(D / 100)" in str(get_kind("cvae"))  # `aekit kinds` says what 'auto' means


def test_a_variational_code_as_large_as_the_input_is_no_warning():
    """The KL term prices a VAE's code, so it cannot copy the input for free (the tour's ring: a 2-D VAE on 2-D
    points); a plain autoencoder's code still gets the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_config("vae", (2,), latent_dim=2)
        make_config("cvae", (2,), latent_dim=2)
    with pytest.warns(ConfigWarning, match="latent_dim=2 for 2 input features"):
        make_config("ae", (2,), latent_dim=2)


def test_a_default_cvae_generates_the_asked_digit_far_above_chance(digit_images):
    """The 8x8 digits (64 inputs: the rule's beta is 1), the default network, 40 epochs: every class asked for
    is judged right far above chance (0.1). Measured 1.00 for every class."""
    x, y = digit_images
    order = np.random.default_rng(0).permutation(len(x))
    train, held = order[:1400], order[1400:]
    judge = quality.train_judge(x[train], y[train], epochs=15, seed=0)
    assert judge.accuracy(x[held], y[held]) > 0.9
    model = ae.build("cvae", input_shape=(1, 8, 8))
    ae.fit(model, x[train], y=y[train], epochs=40, seed=0, verbose=0)
    labels = np.repeat(np.arange(10), 20)
    judged = judge.predict_proba(model.sample(len(labels), seed=0, labels=labels)).argmax(1)
    per_class = np.array([(judged[labels == c] == c).mean() for c in range(10)])
    assert per_class.min() >= 0.7 and per_class.mean() >= 0.9, per_class


@pytest.fixture(scope="module")
def mnist_judge():
    """The issue's judge: an RBF SVM trained on the 5,000 real mnist-5k digits; 0.957 on the official test split
    (0.938 on its first 2,000 digits, checked here)."""
    from sklearn.svm import SVC

    if not (MNIST_TEST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the official MNIST test split is not in {MNIST_TEST}")
    train = ae.data.load("mnist-5k")
    test = ae.data.load("mnist", split="test", data_dir=str(MNIST_TEST), download=False)
    svm = SVC(C=10, gamma="scale").fit(np.asarray(train.x).reshape(len(train), -1), train.y)
    assert (svm.predict(np.asarray(test.x[:2000]).reshape(2000, -1)) == test.y[:2000]).mean() > 0.92
    return train, svm


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_default_cvae_on_mnist_5k_generates_the_asked_digit_90_percent_of_the_time(mnist_judge, seed):
    """ae.build("cvae", input_shape) and ae.fit with its automatic length (84 epochs here), nothing else:
    measured 0.976, 0.986 and 0.976 (benchmarks/cvae_defaults.py; with beta = 1, the old default, 0.705)."""
    train, svm = mnist_judge
    model = ae.build("cvae", input_shape=train.input_shape, seed=seed)
    ae.fit(model, train, seed=seed, verbose=0)
    labels = np.repeat(np.arange(10), 100)
    samples = model.sample(len(labels), seed=seed, labels=labels)
    assert (svm.predict(samples.reshape(len(samples), -1)) == labels).mean() >= 0.9
