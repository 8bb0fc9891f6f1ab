"""Compression (lecture 001, "training AEs for compression"; lecture 004, "can be used to
achieve good compression"): quantised codes of several sizes, the error against the bytes per digit, next to PCA."""

from __future__ import annotations

from aekit.evaluation import metrics
from aekit.report.figures import side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    sizes = (4, 16) if tour.budget.n_train < 3000 else (4, 8, 16, 32)
    ae_points, pca_points = [], []
    for k in sizes:
        model = tour.train("ae", latent_dim=k, hidden=(256, 64))
        c = metrics.compression(model, tour.x_test, raw_bytes_per_feature=1, seed=tour.seed)
        for precision in ("uint8", "float16"):
            ae_points.append((c[precision]["bytes_per_example"], c[precision]["mse_per_feature"], f"{k}-d {precision}"))
            pca_points.append((c[precision]["bytes_per_example"], c[precision]["pca_mse_per_feature"], f"{k}-d {precision}"))
    rows = [[label, b, e, p] for (b, e, label), (_, p, _) in zip(ae_points, pca_points)]

    def draw(ax):
        for pts, name in ((ae_points, "autoencoder"), (pca_points, "PCA")):
            pts = sorted(pts)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
        ax.set_xscale("log"), ax.set_xlabel("bytes per digit (raw: 784)"), ax.set_ylabel("MSE per pixel")
        ax.legend()

    return Section(
        "Compression",
        "Each digit is stored as its code, quantised to 8 bits or 16-bit floats per dimension; the reconstruction "
        "error at each size, for autoencoders with codes of several sizes and PCA with as many components at the "
        "same precision. At a few bytes per digit the nonlinear code wins; with more bytes PCA catches up.",
        [("error versus size", side_by_side([("error versus bytes", draw)], width=5.5))],
        [table(rows, ["code", "bytes per digit", "autoencoder MSE", "PCA MSE"])],
    )
