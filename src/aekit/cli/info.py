"""What there is and what a run shows: `aekit kinds`, `datasets`, `report` and `tour`."""

from __future__ import annotations

from pathlib import Path

import click

from aekit.cli.options import SEED, Command, load_run, run_data, set_threads, with_data, with_threads
from aekit.cli.outputs import claim

TOUR_PAGE = "tour.html"  # the one file the tour writes into --out


@click.command(cls=Command)
def kinds():
    """List the kinds of autoencoder with their options and defaults."""
    from aekit.models.kinds import kinds as all_kinds

    for k in all_kinds():
        click.echo(str(k))


@click.command(cls=Command)
def datasets():
    """List the named datasets with their options."""
    from aekit import data as ds

    for s in ds.list():
        click.echo(str(s))
    click.echo("Files: .npy, .npz, .csv, .tsv, .txt, .parquet, IDX (.gz), or a folder of PNG/JPEG images (see README).")


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@with_data("dataset for the figures (default: the run's training data)")
@with_threads
def report(run, data, data_option, threads):
    """(Re)write RUN/report.html."""
    set_threads(threads)
    from aekit.report import write_report

    loaded = load_run(run, reads=False)  # report.html is the run's own file: rewritten, as training writes it
    ds = run_data(loaded, data, data_option) if data else None
    click.echo(f"wrote {write_report(run, data=ds)}")


@click.command(cls=Command)
@click.option("--data", default="mnist-5k", show_default=True, help="image dataset for the digit experiments")
@click.option("--out", default="runs/tour", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="fewer epochs and examples (about 70 s on an idle 2-core machine)")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help=f"replace --out/{TOUR_PAGE} even when an earlier tour did not write it")
@with_threads
def tour(data, out, quick, seed, overwrite, threads):
    """The lectures end to end: sixteen experiments in one self-contained HTML report."""
    set_threads(threads)
    from aekit.runs import storage
    from aekit.tour import run_tour

    storage.note_read(data, f"the data ({data})")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise click.UsageError(f"--out {folder} exists and is not a folder")
    if folder.is_dir():  # a page of an earlier tour is the tour's own: rewritten; anything else needs --overwrite
        page = folder / TOUR_PAGE
        claim(page, "--out", overwrite or _earlier_tour(page))

    path = run_tour(data=data, out=out, quick=quick, seed=seed, echo=lambda s: click.echo(s, err=True))
    click.echo(f"tour report: {path}")


COMMANDS = (kinds, datasets, report, tour)


def _earlier_tour(page: Path) -> bool:
    """page is a tour's own report: its footer holds the command that wrote it (tour/__init__.py)."""
    if not page.is_file():  # checked before opening: a FIFO would block the open
        return False
    try:
        with open(page, "rb") as f:
            f.seek(max(0, page.stat().st_size - 65536))
            return b"<pre>aekit tour --data " in f.read()
    except OSError:
        return False
