"""Factor analysis: from PCA to the VAE (lecture 002, the VAE recitation: the statistical
reading of PCA, factor analysis as a generative model, nonlinear factor analysis). PCA, probabilistic PCA, factor
analysis and a VAE with a variance per pixel, compared as densities of the same dequantised digits."""

from __future__ import annotations

import numpy as np
import torch

from aekit.evaluation import metrics
from aekit.models.kinds import build
from aekit.report.figures import image_rows, side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour, bits_per_pixel, dequantise


def _density_findings(rows: list[list]) -> str:
    """What the table shows, from its rows [name, how, train, test, test median, ...]."""
    models = {row[0]: row for row in rows[1:]}
    best = {column: max(models, key=lambda name: models[name][column]) for column in (2, 3)}
    fa = models["factor analysis"]
    return (f"Best on the training digits: {best[2]}; on the test digits: {best[3]}. Factor analysis gives the pixels "
            "that training hardly ever inks almost no noise (the map), so a test digit with ink on one of them costs "
            f"it thousands of nats: its mean held-out log-likelihood is {fa[3]:.0f} against a median of {fa[4]:.0f}.")


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    k, b = 16, tour.budget
    train, test = dequantise(tour.x_train, tour.seed), dequantise(tour.x_test, tour.seed + 1)
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    pca = tour.pca(k, flat_train)
    pca_mse = tour.pca_mse(pca, flat_test)
    ppca = build("ppca", input_shape=tour.shape, latent_dim=k, seed=tour.seed)
    ppca.initialise_from_data(torch.from_numpy(train))  # the maximum-likelihood closed form: no gradient steps
    # EM epochs: one iteration each, its E-step summed over the batches (the batch size changes only the sums'
    # order; the tour's 64 also keeps ae.fit's "few optimizer steps" warning, meant for gradient steps, quiet).
    fa = tour.train("factor_analysis", train, epochs=b.digits_epochs, latent_dim=k)
    # Free bits keep the code in use: at this learning rate the per-pixel variances otherwise win the race
    # and the code collapses to the prior (every sample the mean digit).
    vae = tour.train("vae", train, lr=3 * b.lr, latent_dim=k, hidden=(512,), reconstruction="gaussian_per_feature",
                     free_bits=0.5)
    n = b.likelihood_examples  # every model on the same first n training and n test digits

    def log_likelihoods(model, x):
        if model is vae:
            return metrics.log_likelihood(vae, x[:n], samples=b.likelihood_samples, seed=tour.seed)
        return metrics.exact_log_likelihood(model, x[:n])

    rows = [["PCA, 16 components", "none (not a density)", "", "", "", "", pca_mse]]
    for name, model, how in (("PPCA (closed form)", ppca, "exact"), ("factor analysis", fa, "exact"),
                             ("VAE, a variance per pixel", vae, f"importance-sampled, K = {b.likelihood_samples}")):
        ll_train, ll_test = log_likelihoods(model, train), log_likelihoods(model, test)
        rows.append([name, how, float(ll_train.mean()), float(ll_test.mean()), float(np.median(ll_test)),
                     bits_per_pixel(float(ll_test.mean()), train[0].size), tour.mse(model, test)])
    psi = torch.exp(2 * fa.log_sigma.detach()).numpy().reshape(tour.shape[1:])
    sigma2 = float(torch.exp(2 * ppca.log_sigma.detach()))
    maps = side_by_side([("factor analysis: log10 psi per pixel", lambda ax: (
        ax.figure.colorbar(ax.imshow(np.log10(psi), cmap="viridis"), ax=ax), ax.axis("off"))),
        (f"PPCA: one sigma^2 = {sigma2:.3g} for all", lambda ax: (
            ax.figure.colorbar(ax.imshow(np.full_like(psi, np.log10(sigma2)), cmap="viridis",
                                         vmin=np.log10(psi).min(), vmax=np.log10(psi).max()), ax=ax), ax.axis("off")))],
        width=3.6, height=3.0)
    draws = image_rows([(name, m.sample(12, seed=tour.seed))
                        for name, m in (("PPCA", ppca), ("factor analysis", fa), ("VAE", vae))], tour.shape)
    return Section(
        "Factor analysis: from PCA to the VAE",
        "Probabilistic PCA reads PCA as a generative model, x = W z + mu + e with z ~ N(0, I) and the same noise "
        "variance on every pixel; factor analysis gives each pixel its own noise variance psi ('the error need not "
        "be orthogonal'); a VAE replaces W z by a neural network: nonlinear factor analysis, here with a variance "
        "per pixel as in FA (trained with free bits, 0.5 nats per code dimension). Compared: the density each "
        "model gives the same digits, dequantised ((k + u) / 256, "
        "u uniform) so that all are densities on the same continuous pixels, in nats per image (a Bernoulli "
        "decoder's likelihood of grey values would not be comparable). PPCA and FA give log p(x) exactly, in closed "
        "form; the VAE's is importance-sampled. Bits per pixel: the 8-bit convention (8 = a uniform density). "
        + _density_findings(rows),
        [("noise variance per pixel", maps), ("samples (decoded means)", draws)],
        [table(rows, ["model", "log-likelihood", f"{n} training digits (nats)", f"{n} test digits (nats)",
                      "test median (nats)", "test bits per pixel", "test MSE per pixel"])],
    )
