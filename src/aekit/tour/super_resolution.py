"""Super-resolution (lecture 001: a denoising autoencoder "to increase the resolution of an
image"): denoising with noise='downsample', against bicubic upsampling."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from aekit.evaluation import metrics
from aekit.models.corruption import corrupt, shrink
from aekit.report.figures import image_rows
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def _resolution_findings(rows: list[list]) -> str:
    """What the table shows, from its rows [factor, blocks, bicubic, autoencoder, ceiling]."""
    two, four = rows
    text = ("At factor 2 the small image still holds most of the digit: "
            + ("the autoencoder still does better than bicubic interpolation. " if two[3] > two[2] else
               "bicubic interpolation does better, the small MLP autoencoder being capped by its own reconstruction "
               "error (last column: its PSNR given the original). "))
    return text + ("At factor 4 what is lost must be guessed, and the autoencoder, which has learnt what digits look "
                   "like, " + ("wins." if four[3] > four[2] else "still loses."))


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    clean = torch.from_numpy(tour.x_test)
    h, w = tour.shape[1:]
    rows, figure_rows = [], [("original", tour.x_test[:10])]
    for factor in (2, 4):
        model = tour.train("denoising", noise="downsample", noise_level=factor, latent_dim=128, hidden=(256,))
        low = shrink(clean, factor).numpy()  # (N, C, H / factor, W / factor)
        bicubic = np.stack([[np.asarray(Image.fromarray(channel).resize((w, h), Image.BICUBIC))
                             for channel in image] for image in low]).clip(0, 1)
        blocky = corrupt(clean, "downsample", factor).numpy()
        restored = np.asarray(model.reconstruct(blocky))
        psnr = lambda y: metrics.psnr_db(float(((y - tour.x_test) ** 2).mean()))  # noqa: E731
        rows.append([f"{factor} ({h // factor} x {w // factor} pixels)", psnr(blocky), psnr(bicubic), psnr(restored),
                     psnr(np.asarray(model.reconstruct(tour.x_test)))])
        figure_rows += [(f"1/{factor}: blocks", blocky[:10]), ("bicubic", bicubic[:10]), ("autoencoder", restored[:10])]
    return Section(
        "Super-resolution",
        "A denoising autoencoder whose corruption is a lower resolution (noise='downsample': each factor x factor "
        "block averaged, then repeated back to full size) learns to restore the detail. PSNR on the test digits "
        "against the original, next to bicubic upsampling of the small image (Pillow). " + _resolution_findings(rows),
        [("low resolution, bicubic, autoencoder, original", image_rows(figure_rows, tour.shape, size=0.7))],
        [table(rows, ["downsampling factor", "blocks PSNR (dB)", "bicubic PSNR (dB)", "autoencoder PSNR (dB)",
                      "autoencoder on the original (dB)"])],
    )
