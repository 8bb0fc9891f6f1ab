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
