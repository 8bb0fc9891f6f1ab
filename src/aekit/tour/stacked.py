"""The stacked autoencoder (lecture 003: greedy layer-wise pretraining, fine-tuning, then the
learned feature extractor for a downstream task): a linear probe on its codes."""

from __future__ import annotations

from aekit.evaluation import metrics
from aekit.models.kinds import build
from aekit.report.figures import loss_curves
from aekit.report.html import Section, table
from aekit.tour.common import Tour
from aekit.training import fit


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    e = tour.budget.digits_epochs
    stacked = build("stacked", input_shape=tour.shape, latent_dim=32, hidden=(256, 64), pretrain_epochs=max(1, e // 2),
                    seed=tour.seed)
    history = fit(stacked, tour.x_train, epochs=e, batch_size=64, lr=tour.budget.lr, seed=tour.seed, val_fraction=0,
                  verbose=0)
    probe = lambda tr, te: metrics.probe_accuracy(tr, tour.y_train, te, tour.y_test)["linear_probe_accuracy"]  # noqa: E731
    pca = tour.pca(32)
    rows = [["stacked autoencoder codes (32)", probe(metrics.codes(stacked, tour.x_train), metrics.codes(stacked, tour.x_test))],
            ["raw pixels (784)", probe(tour.flat_train, tour.flat_test)],
            ["PCA (32)", probe(pca.transform(tour.flat_train), pca.transform(tour.flat_test))]]
    stage_rows = [[s, len(history.stage(s)), history.stage(s)[0]["train_total"], history.stage(s)[-1]["train_total"]]
                  for s in history.stages]
    return Section(
        "Stacked autoencoder",
        "Each layer is first trained greedily as a shallow autoencoder of the codes below it, then the whole "
        "stack is fine-tuned end to end; the codes then serve as features for a linear classifier "
        "(logistic regression), next to raw pixels and PCA of the same size.",
        [("losses of every stage", loss_curves(history))],
        [table(stage_rows, ["stage", "epochs", "first train loss", "last train loss"]),
         table(rows, ["features", "linear-probe accuracy"])],
    )
