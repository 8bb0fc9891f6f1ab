"""What every section of the tour shares: the Budget (epochs and sizes per mode), the Tour state (the seeded
split of the digits and the helpers that train, measure and judge on it) and the small numerical helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from aekit import data as datasets
from aekit.evaluation.quality import train_judge
from aekit.models.kinds import build
from aekit.training import fit

# The quick tour's time on an idle machine: `aekit tour --quick` (default threads) on this 2-core x86 machine
# took 69 s of wall time at load average 1.2 (the tour itself) on 2026-12-08; with one thread it takes 76 s of
# CPU. The default tour's is not re-measured (None: its closing line gives only its own time).
QUICK_IDLE_SECONDS, FULL_IDLE_SECONDS = 70, None


@dataclass
class Budget:
    """Epochs and sizes: the default tour or --quick (70 s on an idle machine, QUICK_IDLE_SECONDS)."""

    digits_epochs: int
    toy_epochs: int
    n_train: int
    n_test: int
    toy_n: int
    lr: float
    likelihood_samples: int  # K of the importance-sampled log-likelihoods
    likelihood_examples: int  # digits they are estimated on
    # Seconds the whole tour takes on an idle machine (QUICK_IDLE_SECONDS), printed at the end of the tour
    # next to the time it took (tour.time_taken); None: not measured.
    idle_seconds: int | None

    @classmethod
    def for_mode(cls, quick: bool) -> Budget:
        if quick:
            return cls(10, 150, 2000, 500, 600, 3e-3, 100, 100, idle_seconds=QUICK_IDLE_SECONDS)
        return cls(30, 400, 4000, 1000, 1000, 2e-3, 500, 300, idle_seconds=FULL_IDLE_SECONDS)


def dequantise(x: np.ndarray, seed: int) -> np.ndarray:
    """8-bit pixels k / 255 as continuous values (k + u) / 256, u ~ U(0, 1): uniform dequantisation, so
    that every model is a density on the same continuous space (Theis et al. 2016)."""
    return ((np.round(x * 255) + np.random.default_rng(seed).random(x.shape)) / 256).astype(np.float32)


def bits_per_pixel(log_likelihood_nats: float, pixels: int) -> float:
    """The 8-bit convention: -(log p(x) - D log 256) / (D log 2) for a density on [0, 1)^D; 8 is uniform."""
    return 8 - log_likelihood_nats / (pixels * math.log(2))


def in_band(points: np.ndarray, low: float, high: float) -> float:
    """The fraction of 2-D points whose distance from the origin lies in [low, high]."""
    radius = np.linalg.norm(points, axis=1)
    return float(((radius >= low) & (radius <= high)).mean())


class Tour:
    """The labelled digits split once by the seed (train and test, images and flattened), the Budget, and the
    helpers the sections train and measure with."""

    def __init__(self, data: str, quick: bool, seed: int):
        self.seed = seed
        self.budget = Budget.for_mode(quick)
        ds = datasets.load(data)
        if len(ds.input_shape) != 3 or ds.y is None:
            raise datasets.DataError(f"the tour's digit experiments need labelled images; {data!r} has shape "
                                     f"{ds.input_shape} and {'no' if ds.y is None else ''} labels")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(ds))
        b = self.budget
        n_test = min(b.n_test, len(ds) // 5)
        test_rows, train_rows = order[:n_test], order[n_test:n_test + b.n_train]
        x = np.asarray(ds.x, dtype=np.float32)
        self.shape = ds.input_shape
        self.x_train, self.y_train = x[train_rows], ds.y[train_rows]
        self.x_test, self.y_test = x[test_rows], ds.y[test_rows]
        self.name, self.quick = data, quick
        self.flat_train, self.flat_test = self.x_train.reshape(len(train_rows), -1), self.x_test.reshape(n_test, -1)
        self.vae = None  # the 16-d VAE the "vae" section trains; the "generation" section samples it again
        self._judge = None

    def train(self, kind, x=None, epochs=None, lr=None, batch_size=64, lr_schedule="constant", y=None, **options):
        """A model of `kind` fitted to x (the training digits by default) with the tour's seed and budget."""
        x = self.x_train if x is None else x
        shape = x.shape[1:]
        model = build(kind, input_shape=shape, seed=self.seed, **options)
        fit(model, x, y=y, epochs=epochs or self.budget.digits_epochs, batch_size=batch_size, lr=lr or self.budget.lr,
            lr_schedule=lr_schedule, seed=self.seed, val_fraction=0, verbose=0)
        return model

    def mse(self, model, x=None):
        """The model's reconstruction error per pixel on x (the test digits by default)."""
        x = self.x_test if x is None else x
        return float(((np.asarray(model.reconstruct(x)) - x) ** 2).mean())

    def pca(self, k, x=None):
        """scikit-learn's PCA with k components, fitted to the rows of x (the flattened training digits by default)."""
        return PCA(n_components=k, random_state=self.seed).fit(self.flat_train if x is None else x)

    def pca_mse(self, pca, x=None):
        """A fitted PCA's reconstruction error per feature on the rows of x (the flattened test digits by default)."""
        x = self.flat_test if x is None else x
        return float(((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean())

    @property
    def judge(self):
        """The classifier that judges generated digits, trained once on the training digits when first asked."""
        if self._judge is None:
            self._judge = train_judge(self.x_train, self.y_train, epochs=10 if self.budget.n_train < 3000 else 15,
                                      seed=self.seed)
        return self._judge
