"""Compression (lecture 001, "training AEs for compression"; lecture 004, "can be used to
achieve good compression"): real files from the codec (aekit.codec: quantised codes, range-coded) for
autoencoders with codes of several sizes, the PCA codec with as many components, and PNG; the error
against the bytes per digit."""

from __future__ import annotations

from aekit.codec import codec_points, image_codec_points, pca_model
from aekit.report.figures import side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    sizes, bits = ((4, 16), (4, 8)) if tour.quick else ((4, 8, 16, 32), (3, 5, 8))
    curves = {"autoencoder": [], "PCA": []}
    for k in sizes:
        model = tour.train("ae", latent_dim=k, hidden=(256, 64))
        curves["autoencoder"] += codec_points(model, tour.x_test, bits)
        curves["PCA"] += codec_points(pca_model(tour.x_train, k, seed=tour.seed), tour.x_test, bits, name="pca")
    png = image_codec_points(tour.x_test, "png")[0]
    # PSNR: for pixels in [0, 1] (codec.distortion), as every tour dataset's images are
    rows = [[name, p["setting"], p["bytes_per_example"], p["mse_per_feature"], p.get("psnr_db", "")]
            for name, points in curves.items() for p in points]
    exact = png["mse_per_feature"] < 1e-12  # the 8-bit pixels back exactly: only float rounding of k / 255 is left
    rows.append(["PNG (lossless, 8-bit pixels)", "optimised", png["bytes_per_example"],
                 0.0 if exact else png["mse_per_feature"], "lossless" if exact else png.get("psnr_db", "")])

    def draw(ax):
        for name, points in curves.items():
            for k in sizes:
                pts = sorted((p["bytes_per_example"], p["mse_per_feature"]) for p in points if p["latent_dim"] == k)
                ax.plot(*zip(*pts), "o-", color="C0" if name == "autoencoder" else "C1",
                        label=name if k == sizes[0] else None, alpha=0.5 + 0.5 * k / max(sizes))
        ax.set_xscale("log"), ax.set_xlabel("bytes per digit (the file's size / N; raw: 784)")
        ax.set_ylabel("MSE per pixel"), ax.legend()

    return Section(
        "Compression",
        "Each test digit is stored as its code in a real file (aekit.codec: the code quantised to 2^bits levels "
        "on its widest dimension and range-coded, the header included in the bytes), for autoencoders with codes "
        "of several sizes and for the PCA codec with as many components, and decompressed to measure the error. "
        "At a few bytes per digit the nonlinear code wins; with more bytes PCA catches up. Lossless PNG of the "
        "8-bit pixels for scale.",
        [("error versus size", side_by_side([("error versus bytes", draw)], width=5.5))],
        [table(rows, ["codec", "setting", "bytes per digit", "MSE per pixel", "PSNR (dB)"])],
    )
