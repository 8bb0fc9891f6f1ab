"""`aekit compress` and `aekit decompress`: a run's codes, quantised and range-coded into one file, and back."""

from __future__ import annotations

from pathlib import Path

import click

from aekit.cli.options import Command, load_run, run_data, set_threads, with_data, with_threads
from aekit.cli.outputs import claim, is_image_folder, save_image_folder, with_overwrite, write_output
from aekit.errors import CheckpointError, DataError


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@with_data("dataset name or path (read in the run's scaling)", required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="the file to write")
@click.option("--bits", type=int, default=None, help="quantisation: the widest code dimension gets 2**bits "
              "levels, 1 to 12 [default: 8]")
@click.option("--step", type=float, default=None, help="quantisation step in code units, instead of --bits "
              "(a model trained with --code-noise W was trained for step W)")
@with_overwrite
@with_threads
def compress(run, data, data_option, out, bits, step, overwrite, threads):
    """Compress --data into one file: RUN's codes, quantised and range-coded (README: Compression)."""
    set_threads(threads)
    from aekit import codec
    from aekit.runs import storage

    if bits is not None and step is not None:
        raise click.UsageError("give --bits or --step, not both")

    loaded = load_run(run)
    ds = run_data(loaded, data, data_option)
    out = claim(out, "--out", overwrite)
    blob = codec.compress(loaded.model, ds, bits=8 if bits is None else bits, step=step)
    storage.write_bytes(out, blob)
    header = codec.read_header(blob)
    click.echo(f"wrote {out}: {len(ds)} examples in {len(blob):,} bytes, {len(blob) / len(ds):.2f} per example "
               f"(header {header.header_bytes} bytes, codes {len(blob) - header.header_bytes:,})")


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(),
              help="examples.npy, grid.png (the first 64) or a folder (one PNG per example)")
@with_overwrite
@with_threads
def decompress(run, file, out, overwrite, threads):
    """Decode FILE, written by `compress` with the same RUN, to --out."""
    set_threads(threads)
    from aekit import codec
    from aekit.runs import storage

    loaded = load_run(run)
    path = Path(file)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a regular file")
    storage.note_read(path, f"the compressed file {path}")
    out = claim(out, "--out", overwrite, folder=is_image_folder(out))
    try:
        x = codec.decompress(loaded.model, path.read_bytes())
    except (DataError, CheckpointError) as e:
        raise type(e)(f"{path}: {e}") from None
    if not is_image_folder(out):
        write_output(out, x[:64] if out.suffix.lower() == ".png" else x, loaded.model, ncols=8)
    else:
        save_image_folder(out, x, loaded.model.config.input_shape)
        click.echo(f"wrote {len(x)} images to {out}/")


COMMANDS = (compress, decompress)
