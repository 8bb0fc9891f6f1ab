"""Two numbers per digit (lecture 001's MNIST practice and lecture 003's "PCA vs. autoencoder" figure,
Hinton and Salakhutdinov 2006): a deep autoencoder's 2-D codes against PCA's first two components."""

from __future__ import annotations

from aekit.evaluation import metrics
from aekit.report.figures import side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    model = tour.train("ae", latent_dim=2, hidden=(256, 64))
    z = metrics.codes(model, tour.x_test)
    pca = tour.pca(2)
    zp = pca.transform(tour.flat_test)
    acc = lambda tr, te: metrics.probe_accuracy(tr, tour.y_train, te, tour.y_test)["knn_accuracy"]  # noqa: E731
    rows = [["deep autoencoder, 2-D code", acc(metrics.codes(model, tour.x_train), z), tour.mse(model)],
            ["PCA, first two components", acc(pca.transform(tour.flat_train), zp), tour.pca_mse(pca)]]
    fig = side_by_side([
        ("deep autoencoder codes", lambda ax: ax.scatter(z[:, 0], z[:, 1], c=tour.y_test, cmap="tab10", s=4)),
        ("PCA components 1 and 2", lambda ax: ax.scatter(zp[:, 0], zp[:, 1], c=tour.y_test, cmap="tab10", s=4)),
    ])
    return Section(
        "Two numbers per digit: deep autoencoder versus PCA",
        "A deep autoencoder squeezed to a 2-D code separates the digit classes far better than PCA's first two "
        "components (colours are the digit labels; the table gives 5-nearest-neighbour accuracy in 2-D and the "
        "reconstruction error).",
        [("2-D codes coloured by digit", fig)],
        [table(rows, ["model", "5-NN accuracy in 2-D", "test MSE per pixel"])],
    )
