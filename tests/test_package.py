"""The package as users get it: folders and files written before the rename still load; the wheel holds
everything the tool needs at run time; each extra imports what it promises."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib

import aekit as ae
from helpers import cli

ROOT = Path(__file__).resolve().parents[1]
LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy"  # written by the code still named autoencoders
# What each extra promises: the modules a user can import once `pip install aekit[extra]` has run.
EXTRA_MODULES = {
    "export": ["onnx", "onnxruntime", "onnxscript"],
    "tensorboard": ["tensorboard", "torch.utils.tensorboard"],
    "docs": ["mkdocs", "material", "mkdocs_click", "mkdocstrings", "mkdocstrings_handlers.python"],
}


@pytest.fixture
def legacy(tmp_path):
    """A copy of the fixture (loading takes the run's lock, and the fixture folder may be read-only)."""
    copy = tmp_path / "legacy"
    shutil.copytree(LEGACY, copy)
    return copy


def test_a_table_run_written_before_the_rename_detects_as_it_did(legacy, tmp_path):
    assert '"format": "autoencoders-run"' in (legacy / "table_run" / "config.json").read_text()
    cli("detect", legacy / "table_run", "--data", legacy / "table.csv", "--out", tmp_path / "scores.csv", check=0)
    now, then = pd.read_csv(tmp_path / "scores.csv"), pd.read_csv(legacy / "scores.csv")
    assert list(now.columns) == list(then.columns) == ["id", "score", "outlier"]
    assert (now["id"] == then["id"]).all()
    np.testing.assert_allclose(now["score"], then["score"], rtol=1e-5)  # float32 network, same weights
    assert (now["outlier"] == then["outlier"]).all()


def test_an_image_run_and_a_codec_file_written_before_the_rename_read_back_exactly(legacy):
    model = ae.load(legacy / "image_run")
    x = np.load(legacy / "inputs.npy")
    np.testing.assert_allclose(model.encode(x), np.load(legacy / "codes.npy"), rtol=1e-5, atol=1e-6)
    blob = (legacy / "digits.aec").read_bytes()
    np.testing.assert_array_equal(ae.codec.decompress(model, blob), np.load(legacy / "decompressed.npy"))
    assert ae.load_run(legacy / "image_run").model.config.kind == "ae"


def test_a_run_folder_of_another_format_or_version_is_refused_naming_the_field(legacy):
    config = legacy / "image_run" / "config.json"
    text = config.read_text()
    config.write_text(text.replace('"format_version": 2', '"format_version": -1'))
    with pytest.raises(ae.CheckpointError, match="format_version -1"):
        ae.load(legacy / "image_run")
    config.write_text(text.replace('"autoencoders-run"', '"someone-elses-run"'))
    with pytest.raises(ae.CheckpointError, match="not written by aekit"):
        ae.load(legacy / "image_run")


def test_new_runs_are_written_under_the_new_format_name(tmp_path):
    model = ae.build("pca", input_shape=(4,), latent_dim=2)
    ae.save(model, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["format"] == "aekit-run"


@pytest.mark.parametrize("extra", sorted(EXTRA_MODULES))
def test_each_extra_imports_what_it_promises(extra):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extra in declared and f"aekit[{extra}]" not in declared[extra]
    for module in EXTRA_MODULES[extra]:
        import_module(module)
    everything = declared["all"][0]
    assert everything.startswith("aekit[") and {"export", "tensorboard"} <= set(everything[6:-1].split(","))


def _built(tmp_path_factory) -> tuple[Path, Path]:
    """The sdist and the wheel, built without network or build isolation (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (sdist,), (wheel,) = out.glob("aekit-*.tar.gz"), out.glob("aekit-*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtual environment with the wheel installed (not editable). Its dependencies come from
    the development environment's site-packages through a path entry (no network), which holds no
    aekit of its own: the editable install's finder lives in a .pth file that a plain path entry does not run."""
    sdist, wheel = _built(tmp_path_factory)
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300, capture_output=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(purelib, "dependencies.pth").write_text("\n".join(ours) + "\n")
    return venv, sdist, wheel


def _run(venv: Path, *args, cwd, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AEKIT_DEBUG")}
    return subprocess.run([str(venv / "bin" / "aekit"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def test_the_wheel_and_sdist_hold_the_package_and_nothing_of_the_repository(installed):
    _, sdist, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    sources = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "aekit").rglob("*.py")}
    assert sources <= set(names), sorted(sources - set(names))
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/"))]
    assert any(n.endswith("entry_points.txt") for n in names)

    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("src/aekit/__init__.py") for m in members) and any(m.endswith("pyproject.toml") for m in members)


def test_the_installed_wheel_answers_version_and_kinds_from_outside_the_repository(installed, tmp_path):
    venv, _, _ = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import aekit; print(aekit.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.strip()
    assert where.startswith(str(venv)) and str(ROOT) not in where  # the wheel's copy, not the checkout
    version = _run(venv, "--version", cwd=tmp_path)
    assert version.returncode == 0 and ae.__version__ in version.stdout, version.stderr
    kinds = _run(venv, "kinds", cwd=tmp_path)
    assert kinds.returncode == 0, kinds.stderr
    for kind in ("pca", "ae", "sparse", "denoising", "contractive", "stacked", "vae"):
        assert kind in kinds.stdout


@pytest.mark.slow
def test_the_installed_wheel_runs_the_quick_tour(installed, tmp_path):
    venv, _, _ = installed
    proc = _run(venv, "tour", "--quick", "--out", tmp_path / "tour", cwd=tmp_path, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (tmp_path / "tour" / "tour.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 21
