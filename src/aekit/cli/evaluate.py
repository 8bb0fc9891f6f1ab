"""`aekit evaluate`: the metrics of a run's model on some data, printed, as JSON and as an HTML page."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from aekit.cli.options import Command, load_run, note_data, run_data, set_threads, with_data, with_threads
from aekit.cli.outputs import claim, with_overwrite
from aekit.errors import AekitError


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@with_data()
@click.option("--log-likelihood-samples", type=click.IntRange(min=0), default=1000, show_default=True,
              help="importance samples per example (0: skip the log-likelihood)")
@click.option("--log-likelihood-examples", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write every metric to this JSON file")
@click.option("--rate-distortion", is_flag=True,
              help="also compress --data with RUN's codec at bits 2-8, next to the PCA codec (fitted on the run's "
                   "training data) and PNG/JPEG/WebP for images")
@click.option("--report", "report_out", type=click.Path(dir_okay=False),
              help="write the metrics (and the rate-distortion plot) as an HTML page")
@with_overwrite
@with_threads
def evaluate(run, data, data_option, log_likelihood_samples, log_likelihood_examples, json_out, rate_distortion,
             report_out, overwrite, threads):
    """Measure the model of RUN on --data: reconstruction, likelihood, latent space, compression."""
    set_threads(threads)
    from aekit.evaluation.evaluate import evaluate as ev
    from aekit.report.run import flatten, write_evaluation
    from aekit.runs import storage

    loaded = load_run(run)
    ds = run_data(loaded, data, data_option)
    if rate_distortion:
        note_data(loaded, None)  # the PCA codec is fitted on the run's training data
    claim(json_out, "--json", overwrite)
    claim(report_out, "--report", overwrite)
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


COMMANDS = (evaluate,)


def _rate_distortion(run, ds) -> dict:
    """codec.rate_distortion of ds, with the PCA codec fitted on the run's training data when it is recorded."""
    from aekit import codec

    try:
        train = run.dataset()
    except (AekitError, OSError):  # trained from arrays, or the data moved: no PCA baseline
        train = None
    return codec.rate_distortion(run.model, ds, train=train)
