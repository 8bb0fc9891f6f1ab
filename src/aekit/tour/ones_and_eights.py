"""Ones and eights (lecture 001, "generating new data via AEs": a 2-D code of the 1s and 8s,
new codes sampled from the region one would guess is the latent space, decoded and judged; then a VAE's prior)."""

from __future__ import annotations

import numpy as np

from aekit.evaluation import metrics
from aekit.evaluation.generation import sample
from aekit.evaluation.quality import frechet_distance
from aekit.report.figures import image_rows, side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    pick_train, pick_test = np.isin(tour.y_train, (1, 8)), np.isin(tour.y_test, (1, 8))
    x, xt, yt = tour.x_train[pick_train], tour.x_test[pick_test], tour.y_test[pick_test]
    epochs = 4 * tour.budget.digits_epochs  # a fifth of the digits: about as many steps as the other models
    plain = tour.train("ae", x, epochs=epochs, latent_dim=2, hidden=(256, 64))
    vae = tour.train("vae", x, epochs=epochs, latent_dim=2, hidden=(256, 64))
    n = 500 if tour.quick else 1000
    standard = np.random.default_rng(tour.seed).standard_normal((n, 2)).astype(np.float32)
    generated = {"autoencoder, uniform in the codes' bounding box": sample(plain, n, train=x, density="box", seed=tour.seed),
                 "autoencoder, Gaussian fitted to the codes": sample(plain, n, train=x, density="gaussian", seed=tour.seed),
                 "autoencoder, N(0, I) as if it were a VAE": np.asarray(plain.decode(standard)),
                 "VAE (2-D code), prior N(0, I)": sample(vae, n, seed=tour.seed),
                 "real test 1s and 8s": xt}
    real = tour.judge.features(xt)
    rows = []
    for name, xs in generated.items():
        proba = tour.judge.predict_proba(xs)
        valid = (proba.max(1) >= 0.9) & np.isin(proba.argmax(1), (1, 8))
        rows.append([name, 1 - float(valid.mean()), float((valid & (proba.argmax(1) == 1)).mean()),
                     float((valid & (proba.argmax(1) == 8)).mean()),
                     frechet_distance(tour.judge.features(xs), real) if xs is not xt else 0.0])
    z, zx = metrics.codes(plain, xt), metrics.codes(plain, x)
    low, high = zx.min(0), zx.max(0)

    def draw_codes(ax):
        for digit, colour in ((1, "C0"), (8, "C3")):
            ax.scatter(z[yt == digit, 0], z[yt == digit, 1], s=5, c=colour, label=f"{digit}s")
        ax.plot([low[0], high[0], high[0], low[0], low[0]], [low[1], low[1], high[1], high[1], low[1]], ls="--",
                c="0.4", label="bounding box of the training codes")
        ax.legend(fontsize=7)

    short = ("AE, box", "AE, Gaussian", "AE, N(0, I)", "VAE, prior", "real")
    samples = image_rows([(label, xs[:12]) for label, xs in zip(short, generated.values())], tour.shape, size=0.7)
    return Section(
        "Ones and eights: sampling the latent space",
        "An autoencoder with a 2-D code trained only on the 1s and 8s: the codes of each digit gather in their own "
        "region (the scatter, test digits). New codes are drawn from the region one would guess is the latent "
        "space (the bounding box of the training codes, a Gaussian fitted to them, or N(0, I) as for a VAE) and "
        "decoded; then a VAE with a 2-D code, trained on the same digits, samples its prior. Invalid: the judge "
        "(an MLP classifier trained on the tour's training digits, all ten classes) does not call the sample a 1 "
        "or an 8 with confidence >= 0.9; the real test digits' own row shows the judge's strictness. The Frechet "
        "distance of the judge's features to the real 1s and 8s (lower is closer) tells how far each guess lands "
        "from the data: the box's empty corners and N(0, I), which ignores where the codes are, decode to distorted "
        "shapes; the fitted Gaussian, and the VAE's prior with nothing fitted after training, stay close.",
        [("codes of the test 1s and 8s", side_by_side([("autoencoder codes", draw_codes)], width=5.0, height=4.2)),
         ("decoded samples", samples)],
        [table(rows, ["samples", "invalid fraction", "judged 1", "judged 8", "Frechet distance to real 1s and 8s"])],
    )
