"""The lectures' toy sets. Each returns the generating parameter as `y`, so plots can colour by it."""

from __future__ import annotations

import numpy as np

from aekit.data.base import Dataset, check_allocation, make_dataset
from aekit.errors import ConfigError, DataError, check_int


def _generator(n: int, seed: int, features: int) -> np.random.Generator:
    """The random generator of a toy set of n points, once n is checked against the memory limit: the
    float64 draws and their temporaries take about 64 bytes per point and feature (aekit.budget)."""
    check_int("n", n, 1)
    check_allocation(64 * n * features, f"a toy set of {n:,} points", error=ConfigError)
    return np.random.default_rng(seed)


def line(n: int = 1000, seed: int = 0, noise: float = 0.05, scale: str = "none") -> Dataset:
    """x = [2a, a] + noise, a ~ U(-1, 1): a 1-D linear manifold that PCA captures with one component."""
    rng = _generator(n, seed, 2)
    a = rng.uniform(-1, 1, n)
    x = np.stack([2 * a, a], 1) + noise * rng.standard_normal((n, 2))
    return make_dataset(x.astype(np.float32), "line", a.astype(np.float32), scale, info={"parameter": "a"})


def circle(n: int = 1000, seed: int = 0, noise: float = 0.0, scale: str = "none") -> Dataset:
    """x = [sin t, cos t], t ~ U(0, 2 pi): one number describes it, but no linear projection does."""
    rng = _generator(n, seed, 2)
    t = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([np.sin(t), np.cos(t)], 1) + noise * rng.standard_normal((n, 2))
    return make_dataset(x.astype(np.float32), "circle", t.astype(np.float32), scale, info={"parameter": "t (angle)"})


def ring_map(z: np.ndarray) -> np.ndarray:
    """g(z) = z / 10 + z / ||z|| (lecture 003, "Assumption P(z) = N(z|0, I)"): a deterministic function that
    turns draws of N(0, I) in 2-D into a ring of radius about 1."""
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    return z / 10 + z / np.maximum(norm, 1e-12)


def ring(n: int = 1000, seed: int = 0, noise: float = 0.0, scale: str = "none") -> Dataset:
    """x = g(z), z ~ N(0, I) in 2-D, g(z) = z / 10 + z / ||z||: a Gaussian mapped onto a ring; y = ||z||."""
    rng = _generator(n, seed, 2)
    z = rng.standard_normal((n, 2))
    x = ring_map(z) + noise * rng.standard_normal((n, 2))
    return make_dataset(x.astype(np.float32), "ring", np.linalg.norm(z, axis=1).astype(np.float32), scale,
                        info={"parameter": "||z||"})


def spiral(n: int = 1000, seed: int = 0, noise: float = 0.0, turns: float = 2.0, holdout: float = 0.2,
           split: str = "train", scale: str = "none") -> Dataset:
    """x = t [cos t, sin t] / t_max, t in [0, 2 pi turns]; the last `holdout` fraction of t is held out.

    split="train" gives t below the held-out range, "holdout" the range beyond
    it (for extrapolation), "all" both. info["holdout_range"] gives the range.
    """
    if split not in ("train", "holdout", "all"):
        raise DataError(f"split={split!r} is not one of 'train', 'holdout', 'all' for 'spiral'")
    rng = _generator(n, seed, 2)
    t_max = 2 * np.pi * turns
    cut = (1 - holdout) * t_max
    low, high = {"train": (0, cut), "holdout": (cut, t_max), "all": (0, t_max)}[split]
    t = np.sort(rng.uniform(low, high, n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], 1) / t_max + noise * rng.standard_normal((n, 2))
    return make_dataset(x.astype(np.float32), "spiral", t.astype(np.float32), scale,
                        info={"parameter": "t", "split": split, "holdout_range": [float(cut), float(t_max)]})


def swiss_roll(n: int = 1000, seed: int = 0, noise: float = 0.0, scale: str = "none") -> Dataset:
    """scikit-learn's swiss roll: a 2-D manifold rolled up in 3-D; y is the position along the roll."""
    from sklearn.datasets import make_swiss_roll

    _generator(n, seed, 3)  # the checks on n
    x, t = make_swiss_roll(n, noise=noise, random_state=seed)
    return make_dataset(x.astype(np.float32), "swiss-roll", t.astype(np.float32), scale, info={"parameter": "t"})
