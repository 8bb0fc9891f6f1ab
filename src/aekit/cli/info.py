"""What there is and what a run shows: `aekit kinds`, `datasets`, `report` and `tour`."""

from __future__ import annotations

import click

from aekit.cli.options import SEED, load_run, run_data, set_threads, with_data, with_threads


@click.command()
def kinds():
    """List the kinds of autoencoder with their options and defaults."""
    from aekit.models.kinds import kinds as all_kinds

    for k in all_kinds():
        click.echo(str(k))


@click.command()
def datasets():
    """List the named datasets with their options."""
    from aekit import data as ds

    for s in ds.list():
        click.echo(str(s))
    click.echo("Files: .npy, .npz, .csv, .tsv, .txt, .parquet, IDX (.gz), or a folder of PNG/JPEG images (see README).")


@click.command()
@click.argument("run", type=click.Path())
@with_data("dataset for the figures (default: the run's training data)")
@with_threads
def report(run, data, data_option, threads):
    """(Re)write RUN/report.html."""
    set_threads(threads)
    from aekit.report import write_report

    loaded = load_run(run)
    ds = run_data(loaded, data, data_option) if data else None
    click.echo(f"wrote {write_report(run, data=ds)}")


@click.command()
@click.option("--data", default="mnist-5k", show_default=True, help="image dataset for the digit experiments")
@click.option("--out", default="runs/tour", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="fewer epochs and examples (about a minute)")
@click.option("--seed", type=SEED, default=0, show_default=True)
@with_threads
def tour(data, out, quick, seed, threads):
    """The lectures end to end: sixteen experiments in one self-contained HTML report."""
    set_threads(threads)
    from aekit.tour import run_tour

    path = run_tour(data=data, out=out, quick=quick, seed=seed, echo=lambda s: click.echo(s, err=True))
    click.echo(f"tour report: {path}")


COMMANDS = (kinds, datasets, report, tour)
