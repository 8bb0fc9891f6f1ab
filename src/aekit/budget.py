"""Budgets checked before anything is allocated (issue 25).

Every size that comes from a user or a file (a latent size, widths, an image canvas, a count in a file
header, a number of samples or steps, threads) is turned into an estimate of the memory it needs and
checked here first, so that a typo (`latent_dim=1e9`) or a hostile file is a clear error naming the
estimate and the limit, never an allocator message, a swap storm or the kernel's OOM killer.

The limit: `set_max_memory(bytes)` (the CLI's `--max-memory`), else the environment variable
`AEKIT_MAX_MEMORY` ("8G", "512M", "2.5GB" or bytes), else 75% of the machine's physical memory (and
no more than what is left of the process's address-space limit, RLIMIT_AS, when one is set).

Work whose size is a count of repetitions rather than of bytes (the importance samples of a
log-likelihood) gets a time estimate instead, checked by `check_time` against `set_max_seconds`,
else `AEKIT_MAX_SECONDS` ("3600", "90m", "2h"), else DEFAULT_MAX_SECONDS.
"""

from __future__ import annotations

import os
import re
import resource

from aekit.errors import ConfigError

DEFAULT_SHARE = 0.75  # of physical memory: the rest stays for the OS, the interpreter and torch's own pools
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
DEFAULT_MAX_SECONDS = 3600.0  # one hour: far beyond any default job, far below "runs with no end"
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_override: int | None = None
_seconds_override: float | None = None


def parse_size(text) -> int:
    """Bytes from "8G", "512M", "2.5GB", "1024" (binary units, case-insensitive); ConfigError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgtb]?)b?\s*", str(text).lower())
    if not match:
        raise ConfigError(f"memory size {text!r} is not a size like 8G, 512M or 1073741824")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not 1 <= value < 1 << 60:
        raise ConfigError(f"memory size {text!r} must be at least 1 byte and below 1 EiB")
    return int(value)


def format_size(n_bytes: float) -> str:
    """1536 -> '1.5 KiB': the unit people read in error messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n_bytes) < 1024 or unit == "EiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def physical_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def set_max_memory(n_bytes: int | None) -> None:
    """The limit for this process (None: back to AEKIT_MAX_MEMORY or the default)."""
    global _override
    _override = None if n_bytes is None else int(n_bytes)


def max_memory() -> int:
    """The memory limit in bytes (module docstring)."""
    return _limit(_override, "AEKIT_MAX_MEMORY", parse_size, _default_memory)


def _default_memory() -> int:
    limit = int(DEFAULT_SHARE * physical_memory())
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    # Under an address-space limit (ulimit -v) what counts is what is left of it: the interpreter and
    # torch's libraries already hold part of it.
    return limit if soft == resource.RLIM_INFINITY else max(0, min(limit, soft - _address_space_used()))


def _limit(override, variable: str, parse, default):
    """A limit's value: set for this process (set_max_...), else the environment variable, else default()."""
    if override is not None:
        return override
    text = os.environ.get(variable)
    return parse(text) if text else default()


def _address_space_used() -> int:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):  # not Linux: count nothing used
        return 0


def check_memory(what: str, n_bytes: float, error=ConfigError) -> None:
    """`error` when `what` would need more than the limit: the estimate, the limit and how to raise it."""
    limit = max_memory()
    if n_bytes > limit:
        raise error(f"{what} needs about {format_size(n_bytes)} of memory, more than the limit of "
                    f"{format_size(limit)} (--max-memory or AEKIT_MAX_MEMORY raises it)")


def parse_seconds(text) -> float:
    """Seconds from "3600", "90m", "2h", "1.5d"; ConfigError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"time limit {text!r} is not a duration like 3600, 90m or 2h (more than 0)")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def format_seconds(seconds: float) -> str:
    """4000 -> '1.1 hours': the unit people read in error messages."""
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}" if seconds < 1e6 * size else f"{seconds / size:.1e} {unit}"
    return f"{seconds:.0f} s"


def set_max_seconds(seconds: float | None) -> None:
    """The time limit for one job of this process (None: back to AEKIT_MAX_SECONDS or the default)."""
    global _seconds_override
    _seconds_override = None if seconds is None else float(seconds)


def max_seconds() -> float:
    """The time limit in seconds (module docstring)."""
    return _limit(_seconds_override, "AEKIT_MAX_SECONDS", parse_seconds, lambda: DEFAULT_MAX_SECONDS)


def check_time(what: str, seconds: float, error=ConfigError) -> None:
    """`error` when `what` would take longer than the time limit: the estimate, the limit and how to raise it.
    The estimates are lower bounds (the fastest rate this work reaches on one core), so that nothing
    feasible is refused: only work off by orders of magnitude (a typo, a hostile count) meets the limit."""
    limit = max_seconds()
    if seconds > limit:
        raise error(f"{what} would take about {format_seconds(seconds)} or more, more than the limit of "
                    f"{format_seconds(limit)} (--max-seconds or AEKIT_MAX_SECONDS raises it)")


# The fastest rates a device reaches (no real pass gets there), so that a time estimate from them is a
# lower bound and check_time never refuses work that would in fact finish within the limit. Floating-point
# operations: 2 fused multiply-adds of 16 floats a cycle at 3 GHz per core (AVX-512); a data-centre GPU's
# TF32 tensor-core rate (an H100: about 500 TFLOP/s). Values written and read back (element-wise work:
# activations, likelihood terms, sampling): 5e9 a second per core, 1e12 on a GPU (its 3 TB/s). Measured
# here (2 cores, one thread, importance sampling): 1.5e9 to 3e10 flop/s and 3 to 5 ns a value.
PEAK_FLOPS_PER_CORE, PEAK_FLOPS_GPU = 2e11, 1e15
PEAK_VALUES_PER_CORE, PEAK_VALUES_GPU = 5e9, 1e12


def seconds_for(flops: float, values: float = 0.0, device: str = "cpu") -> float:
    """A lower bound of the time that `flops` floating-point operations and `values` values created take
    on a device of this type ("cpu": every core this process may use; "cuda", "mps": one GPU)."""
    if device == "cpu":
        return (flops / PEAK_FLOPS_PER_CORE + values / PEAK_VALUES_PER_CORE) / cores()
    return flops / PEAK_FLOPS_GPU + values / PEAK_VALUES_GPU


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
