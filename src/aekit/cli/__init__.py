"""The `aekit` command (also `python -m aekit`).

Options map one to one to the library (same names, kebab-case). Exit codes:
0 success, 2 usage errors (unknown kind/dataset/option, bad values, missing or
foreign run folder), 1 runtime failures. Errors print one line, no traceback
(set AEKIT_DEBUG=1 to see it).

Here: the `main` group, `run` (errors to exit codes) and the registration of the commands, one module per
group of commands: info (kinds, datasets, report, tour), train (train, resume), evaluate, use (generate,
encode, reconstruct, interpolate), detect, codec (compress, decompress), export (ONNX files). Shared by
them: options (what a command reads: the option schema, conversions, --data/--missing/--threads, the run),
flags (train's and resume's model and fit flags, typed, with defaults and ranges, from the dataclasses)
and outputs (what it writes). Ctrl-C: one line (train: what the run folder kept and how to resume), exit 130.

Start-up: `aekit --help` and `--version` do not import torch. The modules here import click, the standard
library and aekit.errors at module level; everything else is imported inside the commands.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from aekit.cli import codec, detect, evaluate, export, info, train, use
from aekit.errors import AekitError, CheckpointError, ConfigError, DataError

USAGE_ERRORS = (ConfigError, DataError, CheckpointError)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="aekit")
def main():
    """The autoencoder family: train, evaluate, generate, encode, detect, report, and the tour."""


# A new command module: import it above and name it here; its COMMANDS tuple lists the commands it defines.
for _module in (info, train, evaluate, use, detect, codec, export):
    for _command in _module.COMMANDS:
        main.add_command(_command)


def run(argv=None) -> int:
    """Entry point: map errors to exit codes and one line on stderr (warnings: one line each too)."""
    debug = bool(os.environ.get("AEKIT_DEBUG"))
    if not debug:
        warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    try:
        code = main.main(args=argv, prog_name="aekit", standalone_mode=False)
        return code if isinstance(code, int) else 0  # ctx.exit(code) / click.exceptions.Exit(code) in a command
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
