"""Anomaly detection (lecture 004: an autoencoder "can model a given population ... this can assist
in fake detection"): one-class MNIST, trained on one digit, AUC with that digit as normal, next to PCA."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from aekit.report.figures import side_by_side
from aekit.report.html import Section, table
from aekit.sklearn import AutoencoderOutlierDetector
from aekit.tour.common import Tour
from aekit.training.options import TABLE_MIN_STEPS


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    digits = (0, 1, 7) if tour.budget.n_train < 3000 else tuple(range(10))
    rows, last = [], None
    for d in digits:
        normal = tour.y_train == d
        truth = (tour.y_test != d).astype(int)  # 1 = anomaly
        # The documented image recipe (README, "What works for anomaly detection"): per-image L2
        # normalisation, a small denoising autoencoder on the pixels, the smoothed residual as the score.
        # Batches of 128, or smaller for the ~200 images of a digit in the quick tour, so that training makes
        # at least the table rule's minimum of optimizer steps (TABLE_MIN_STEPS).
        epochs = tour.budget.digits_epochs * 3
        batch = int(np.clip(normal.sum() * epochs // TABLE_MIN_STEPS, 8, 128))
        detector = make_pipeline(Normalizer(), AutoencoderOutlierDetector(
            kind="denoising", input_shape=tour.shape, scaling=None, anomaly_score="smoothed_squared_error",
            options={"noise_level": 0.05}, epochs=epochs, batch_size=batch, random_state=tour.seed))
        detector.fit(tour.flat_train[normal])
        scores = detector.decision_function(tour.flat_test)
        pca = tour.pca(16, tour.flat_train[normal])
        pca_err = ((pca.inverse_transform(pca.transform(tour.flat_test)) - tour.flat_test) ** 2).sum(1)
        rows.append([str(d), int(normal.sum()), roc_auc_score(truth, scores), roc_auc_score(truth, pca_err)])
        last = (d, scores, truth)
    rows.append(["mean", "", float(np.mean([r[2] for r in rows])), float(np.mean([r[3] for r in rows]))])
    d, scores, truth = last
    fig = side_by_side([(f"anomaly score, detector trained on {d}s", lambda ax: (
        ax.hist(scores[truth == 0], bins=40, alpha=0.6, density=True, label=f"digit {d} (normal)"),
        ax.hist(scores[truth == 1], bins=40, alpha=0.6, density=True, label="other digits"),
        ax.legend(fontsize=8)))], width=5)
    return Section(
        "Anomaly detection",
        "One-class protocol: a denoising autoencoder trained only on one digit reconstructs the other digits "
        "worse, so its (smoothed) reconstruction error flags them. AUC-ROC of the score on the test digits (that "
        "digit normal, all others anomalous), next to PCA with 16 components fitted to the same images.",
        [("score histograms", fig)],
        [table(rows, ["normal digit", "training images", "autoencoder AUC", "PCA-16 AUC"])],
    )
