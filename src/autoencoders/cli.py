"""The `autoencoders` command (also `python -m autoencoders`).

Options map one to one to the library (same names, kebab-case). Exit codes:
0 success, 2 usage errors (unknown kind/dataset/option, bad values, missing or
foreign run folder), 1 runtime failures. Errors print one line, no traceback
(set AUTOENCODERS_DEBUG=1 to see it).
"""

from __future__ import annotations

import dataclasses
import io
import os
import shlex
import sys
import time
import types
import typing
from pathlib import Path

import click
import numpy as np

from . import storage
from .config import NOISES, ModelConfig
from .errors import AutoencodersError, CheckpointError, ConfigError, DataError, suggest
from .generation import DENSITIES
from .training import FitOptions

USAGE_ERRORS = (ConfigError, DataError, CheckpointError)

# ----- option schema: every model option of every kind, and every fit option -----

_MODEL_FIELDS = {f.name: f for f in dataclasses.fields(ModelConfig)}
_FIT_FIELDS = {f.name: f for f in dataclasses.fields(FitOptions)}
RUN_OPTIONS = ("device", "out", "resume", "overwrite", "verbose")
# The type of every option, read from the dataclasses' annotations (and the run options').
_TYPES = {**typing.get_type_hints(ModelConfig), **typing.get_type_hints(FitOptions),
          "device": str | None, "out": str | None, "resume": bool, "overwrite": bool, "verbose": int,
          "kind": str, "data": str, "data_options": dict}


def _model_options() -> list[str]:
    from .kinds import kinds

    names = []
    for k in kinds():
        names += [n for n in k.options if n not in names]
    return names + (["seed"] if "seed" not in names else [])


def convert(name: str, value):
    """A value from the command line, a --set or a config file, converted to the option's type."""
    return _as_type(_TYPES.get(name, str), value)


def _as_type(hint, value):
    """value as `hint` (bool, int, float, str, dict, tuple[int, ...] or an Optional of one); ValueError if it is not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        return _as_type(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [v for v in str(value).strip().strip("()[]").split(",")
                                                              if v.strip()]
        return tuple(_as_type(int, v) for v in items)
    if hint is bool:
        text = str(value).lower()
        if isinstance(value, bool) or text in ("true", "1", "yes", "false", "0", "no"):
            return value if isinstance(value, bool) else text in ("true", "1", "yes")
        raise ValueError("expected true or false")
    if hint is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("expected an integer")
        try:
            return int(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError("expected an integer") from None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("expected a number")
        try:
            return float(value)
        except ValueError:
            raise ValueError("expected a number") from None
    if hint is dict:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping")
        return value
    if isinstance(value, (list, dict)):
        raise ValueError("expected a single value")
    return value if value is None else str(value)


def _known() -> list[str]:
    return _model_options() + list(_FIT_FIELDS) + list(RUN_OPTIONS) + ["kind", "data", "data_options"]


def _settings_from(pairs: dict, where: str) -> dict:
    out = {}
    known = _known()
    for raw_key, value in pairs.items():
        key = raw_key.replace("-", "_")
        if key not in known:
            raise click.UsageError(f"{where}: unknown option {raw_key!r}{suggest(key, known)}")
        try:
            out[key] = convert(key, value)
        except (TypeError, ValueError) as e:
            raise click.UsageError(f"{where}: {raw_key}={value!r}: {e}") from None
    return out


def _key_values(items, flag: str) -> dict:
    """KEY=VALUE strings -> {key: value}, values read as YAML scalars (3 -> int, 0.5 -> float, true -> bool)."""
    import yaml

    pairs = {}
    for item in items:
        if "=" not in item:
            raise click.UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            pairs[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            pairs[key.strip()] = value
    return pairs


def _parse_set(items) -> dict:
    return _key_values(items, "--set")


def _data_options(items) -> dict:
    return {k.replace("-", "_"): v for k, v in _key_values(items, "--data-option").items()}


# ----- shared helpers -----


def _load_run(run: str):
    from .runs import load_run

    return load_run(run)


def _run_data(run, data, data_option):
    """--data (default: the run's recorded training source) in the run's scaling."""
    return run.dataset(data, _data_options(data_option))


def _save_array(path: Path, array: np.ndarray, header: list[str] | None = None) -> None:
    """.npy, .csv or .png (an image grid), written atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        storage.write_bytes(path, _npy_bytes(array))
    elif suffix in (".csv", ".tsv"):
        flat = array.reshape(len(array), -1)
        delim = "\t" if suffix == ".tsv" else ","
        head = delim.join(header or [f"c{i}" for i in range(flat.shape[1])])
        storage.atomic_write(path, lambda tmp: np.savetxt(tmp, flat, delimiter=delim, header=head, comments="", fmt="%.6g"))
    else:
        raise click.UsageError(f"--out {path}: use a .npy or .csv file" + (" or a .png image" if array.ndim > 2 else ""))


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)  # to a buffer: np.save on a path would append ".npy" to the temporary name
    return buf.getvalue()


def _save_images(path: Path, array: np.ndarray, input_shape, ncols: int) -> None:
    from .report.figures import image_grid, image_shape

    if image_shape(input_shape) is None:
        raise click.UsageError(f"--out {path}: the data are not images; write .npy or .csv instead")
    png = image_grid(array, input_shape, ncols=ncols)
    storage.write_bytes(Path(path), png)


def _write_output(path, array, model, ncols=8, header=None):
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


# ----- commands -----


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="autoencoders")
def main():
    """The autoencoder family: train, evaluate, generate, encode, detect, report, and the tour."""


@main.command()
def kinds():
    """List the kinds of autoencoder with their options and defaults."""
    from .kinds import kinds as all_kinds

    for k in all_kinds():
        click.echo(str(k))


@main.command()
def datasets():
    """List the named datasets with their options."""
    from . import datasets as ds

    for s in ds.list():
        click.echo(str(s))
    click.echo("Files: .npy, .npz, .csv, .tsv, IDX (.gz), or a folder of PNG/JPEG images (see README).")


def _train_options(fn):
    """One flag per model option of every kind and per fit option (kebab-case)."""
    for name in reversed(_model_options()):
        if name in ("hidden", "channels"):
            fn = click.option(f"--{name.replace('_', '-')}", default=None, help=f"{name}: comma-separated ints, e.g. 256,64")(fn)
        else:
            fn = click.option(f"--{name.replace('_', '-')}", default=None, help=f"model option {name} (see `kinds`)")(fn)
    for name in reversed(list(_FIT_FIELDS)):
        if name == "seed":
            continue
        fn = click.option(f"--{name.replace('_', '-')}", default=None, help=f"fit option {name}")(fn)
    return fn


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("kind", required=False)
@click.option("--data", help="dataset name (see `datasets`) or path to a file or image folder")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE", help="option of the dataset, e.g. split=test")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of options")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override one option (after --config)")
@click.option("--device", default=None, help="cpu, cuda, mps or auto")
@click.option("--out", default=None, help="run folder (default runs/<kind>)")
@click.option("--resume", is_flag=True, default=None, help="continue the run in --out")
@click.option("--overwrite", is_flag=True, default=None, help="replace an existing run in --out")
@click.option("--quiet", is_flag=True, help="no progress bar")
@_train_options
def train(kind, data, data_option, config_file, overrides, device, out, resume, overwrite, quiet, **flags):
    """Train KIND on --data; writes the run folder with report.html."""
    from . import build, datasets, fit
    from .kinds import make_config
    from .report import write_report

    given = {k: v for k, v in flags.items() if v is not None}
    given.update({k: v for k, v in dict(device=device, out=out, resume=resume, overwrite=overwrite).items() if v})
    settings = {**_config_file(config_file), **_settings_from(given, "option"),
                **_settings_from(_parse_set(overrides), "--set")}
    kind = kind or settings.pop("kind", None)
    settings.pop("kind", None)
    if kind is None:
        raise click.UsageError("missing KIND (see `autoencoders kinds`)")
    data = data or settings.pop("data", None)
    if data is None:
        raise click.UsageError("missing --data (a dataset name, see `autoencoders datasets`, or a path)")
    data_options = {**(settings.pop("data_options", None) or {}), **_data_options(data_option)}
    fit_args = {k: settings.pop(k) for k in list(settings) if k in _FIT_FIELDS}
    run_args = {k: settings.pop(k) for k in list(settings) if k in RUN_OPTIONS}
    ds = datasets.load(data, **data_options)
    # Build the configuration before anything touches the disk: a bad option leaves no folder.
    make_config(kind, ds.input_shape, **settings)
    FitOptions(**{**dataclasses.asdict(FitOptions()), **fit_args}).validate()
    model = build(kind, ds.input_shape, **settings)
    folder = Path(run_args.pop("out", None) or Path("runs") / kind)
    command = "autoencoders " + shlex.join(sys.argv[1:])
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only rank 0 reports
    if main_process:
        click.echo(f"training {kind} on {ds.name}: {len(ds)} examples of shape {ds.input_shape} -> {folder}"
                   + (f" ({os.environ['WORLD_SIZE']} processes)" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""))
    started = time.perf_counter()
    history = fit(model, ds, out=folder, verbose=0 if quiet else 1, command=command, **fit_args, **run_args)
    seconds = time.perf_counter() - started
    if not main_process:
        return
    write_report(folder, data=ds)
    metrics = storage.read_json(folder / "metrics.json")
    click.echo(f"\n{kind}: {len(history)} epochs in {seconds:.1f} s ({', '.join(history.stages)})")
    for split in ("train", "validation"):
        if split in metrics:
            terms = ", ".join(f"{k} {v:.4g}" for k, v in metrics[split].items())
            click.echo(f"  {split:<10} {terms}")
    click.echo(f"run folder: {folder}\nreport:     {folder / 'report.html'}")


def _config_file(config_file) -> dict:
    """The options of a YAML --config file, converted like the flags."""
    if not config_file:
        return {}
    import yaml

    path = Path(config_file)
    if not path.is_file():
        raise click.UsageError(f"--config {path}: file not found")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise click.UsageError(f"--config {path}: not valid YAML ({e})") from None
    if not isinstance(loaded, dict):
        raise click.UsageError(f"--config {path}: expected a mapping of option: value")
    return _settings_from(loaded, f"--config {path}")


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset name or path (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--log-likelihood-samples", type=int, default=1000, show_default=True)
@click.option("--log-likelihood-examples", type=int, default=1000, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write every metric to this JSON file")
@click.option("--rate-distortion", is_flag=True,
              help="also compress --data with RUN's codec at bits 2-8, next to the PCA codec (fitted on the run's "
                   "training data) and PNG/JPEG/WebP for images")
@click.option("--report", "report_out", type=click.Path(dir_okay=False),
              help="write the metrics (and the rate-distortion plot) as an HTML page")
def evaluate(run, data, data_option, log_likelihood_samples, log_likelihood_examples, json_out, rate_distortion,
             report_out):
    """Measure the model of RUN on --data: reconstruction, likelihood, latent space, compression."""
    from .evaluate import evaluate as ev
    from .report.run import flatten, write_evaluation

    for flag, path in (("--json", json_out), ("--report", report_out)):
        if path and not Path(path).parent.exists():
            raise click.UsageError(f"{flag} {path}: folder {Path(path).parent} does not exist")
    loaded = _load_run(run)
    ds = _run_data(loaded, data, data_option)
    result = ev(loaded.model, ds, log_likelihood_samples=log_likelihood_samples,
                log_likelihood_examples=log_likelihood_examples)
    if rate_distortion:
        result["rate_distortion"] = _rate_distortion(loaded, ds)
    for key, value in flatten(result):
        click.echo(f"{key:<48} {value:.6g}" if isinstance(value, float) else f"{key:<48} {value}")
    for points in result.get("rate_distortion", {}).values():
        for p in points:
            quality = f"{p['mean_psnr_db']:.2f} dB" if "mean_psnr_db" in p else f"MSE {p['mse_per_feature']:.4g}"
            click.echo(f"rate_distortion  {p['codec']:<12} {p['setting']:<18} {p['bytes_per_example']:9.2f} bytes  {quality}")
    if json_out:
        storage.write_json(Path(json_out), result)
        click.echo(f"wrote {json_out}")
    if report_out:
        write_evaluation(Path(report_out), result, f"autoencoders evaluate: {loaded.folder.name} on {ds.name}",
                         "autoencoders " + shlex.join(sys.argv[1:]))
        click.echo(f"wrote {report_out}")


def _rate_distortion(run, ds) -> dict:
    """codec.rate_distortion of ds, with the PCA codec fitted on the run's training data when it is recorded."""
    from . import codec

    try:
        train = run.dataset()
    except (AutoencodersError, OSError):  # trained from arrays, or the data moved: no PCA baseline
        train = None
    return codec.rate_distortion(run.model, ds, train=train)


@main.command()
@click.argument("run", type=click.Path())
@click.option("-n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="how many samples")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="grid.png, samples.npy or .csv")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--density", type=click.Choice(DENSITIES), default=None,
              help="for plain autoencoders (default gmm); a VAE samples its prior unless given")
def generate(run, n, out, seed, density):
    """Generate N new examples from RUN (VAE: the prior; others: a density fitted to the training codes)."""
    from .generation import sample
    from .models import VariationalAutoencoder

    run = _load_run(run)
    train = None
    if density is not None or not isinstance(run.model, VariationalAutoencoder):
        train = _run_data(run, None, ())
    samples = sample(run.model, n, train=train, density=density, seed=seed)
    _write_output(out, samples, run.model, ncols=min(16, n))


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", required=True)
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="codes.npy or codes.csv")
def encode(run, data, data_option, out):
    """Write the codes of --data (VAE: posterior means)."""
    from .inference import codes

    run = _load_run(run)
    z = codes(run.model, _run_data(run, data, data_option))
    _write_output(out, z, run.model, header=[f"z{i}" for i in range(z.shape[1])])


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", required=True, help="dataset name or path (read in the run's scaling)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="the file to write")
@click.option("--bits", type=int, default=None, help="quantisation: the widest code dimension gets 2**bits "
              "levels, 1 to 12 [default: 8]")
@click.option("--step", type=float, default=None, help="quantisation step in code units, instead of --bits "
              "(a model trained with --code-noise W was trained for step W)")
def compress(run, data, data_option, out, bits, step):
    """Compress --data into one file: RUN's codes, quantised and range-coded (README: Compression)."""
    from . import codec

    if bits is not None and step is not None:
        raise click.UsageError("give --bits or --step, not both")

    loaded = _load_run(run)
    ds = _run_data(loaded, data, data_option)
    out = Path(out)
    if not out.parent.exists():
        raise click.UsageError(f"--out {out}: folder {out.parent} does not exist")
    blob = codec.compress(loaded.model, ds, bits=8 if bits is None else bits, step=step)
    storage.write_bytes(out, blob)
    header = codec.read_header(blob)
    click.echo(f"wrote {out}: {len(ds)} examples in {len(blob):,} bytes, {len(blob) / len(ds):.2f} per example "
               f"(header {header.header_bytes} bytes, codes {len(blob) - header.header_bytes:,})")


@main.command()
@click.argument("run", type=click.Path())
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(),
              help="examples.npy, grid.png (the first 64) or a folder (one PNG per example)")
def decompress(run, file, out):
    """Decode FILE, written by `compress` with the same RUN, to --out."""
    from . import codec

    loaded = _load_run(run)
    path = Path(file)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        x = codec.decompress(loaded.model, path.read_bytes())
    except (DataError, CheckpointError) as e:
        raise type(e)(f"{path}: {e}") from None
    out = Path(out)
    if out.suffix:
        _write_output(out, x[:64] if out.suffix.lower() == ".png" else x, loaded.model, ncols=8)
    else:
        _save_image_folder(out, x, loaded.model.config.input_shape)
        click.echo(f"wrote {len(x)} images to {out}/")


def _save_image_folder(folder: Path, array: np.ndarray, input_shape) -> None:
    """One 8-bit PNG per example (values in [0, 1]), named by index, each written atomically."""
    from PIL import Image

    from .report.figures import as_images, image_shape

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


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", required=True)
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help=".npy, .csv or .png (first 64 as a grid)")
@click.option("--noise", type=click.Choice(NOISES), default=None,
              help="corrupt the input first (denoising)")
@click.option("--noise-level", type=float, default=0.3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def reconstruct(run, data, data_option, out, noise, noise_level, seed):
    """Reconstruct --data (optionally corrupted with --noise first)."""
    import torch

    from .corruption import corrupt

    run = _load_run(run)
    model = run.model
    x = torch.as_tensor(np.asarray(_run_data(run, data, data_option).x, dtype=np.float32))
    if noise is not None:
        if not 0 <= noise_level <= (1 if noise != "gaussian" else float("inf")):
            raise click.BadParameter(f"{noise_level} is out of range for --noise {noise}", param_hint="--noise-level")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            x = corrupt(x, noise, noise_level)
    recon = model.reconstruct(x.numpy())
    if Path(out).suffix.lower() == ".png":
        k = min(32, len(x))
        both = np.concatenate([x[:k].numpy(), recon[:k]])
        _write_output(out, both, model, ncols=k)
    else:
        _write_output(out, recon, model)


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", required=True)
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--from", "start", type=click.IntRange(min=0), required=True, help="index of the first example")
@click.option("--to", "end", type=click.IntRange(min=0), required=True, help="index of the last example")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--method", type=click.Choice(["auto", "linear", "spherical"]), default="auto", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="path.png or path.npy")
def interpolate(run, data, data_option, start, end, steps, method, out):
    """Decode the path between the codes of examples --from and --to."""
    from .generation import interpolate as interp

    run = _load_run(run)
    ds = _run_data(run, data, data_option)
    for name, i in (("--from", start), ("--to", end)):
        if i >= len(ds):
            raise click.BadParameter(f"{i} is out of range: the data have {len(ds)} examples", param_hint=name)
    path = interp(run.model, np.asarray(ds.x[start]), np.asarray(ds.x[end]), steps=steps, method=method)
    _write_output(out, path, run.model, ncols=steps)


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", required=True)
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="scores.csv")
@click.option("--contamination", type=float, default=0.1, show_default=True,
              help="expected fraction of outliers in (0, 0.5]: sets the threshold")
def detect(run, data, data_option, out, contamination):
    """Anomaly scores of --data (higher = more anomalous) and outlier labels at --contamination."""
    from . import anomaly

    if not 0 < contamination <= 0.5:
        raise click.BadParameter(f"{contamination} is not in (0, 0.5]", param_hint="--contamination")
    run = _load_run(run)
    model = run.model
    ds = _run_data(run, data, data_option)
    scores = anomaly.score(model, ds.x, "elbo" if model.config.variational else "reconstruction")
    threshold = anomaly.threshold(scores, contamination)
    labels = anomaly.labels(scores, threshold)
    columns = [np.arange(len(scores)), scores, labels] + ([np.asarray(ds.y)] if ds.y is not None else [])
    header = ["index", "score", "outlier"] + (["label"] if ds.y is not None else [])
    table = np.column_stack(columns).astype(np.float64)
    if Path(out).suffix.lower() not in (".csv", ".tsv"):
        raise click.UsageError(f"--out {out}: use a .csv file")
    _write_output(out, table, model, header=header)
    click.echo(f"{int(labels.sum())} of {len(labels)} flagged as outliers (threshold {threshold:.4g})")


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset for the figures (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
def report(run, data, data_option):
    """(Re)write RUN/report.html."""
    from .report import write_report

    loaded = _load_run(run)
    ds = _run_data(loaded, data, data_option) if data else None
    click.echo(f"wrote {write_report(run, data=ds)}")


@main.command()
@click.option("--data", default="mnist-5k", show_default=True, help="image dataset for the digit experiments")
@click.option("--out", default="runs/tour", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="fewer epochs and examples (under 90 s)")
@click.option("--seed", type=int, default=0, show_default=True)
def tour(data, out, quick, seed):
    """The lectures end to end: twelve experiments in one self-contained HTML report."""
    from .tour import run_tour

    path = run_tour(data=data, out=out, quick=quick, seed=seed, echo=lambda s: click.echo(s, err=True))
    click.echo(f"tour report: {path}")


def run(argv=None) -> int:
    """Entry point: map errors to exit codes and one line on stderr."""
    debug = bool(os.environ.get("AUTOENCODERS_DEBUG"))
    try:
        main.main(args=argv, prog_name="autoencoders", standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        if debug:
            raise
        click.echo(f"error: {e.format_message()}", err=True)
        return 2 if isinstance(e, click.UsageError) else e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except USAGE_ERRORS as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        return 2
    except (AutoencodersError, OSError, RuntimeError, ValueError) as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130


def entry() -> None:
    sys.exit(run())
