"""Measuring codecs on the same data: the PCA baseline (a `pca` model compressed like any other),
distortion, rate-distortion points of a model, and the image formats (PNG, JPEG, WebP) through Pillow."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

from aekit.codec.format import compress, decompress, read_header
from aekit.data.validation import as_array, take
from aekit.errors import DataError, check_int
from aekit.evaluation.metrics import psnr_db
from aekit.models.kinds import build

# ----- the PCA baseline -----


def pca_model(data, latent_dim: int, seed: int = 0):
    """The PCA codec's model: a `pca` linear autoencoder whose encoder holds the top `latent_dim` principal
    components of data and whose decoder holds their transpose and the mean (closed form, no training).

    Compressing with it is transform coding with the Karhunen-Loeve transform, the classical baseline.
    """
    x = _rows(data)
    check_int("latent_dim", latent_dim, 1, min(len(x), math.prod(x.shape[1:])))
    model = build("pca", tuple(x.shape[1:]), latent_dim=latent_dim, seed=seed)
    model.initialise_from_data(torch.from_numpy(x))
    return model.eval()


# ----- rate and distortion -----


def distortion(x: np.ndarray, x_hat: np.ndarray) -> dict:
    """Error of x_hat against x: MSE per feature and, for data in [0, 1] (x_hat then clipped to [0, 1],
    as any image decoder does), the PSNR of the mean MSE and the mean of the per-example PSNRs
    (the usual figure for image codecs)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x_hat = np.asarray(x_hat, dtype=np.float64).reshape(len(x), -1)
    unit = bool(x.min() >= 0 and x.max() <= 1)
    err = (((np.clip(x_hat, 0, 1) if unit else x_hat) - x) ** 2).mean(1)
    out = {"mse_per_feature": float(err.mean())}
    if unit:
        out["psnr_db"] = psnr_db(float(err.mean()))
        out["mean_psnr_db"] = float(np.mean(10 * np.log10(1 / np.maximum(err, 1e-10))))
    return out


def rate_distortion(model, data, train=None, bits=(2, 3, 4, 5, 6, 7, 8),
                    qualities=(1, 5, 10, 20, 30, 50, 70, 90)) -> dict[str, list[dict]]:
    """Rate-distortion curves on data: this model's codec at each bit depth (and, for a model trained
    with code_noise w, at steps of 0.5 w to 4 w around its grid); the PCA codec with as many components,
    fitted on `train` (when given); and for images in [0, 1], PNG, JPEG and WebP files."""
    x = _rows(data)
    w = model.config.code_noise
    steps = tuple(w * f for f in (0.5, 0.7, 1, 1.4, 2, 2.8, 4)) if w > 0 else ()
    curves = {"autoencoder": codec_points(model, x, bits, steps)}
    if train is not None:
        train_x = _rows(train)
        k = min(model.config.latent_dim, len(train_x), math.prod(train_x.shape[1:]))
        curves["pca"] = codec_points(pca_model(train_x, k), x, bits, name="pca")
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.min() >= 0 and x.max() <= 1:
        for codec in IMAGE_FORMATS:
            curves[codec] = image_codec_points(x, codec, (None,) if codec == "png" else qualities)
    return curves


def _rows(data) -> np.ndarray:
    """Every row of data (array, tensor, memmap or Dataset) in memory, as float32 NumPy."""
    x = as_array(data, "data")
    return take(x, torch.arange(x.shape[0])).cpu().numpy()


def codec_points(model, data, bits=(2, 3, 4, 5, 6, 7, 8), steps=(), name: str = "autoencoder") -> list[dict]:
    """One point per bit depth (and per quantisation step in `steps`): the real file's bytes per example
    (its total / N; the header's share stated apart) and the distortion of what decompress gives back."""
    x = _rows(data)
    points = []
    for b, step in [(b, None) for b in bits] + [(8, s) for s in steps]:
        blob = compress(model, x, bits=b, step=step)
        header = read_header(blob)
        points.append({"codec": name, "setting": f"{model.config.latent_dim}-d, " + (
                       f"{b} bits" if step is None else f"step {step:g}"), "latent_dim": model.config.latent_dim,
                       "bits": header.bits, "step": header.quantiser.step, "bytes_per_example": len(blob) / len(x),
                       "header_bytes": header.header_bytes, **distortion(x, decompress(model, blob))})
    return points


IMAGE_FORMATS = {"png": ("PNG", {"optimize": True}), "jpeg": ("JPEG", {}), "webp": ("WEBP", {})}


def image_codec_points(data, codec: str, qualities=(None,)) -> list[dict]:
    """Pillow's PNG (lossless, optimised), JPEG or WebP, one file per image: mean bytes per image and the
    distortion, for each quality. Data: images (N, 1 or 3, H, W) in [0, 1], stored as 8-bit pixels."""
    fmt, options = IMAGE_FORMATS[codec]
    x = _rows(data)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"{codec} needs images (N, 1 or 3, H, W), got shape {x.shape}")
    pixels = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    points = []
    for quality in qualities:
        sizes, back = [], np.empty_like(pixels)
        for i, image in enumerate(pixels):
            buf = io.BytesIO()
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                buf, format=fmt, **options, **({} if quality is None else {"quality": quality}))
            sizes.append(buf.tell())
            buf.seek(0)
            decoded = Image.open(buf).convert("L" if image.shape[-1] == 1 else "RGB")  # WebP decodes to RGB
            back[i] = np.asarray(decoded).reshape(image.shape)
        points.append({"codec": codec, "setting": "lossless" if quality is None else f"quality {quality}",
                       "quality": quality, "bytes_per_example": float(np.mean(sizes)),
                       **distortion(x, back.transpose(0, 3, 1, 2) / 255.0)})
    return points
