"""What the commands write: arrays (.npy, .csv, .tsv), tables, image grids and folders of images, all
through the one writer (runs/storage.py: atomic, never onto an input, never onto a FIFO or a device).

A user-named output is claimed (`claim`) once the command has opened what it reads and before the work:
an existing one is refused unless --overwrite (`with_overwrite`), so that a long computation never ends
in a refusal, and the same checks run again when it is written."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import numpy as np

OVERWRITE_HELP = "replace the output files (or folder) when they exist (default: refuse)"


def with_overwrite(fn):
    """--overwrite: replace a user-named output that exists (atomically: the old one stays until the new is whole)."""
    return click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)(fn)


def is_table_file(path) -> bool:
    return Path(path).suffix.lower() in (".csv", ".tsv")


def is_image_folder(path) -> bool:
    """--out without a suffix names a folder of images (decompress)."""
    return not Path(path).suffix


def claim(path, flag: str, overwrite: bool, folder: bool = False) -> Path | None:
    """A user-named output, checked now (runs/storage.expect_output); None passes through."""
    if path is None:
        return None
    from aekit.runs import storage

    return storage.expect_output(path, flag, overwrite=overwrite, folder=folder)


def write_output(path, array, model, ncols=8, header=None) -> None:
    """array to --out: .png (an image grid of the model's examples), .npy, .csv or .tsv."""
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() == ".png":
        _save_images(path, array, model.config.input_shape, ncols)
    else:
        _save_array(path, array, header)
    click.echo(f"wrote {path}")


def write_frame(path, frame) -> None:
    """A table as .csv or .tsv."""
    from aekit.runs import storage

    path = Path(path)
    storage.write_text(path, frame.to_csv(index=False, sep="\t" if path.suffix.lower() == ".tsv" else ","))
    click.echo(f"wrote {path}")


def save_image_folder(folder: Path, array: np.ndarray, input_shape) -> None:
    """One 8-bit PNG per example (values in [0, 1]), named by index: the folder written as one (a temporary
    folder renamed into place), so an interrupted write leaves no half of it."""
    import numpy as np
    from PIL import Image

    from aekit.data.images import as_images, image_shape
    from aekit.runs import storage

    if image_shape(input_shape) is None:
        raise click.UsageError(f"--out {folder}: the data are not images; write .npy instead")
    width = max(5, len(str(len(array) - 1)))

    def fill(tmp) -> None:
        for i, image in enumerate(as_images(array, input_shape)):
            with open(Path(tmp) / f"{i:0{width}d}.png", "wb") as f:
                Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(f, format="PNG")

    storage.atomic_folder(Path(folder), fill)


def _save_array(path: Path, array: np.ndarray, header: list[str] | None = None) -> None:
    """.npy, .csv or .tsv."""
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
