"""Judging generated samples with no internet: a small classifier trained (and cached) on the
labelled training data of the same dataset, its confidence ("valid" samples), class coverage,
and the Frechet distance between its penultimate-layer features for generated and real data
(the FID recipe of Heusel et al. 2017 with a domain classifier instead of Inception).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aekit.data.sources import data_root
from aekit.data.validation import as_array
from aekit.errors import CheckpointError
from aekit.inference import apply
from aekit.runs.storage import read_tensors, write_tensors


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between Gaussians fitted to two feature sets.

    Tr((S1 S2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric S1^(1/2) S2 S1^(1/2), which has the same spectrum: stable for singular covariances
    (dead ReLU features) where a general matrix square root is not.
    """
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root)


class Judge(nn.Module):
    """MLP classifier: input -> 512 -> 256 (the features) -> classes."""

    def __init__(self, input_shape, n_classes: int, width: int = 512, features: int = 256):
        super().__init__()
        self.input_shape, self.n_classes = tuple(input_shape), n_classes
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), width), nn.ReLU(),
                                  nn.Linear(width, features), nn.ReLU())
        self.head = nn.Linear(features, n_classes)

    def forward(self, x):
        return self.head(self.body(x))

    def features(self, x, batch_size: int = 2048) -> np.ndarray:
        """The penultimate layer's activations (the Frechet distance's features), (N, features)."""
        return apply(self, x, lambda m, b: m.body(b), batch_size=batch_size, shape=self.input_shape, numpy=True)

    def predict_proba(self, x, batch_size: int = 2048) -> np.ndarray:
        return apply(self, x, lambda m, b: torch.softmax(m(b), 1), batch_size=batch_size, shape=self.input_shape,
                     numpy=True)

    def accuracy(self, x, y) -> float:
        return float((self.predict_proba(x).argmax(1) == np.asarray(y)).mean())


def train_judge(x, y, epochs: int = 20, seed: int = 0, batch_size: int = 128, lr: float = 1e-3) -> Judge:
    x = torch.as_tensor(np.asarray(as_array(x, "x"), dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = Judge(x.shape[1:], int(y.max()) + 1)
        opt = torch.optim.Adam(judge.parameters(), lr=lr, weight_decay=1e-4)
        for _ in range(epochs):
            judge.train()
            for idx in torch.randperm(len(x)).split(batch_size):
                loss = nn.functional.cross_entropy(judge(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return judge.eval()


def judge_for(data, labels=None, cache_dir=None, epochs: int = 20, seed: int = 0) -> Judge:
    """A judge trained on labelled data, cached by a hash of the data (safetensors + JSON)."""
    x = np.ascontiguousarray(np.asarray(as_array(data, "data"), dtype=np.float32))
    y = np.asarray(labels if labels is not None else data.y, dtype=np.int64)
    key = hashlib.sha1(x.tobytes() + y.tobytes() + f"{epochs}-{seed}".encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else data_root() / "judges"
    path = folder / key
    if (path / "weights.safetensors").is_file():
        judge = Judge(x.shape[1:], int(y.max()) + 1)
        try:
            judge.load_state_dict(read_tensors(path / "weights.safetensors"))
            return judge.eval()
        except (RuntimeError, CheckpointError):
            pass  # a stale or damaged cache entry: train again and replace it
    judge = train_judge(x, y, epochs=epochs, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    write_tensors(path / "weights.safetensors", judge.state_dict())
    return judge


def generation_quality(judge: Judge, generated, real, threshold: float = 0.9) -> dict:
    """Fraction of generated samples the judge classifies with confidence >= threshold ("valid"),
    the classes those cover, and the Frechet distance of judge features, generated versus real."""
    generated = np.asarray(generated, dtype=np.float32)
    real = np.asarray(as_array(real, "real"), dtype=np.float32)
    proba = judge.predict_proba(generated)
    confident = proba.max(1) >= threshold
    classes = proba.argmax(1)[confident]
    hist = np.bincount(classes, minlength=judge.n_classes)
    return {
        "valid_fraction": float(confident.mean()),
        "confidence_threshold": threshold,
        "class_coverage": float((hist > 0).mean()),
        "valid_class_counts": hist.tolist(),
        "frechet_distance": frechet_distance(judge.features(generated), judge.features(real)),
        "generated": int(len(generated)),
    }
