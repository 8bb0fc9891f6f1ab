"""`aekit export`: a run's model and anomaly scorer as files that run without Python (ONNX)."""

from __future__ import annotations

from pathlib import Path

import click

from aekit.cli.options import Command, set_threads, with_threads


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@click.option("--format", "file_format", default="onnx", show_default=True, metavar="FORMAT",
              help="the file format: onnx")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="folder for encoder.onnx, decoder.onnx, scorer.onnx (a run with a detector) and export.json")
@click.option("--overwrite", is_flag=True, help="replace those files where --out already holds them")
@click.option("--exporter", type=click.Choice(["auto", "torchscript", "dynamo"]), default="auto", show_default=True,
              help="torch's ONNX exporter: auto takes the TorchScript one and falls back to dynamo")
@with_threads
def export(run, file_format, out, overwrite, exporter, threads):
    """Write RUN's encoder, decoder and anomaly scorer as ONNX files into --out, with a manifest."""
    from aekit.onnx_export import MANIFEST
    from aekit.onnx_export import export as export_files
    from aekit.runs import storage
    from aekit.runs.storage import read_json

    set_threads(threads)
    storage.note_read(run, f"the run folder {run}")
    if Path(out).parent.is_dir():  # (a new parent is made by the export)
        storage.check_target(out, "--out", folder=True)  # not into the run it reads, not onto a file
    folder = export_files(run, out, format=file_format, overwrite=overwrite, exporter=exporter)
    manifest = read_json(folder / MANIFEST)
    for name, facts in manifest["files"].items():
        shapes = ", ".join(f"{spec['name']} {tuple(spec['shape'])}" for spec in facts["outputs"])
        click.echo(f"wrote {folder / name}: {shapes}; largest error against PyTorch "
                   f"{facts['check']['max_rel_error']:.2g} of the output's scale")
    for name, reason in manifest.get("not_exported", {}).items():
        click.echo(f"no {name}: {reason}")
    click.echo(f"wrote {folder / MANIFEST} (ONNX opset {manifest['opset']})")


COMMANDS = (export,)
