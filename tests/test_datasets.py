"""Every data source and format, and every bad input, on files the tests write themselves."""

import functools
import gzip
import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aekit as ae
from aekit.data import MappedArray, read_idx, sources, write_idx

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


# ----- named sources -----


def test_list_names_every_source_with_options():
    names = [s.name for s in ae.data.list()]
    assert names == ["mnist", "fashion-mnist", "mnist-5k", "digits", "line", "circle", "ring", "spiral", "swiss-roll"]
    mnist = ae.data.SOURCES["mnist"]
    assert mnist.options["split"] == "train" and "data_dir" in mnist.options


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ae.DataError, match=r"unknown dataset 'mnsit' \(did you mean 'mnist'\?\)"):
        ae.data.load("mnsit")
    with pytest.raises(ae.ConfigError, match=r"unknown option 'splt'.*did you mean 'split'"):
        ae.data.load("mnist", splt="test")
    with pytest.raises(ae.DataError, match="no such file or folder"):
        ae.data.load("missing/file.npy")


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist is not beside the project")
def test_official_mnist_test_split_from_a_folder_without_network():
    ds = ae.data.load("mnist", split="test", data_dir=SHARED_MNIST, download=False)
    assert ds.x.shape == (10000, 1, 28, 28) and ds.x.dtype == torch.float32
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert np.bincount(ds.y).tolist()[:3] == [980, 1135, 1032]  # the official class counts
    assert ds.scaling == {"method": "pixels", "max": 255.0}
    # Only the test split is there: the train split says which files are needed and where.
    with pytest.raises(ae.DataError, match="train-images-idx3-ubyte.gz.*not found"):
        ae.data.load("mnist", split="train", data_dir=SHARED_MNIST, download=False)


def test_mnist_5k_is_real_offline_digits():
    ds = ae.data.load("mnist-5k")
    assert ds.x.shape == (5000, 1, 28, 28) and np.bincount(ds.y).tolist() == [500] * 10
    assert 0.0 <= float(ds.x.min()) and float(ds.x.max()) == 1.0
    assert 0.1 < float(ds.x.mean()) < 0.2  # MNIST's mean intensity is about 0.13


def test_digits():
    ds = ae.data.load("digits")
    assert ds.x.shape == (1797, 1, 8, 8) and float(ds.x.max()) == 1.0 and ds.scaling["max"] == 16.0


# ----- downloads, against a local HTTP server serving files the test wrote -----


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _tiny_source(root: Path, images: np.ndarray, labels: np.ndarray, mirrors):
    write_idx(root / "imgs-idx3-ubyte.gz", images)
    write_idx(root / "labs-idx1-ubyte.gz", labels)
    md5 = {f: hashlib.md5((root / f).read_bytes()).hexdigest() for f in ("imgs-idx3-ubyte.gz", "labs-idx1-ubyte.gz")}
    files = {"train": {"images": ("imgs-idx3-ubyte.gz", md5["imgs-idx3-ubyte.gz"]),
                       "labels": ("labs-idx1-ubyte.gz", md5["labs-idx1-ubyte.gz"])}}
    return sources.IdxSource("tiny", "test source", files, tuple(mirrors))


def test_download_tries_mirrors_verifies_and_caches(server, tmp_path):
    root, url = server
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (20, 5, 4), dtype=np.uint8), rng.integers(0, 10, 20).astype(np.uint8)
    (root / "dead").mkdir()
    source = _tiny_source(root, images, labels, [url + "dead/", url])  # the first mirror 404s
    cache = tmp_path / "cache"
    ds = sources.load_idx_source(source, data_dir=cache)
    np.testing.assert_allclose(ds.x.numpy()[:, 0], images / 255.0, rtol=1e-6)
    assert ds.y.tolist() == labels.tolist()
    assert sorted(p.name for p in (cache / "tiny").iterdir()) == ["imgs-idx3-ubyte.gz", "labs-idx1-ubyte.gz"]
    # Cached: works with the server gone.
    (root / "imgs-idx3-ubyte.gz").unlink()
    again = sources.load_idx_source(source, data_dir=cache, mirrors=["http://127.0.0.1:1/"])
    assert torch.equal(again.x, ds.x)


def test_env_variable_sets_the_cache(server, tmp_path, monkeypatch):
    root, url = server
    source = _tiny_source(root, np.zeros((3, 2, 2), np.uint8), np.zeros(3, np.uint8), [url])
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "envcache"))
    sources.load_idx_source(source)
    assert (tmp_path / "envcache" / "tiny" / "imgs-idx3-ubyte.gz").is_file()


def test_checksum_mismatch_leaves_nothing_in_the_cache(server, tmp_path):
    root, url = server
    write_idx(root / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))  # not the official file
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    cache = tmp_path / "cache"
    with pytest.raises(ae.DataError, match="checksum mismatch.*expected 9fb629c4189551a2d022fa330f9573f3"):
        ae.data.load("mnist", split="test", data_dir=cache, mirrors=[url])
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_offline_error_names_the_files_and_where_to_put_them(tmp_path):
    with pytest.raises(ae.DataError, match=r"not available offline.*Put t10k-images-idx3-ubyte.gz, "
                                           r"t10k-labels-idx1-ubyte.gz into .*fashion-mnist"):
        ae.data.load("fashion-mnist", split="test", data_dir=tmp_path, mirrors=["http://127.0.0.1:1/"])
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_local_file_with_the_wrong_checksum_is_reported(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ae.DataError, match=r"t10k-images-idx3-ubyte.gz: checksum mismatch"):
        ae.data.load("mnist", split="test", data_dir=tmp_path, download=False)


# ----- IDX -----


def test_idx_round_trip_and_checks(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte.gz", arr)
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), arr)
    raw = gzip.decompress((tmp_path / "a-idx3-ubyte.gz").read_bytes())
    (tmp_path / "short-idx3-ubyte").write_bytes(raw[:-5])
    with pytest.raises(ae.DataError, match=r"short-idx3-ubyte: truncated: header declares shape \(2, 3, 4\)"):
        read_idx(tmp_path / "short-idx3-ubyte")
    (tmp_path / "long-idx3-ubyte").write_bytes(raw + b"\0")
    with pytest.raises(ae.DataError, match="longer than its header says"):
        read_idx(tmp_path / "long-idx3-ubyte")
    (tmp_path / "magic-idx3-ubyte").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(ae.DataError, match="bad IDX magic number 0102"):
        read_idx(tmp_path / "magic-idx3-ubyte")
    gz = (tmp_path / "a-idx3-ubyte.gz").read_bytes()
    (tmp_path / "cut-idx3-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ae.DataError, match="cut-idx3-ubyte.gz: not a readable gzip file, truncated or corrupt"):
        read_idx(tmp_path / "cut-idx3-ubyte.gz")
    (tmp_path / "notgz-idx3-ubyte.gz").write_bytes(raw)
    with pytest.raises(ae.DataError, match="notgz-idx3-ubyte.gz: not a readable gzip file"):
        ae.data.load(tmp_path / "notgz-idx3-ubyte.gz")
    ds = ae.data.load(tmp_path / "a-idx3-ubyte.gz")
    assert ds.x.shape == (2, 1, 3, 4) and float(ds.x.max()) == pytest.approx(23 / 255)


# ----- toy sets -----


def test_toy_sets():
    line = ae.data.load("line", n=500, seed=1)
    assert line.x.shape == (500, 2) and line.y.shape == (500,)
    _, s, _ = np.linalg.svd(line.x.numpy() - line.x.numpy().mean(0))
    assert s[1] ** 2 / (s**2).sum() < 0.01  # one principal component explains > 99%
    circle = ae.data.load("circle", n=300)
    np.testing.assert_allclose(np.linalg.norm(circle.x.numpy(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(circle.x.numpy()[:, 0], np.sin(circle.y), atol=1e-5)
    train, hold = ae.data.load("spiral", n=200), ae.data.load("spiral", n=50, split="holdout")
    lo, hi = train.info["holdout_range"]
    assert train.y.max() <= lo <= hold.y.min() and hold.y.max() <= hi
    roll = ae.data.load("swiss-roll", n=100, seed=3)
    assert roll.x.shape == (100, 3) and roll.y.shape == (100,)
    assert torch.equal(ae.data.load("circle", n=10, seed=4).x, ae.data.load("circle", n=10, seed=4).x)
    with pytest.raises(ae.DataError, match="n must be an int > 0"):
        ae.data.load("circle", n=0)


# ----- users' files -----


def test_npy_images_and_tables(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "img.npy", images)
    ds = ae.data.load(tmp_path / "img.npy")
    assert ds.x.shape == (30, 1, 6, 6) and ds.scaling["method"] == "pixels"
    table = np.random.default_rng(1).normal(5, 3, (40, 4)).astype(np.float32)
    np.save(tmp_path / "t.npy", table)
    for scale in ("minmax", "standard", "none"):
        ds = ae.data.load(tmp_path / "t.npy", scale=scale)
        x = ds.x.numpy()
        if scale == "minmax":
            np.testing.assert_allclose([x.min(0), x.max(0)], [np.zeros(4), np.ones(4)], atol=1e-6)
        elif scale == "standard":
            np.testing.assert_allclose([x.mean(0), x.std(0)], [np.zeros(4), np.ones(4)], atol=1e-5)
        else:
            np.testing.assert_array_equal(x, table)
        np.testing.assert_allclose(ds.transform(table), x, rtol=1e-6)  # new data scaled the same way
    with pytest.raises(ae.DataError, match="scale='zscore' is not one of"):
        ae.data.load(tmp_path / "t.npy", scale="zscore")


def test_memory_mapped_npy_trains_one_epoch(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (300, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "big.npy", images)
    mapped = ae.data.load(tmp_path / "big.npy", memmap_threshold=0)
    in_memory = ae.data.load(tmp_path / "big.npy")
    assert isinstance(mapped.x, MappedArray) and mapped.input_shape == (1, 8, 8)
    np.testing.assert_allclose(mapped.x[np.array([3, 7])], in_memory.x.numpy()[[3, 7]], rtol=1e-6)
    model = ae.build("ae", input_shape=(1, 8, 8), hidden=(16,), latent_dim=4)
    history = ae.fit(model, mapped, epochs=1, batch_size=32, verbose=0)
    assert len(history) == 1 and np.isfinite(history[0]["val_total"])
    # Reading rows from disk gives exactly the in-memory training run.
    reference = ae.build("ae", input_shape=(1, 8, 8), hidden=(16,), latent_dim=4)
    ae.fit(reference, in_memory, epochs=1, batch_size=32, verbose=0)
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_npz_keys(tmp_path):
    x, y = np.random.default_rng(0).random((10, 3)), np.arange(10)
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    ds = ae.data.load(tmp_path / "xy.npz")
    assert ds.x.shape == (10, 3) and ds.y.tolist() == list(range(10))
    np.savez(tmp_path / "many.npz", a=x, b=x * 2)
    with pytest.raises(ae.DataError, match=r"holds several arrays \['a', 'b'\]: pick one with key="):
        ae.data.load(tmp_path / "many.npz")
    assert ae.data.load(tmp_path / "many.npz", key="b", scale="none").x.max() == pytest.approx(2 * x.max())
    with pytest.raises(ae.DataError, match=r"key='c' is not in the archive"):
        ae.data.load(tmp_path / "many.npz", key="c")
    data = (tmp_path / "xy.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ae.DataError, match="cut.npz"):
        ae.data.load(tmp_path / "cut.npz")


def test_npy_refuses_pickled_objects(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ae.DataError, match="obj.npy: not a readable .npy file"):
        ae.data.load(tmp_path / "obj.npy")


def test_csv_with_header_labels_and_columns(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,label,c\n1,2,cat,3\n4,5,dog,6\n7,8,cat,9\n")
    ds = ae.data.load(tmp_path / "t.csv", label_column="label", scale="none")
    np.testing.assert_array_equal(ds.x.numpy(), [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert ds.y.tolist() == [0, 1, 0] and ds.info["classes"] == ["cat", "dog"]
    sub = ae.data.load(tmp_path / "t.csv", columns=["c", "a"], scale="none")
    np.testing.assert_array_equal(sub.x.numpy()[0], [3, 1])
    (tmp_path / "t.tsv").write_text("1\t2\n3\t4\n")
    assert ae.data.load(tmp_path / "t.tsv", scale="none").x.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ae.DataError, match=r"no column 'lable' \(did you mean 'label'\?\)"):
        ae.data.load(tmp_path / "t.csv", label_column="lable")


@pytest.mark.parametrize(
    "text,message",
    [
        ("a,b\n1,2\n3,x\n", r"row 3, column 'b': 'x' is not a number"),
        ("a,b\n1,2\n3,4,5\n", r"row 3 has 3 fields, expected 2 \(ragged rows\)"),
        ("a,b\n1,nan\n3,4\n,6\n", r"bad.csv: 2 empty cells in 2 rows \(first: row 2, column 'b'\).*missing='drop'"),
        ("a,b\n", "a header but no data rows"),
    ],
)
def test_bad_csv(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ae.DataError, match=message):
        ae.data.load(tmp_path / "bad.csv", missing="error")  # empty cells refused, named by the file's row and column


def test_drop_nan_and_empty_file(tmp_path):
    (tmp_path / "n.csv").write_text("a,b\n1,nan\n3,4\n5,inf\n7,8\n")
    ds = ae.data.load(tmp_path / "n.csv", drop_nan=True, scale="none")
    assert ds.x.tolist() == [[3, 4], [7, 8]] and ds.info["dropped_rows"] == 2
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ae.DataError, match="empty.csv: the file is empty"):
        ae.data.load(tmp_path / "empty.csv")
    x = np.ones((5, 2))
    x[1, 1] = np.nan
    np.save(tmp_path / "n.npy", x)
    with pytest.raises(ae.DataError, match=r"1 NaN/inf values in 1 rows \(first at row 1, column 1\)"):
        ae.data.load(tmp_path / "n.npy")
    assert len(ae.data.load(tmp_path / "n.npy", drop_nan=True)) == 4


def _png(path, size, mode="L", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255)).save(path)


def test_image_folder_with_class_subfolders(tmp_path):
    for i in range(3):
        _png(tmp_path / "imgs" / "cats" / f"{i}.png", (5, 4), value=10 * i)
        _png(tmp_path / "imgs" / "dogs" / f"{i}.png", (5, 4), value=255)
    ds = ae.data.load(tmp_path / "imgs")
    assert ds.x.shape == (6, 1, 4, 5) and ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.info["classes"] == ["cats", "dogs"] and float(ds.x.max()) == 1.0
    _png(tmp_path / "rgb" / "a.png", (4, 4), mode="RGB")
    _png(tmp_path / "rgb" / "b.jpg", (4, 4), mode="RGB")
    rgb = ae.data.load(tmp_path / "rgb")
    assert rgb.x.shape == (2, 3, 4, 4) and rgb.y is None
    assert rgb.x[0, 2].mean().item() == pytest.approx(1.0)


def test_image_folder_sizes_and_unreadable_images(tmp_path):
    _png(tmp_path / "mixed" / "a.png", (4, 4))
    _png(tmp_path / "mixed" / "b.png", (6, 5))
    with pytest.raises(ae.DataError, match=r"images of different sizes \(4x4 \(a.png\), 5x6 \(b.png\)\); pass image_size"):
        ae.data.load(tmp_path / "mixed")
    assert ae.data.load(tmp_path / "mixed", image_size=(3, 2)).x.shape == (2, 1, 3, 2)
    (tmp_path / "mixed" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ae.DataError, match="broken.png: unreadable image"):
        ae.data.load(tmp_path / "mixed", image_size=4)
    (tmp_path / "none").mkdir()
    with pytest.raises(ae.DataError, match="no PNG or JPEG images"):
        ae.data.load(tmp_path / "none")


def test_fit_accepts_a_dataset_and_stores_its_scaling(tmp_path):
    table = np.random.default_rng(1).normal(5, 3, (60, 4)).astype(np.float32)
    np.save(tmp_path / "t.npy", table)
    ds = ae.data.load(tmp_path / "t.npy", scale="standard")
    model = ae.build("ae", input_shape=ds.input_shape, hidden=(8,), latent_dim=2, reconstruction="mse")
    ae.fit(model, ds, epochs=1, out=tmp_path / "run", verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"]["scaling"]["method"] == "standard"
    np.testing.assert_allclose(config["data"]["scaling"]["mean"], table.mean(0), rtol=1e-5)
    assert ae.load_run(tmp_path / "run").scaling == config["data"]["scaling"]
