"""`aekit detect`: anomaly scores of some data under a run's model, outlier labels, explanations and a report."""

from __future__ import annotations

from pathlib import Path

import click

from aekit.cli.options import Command, load_run, run_data, set_threads, with_data, with_threads
from aekit.cli.outputs import claim, is_table_file, with_overwrite, write_frame


@click.command(cls=Command)
@click.argument("run", type=click.Path())
@with_data()
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
@with_overwrite
@with_threads
def detect(run, data, data_option, out, contamination, false_alarm_rate, explain, top, report_path, overwrite,
           threads):
    """Anomaly scores of --data (higher = more anomalous), outlier labels and, with --explain, why."""
    set_threads(threads)
    from aekit.anomaly import detect as scoring

    if contamination is not None and not 0 < contamination <= 0.5:
        raise click.BadParameter(f"{contamination} is not in (0, 0.5]", param_hint="--contamination")
    if not is_table_file(out):
        raise click.UsageError(f"--out {out}: use a .csv or .tsv file")
    if report_path is not None and Path(report_path).suffix.lower() not in (".html", ".htm"):
        raise click.UsageError(f"--report {report_path}: use an .html file")
    loaded = load_run(run)
    ds = run_data(loaded, data, data_option)
    claim(out, "--out", overwrite)
    claim(report_path, "--report", overwrite)
    result = scoring.detect(loaded, ds, contamination, false_alarm_rate, explain, top,
                            contributions=report_path is not None)
    write_frame(out, result.frame)
    flagged = result.flagged
    click.echo(f"{flagged} of {len(result.frame)} flagged as outliers (threshold {result.threshold:.4g}, {result.rule})")
    if report_path is not None:
        from aekit.report.detection import write_detection_report

        click.echo(f"wrote {write_detection_report(Path(report_path), loaded, ds, result)}")


COMMANDS = (detect,)
