"""The spiral (lecture 002: a vanilla autoencoder with a one-number code fails to interpolate
smoothly between training points and to follow the curve beyond the last one); an autoencoder and a VAE."""

from __future__ import annotations

import numpy as np

from aekit import data as datasets
from aekit.evaluation.generation import extrapolate, interpolate
from aekit.report.figures import side_by_side
from aekit.report.html import Section, table
from aekit.tour.common import Tour


def run(tour: Tour) -> Section:
    """The section, trained and measured on the tour's data."""
    b = tour.budget
    train = datasets.load("spiral", n=b.toy_n, seed=tour.seed, noise=0.005)
    hold = datasets.load("spiral", n=b.toy_n // 4, seed=tour.seed + 1, split="holdout")
    x, xh = train.x.numpy(), hold.x.numpy()
    curve = datasets.load("spiral", n=4000, split="all").x.numpy()
    panels, rows = [], []
    for kind, opts in (("ae", {}), ("vae", {"reconstruction": "gaussian"})):
        model = tour.train(kind, x, epochs=b.toy_epochs, latent_dim=1, hidden=(64, 64), activation="tanh",
                           **({"reconstruction": "mse"} if kind == "ae" else opts))
        path = interpolate(model, x[len(x) // 4], x[3 * len(x) // 4], steps=200)
        beyond = extrapolate(model, x[len(x) // 2], x[-1], steps=100, beyond=1.0)
        off_curve = lambda p: float(np.sqrt(((p[:, None] - curve[None]) ** 2).sum(-1).min(1)).mean())  # noqa: E731
        rows.append([kind, off_curve(path), off_curve(beyond), float(((np.asarray(model.reconstruct(xh)) - xh) ** 2).sum(1).mean())])
        panels.append((f"{kind}: interpolation (blue), extrapolation (red)", lambda ax, path=path, beyond=beyond: (
            ax.plot(curve[:, 0], curve[:, 1], c="0.85", lw=1), ax.scatter(x[:, 0], x[:, 1], s=2, c="0.5"),
            ax.scatter(xh[:, 0], xh[:, 1], s=2, c="C2"), ax.plot(path[:, 0], path[:, 1], c="C0"),
            ax.plot(beyond[:, 0], beyond[:, 1], c="C3"), ax.set_aspect("equal"))))
    return Section(
        "The spiral: interpolation and extrapolation",
        "Both models see the inner part of a spiral (grey) and get a one-number code. We decode the straight path "
        "between two training codes (interpolation) and continue past the last training point (extrapolation) "
        "into the held-out range (green). The table gives the mean distance of the decoded points to the true "
        "curve and the error on the held-out points: neither model follows the curve beyond the data it saw.",
        [("spiral interpolation and extrapolation", side_by_side(panels))],
        [table(rows, ["model", "interpolation: distance to curve", "extrapolation: distance to curve",
                      "held-out squared error"])],
    )
