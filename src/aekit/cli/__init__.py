"""The `aekit` command (also `python -m aekit`).

Options map one to one to the library (same names, kebab-case). Exit codes:
0 success, 2 usage errors (unknown kind/dataset/option, bad values, missing or
foreign run folder), 1 runtime failures. Errors print one line, no traceback
(set AEKIT_DEBUG=1 to see it).
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
import warnings
from pathlib import Path

import click
import numpy as np

from aekit.errors import AekitError, CheckpointError, ConfigError, DataError, suggest
from aekit.evaluation.generation import DENSITIES
from aekit.models.config import NOISES, ModelConfig
from aekit.runs import storage
from aekit.training import FitOptions

USAGE_ERRORS = (ConfigError, DataError, CheckpointError)
SEED = click.IntRange(0, 2**32 - 1)

# ----- option schema: every model option of every kind, and every fit option -----

_MODEL_FIELDS = {f.name: f for f in dataclasses.fields(ModelConfig)}
_FIT_FIELDS = {f.name: f for f in dataclasses.fields(FitOptions)}
RUN_OPTIONS = ("device", "out", "resume", "overwrite", "verbose")
# The type of every option, read from the dataclasses' annotations (and the run options').
_TYPES = {**typing.get_type_hints(ModelConfig), **typing.get_type_hints(FitOptions),
          "device": str | None, "out": str | None, "resume": bool, "overwrite": bool, "verbose": int,
          "kind": str, "data": str, "data_options": dict}


def _model_options() -> list[str]:
    from aekit.models.kinds import kinds

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
    from aekit.runs.run import load_run

    return load_run(run)


def _run_data(run, data, data_option):
    """--data (default: the run's recorded training source) in the run's scaling."""
    return run.dataset(data, _data_options(data_option))


def _conditioning(model, ds):
    """A conditional model's labels for ds (its integer labels), else None."""
    from aekit.evaluation.metrics import conditioning

    return conditioning(model, ds)


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


def _is_table_file(path) -> bool:
    return Path(path).suffix.lower() in (".csv", ".tsv")


def _write_frame(path, frame) -> None:
    """A table as .csv or .tsv, written atomically."""
    path = Path(path)
    if not path.parent.exists():
        raise click.UsageError(f"--out {path}: folder {path.parent} does not exist")
    storage.write_text(path, frame.to_csv(index=False, sep="\t" if path.suffix.lower() == ".tsv" else ","))
    click.echo(f"wrote {path}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)  # to a buffer: np.save on a path would append ".npy" to the temporary name
    return buf.getvalue()


def _save_images(path: Path, array: np.ndarray, input_shape, ncols: int) -> None:
    from aekit.data.images import image_shape, save_image_grid

    if image_shape(input_shape) is None:
        raise click.UsageError(f"--out {path}: the data are not images; write .npy or .csv instead")
    save_image_grid(array, path, ncols=ncols, input_shape=input_shape)


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
@click.version_option(package_name="aekit")
def main():
    """The autoencoder family: train, evaluate, generate, encode, detect, report, and the tour."""


@main.command()
def kinds():
    """List the kinds of autoencoder with their options and defaults."""
    from aekit.models.kinds import kinds as all_kinds

    for k in all_kinds():
        click.echo(str(k))


@main.command()
def datasets():
    """List the named datasets with their options."""
    from aekit import data as ds

    for s in ds.list():
        click.echo(str(s))
    click.echo("Files: .npy, .npz, .csv, .tsv, .txt, .parquet, IDX (.gz), or a folder of PNG/JPEG images (see README).")


def _fit_flags(fn):
    """One flag per fit option (kebab-case); n_threads is --threads (with_threads)."""
    for name in reversed(list(_FIT_FIELDS)):
        if name not in ("seed", "n_threads"):
            fn = click.option(f"--{name.replace('_', '-')}", default=None, help=f"fit option {name}")(fn)
    return fn


def _train_options(fn):
    """One flag per model option of every kind and per fit option (kebab-case)."""
    for name in reversed(_model_options()):
        if name in ("hidden", "channels"):
            fn = click.option(f"--{name.replace('_', '-')}", default=None, help=f"{name}: comma-separated ints, e.g. 256,64")(fn)
        else:
            fn = click.option(f"--{name.replace('_', '-')}", default=None, help=f"model option {name} (see `kinds`)")(fn)
    return _fit_flags(fn)


def with_threads(fn):
    """--threads N: torch threads for this command (training: fit's n_threads; default: 1 for small
    models or a busy machine, see the README)."""
    fn = click.option("--threads", type=click.IntRange(1, 1024), default=None,
                      help="torch threads (default: chosen from the model size and the machine's load)")(fn)
    return fn


def _set_threads(threads) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("kind", required=False)
@click.option("--data", help="dataset name (see `datasets`) or path to a file or image folder")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE", help="option of the dataset, e.g. split=test")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of options")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override one option (after --config)")
@click.option("--device", default=None, help="cpu, cuda, mps or auto")
@click.option("--out", default=None, help="run folder (default runs/<kind>)")
@click.option("--resume", is_flag=True, default=None,
              help="continue the run in --out (the model comes from the run: no model options needed)")
@click.option("--overwrite", is_flag=True, default=None, help="replace an existing run in --out")
@click.option("--quiet", is_flag=True, help="no progress bar")
@with_threads
@_train_options
def train(kind, data, data_option, config_file, overrides, device, out, resume, overwrite, quiet, threads, **flags):
    """Train KIND on --data; writes the run folder with report.html."""
    from aekit import build
    from aekit import data as datasets
    from aekit.models.kinds import data_defaults_for
    from aekit.training.options import table_fit_length

    given = {k: v for k, v in flags.items() if v is not None}
    given.update({k: v for k, v in dict(device=device, out=out, resume=resume, overwrite=overwrite).items() if v})
    settings = {**_config_file(config_file), **_settings_from(given, "option"),
                **_settings_from(_parse_set(overrides), "--set")}
    kind = kind or settings.pop("kind", None)
    settings.pop("kind", None)
    data = data or settings.pop("data", None)
    data_options = {**(settings.pop("data_options", None) or {}), **_data_options(data_option)}
    fit_args = {k: settings.pop(k) for k in list(settings) if k in _FIT_FIELDS}
    run_args = {k: settings.pop(k) for k in list(settings) if k in RUN_OPTIONS}
    folder = Path(run_args.pop("out", None) or Path("runs") / (kind or "run"))
    if run_args.get("resume") and (folder / "config.json").exists():
        _refuse_conflicts(folder, kind, settings)
        return _resume(folder, data, data_options, fit_args, run_args, quiet, threads)
    if kind is None:
        raise click.UsageError("missing KIND (see `aekit kinds`)")
    if data is None:
        raise click.UsageError("missing --data (a dataset name, see `aekit datasets`, or a path)")
    ds = datasets.load(data, **data_options)
    if ds.feature_names is not None:  # a table: its columns and rows decide what the user leaves open
        settings = {**data_defaults_for(kind, ds), **settings}
        val_fraction = fit_args.get("val_fraction", FitOptions.val_fraction)
        fit_args = {**table_fit_length(len(ds) - round(val_fraction * len(ds))), **fit_args}
    # Build the model before anything touches the disk: a bad option leaves no folder.
    model = build(kind, ds.input_shape, **settings)
    FitOptions(**{**dataclasses.asdict(FitOptions()), **fit_args}).validate()
    _fit_and_report(model, ds, folder, fit_args, run_args, quiet, threads)


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset name or path (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--device", default=None, help="cpu, cuda, mps or auto")
@click.option("--quiet", is_flag=True, help="no progress bar")
@with_threads
@_fit_flags
def resume(run, data, data_option, device, quiet, threads, **flags):
    """Continue training RUN (e.g. with more --epochs): the model, the data and every training option
    not given here come from the run."""
    given = _settings_from({k: v for k, v in flags.items() if v is not None}, "option")
    _resume(Path(run), data, _data_options(data_option), given, {"device": device} if device else {}, quiet, threads)


def _refuse_conflicts(folder: Path, kind, model_options: dict) -> None:
    """train --resume: the model comes from the run; a model option that differs from it is refused."""
    from aekit.runs.run import model_config, read_config

    config = model_config(read_config(folder), folder)
    wanted = {**({"kind": kind} if kind else {}), **model_options}
    conflicts = [f"{name}={value!r} (the run has {getattr(config, name)!r})" for name, value in wanted.items()
                 if getattr(config, name) != value]
    if conflicts:
        raise click.UsageError(f"--resume continues the run in {folder}, whose model differs: {', '.join(conflicts)}; "
                               "leave model options out when resuming (or train into another --out)")


def _resume(folder: Path, data, data_options: dict, fit_args: dict, run_args: dict, quiet: bool, threads) -> None:
    from aekit.models.kinds import model_from_config

    run = _load_run(folder)
    recorded = {k: v for k, v in run.training.items() if k in _FIT_FIELDS}
    fit_args = {**recorded, **fit_args}
    FitOptions(**fit_args).validate()
    ds = run.dataset(data, data_options)
    run_args = {**run_args, "resume": True}
    _fit_and_report(model_from_config(run.config), ds, folder, fit_args, run_args, quiet, threads)


def _fit_and_report(model, ds, folder: Path, fit_args: dict, run_args: dict, quiet: bool, threads) -> None:
    """fit into folder, then report.html and a one-screen summary (rank 0 only under torchrun)."""
    from aekit import fit
    from aekit.report import write_report

    _set_threads(threads)
    kind = model.config.kind
    command = "aekit " + shlex.join(sys.argv[1:])
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only rank 0 reports
    if main_process:
        click.echo(f"training {kind} on {ds.name}: {len(ds)} examples of shape {ds.input_shape} -> {folder}"
                   + (f" ({os.environ['WORLD_SIZE']} processes)" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""))
    started = time.perf_counter()
    history = fit(model, ds, out=folder, verbose=0 if quiet else 1, command=command, n_threads=threads,
                  **{k: v for k, v in fit_args.items() if k != "n_threads"}, **run_args)
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
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise click.UsageError(f"--config {path}: not valid YAML: {where}{problem}") from None
    except UnicodeDecodeError:
        raise click.UsageError(f"--config {path}: not UTF-8 text") from None
    if not isinstance(loaded, dict):
        raise click.UsageError(f"--config {path}: expected a mapping of option: value")
    return _settings_from(loaded, f"--config {path}")


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset name or path (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--log-likelihood-samples", type=click.IntRange(min=0), default=1000, show_default=True,
              help="importance samples per example (0: skip the log-likelihood)")
@click.option("--log-likelihood-examples", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write every metric to this JSON file")
@click.option("--rate-distortion", is_flag=True,
              help="also compress --data with RUN's codec at bits 2-8, next to the PCA codec (fitted on the run's "
                   "training data) and PNG/JPEG/WebP for images")
@click.option("--report", "report_out", type=click.Path(dir_okay=False),
              help="write the metrics (and the rate-distortion plot) as an HTML page")
@with_threads
def evaluate(run, data, data_option, log_likelihood_samples, log_likelihood_examples, json_out, rate_distortion,
             report_out, threads):
    """Measure the model of RUN on --data: reconstruction, likelihood, latent space, compression."""
    _set_threads(threads)
    from aekit.evaluation.evaluate import evaluate as ev
    from aekit.report.run import flatten, write_evaluation

    for flag, path in (("--json", json_out), ("--report", report_out)):
        if path and not Path(path).parent.exists():
            raise click.UsageError(f"{flag} {path}: folder {Path(path).parent} does not exist")
    loaded = _load_run(run)
    ds = _run_data(loaded, data, data_option)
    result = ev(loaded.model, ds, log_likelihood_samples=log_likelihood_samples,
                log_likelihood_examples=log_likelihood_examples)
    header = f"{result['examples']} examples of {ds.name}"
    if "log_likelihood_examples" in result.get("vae", {}):
        header += (f"; log-likelihood on the first {result['vae']['log_likelihood_examples']}, "
                   f"{log_likelihood_samples} importance samples each")
    click.echo(header + "; each group below gives the examples it used")
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
        write_evaluation(Path(report_out), result, f"aekit evaluate: {loaded.folder.name} on {ds.name}",
                         "aekit " + shlex.join(sys.argv[1:]))
        click.echo(f"wrote {report_out}")


def _rate_distortion(run, ds) -> dict:
    """codec.rate_distortion of ds, with the PCA codec fitted on the run's training data when it is recorded."""
    from aekit import codec

    try:
        train = run.dataset()
    except (AekitError, OSError):  # trained from arrays, or the data moved: no PCA baseline
        train = None
    return codec.rate_distortion(run.model, ds, train=train)


@main.command()
@click.argument("run", type=click.Path())
@click.option("-n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="how many samples")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="grid.png, samples.npy or .csv")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--density", type=click.Choice(DENSITIES), default=None,
              help="for plain autoencoders (default gmm); a VAE samples its prior unless given")
@click.option("--label", type=int, default=None, help="the class a conditional VAE (kind cvae) generates")
@with_threads
def generate(run, n, out, seed, density, label, threads):
    """Generate N new examples from RUN (VAE: the prior; others: a density fitted to the training codes)."""
    _set_threads(threads)
    from aekit.evaluation.generation import sample
    from aekit.models.autoencoder import VariationalAutoencoder

    run = _load_run(run)
    if label is not None and not run.model.config.n_classes:
        raise click.UsageError(f"--label is for a conditional model (kind cvae); {run.folder} holds a "
                               f"{run.model.config.kind!r}")
    train = None
    if density is not None or not isinstance(run.model, VariationalAutoencoder):
        train = _run_data(run, None, ())
    samples = sample(run.model, n, train=train, density=density, seed=seed, labels=label)
    _write_output(out, samples, run.model, ncols=min(16, n))


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset name or path (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="codes.npy or codes.csv")
@with_threads
def encode(run, data, data_option, out, threads):
    """Write the codes of --data (VAE: posterior means; a conditional VAE's given the data's labels)."""
    _set_threads(threads)
    run = _load_run(run)
    ds = _run_data(run, data, data_option)
    z = run.model.encode(ds, labels=_conditioning(run.model, ds))
    header = [f"z{i}" for i in range(z.shape[1])]
    if _is_table_file(out) and ds.ids is not None:  # the rows keep their identifier columns
        import pandas as pd

        from aekit.anomaly.detect import with_ids

        return _write_frame(out, with_ids(ds, pd.DataFrame(z, columns=header)))
    _write_output(out, z, run.model, header=header)


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", required=True, help="dataset name or path (read in the run's scaling)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="the file to write")
@click.option("--bits", type=int, default=None, help="quantisation: the widest code dimension gets 2**bits "
              "levels, 1 to 12 [default: 8]")
@click.option("--step", type=float, default=None, help="quantisation step in code units, instead of --bits "
              "(a model trained with --code-noise W was trained for step W)")
@with_threads
def compress(run, data, data_option, out, bits, step, threads):
    """Compress --data into one file: RUN's codes, quantised and range-coded (README: Compression)."""
    _set_threads(threads)
    from aekit import codec

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
@with_threads
def decompress(run, file, out, threads):
    """Decode FILE, written by `compress` with the same RUN, to --out."""
    _set_threads(threads)
    from aekit import codec

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

    from aekit.data.images import as_images, image_shape

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
@click.option("--data", help="dataset name or path (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help=".npy, .csv, or .png: the first 64 examples, input (noisy) and reconstruction rows")
@click.option("--noise", type=click.Choice(NOISES), default=None,
              help="corrupt the input first (denoising)")
@click.option("--noise-level", type=float, default=0.3, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@with_threads
def reconstruct(run, data, data_option, out, noise, noise_level, seed, threads):
    """Reconstruct --data (optionally corrupted with --noise first)."""
    _set_threads(threads)
    import torch

    from aekit.data.images import interleave
    from aekit.models.config import check_noise_level
    from aekit.models.corruption import corrupt

    run = _load_run(run)
    model = run.model
    ds = _run_data(run, data, data_option)
    clean = torch.as_tensor(np.asarray(ds.x, dtype=np.float32))
    rows = [clean]
    if noise is not None:
        if noise_level < 0 or (noise in ("masking", "salt_and_pepper") and noise_level > 1):
            raise click.BadParameter(f"{noise_level} is out of range for --noise {noise}", param_hint="--noise-level")
        check_noise_level(noise, noise_level, model.config.input_shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rows.append(corrupt(clean, noise, noise_level))
    recon = model.reconstruct(rows[-1].numpy(), labels=_conditioning(model, ds))
    if Path(out).suffix.lower() == ".png":  # the first 64: input (, corrupted), reconstruction, 8 per row
        k = min(64, len(clean))
        _write_output(out, interleave([r[:k] for r in [*rows, recon]], ncols=8), model, ncols=min(8, k))
    elif _is_table_file(out) and ds.feature_names is not None:  # a table's own columns and units, ids first
        from aekit.anomaly.detect import in_original_units, with_ids

        frame = in_original_units(ds, recon)
        _write_frame(out, with_ids(ds, frame) if ds.ids is not None else frame)
    else:
        _write_output(out, recon, model)


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset name or path (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--from", "start", type=click.IntRange(min=0), default=None, help="row index of the first example")
@click.option("--to", "end", type=click.IntRange(min=0), default=None, help="row index of the last example")
@click.option("--from-label", default=None, help="start at an example of this class (its name or number)")
@click.option("--to-label", default=None, help="end at an example of this class (its name or number)")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--method", type=click.Choice(["auto", "linear", "spherical"]), default="auto", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True, help="which example of a class (--from-label)")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="path.png or path.npy")
@with_threads
def interpolate(run, data, data_option, start, end, from_label, to_label, steps, method, seed, out, threads):
    """Decode the path between two examples' codes: rows --from/--to, or examples of classes --from-label/--to-label."""
    _set_threads(threads)
    from aekit.evaluation.generation import interpolate as interp

    run = _load_run(run)
    ds = _run_data(run, data, data_option)
    rng = np.random.default_rng(seed)
    rows = [_example_row(ds, index, label, flag, rng) for index, label, flag in
            ((start, from_label, "--from"), (end, to_label, "--to"))]
    path = interp(run.model, np.asarray(ds.x[rows[0]]), np.asarray(ds.x[rows[1]]), steps=steps, method=method)
    _write_output(out, path, run.model, ncols=steps)


def _example_row(ds, index, label, flag: str, rng) -> int:
    """The row --from/--to names, or a (seeded) random example of the class --from-label/--to-label names."""
    if (index is None) == (label is None):
        raise click.UsageError(f"give either {flag} (a row index) or {flag}-label (a class)")
    if index is not None:
        if index >= len(ds):
            raise click.BadParameter(f"{index} is out of range: the data have {len(ds)} examples", param_hint=flag)
        return index
    if ds.y is None:
        raise click.BadParameter(f"the data ({ds.name}) have no labels", param_hint=f"{flag}-label")
    classes = list(ds.info.get("classes") or [])
    code = classes.index(label) if label in classes else int(label) if str(label).lstrip("-").isdigit() else None
    rows = np.flatnonzero(np.asarray(ds.y) == code) if code is not None else []
    if len(rows) == 0:
        known = classes or sorted(set(np.asarray(ds.y).tolist()))
        raise click.BadParameter(f"no example of class {label!r}; classes: {known}", param_hint=f"{flag}-label")
    return int(rng.choice(rows))


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset name or path (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="scores.csv (or .tsv): identifier columns, score, outlier (0/1), [top_features, contributions]")
@click.option("--contamination", type=float, default=None,
              help="re-threshold: flag this fraction of the scored rows, in (0, 0.5] "
                   "(default: the threshold learnt on the training rows)")
@click.option("--false-alarm-rate", type=float, default=None,
              help="novelty: flag a clean row with at most this probability (from the run's held-out rows)")
@click.option("--explain", is_flag=True, help="add top_features and each feature's contribution to the score")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True, help="names in top_features")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="also write an HTML report: score histogram, threshold, top anomalies and their causes")
@with_threads
def detect(run, data, data_option, out, contamination, false_alarm_rate, explain, top, report_path, threads):
    """Anomaly scores of --data (higher = more anomalous), outlier labels and, with --explain, why."""
    _set_threads(threads)
    from aekit.anomaly import detect as scoring

    if contamination is not None and not 0 < contamination <= 0.5:
        raise click.BadParameter(f"{contamination} is not in (0, 0.5]", param_hint="--contamination")
    if not _is_table_file(out):
        raise click.UsageError(f"--out {out}: use a .csv or .tsv file")
    if report_path is not None and Path(report_path).suffix.lower() not in (".html", ".htm"):
        raise click.UsageError(f"--report {report_path}: use an .html file")
    for path in filter(None, (out, report_path)):
        if not Path(path).parent.exists():
            raise click.UsageError(f"{path}: folder {Path(path).parent} does not exist")
    loaded = _load_run(run)
    ds = _run_data(loaded, data, data_option)
    result = scoring.detect(loaded, ds, contamination, false_alarm_rate, explain, top,
                            contributions=report_path is not None)
    _write_frame(out, result.frame)
    flagged = int(result.frame["outlier"].sum())
    click.echo(f"{flagged} of {len(result.frame)} flagged as outliers (threshold {result.threshold:.4g}, {result.rule})")
    if report_path is not None:
        from aekit.report.detection import write_detection_report

        click.echo(f"wrote {write_detection_report(Path(report_path), loaded, ds, result)}")


@main.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="dataset for the figures (default: the run's training data)")
@click.option("--data-option", multiple=True, metavar="KEY=VALUE")
@with_threads
def report(run, data, data_option, threads):
    """(Re)write RUN/report.html."""
    _set_threads(threads)
    from aekit.report import write_report

    loaded = _load_run(run)
    ds = _run_data(loaded, data, data_option) if data else None
    click.echo(f"wrote {write_report(run, data=ds)}")


@main.command()
@click.option("--data", default="mnist-5k", show_default=True, help="image dataset for the digit experiments")
@click.option("--out", default="runs/tour", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="fewer epochs and examples (about a minute)")
@click.option("--seed", type=SEED, default=0, show_default=True)
@with_threads
def tour(data, out, quick, seed, threads):
    """The lectures end to end: sixteen experiments in one self-contained HTML report."""
    _set_threads(threads)
    from aekit.tour import run_tour

    path = run_tour(data=data, out=out, quick=quick, seed=seed, echo=lambda s: click.echo(s, err=True))
    click.echo(f"tour report: {path}")


def run(argv=None) -> int:
    """Entry point: map errors to exit codes and one line on stderr (warnings: one line each too)."""
    debug = bool(os.environ.get("AEKIT_DEBUG"))
    if not debug:
        warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    try:
        main.main(args=argv, prog_name="aekit", standalone_mode=False)
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
        click.echo(f"error: {_one_line(e)}", err=True)
        return 2
    except (AekitError, OSError, RuntimeError, ValueError) as e:
        if debug:
            raise
        click.echo(f"error: {_one_line(e)}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except MemoryError:
        if debug:
            raise
        click.echo("error: out of memory (use fewer examples, a smaller batch or a smaller model)", err=True)
        return 1
    except Exception as e:  # the CLI promises one line, never a traceback
        if debug:
            raise
        click.echo(f"error: {type(e).__name__}: {_one_line(e)} (AEKIT_DEBUG=1 shows the traceback)", err=True)
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def entry() -> None:
    sys.exit(run())
