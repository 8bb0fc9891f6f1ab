"""Helpers shared by the tests that run the command line (or Python) in a subprocess."""

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


def cli(*args, cwd=None, check=None, env=None, memory=None, timeout=600):
    """`python -m aekit ARGS` in a subprocess (optionally under an address-space limit)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("AEKIT_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout, preexec_fn=_limit(memory))
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


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
