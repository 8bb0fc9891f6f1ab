"""PCA versus the linear autoencoder (lecture 001, "PCA as a neural network"; lecture 004, "if we
stop at the hidden layer of an AE, we potentially have a PCA"): a linear encoder and decoder trained with squared
error from a random start learn PCA's principal subspace."""

from __future__ import annotations

import numpy as np

from aekit.report.figures import image_rows
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    k = 16
    pca = tour.pca(k)
    # Adam needs many cheap epochs to align the low-variance directions: the model is tiny.
    lin = tour.train("pca", latent_dim=k, init="random", epochs=tour.budget.digits_epochs * 4, lr=1e-2)
    w = lin.decoder[0].weight.detach().numpy()
    q, _ = np.linalg.qr(w)
    cosines = np.linalg.svd(pca.components_ @ q, compute_uv=False)
    rows = [["scikit-learn PCA", k, tour.pca_mse(pca)], ["linear autoencoder (random start)", k, tour.mse(lin)]]
    pca_rec = pca.inverse_transform(pca.transform(tour.flat_test[:10]))
    fig = image_rows([("input", tour.x_test[:10]), ("PCA", pca_rec), ("linear AE", lin.reconstruct(tour.x_test[:10]))],
                     tour.shape)
    return Section(
        "PCA versus the linear autoencoder",
        "A linear encoder and decoder trained with squared error from a random start learn the principal "
        f"subspace: the test error matches PCA's with {k} components, and the cosines of the principal angles "
        f"between the two subspaces are close to 1 (smallest {cosines.min():.3f}, mean {cosines.mean():.3f}).",
        [("PCA and linear AE reconstructions", fig)],
        [table(rows, ["model", "components", "test MSE per pixel"])],
    )
