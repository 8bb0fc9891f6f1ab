"""The sparse autoencoder (lecture 003: the penalty sum_j KL(rho || rho_hat_j) on sigmoid codes, and
the sparse autoencoder's feature extractors): activity of the code and the learned features."""

from __future__ import annotations

import numpy as np

from aekit.evaluation import metrics
from aekit.report.figures import image_grid, side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    k = 64
    sparse = tour.train("sparse", latent_dim=k, hidden=(), sparsity="kl", sparsity_weight=3.0, sparsity_target=0.05)
    plain = tour.train("ae", latent_dim=k, hidden=(), code_activation="sigmoid")
    zs, zp = metrics.codes(sparse, tour.x_test), metrics.codes(plain, tour.x_test)
    a_s, a_p = metrics.activity(zs), metrics.activity(zp)
    hist = side_by_side([("code activations", lambda ax: (
        ax.hist(zp.ravel(), bins=40, alpha=0.6, label="plain (sigmoid code)", density=True),
        ax.hist(zs.ravel(), bins=40, alpha=0.6, label="sparse (KL, rho = 0.05)", density=True),
        ax.set_yscale("log"), ax.legend(fontsize=8)))])
    features = sparse.encoder[1].weight.detach().numpy()[:32]
    features = (features - features.min(1, keepdims=True)) / np.ptp(features, 1, keepdims=True).clip(1e-8)
    rows = [["sparse", a_s["active_fraction"], a_s["mean_activation"], tour.mse(sparse)],
            ["plain", a_p["active_fraction"], a_p["mean_activation"], tour.mse(plain)]]
    return Section(
        "Sparse autoencoder",
        "With the penalty sum_j KL(rho || rho_hat_j), most code units are near zero for any given digit (the "
        "histogram's mass sits at 0) and each unit's encoder weights become a localised stroke detector "
        "(the learned features, one image per code unit).",
        [("activation histogram", hist), ("learned features", image_grid(features, tour.shape, ncols=16))],
        [table(rows, ["model", "active fraction (> 0.1)", "mean activation", "test MSE per pixel"])],
    )
