"""The report of a detection (`aekit detect RUN --data FILE --report out.html`): the score
histogram with the threshold, and the top anomalies with the features (or, for images, the pixels)
that make them anomalous."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from aekit.anomaly.detect import in_original_units
from aekit.data.images import as_images, image_shape
from aekit.report.figures import to_png
from aekit.report.html import Page, Section, table

TOP = 10  # anomalies shown


def _histogram(scores: np.ndarray, threshold: float, rule: str) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    positive = scores[scores > 0]
    log = len(positive) == len(scores) and positive.max() >= 100 * positive.min()
    bins = np.geomspace(positive.min(), positive.max(), 60) if log else 60
    ax.hist(scores, bins=bins, color="#4a7ab5")
    if log:
        ax.set_xscale("log")
    ax.axvline(threshold, color="#c0392b", lw=1.5, label=f"threshold {threshold:.4g} ({rule})")
    ax.set_xlabel("anomaly score (higher = more anomalous)"), ax.set_ylabel("rows")
    ax.legend(fontsize=8, loc="upper right")
    return to_png(fig)


def _heatmaps(x: np.ndarray, contributions: np.ndarray, input_shape, labels: list[str]) -> bytes:
    """Each top anomaly (row 1) over its per-pixel contribution map (row 2)."""
    images = as_images(x, input_shape)
    maps = np.abs(contributions).reshape(len(x), -1)
    if maps.shape[1] != np.prod(images.shape[1:3]):  # colour: the channels' shares added per pixel
        maps = maps.reshape(len(x), -1, *images.shape[1:3]).sum(1)
    maps = maps.reshape(len(x), *images.shape[1:3])
    fig, axes = plt.subplots(2, len(x), figsize=(1.1 * len(x) + 0.5, 2.5), squeeze=False)
    for j in range(len(x)):
        axes[0][j].imshow(images[j], cmap=None if images.ndim == 4 else "gray", vmin=0, vmax=1)
        axes[1][j].imshow(maps[j], cmap="magma")
        axes[0][j].set_title(labels[j], fontsize=7)
        for ax in (axes[0][j], axes[1][j]):
            ax.set_xticks([]), ax.set_yticks([])
    axes[0][0].set_ylabel("input", fontsize=8), axes[1][0].set_ylabel("contribution", fontsize=8)
    return to_png(fig)


def _top_table(ds, result, top_rows: np.ndarray) -> str:
    """The top anomalies: their identifiers, score, top features with the row's values there."""
    frame = result.frame
    values = in_original_units(ds, np.asarray(ds.x[top_rows]))
    carried = list(ds.ids.columns) if ds.ids is not None else ["index"]  # what anomaly.detect.with_ids puts first
    id_columns = [*carried, *(["label"] if "label" in frame else [])][:3]
    rows = []
    for pos, i in enumerate(top_rows):
        shares = result.contributions[i]
        order = np.argsort(-shares)[:3]
        causes = "; ".join(f"{result.columns[j]} = {_value(values.iloc[pos], result.columns[j])} "
                           f"({shares[j] / max(result.scores[i], 1e-300):.0%})" for j in order)
        rows.append([*(frame[c].iloc[i] for c in id_columns), float(result.scores[i]), causes])
    score = result.names.get("score", "score")  # "aekit_score" where the data carries its own "score"
    return table(rows, [*id_columns, score, "largest contributions (value, share of the score)"])


def _value(row, column):
    value = row.get(column, "")
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else value


def write_detection_report(path: Path, run, ds, result) -> Path:
    """An HTML page for a detect result computed with contributions (aekit.anomaly.detect.detect(..., contributions=True))."""
    scores = result.scores
    flagged = int((scores > result.threshold).sum())
    top_rows = np.argsort(-scores, kind="stable")[: min(TOP, len(scores))]
    sections = [Section(
        "Scores and threshold",
        f"{flagged} of {len(scores)} rows score above the threshold {result.threshold:.4g} ({result.rule}).",
        figures=[("histogram of the anomaly scores with the threshold", _histogram(scores, result.threshold,
                                                                                   result.rule))],
    )]
    if image_shape(run.config.input_shape) is not None and len(run.config.input_shape) > 1:
        x = np.asarray(ds.x[top_rows])
        labels = [f"{scores[i]:.3g}" for i in top_rows]
        sections.append(Section(
            f"The {len(top_rows)} most anomalous images",
            "Each image over its per-pixel contribution to the score: bright pixels are the ones the model "
            "explains worst.",
            figures=[("top anomalies and their contribution maps", _heatmaps(x, result.contributions[top_rows],
                                                                             run.config.input_shape, labels))],
        ))
    else:
        sections.append(Section(
            f"The {len(top_rows)} most anomalous rows",
            "For each, the three features that contribute most to its score, the row's value there, and "
            "their share of the score.",
            tables=[_top_table(ds, result, top_rows)],
        ))
    page = Page(f"Anomaly detection: {ds.name}", f"Run {run.folder} ({run.config.kind}, score "
                f"{run.detector.score}) on {len(scores)} rows of {ds.name}.", sections)
    return page.write(path)
