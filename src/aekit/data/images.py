"""Examples as pictures: which input shapes are images, and a grid of them saved as a PNG (Pillow).

    ae.save_image_grid(model.sample(64, seed=0), "samples.png", ncols=8)
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from aekit.budget import check_memory
from aekit.errors import DataError, check_int
from aekit.runs.storage import write_bytes


def image_shape(input_shape) -> tuple | None:
    """How to show one example as an image: (H, W) or (H, W, 3), or None for non-image data."""
    shape = tuple(input_shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return shape[1:] if shape[0] == 1 else (shape[1], shape[2], 3)
    if len(shape) == 2:
        return shape
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side == shape[0] and side >= 4:
            return (side, side)
    return None


def as_images(x, input_shape) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) float images in [0, 1] from examples of input_shape."""
    shape = image_shape(input_shape)
    if shape is None:
        raise DataError(f"examples of shape {tuple(input_shape)} are not images: (C, H, W) with 1 or 3 channels, "
                        "(H, W), or a square number of features")
    x = np.asarray(x, dtype=np.float32)
    if len(shape) == 3:
        return np.clip(x.reshape(len(x), 3, shape[0], shape[1]).transpose(0, 2, 3, 1), 0, 1)
    return np.clip(x.reshape(len(x), *shape), 0, 1)


def grid(x, input_shape=None, ncols: int = 8, pad: int = 1) -> np.ndarray:
    """The examples tiled row by row, ncols per row, `pad` pixels of white between: uint8 (H, W) or (H, W, 3)."""
    x = np.asarray(x)
    check_int("ncols", ncols, 1)
    if len(x) == 0:
        raise DataError("no images to put in a grid (0 examples)")
    images = as_images(x, input_shape if input_shape is not None else x.shape[1:])  # as large as x itself
    n, h, w = images.shape[:3]
    rows, cols = math.ceil(n / ncols), min(ncols, n)
    canvas_shape = (rows * (h + pad) + pad, cols * (w + pad) + pad, *images.shape[3:])
    # the float32 canvas and its uint8 copies (rounded, converted): 7 bytes a value, checked before either
    check_memory(f"a grid of {n} images of {h}x{w} ({canvas_shape[0]}x{canvas_shape[1]} pixels)",
                 7 * math.prod(canvas_shape), DataError)
    canvas = np.ones(canvas_shape, np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = image
    return (canvas * 255).round().astype(np.uint8)


def interleave(rows: list, ncols: int = 8) -> np.ndarray:
    """Several aligned sets of examples (e.g. input, corrupted, reconstruction) as one sequence for a grid
    of ncols columns: ncols of the first set, the same ncols of the second, ... then the next ncols."""
    rows = [np.asarray(r) for r in rows]
    n = min(len(r) for r in rows)
    chunks = [r[start:start + ncols] for start in range(0, n, ncols) for r in rows]
    return np.concatenate(chunks)


def grid_png(x, input_shape=None, ncols: int = 8, scale: int | None = None) -> bytes:
    """A grid() as PNG bytes, each pixel drawn `scale` x `scale` (nearest neighbour, no blur); scale None:
    enough to draw each image at least 56 pixels tall (2 for 28x28 digits, 7 for 8x8 ones)."""
    from PIL import Image

    if scale is None:
        height = as_images(np.asarray(x)[:1], input_shape if input_shape is not None else np.asarray(x).shape[1:]).shape[1]
        scale = max(1, math.ceil(56 / height))
    check_int("scale", scale, 1)
    picture = grid(x, input_shape, ncols)
    # the enlarged picture, twice (one repeat per axis) and the PNG encoder's copy
    check_memory(f"a grid drawn at scale={scale} ({picture.shape[0] * scale}x{picture.shape[1] * scale} pixels)",
                 3 * picture.size * scale * scale, DataError)
    picture = picture.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_image_grid(x, path, ncols: int = 8, input_shape=None, scale: int | None = None) -> Path:
    """Save examples (N, *input_shape) as one PNG grid, ncols per row (written atomically); returns the path.

    x: images as (N, C, H, W) with 1 or 3 channels, (N, H, W), or (N, D) with D a square
    (pass input_shape otherwise); values in [0, 1] (clipped).
    """
    path = Path(path)
    write_bytes(path, grid_png(x, input_shape, ncols, scale))
    return path
