"""Using a trained run: `aekit generate`, `encode`, `reconstruct` and `interpolate`."""

from __future__ import annotations

from pathlib import Path

import click

from aekit.cli.options import SEED, Command, LateChoice, load_run, run_data, set_threads, with_data, with_threads
from aekit.cli.outputs import claim, is_table_file, with_overwrite, write_frame, write_output


def _densities():
    from aekit.evaluation.generation import DENSITIES

    return DENSITIES


def _noises():
    from aekit.models.config import NOISES

    return NOISES


def _conditioning(model, ds):
    """A conditional model's labels for ds (its integer labels), else None."""
    from aekit.evaluation.metrics import conditioning

    return conditioning(model, ds)


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@click.option("-n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="how many samples")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="grid.png, samples.npy or .csv")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--density", type=LateChoice(_densities), default=None,
              help="for plain autoencoders (default gmm); a VAE samples its prior unless given")
@click.option("--label", type=int, default=None, help="the class a conditional VAE (kind cvae) generates")
@with_overwrite
@with_threads
def generate(run, n, out, seed, density, label, overwrite, threads):
    """Generate N new examples from RUN (VAE: the prior; others: a density fitted to the training codes)."""
    set_threads(threads)
    from aekit.evaluation.generation import sample
    from aekit.models.autoencoder import VariationalAutoencoder

    run = load_run(run)
    if label is not None and not run.model.config.n_classes:
        raise click.UsageError(f"--label is for a conditional model (kind cvae); {run.folder} holds a "
                               f"{run.model.config.kind!r}")
    train = None
    if density is not None or not isinstance(run.model, VariationalAutoencoder):
        train = run_data(run, None, ())
    claim(out, "--out", overwrite)
    samples = sample(run.model, n, train=train, density=density, seed=seed, labels=label)
    write_output(out, samples, run.model, ncols=min(16, n))


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@with_data()
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="codes.npy or codes.csv")
@with_overwrite
@with_threads
def encode(run, data, data_option, out, overwrite, threads):
    """Write the codes of --data (VAE: posterior means; a conditional VAE's given the data's labels)."""
    set_threads(threads)
    run = load_run(run)
    ds = run_data(run, data, data_option)
    claim(out, "--out", overwrite)
    z = run.model.encode(ds, labels=_conditioning(run.model, ds))
    header = [f"z{i}" for i in range(z.shape[1])]
    if is_table_file(out) and ds.ids is not None:  # the rows keep their identifier columns
        import pandas as pd

        from aekit.anomaly.detect import with_ids

        return write_frame(out, with_ids(ds, pd.DataFrame(z, columns=header)))
    write_output(out, z, run.model, header=header)


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@with_data()
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help=".npy, .csv, or .png: the first 64 examples, input (noisy) and reconstruction rows")
@click.option("--noise", type=LateChoice(_noises), default=None,
              help="corrupt the input first (denoising)")
@click.option("--noise-level", type=float, default=0.3, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@with_overwrite
@with_threads
def reconstruct(run, data, data_option, out, noise, noise_level, seed, overwrite, threads):
    """Reconstruct --data (optionally corrupted with --noise first)."""
    set_threads(threads)
    import numpy as np
    import torch

    from aekit.data.images import interleave
    from aekit.models.config import check_noise_level
    from aekit.models.corruption import corrupt

    run = load_run(run)
    model = run.model
    ds = run_data(run, data, data_option)
    claim(out, "--out", overwrite)
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
        write_output(out, interleave([r[:k] for r in [*rows, recon]], ncols=8), model, ncols=min(8, k))
    elif is_table_file(out) and ds.feature_names is not None:  # a table's own columns and units, ids first
        from aekit.anomaly.detect import in_original_units, with_ids

        frame = in_original_units(ds, recon)
        write_frame(out, with_ids(ds, frame) if ds.ids is not None else frame)
    else:
        write_output(out, recon, model)


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@with_data()
@click.option("--from", "start", type=click.IntRange(min=0), default=None, help="row index of the first example")
@click.option("--to", "end", type=click.IntRange(min=0), default=None, help="row index of the last example")
@click.option("--from-label", default=None, help="start at an example of this class (its name or number)")
@click.option("--to-label", default=None, help="end at an example of this class (its name or number)")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--method", type=click.Choice(["auto", "linear", "spherical"]), default="auto", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True, help="which example of a class (--from-label)")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="path.png or path.npy")
@with_overwrite
@with_threads
def interpolate(run, data, data_option, start, end, from_label, to_label, steps, method, seed, out, overwrite,
                threads):
    """Decode the path between two examples' codes: rows --from/--to, or examples of classes --from-label/--to-label."""
    set_threads(threads)
    import numpy as np

    from aekit.evaluation.generation import interpolate as interp

    run = load_run(run)
    ds = run_data(run, data, data_option)
    claim(out, "--out", overwrite)
    rng = np.random.default_rng(seed)
    rows = [_example_row(ds, index, label, flag, rng) for index, label, flag in
            ((start, from_label, "--from"), (end, to_label, "--to"))]
    path = interp(run.model, np.asarray(ds.x[rows[0]]), np.asarray(ds.x[rows[1]]), steps=steps, method=method)
    write_output(out, path, run.model, ncols=steps)


COMMANDS = (generate, encode, reconstruct, interpolate)


def _example_row(ds, index, label, flag: str, rng) -> int:
    """The row --from/--to names, or a (seeded) random example of the class --from-label/--to-label names."""
    import numpy as np

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
