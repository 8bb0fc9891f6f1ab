"""Helpers shared by the tests that run the command line (in process, or in a subprocess) or Python in a
subprocess."""

import os
import resource
import subprocess
import sys

MEMORY_LIMIT = 2 << 30  # address space for "memory bomb" subprocesses: a real allocation of the bomb would fail


def _limit(memory):
    if memory is None:
        return None

    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


# The CLI runs in the test's own process unless the test needs a process of its own (an address-space
# limit) or AEKIT_TEST_SUBPROCESS=1 asks for `python -m aekit` every time: a subprocess spends 3-5 s
# importing torch, pandas and scikit-learn, about half of the default run's time for ~200 calls.
IN_PROCESS = os.environ.get("AEKIT_TEST_SUBPROCESS") != "1"


def cli(*args, cwd=None, check=None, env=None, memory=None, timeout=600):
    """`aekit ARGS` as a user runs it: exit code, stdout and stderr (a CompletedProcess). In process through
    aekit.cli.run, or `python -m aekit ARGS` in a subprocess under an address-space limit (memory=)."""
    if memory is None and IN_PROCESS:
        proc = _cli_in_process([str(a) for a in args], cwd, env)
    else:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("AEKIT_DEBUG", None)
        proc = subprocess.run([sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True,
                              cwd=cwd, env=full_env, timeout=timeout, preexec_fn=_limit(memory))
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None):
    """What Python does with a warning it shows: formatwarning's text on stderr (the CLI sets the format)."""
    import warnings

    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _cli_in_process(args: list[str], cwd, env) -> subprocess.CompletedProcess:
    """aekit.cli.run(args) with what a fresh `python -m aekit` would have: its own stdout and stderr, the cwd
    and environment asked for, Python's default warning filters (pytest's configuration ignores some of
    ours, and a CLI test may expect them on stderr); the process's threads, limits and warning format are
    put back afterwards, so the next test finds the worker as it was."""
    import contextlib
    import io
    import warnings

    import torch

    from aekit import budget
    from aekit.cli import run

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd, threads, formatwarning = dict(os.environ), os.getcwd(), torch.get_num_threads(), \
        warnings.formatwarning
    saved_argv, sys.argv = sys.argv, [os.path.join(os.path.dirname(sys.executable), "aekit"), *args]  # recorded
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    os.environ.pop("AEKIT_DEBUG", None)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.showwarning = _warning_to_stderr  # not to pytest's record of the test's warnings
            warnings.resetwarnings()  # a fresh interpreter's filters (the warnings module's documentation)
            warnings.simplefilter("default")
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            code = run(args)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
        warnings.formatwarning = formatwarning
        budget.set_max_memory(None)
        budget.set_max_seconds(None)
    return subprocess.CompletedProcess(["aekit", *args], code, out.getvalue(), err.getvalue())


def python(code: str, *args, memory=None, timeout=600, env=None):
    """`python -c code ARGS` in a subprocess (optionally under an address-space limit)."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, preexec_fn=_limit(memory))


def assert_usage_error(proc, message):
    """Exit code 2, one line on stderr naming the problem, no traceback (one-line warnings may come before it)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0], lines[0]


# A command whose write of one file pauses (the temporary file written, before the rename), so that a
# test can deliver a signal in the middle of the write. AEKIT_TEST_SLOW_WRITE=NAME:N pauses the N-th
# write of a file called NAME; the child says "slow write: TMP" on stderr when it pauses.
_SLOW_WRITE = """
import os, sys, time
from aekit.runs import storage
name, nth = os.environ["AEKIT_TEST_SLOW_WRITE"].rsplit(":", 1)
real, seen = storage._fsync, [0]
def slow(path):
    base = os.path.basename(str(path))
    if base.startswith("." + name + ".") and base.endswith(".tmp"):
        seen[0] += 1
        if seen[0] == int(nth):
            print("slow write:", path, file=sys.stderr, flush=True)
            time.sleep(300)
    real(path)
storage._fsync = slow
from aekit.cli import run
sys.exit(run(sys.argv[1:]))
"""


def slow_write_cli(name: str, nth: int, *args, cwd=None):
    """`aekit ARGS` in a subprocess whose nth write of a file named `name` pauses before its rename;
    returns (the process, the temporary file's path) once it pauses there."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AEKIT_TEST_SLOW_WRITE": f"{name}:{nth}"}
    env.pop("AEKIT_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITE, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    lines = []
    for line in proc.stderr:
        if line.startswith("slow write: "):
            return proc, line[len("slow write: "):].strip()
        lines.append(line)
    proc.wait(timeout=60)
    raise AssertionError(f"{name} was not written a {nth}. time (exit {proc.returncode}): {''.join(lines)}")


def tiny_table(path, rows: int = 80, seed: int = 0):
    """A small numeric CSV (an id column and four sensors) for CLI tests: a run on it trains in a second."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).cumsum(axis=1)
    lines = ["id,a,b,c,d"] + [f"{i}," + ",".join(f"{v:.4f}" for v in row) for i, row in enumerate(x)]
    path.write_text("\n".join(lines) + "\n")
    return path
