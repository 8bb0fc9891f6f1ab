"""Matplotlib figures rendered to PNG bytes (Agg backend: no display needed)."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from aekit.data.images import as_images, grid, image_shape

__all__ = ["image_grid", "image_rows", "image_shape", "log_scale", "loss_curves", "scatter", "side_by_side", "to_png"]


def to_png(fig, crop: bool = True) -> bytes:
    """The figure as PNG bytes, closed. crop=False for a figure laid out by tight_layout, which already
    fits it: cropping draws the whole figure once more (a third of a table report's time)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight" if crop else None)
    plt.close(fig)
    return buf.getvalue()


def image_rows(rows: list[tuple[str, np.ndarray]], input_shape, size: float = 0.9) -> bytes:
    """One row of images per (label, examples); examples share the input shape."""
    n = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(size * n + 1.2, size * len(rows)), squeeze=False)
    for i, (label, xs) in enumerate(rows):
        images = as_images(xs, input_shape)
        for j in range(n):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(images):
                ax.imshow(images[j], cmap="gray", vmin=0, vmax=1)
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    return to_png(fig)


def image_grid(xs: np.ndarray, input_shape, ncols: int, title: str | None = None, size: float = 0.6) -> bytes:
    """images.grid drawn as a figure (with an optional title), size inches per image."""
    canvas = grid(xs, input_shape, ncols)
    nrows = math.ceil(len(xs) / ncols)
    fig, ax = plt.subplots(figsize=(size * min(ncols, len(xs)), size * nrows + (0.4 if title else 0)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return to_png(fig)


def log_scale(values) -> bool:
    """Positive values spanning a decade or more: on a linear axis, all but the first epochs look flat."""
    values = [v for v in values if np.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) >= 10 * min(values)


def loss_curves(history: list[dict]) -> bytes:
    """One panel per loss term: train (solid) and validation (dashed) per epoch, stages concatenated."""
    terms = sorted({k[6:] for row in history for k in row if k.startswith("train_")} - {"mse_per_feature"},
                   key=lambda t: (t != "total", t))
    fig, axes = plt.subplots(1, len(terms), figsize=(3.4 * len(terms), 2.8), squeeze=False)
    stages = list(dict.fromkeys(r["stage"] for r in history))
    for ax, term in zip(axes[0], terms):
        seen = []
        for stage in stages:
            rows = [(i + 1, r) for i, r in enumerate(history) if r["stage"] == stage]
            xs = [i for i, _ in rows]
            for prefix, style in (("train_", "-"), ("val_", "--")):
                ys = [float(r[prefix + term]) if r.get(prefix + term) not in (None, "") else np.nan for _, r in rows]
                if not np.all(np.isnan(ys)):
                    label = f"{'train' if prefix == 'train_' else 'validation'}" + (f" ({stage})" if len(stages) > 1 else "")
                    ax.plot(xs, ys, style, label=label)
                    seen += [y for y in ys if np.isfinite(y)]
        if log_scale(seen):
            ax.set_yscale("log")
        ax.set_title(term, fontsize=10)
        ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig, crop=False)


def scatter(points: np.ndarray, colour=None, title: str = "", xlabel: str = "", ylabel: str = "",
            categorical: bool = True, size: float = 4, class_names: list[str] | None = None) -> bytes:
    """2-D points, coloured by class (a legend of the classes present, by name when given) or by a value."""
    fig, ax = plt.subplots(figsize=(5.2 if categorical and colour is not None else 4.6, 4))
    if colour is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.7)
    elif categorical:
        colour = np.asarray(colour)
        palette = plt.get_cmap("tab10" if len(np.unique(colour)) <= 10 else "tab20")
        for i, c in enumerate(np.unique(colour)):
            name = class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)
            mask = colour == c
            ax.scatter(points[mask, 0], points[mask, 1], s=size, alpha=0.8, color=palette(i % palette.N), label=name)
        ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    else:
        sc = ax.scatter(points[:, 0], points[:, 1], c=colour, cmap="viridis", s=size)
        fig.colorbar(sc, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    fig.tight_layout()
    return to_png(fig, crop=False)


def side_by_side(panels: list[tuple[str, callable]], width: float = 4.0, height: float = 3.6) -> bytes:
    """Several panels in one figure; each callable draws on the axis it gets."""
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height), squeeze=False)
    for ax, (title, draw) in zip(axes[0], panels):
        draw(ax)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig, crop=False)


def rate_distortion(curves: dict[str, list[dict]], title: str = "", lossless_db: float = 99.0) -> bytes:
    """Quality against bytes per example, one line per codec (its points sorted by size): the mean PSNR
    where the points have one (data in [0, 1]), else the MSE per feature. A lossless codec (PSNR above
    lossless_db) is a vertical line at its size."""
    points = [p for pts in curves.values() for p in pts]
    key = "mean_psnr_db" if all("mean_psnr_db" in p for p in points) else "mse_per_feature"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, pts) in enumerate(curves.items()):
        pts = sorted(pts, key=lambda p: p["bytes_per_example"])
        lossless = [p for p in pts if key == "mean_psnr_db" and p[key] > lossless_db]
        lossy = [p for p in pts if p not in lossless]
        for p in lossless:
            ax.axvline(p["bytes_per_example"], color=f"C{i}", ls=":", label=f"{name} (lossless)")
        if lossy:
            ax.plot([p["bytes_per_example"] for p in lossy], [p[key] for p in lossy], "o-", ms=3, color=f"C{i}",
                    label=name)
    ax.set_xscale("log")
    if key == "mse_per_feature":
        ax.set_yscale("log")
    ax.set_xlabel("bytes per example (file size / count)")
    ax.set_ylabel("PSNR (dB), mean over examples" if key == "mean_psnr_db" else "MSE per feature")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig, crop=False)
