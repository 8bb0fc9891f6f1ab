"""Denoising (lecture 001, "using AE for noise removal"; lecture 003, the denoising autoencoder):
trained on digits with Gaussian noise, measured by the PSNR gain on fresh noise."""

from __future__ import annotations

import torch

from aekit.evaluation import metrics
from aekit.models.corruption import corrupt
from aekit.report.figures import image_rows
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    dae = tour.train("denoising", latent_dim=32, noise="gaussian", noise_level=0.4)
    plain = tour.train("ae", latent_dim=32)
    r_d, r_p = metrics.denoising(dae, tour.x_test), metrics.denoising(plain, tour.x_test, noise="gaussian",
                                                                     noise_level=0.4)
    with torch.random.fork_rng(devices=[]):  # the same corruption the model was trained and measured with
        torch.manual_seed(tour.seed)
        noisy = corrupt(torch.from_numpy(tour.x_test[:10]), "gaussian", 0.4).numpy()
    fig = image_rows([("noisy", noisy), ("denoising AE", dae.reconstruct(noisy)), ("plain AE", plain.reconstruct(noisy)),
                      ("clean", tour.x_test[:10])], tour.shape)
    rows = [[name, r["noisy_psnr_db"], r["denoised_psnr_db"], r["psnr_gain_db"]] for name, r in
            (("denoising AE", r_d), ("plain AE", r_p))]
    return Section(
        "Denoising",
        "Trained to map corrupted digits (Gaussian noise, std 0.4) back to the clean ones, the denoising "
        "autoencoder removes most of the noise; the PSNR gain is measured on test digits with fresh noise.",
        [("noisy / denoised / clean", fig)],
        [table(rows, ["model", "noisy PSNR (dB)", "reconstructed PSNR (dB)", "gain (dB)"])],
    )
