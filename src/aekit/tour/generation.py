"""Generation: plain autoencoder versus VAE (lecture 003, "are the previous autoencoders
generative models? No"; lecture 004, the VAE represents the latent space as a distribution): samples judged by a
classifier. Needs the VAE the vae section trained (tour.vae)."""

from __future__ import annotations

import numpy as np

from aekit.evaluation.generation import sample
from aekit.evaluation.quality import generation_quality
from aekit.report.figures import image_grid
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    plain = tour.train("ae", latent_dim=16, hidden=(256, 64))
    n = 500 if tour.budget.n_train < 3000 else 2000
    generated = {
        "plain AE, Gaussian fitted to codes": sample(plain, n, train=tour.x_train, density="gaussian", seed=tour.seed),
        "plain AE, N(0, I) like a VAE": np.asarray(plain.decode(np.random.default_rng(tour.seed).normal(
            size=(n, 16)).astype(np.float32))),
        "VAE, prior": sample(tour.vae, n, seed=tour.seed),
    }
    rows, figs = [], []
    for name, xs in generated.items():
        q = generation_quality(tour.judge, xs, tour.x_test)
        rows.append([name, q["valid_fraction"], q["frechet_distance"], q["class_coverage"]])
        figs.append((name, image_grid(xs[:32], tour.shape, ncols=16, title=name)))
    real = generation_quality(tour.judge, tour.x_test[: len(tour.x_test) // 2], tour.x_test[len(tour.x_test) // 2:])
    rows.append(["real test digits", real["valid_fraction"], real["frechet_distance"], real["class_coverage"]])
    return Section(
        "Generation: plain autoencoder versus VAE",
        "A plain autoencoder has no prior: decoding draws from N(0, I) lands outside the region its codes occupy, "
        "and even a Gaussian fitted to its codes covers holes between them. The VAE's prior is the region its "
        "decoder was trained on. A classifier trained on the labelled training digits judges the samples: the "
        "fraction classified with confidence >= 0.9, the Frechet distance of its features to real test digits "
        "(lower is better) and the share of the ten classes produced.",
        figs, [table(rows, ["samples", "valid fraction", "Frechet distance", "class coverage"])],
    )
