"""New data from the latent space: prior samples (VAE), a density fitted to the
codes of a plain autoencoder (the lectures' "sample the region we guess is the
latent space"), interpolation, extrapolation and decoded grids.
"""

from __future__ import annotations

import numpy as np

from aekit.errors import ConfigError, check_choice, check_int
from aekit.inference import codes
from aekit.models.autoencoder import VariationalAutoencoder

DENSITIES = ("gaussian", "gmm", "box")


class LatentDensity:
    """A density fitted to training codes: a Gaussian (one full-covariance component), a Gaussian mixture,
    or "box", uniform over the codes' bounding box (the simplest guess at "the region the codes occupy")."""

    def __init__(self, density: str = "gmm", n_components: int = 10, seed: int = 0):
        check_choice("density", density, DENSITIES)
        check_int("n_components", n_components, 1)
        check_int("seed", seed, 0, 2**32 - 1)
        self.density, self.n_components, self.seed = density, n_components, seed

    def fit(self, z: np.ndarray) -> LatentDensity:
        from sklearn.mixture import GaussianMixture

        if self.density == "box":
            self.low_, self.high_ = z.min(0), z.max(0)
            return self
        k = 1 if self.density == "gaussian" else min(self.n_components, len(z))
        self.mixture_ = GaussianMixture(k, covariance_type="full", random_state=self.seed, reg_covar=1e-4).fit(z)
        return self

    def sample(self, n: int) -> np.ndarray:
        """n draws, repeatable for a seed: a component by its weight, then that Gaussian through the
        Cholesky factor of its covariance (jittered, so a near-singular one needs no warning); for
        "box", uniform in the codes' bounding box."""
        rng = np.random.default_rng(self.seed)
        if self.density == "box":
            return rng.uniform(self.low_, self.high_, (n, len(self.low_))).astype(np.float32)
        m = self.mixture_
        component = rng.choice(len(m.weights_), size=n, p=m.weights_ / m.weights_.sum())
        eps = rng.standard_normal((n, m.means_.shape[1]))
        z = np.empty_like(eps)
        for j in range(len(m.weights_)):
            cov = m.covariances_[j]
            factor = np.linalg.cholesky(cov + 1e-9 * np.trace(cov) * np.eye(len(cov)))
            chosen = component == j
            z[chosen] = m.means_[j] + eps[chosen] @ factor.T
        return z.astype(np.float32)

    def log_density(self, z: np.ndarray) -> np.ndarray:
        if self.density == "box":
            inside = ((z >= self.low_) & (z <= self.high_)).all(1)
            return np.where(inside, -np.log(self.high_ - self.low_).sum(), -np.inf)
        return self.mixture_.score_samples(z)


def sample(model, n: int, train=None, density: str | None = None, n_components: int = 10, seed: int = 0,
           labels=None) -> np.ndarray:
    """n generated examples (N, *input_shape). A VAE draws from its prior N(0, I) unless a
    `density` is named; a plain autoencoder from a density ("gmm" by default, "gaussian" or "box")
    fitted to the codes of `train` (required for it). `labels`: the class a conditional VAE
    generates (one int, or one per example)."""
    check_int("n", n, 0, low_open=True)
    model.config.check_examples(n, f"n={n} samples")
    check_int("seed", seed, 0, 2**32 - 1)
    if isinstance(model, VariationalAutoencoder) and density is None:
        return model.sample(n, seed=seed, labels=labels)
    if labels is not None:
        raise ConfigError("labels= picks the class of a conditional VAE's prior samples; pass density=None")
    if train is None:
        raise ConfigError(f"a plain {model.config.kind!r} autoencoder has no prior: pass train= (its training data) "
                         "so a density can be fitted to the codes, or use model.sample(n), which draws from the "
                         "Gaussian ae.fit fitted to its training codes")
    z = LatentDensity(density or "gmm", n_components, seed).fit(codes(model, train)).sample(n)
    return np.asarray(model.decode(z))


def _one(model, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.shape == tuple(model.config.input_shape):
        x = x[None]
    return codes(model, x)[0]


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 for Gaussian latents): keeps the norm typical of the prior."""
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1) + 1e-12)
    omega = np.arccos(np.clip(cos, -1, 1))
    if omega < 1e-6:
        return (1 - t)[:, None] * z0 + t[:, None] * z1
    return (np.sin((1 - t) * omega)[:, None] * z0 + np.sin(t * omega)[:, None] * z1) / np.sin(omega)


def interpolate(model, x_a, x_b, steps: int = 8, method: str = "auto") -> np.ndarray:
    """Decoded points between the codes of x_a and x_b, (steps, *input_shape).

    method: "linear", "spherical", or "auto" (spherical for a VAE's Gaussian latent, linear otherwise).
    """
    check_int("steps", steps, 0, low_open=True)
    model.config.check_examples(steps, f"steps={steps} interpolation points")
    if method == "auto":
        method = "spherical" if isinstance(model, VariationalAutoencoder) else "linear"
    check_choice("method", method, ("linear", "spherical"))
    z0, z1 = _one(model, x_a), _one(model, x_b)
    t = np.linspace(0, 1, steps)
    z = slerp(z0, z1, t) if method == "spherical" else (1 - t)[:, None] * z0 + t[:, None] * z1
    return np.asarray(model.decode(z.astype(np.float32)))


def extrapolate(model, x_a, x_b, steps: int = 8, beyond: float = 1.0) -> np.ndarray:
    """Decoded points past x_b along the direction from x_a to x_b: z_a + t (z_b - z_a), t in [1, 1 + beyond]."""
    check_int("steps", steps, 0, low_open=True)
    model.config.check_examples(steps, f"steps={steps} extrapolation points")
    z0, z1 = _one(model, x_a), _one(model, x_b)
    t = np.linspace(1, 1 + beyond, steps)
    return np.asarray(model.decode((z0 + t[:, None] * (z1 - z0)).astype(np.float32)))


def latent_grid(model, n: int = 15, bounds=None, train=None) -> tuple[np.ndarray, np.ndarray]:
    """Decoded images of an n x n grid over a 2-D latent space: (n*n, *input_shape) and the (n*n, 2) codes.

    A VAE's grid follows the prior's quantiles (5% to 95%); a plain autoencoder's spans
    `bounds` ((low, high) per axis) or the 1st to 99th percentile of the codes of `train`.
    """
    from scipy.stats import norm

    check_int("n", n, 0, low_open=True)
    model.config.check_examples(n * n, f"a latent grid of n={n} (n x n images)")
    if model.config.latent_dim != 2:
        raise ConfigError(f"latent_grid needs latent_dim=2, the model has {model.config.latent_dim}")
    if bounds is None and isinstance(model, VariationalAutoencoder):
        axes = [norm.ppf(np.linspace(0.05, 0.95, n))] * 2
    else:
        if bounds is None:
            if train is None:
                raise ConfigError("pass bounds= or train= to place the grid of a plain autoencoder")
            z = codes(model, train)
            bounds = list(zip(np.percentile(z, 1, axis=0), np.percentile(z, 99, axis=0)))
        axes = [np.linspace(lo, hi, n) for lo, hi in bounds]
    gx, gy = np.meshgrid(axes[0], axes[1][::-1])  # top row = highest second coordinate
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    return np.asarray(model.decode(grid)), grid
