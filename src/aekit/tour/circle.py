"""The circle (lecture 001, "nonlinear PCA": points (sin t, cos t) lie on no line): PCA with one
component against an autoencoder with a one-unit code."""

from __future__ import annotations

import numpy as np

from aekit import data as datasets
from aekit.evaluation import metrics
from aekit.report.figures import side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    ds = datasets.load("circle", n=tour.budget.toy_n, seed=tour.seed, noise=0.01)
    x, t = ds.x.numpy(), ds.y
    pca = tour.pca(1, x)
    pca_rec = pca.inverse_transform(pca.transform(x))
    model = tour.train("ae", x, epochs=tour.budget.toy_epochs, latent_dim=1, hidden=(64, 64), activation="tanh",
                       reconstruction="mse")
    rec, z = np.asarray(model.reconstruct(x)), metrics.codes(model, x)
    err = lambda r: float(((r - x) ** 2).sum(1).mean())  # noqa: E731
    fig = side_by_side([
        ("PCA, one component", lambda ax: (ax.scatter(x[:, 0], x[:, 1], s=3, c="0.7"),
                                           ax.scatter(pca_rec[:, 0], pca_rec[:, 1], s=3, c="C3"), ax.set_aspect("equal"))),
        ("autoencoder, one code unit", lambda ax: (ax.scatter(x[:, 0], x[:, 1], s=3, c="0.7"),
                                                   ax.scatter(rec[:, 0], rec[:, 1], s=3, c="C0"), ax.set_aspect("equal"))),
        ("the code against the angle", lambda ax: (ax.scatter(t, z[:, 0], s=3), ax.set_xlabel("angle t"),
                                                   ax.set_ylabel("code"))),
    ])
    return Section(
        "The circle",
        "Points on a circle are described by one number, the angle, but no linear projection to one number "
        "keeps them apart: PCA collapses the circle onto a line. A nonlinear autoencoder with a one-unit code "
        "follows the circle; its code is a monotone function of the angle except where it must cut the loop.",
        [("circle reconstructions and code", fig)],
        [table([["PCA, 1 component", err(pca_rec)], ["autoencoder, 1-unit code", err(rec)]],
               ["model", "squared error per point"])],
    )
