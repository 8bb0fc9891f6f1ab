"""What the commands write: arrays (.npy, .csv, .tsv), tables, image grids and folders of images, each
written atomically, with the --out checks (the folder exists, the suffix fits the data)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import numpy as np


def is_table_file(path) -> bool:
    return Path(path).suffix.lower() in (".csv", ".tsv")


def write_output(path, array, model, ncols=8, header=None) -> None:
    """array to --out: .png (an image grid of the model's examples), .npy, .csv or .tsv."""
    if path is None:
        return
    path = Path(path)
    if not path.parent.exists():
        raise click.UsageError(f"--out {path}: folder {path.parent} does not exist")
    if path.suffix.lower() == ".png":
        _save_images(path, array, model.config.input_shape, ncols)
    else:
        _save_array(path, array, header)
    click.echo(f"wrote {path}")


def write_frame(path, frame) -> None:
    """A table as .csv or .tsv, written atomically."""
    from aekit.runs import storage

    path = Path(path)
    if not path.parent.exists():
        raise click.UsageError(f"--out {path}: folder {path.parent} does not exist")
    storage.write_text(path, frame.to_csv(index=False, sep="\t" if path.suffix.lower() == ".tsv" else ","))
    click.echo(f"wrote {path}")


def save_image_folder(folder: Path, array: np.ndarray, input_shape) -> None:
    """One 8-bit PNG per example (values in [0, 1]), named by index, each written atomically."""
    import numpy as np
    from PIL import Image

    from aekit.data.images import as_images, image_shape
    from aekit.runs import storage

    if image_shape(input_shape) is None:
        raise click.UsageError(f"--out {folder}: the data are not images; write .npy instead")
    if folder.exists() and not folder.is_dir():
        raise click.UsageError(f"--out {folder} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(array) - 1)))
    for i, image in enumerate(as_images(array, input_shape)):
        buf = io.BytesIO()
        Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
        storage.write_bytes(folder / f"{i:0{width}d}.png", buf.getvalue())


def _save_array(path: Path, array: np.ndarray, header: list[str] | None = None) -> None:
    """.npy, .csv or .tsv, written atomically."""
    import numpy as np

    from aekit.runs import storage

    suffix = path.suffix.lower()
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, array)  # to a buffer: np.save on a path would append ".npy" to the temporary name
        storage.write_bytes(path, buf.getvalue())
    elif suffix in (".csv", ".tsv"):
        flat = array.reshape(len(array), -1)
        delim = "\t" if suffix == ".tsv" else ","
        head = delim.join(header or [f"c{i}" for i in range(flat.shape[1])])
        storage.atomic_write(path, lambda tmp: np.savetxt(tmp, flat, delimiter=delim, header=head, comments="", fmt="%.6g"))
    else:
        raise click.UsageError(f"--out {path}: use a .npy or .csv file" + (" or a .png image" if array.ndim > 2 else ""))


def _save_images(path: Path, array: np.ndarray, input_shape, ncols: int) -> None:
    from aekit.data.images import image_shape, save_image_grid

    if image_shape(input_shape) is None:
        raise click.UsageError(f"--out {path}: the data are not images; write .npy or .csv instead")
    save_image_grid(array, path, ncols=ncols, input_shape=input_shape)
