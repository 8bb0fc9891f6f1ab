"""`aekit train` and `aekit resume`: fit a model into a run folder, then its report and a one-screen summary."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import click

from aekit.cli.options import (
    RUN_OPTIONS,
    LateOptions,
    config_file_settings,
    data_options,
    fit_fields,
    fit_flags,
    key_values,
    load_run,
    model_flags,
    note_data,
    set_threads,
    settings_from,
    with_data,
    with_threads,
)


@click.command(cls=LateOptions, late_options=lambda: fit_flags() + model_flags(),
               context_settings={"ignore_unknown_options": False})
@click.argument("kind", required=False)
@with_data("dataset name (see `datasets`) or path to a file or image folder",
           option_help="an option of the data source, KEY=VALUE (repeatable), e.g. split=test or label_column=y")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of options")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override one option (after --config)")
@click.option("--device", default=None, help="cpu, cuda, mps or auto")
@click.option("--out", default=None, help="run folder (default runs/<kind>)")
@click.option("--resume", is_flag=True, default=None,
              help="continue the run in --out (the model comes from the run: no model options needed)")
@click.option("--overwrite", is_flag=True, default=None, help="replace an existing run in --out")
@click.option("--quiet", is_flag=True, help="no progress bar")
@with_threads
def train(kind, data, data_option, config_file, overrides, device, out, resume, overwrite, quiet, threads, **flags):
    """Train KIND on --data; writes the run folder with report.html."""
    import dataclasses

    from aekit import data as datasets
    from aekit.models.kinds import build, data_defaults_for
    from aekit.training.options import FitOptions, table_fit_length

    given = {k: v for k, v in flags.items() if v is not None}
    given.update({k: v for k, v in dict(device=device, out=out, resume=resume, overwrite=overwrite).items() if v})
    if config_file:  # what train reads: the run folder it writes may not be one of them
        from aekit.runs import storage

        storage.note_read(config_file, f"the --config file {config_file}")
    settings = {**config_file_settings(config_file), **settings_from(given, "option"),
                **settings_from(key_values(overrides, "--set"), "--set")}
    kind = kind or settings.pop("kind", None)
    settings.pop("kind", None)
    data = data or settings.pop("data", None)
    note_data(None, data)
    options = {**(settings.pop("data_options", None) or {}), **data_options(data_option)}
    fields = fit_fields()
    fit_args = {k: settings.pop(k) for k in list(settings) if k in fields}
    run_args = {k: settings.pop(k) for k in list(settings) if k in RUN_OPTIONS}
    folder = Path(run_args.pop("out", None) or Path("runs") / (kind or "run"))
    if run_args.get("resume") and (folder / "config.json").exists():
        _refuse_conflicts(folder, kind, settings)
        return _resume(folder, data, options, fit_args, run_args, quiet, threads)
    if kind is None:
        raise click.UsageError("missing KIND (see `aekit kinds`)")
    if data is None:
        raise click.UsageError("missing --data (a dataset name, see `aekit datasets`, or a path)")
    ds = datasets.load(data, **options)
    if ds.feature_names is not None:  # a table: its columns and rows decide what the user leaves open
        settings = {**data_defaults_for(kind, ds), **settings}
        val_fraction = fit_args.get("val_fraction", FitOptions.val_fraction)
        fit_args = {**table_fit_length(len(ds) - round(val_fraction * len(ds))), **fit_args}
    # Build the model before anything touches the disk: a bad option leaves no folder.
    model = build(kind, ds.input_shape, **settings)
    FitOptions(**{**dataclasses.asdict(FitOptions()), **fit_args}).validate()
    _fit_and_report(model, ds, folder, fit_args, run_args, quiet, threads, resumed_at=None)


@click.command(cls=LateOptions, late_options=fit_flags)
@click.argument("run", type=click.Path())
@with_data()
@click.option("--device", default=None, help="cpu, cuda, mps or auto")
@click.option("--quiet", is_flag=True, help="no progress bar")
@with_threads
def resume(run, data, data_option, device, quiet, threads, **flags):
    """Continue training RUN (e.g. with more --epochs): the model, the data and every training option
    not given here come from the run."""
    given = settings_from({k: v for k, v in flags.items() if v is not None}, "option")
    _resume(Path(run), data, data_options(data_option), given, {"device": device} if device else {}, quiet, threads)


COMMANDS = (train, resume)


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


def _resume(folder: Path, data, options: dict, fit_args: dict, run_args: dict, quiet: bool, threads) -> None:
    from aekit.models.kinds import model_from_config
    from aekit.training.fit import recorded_options
    from aekit.training.options import FitOptions

    run = load_run(folder, reads=False)  # the run folder resume writes
    note_data(run, data)
    fit_args = {**recorded_options(run, fit_args), **fit_args}
    FitOptions(**fit_args).validate()
    ds = run.dataset(data, options)
    run_args = {**run_args, "resume": True}
    _fit_and_report(model_from_config(run.config), ds, folder, fit_args, run_args, quiet, threads,
                    resumed_at=len(run.history))


def _fit_and_report(model, ds, folder: Path, fit_args: dict, run_args: dict, quiet: bool, threads,
                    resumed_at: int | None) -> None:
    """fit into folder, then report.html and a one-screen summary (rank 0 only under torchrun). Ctrl-C:
    one line saying what the folder keeps and how to resume, exit 130. resumed_at: the epochs the run
    had before (None: a new run)."""
    from aekit.report import write_report
    from aekit.runs import storage
    from aekit.training.fit import fit

    set_threads(threads)
    kind = model.config.kind
    command = "aekit " + shlex.join(sys.argv[1:])
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only rank 0 reports
    if main_process:
        click.echo(f"training {kind} on {ds.name}: {len(ds)} examples of shape {ds.input_shape} -> {folder}"
                   + (f" ({os.environ['WORLD_SIZE']} processes)" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""))
    started = time.perf_counter()
    try:
        history = fit(model, ds, out=folder, verbose=0 if quiet else 1, command=command, n_threads=threads,
                      **{k: v for k, v in fit_args.items() if k != "n_threads"}, **run_args)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (storage.Interrupted)
        if main_process:
            line = interrupted_line(folder, resumed_at, run_args.get("overwrite", False), getattr(e, "signum", None))
            click.echo(f"\n{line}", err=True)
        raise click.exceptions.Exit(getattr(e, "exit_code", 130)) from None
    seconds = time.perf_counter() - started
    if not main_process:
        return
    try:
        write_report(folder, data=ds)
    except KeyboardInterrupt as e:
        click.echo(f"\ninterrupted while writing the report: the run in {folder} is complete; "
                   f"`aekit report {shlex.quote(str(folder))}` writes its report", err=True)
        raise click.exceptions.Exit(getattr(e, "exit_code", 130)) from None
    metrics = storage.read_json(folder / "metrics.json")
    click.echo(f"\n{kind}: {trained_line(len(history), resumed_at)} in {seconds:.1f} s ({', '.join(history.stages)})")
    for split in ("train", "validation"):
        if split in metrics:
            terms = ", ".join(f"{k} {v:.4g}" for k, v in metrics[split].items())
            click.echo(f"  {split:<10} {terms}")
    click.echo(f"run folder: {folder}\nreport:     {folder / 'report.html'}")


def trained_line(total: int, resumed_at: int | None) -> str:
    """'12 epochs', or for a resumed run the epochs of this segment and the total:
    'trained 5 more epochs (10 in total)'."""
    if resumed_at is None:
        return f"{total} epochs"
    more = total - resumed_at
    return f"trained {more} more epoch{'' if more == 1 else 's'} ({total} in total)"


def interrupted_line(folder: Path, resumed_at: int | None, overwrite: bool, signum: int | None = None) -> str:
    """What a Ctrl-C (or a SIGTERM: `signum`) left in folder, in one line: the last finished epoch and the
    command that resumes it."""
    import signal

    from aekit.errors import AekitError
    from aekit.runs.run import WEIGHTS, read_history

    how = "interrupted" if signum in (None, signal.SIGINT) else f"interrupted ({signal.Signals(signum).name})"
    resume = f"aekit resume {shlex.quote(str(folder))}"
    if overwrite and resumed_at is None:
        return f"{how}: the overwrite was discarded; {folder} holds the run it had before"
    try:
        history = read_history(folder) if (folder / WEIGHTS).is_file() else None
    except (AekitError, OSError, ValueError):
        history = None
    if not history:
        return f"{how} before the first epoch ended: nothing was kept in {folder}"
    last = history[-1]
    where = f"epoch {last.get('epoch', len(history))}"
    if len(history.stages) > 1:
        where += f" of stage {last['stage']!r} ({len(history)} epochs in all)"
    if resumed_at is not None:
        where += f", {len(history) - resumed_at} of them in this session"
    return f"{how}: {folder} keeps the last finished epoch ({where}); continue with: {resume}"
