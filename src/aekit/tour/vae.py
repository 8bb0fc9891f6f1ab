"""The variational autoencoder (lectures 002 and 003): samples from the prior, interpolations and the
decoded grid of a 2-D code. The 16-d VAE stays on the tour (tour.vae): the generation section samples it."""

from __future__ import annotations

import numpy as np

from aekit.evaluation.generation import interpolate, latent_grid
from aekit.report.figures import image_grid
from aekit.report.html import Section
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    tour.vae = tour.train("vae", latent_dim=16, hidden=(256, 64))
    vae2 = tour.train("vae", latent_dim=2, hidden=(256, 64))
    samples = tour.vae.sample(32, seed=tour.seed)
    pairs = [(0, 1), (2, 3), (4, 5)]
    paths = np.concatenate([interpolate(tour.vae, tour.x_test[i], tour.x_test[j], steps=10) for i, j in pairs])
    grid, _ = latent_grid(vae2, n=15)
    return Section(
        "Variational autoencoder",
        "A VAE is trained to make its codes look like draws from N(0, I), so decoding fresh draws from the prior "
        "gives new digits, the spherical path between two digits' codes morphs one into the other, and the "
        "decoded grid of a 2-D VAE (at the prior's quantiles) shows the whole learned manifold.",
        [("samples from the prior", image_grid(samples, tour.shape, ncols=16)),
         ("interpolations", image_grid(paths, tour.shape, ncols=10)),
         ("decoded 2-D latent grid", image_grid(grid, tour.shape, ncols=15, size=0.45))],
    )
