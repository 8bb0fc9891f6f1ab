"""The `aekit` command (also `python -m aekit`).

Options map one to one to the library (same names, kebab-case). Exit codes:
0 success, 2 usage errors (unknown kind/dataset/option, bad values, missing or
foreign run folder), 1 runtime failures. Errors print one line, no traceback
(set AEKIT_DEBUG=1 to see it).

Here: the `main` group, `run` (errors to exit codes) and the registration of the commands, one module per
group of commands: info (kinds, datasets, report, tour), train (train, resume), evaluate, use (generate,
encode, reconstruct, interpolate), detect, codec (compress, decompress), export (ONNX files). Shared by
them: options (what a command reads: the option schema, conversions, --data/--missing/--threads/
--max-memory, the run), flags (train's and resume's model and fit flags, typed, with defaults and ranges,
from the dataclasses) and outputs (what it writes, through the one writer of runs/storage.py).

Signals: `run` installs the SIGINT and SIGTERM handlers once (storage.handle_signals): both become an
exception, every temporary file is removed, and one line says what was kept and how to go on (train and
resume: the last finished epoch and the resume command; the others: what was written, else that nothing
was and the files there are unchanged); exit 130 (SIGINT) or 143 (SIGTERM).

Start-up: `aekit --help` and `--version` do not import torch. The modules here import click, the standard
library, aekit.errors and aekit.runs.storage (no torch) at module level; everything else is imported
inside the commands.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings

import click

from aekit import budget
from aekit.cli import codec, detect, evaluate, export, info, train, use
from aekit.errors import AekitError, CheckpointError, ConfigError, DataError
from aekit.runs import storage

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
    """Entry point: map errors to exit codes and one line on stderr (warnings: one line each too); SIGINT
    and SIGTERM handled (module docstring), no temporary file left on any exit."""
    storage.reset()
    budget.set_max_memory(None)  # each command its own limits (--max-memory, --max-seconds)
    budget.set_max_seconds(None)
    restore = storage.handle_signals()
    try:
        try:
            return _run(argv)
        except KeyboardInterrupt as e:  # a signal in the instant between the command's end and here
            return _interrupted(e)
    finally:
        restore()
        storage.remove_temporaries()


def _run(argv) -> int:
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
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # click's own wrapping of Ctrl-C (and our SIGTERM)
            return _interrupted(e.__cause__)
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
    except KeyboardInterrupt as e:
        return _interrupted(e)
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


def _interrupted(e: KeyboardInterrupt) -> int:
    """One line: what the command had written whole (each file is whole or not there: runs/storage.py) and
    that the rest is unchanged; the exit code of the signal."""
    storage.remove_temporaries()
    signum = getattr(e, "signum", signal.SIGINT)
    how = "interrupted" if signum == signal.SIGINT else f"interrupted ({signal.Signals(signum).name})"
    done = [str(p) for p in storage.written()]
    if not done:
        click.echo(f"{how}: nothing was written, and files that were there are unchanged; run the command "
                   "again to do it", err=True)
    else:
        shown = ", ".join(done[:3]) + (f" and {len(done) - 3} more" if len(done) > 3 else "")
        click.echo(f"{how}: only {shown} {'was' if len(done) == 1 else 'were'} written (whole); nothing else "
                   "changed; run the command again to do the rest", err=True)
    return 128 + signum


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def entry() -> None:
    sys.exit(run())
