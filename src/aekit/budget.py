"""Budgets checked before anything is allocated (issue 25).

Every size that comes from a user or a file (a latent size, widths, an image canvas, a count in a file
header, a number of samples or steps, threads) is turned into an estimate of the memory it needs and
checked here first, so that a typo (`latent_dim=1e9`) or a hostile file is a clear error naming the
estimate and the limit, never an allocator message, a swap storm or the kernel's OOM killer.

The limit: `set_max_memory(bytes)` (the CLI's `--max-memory`), else the environment variable
`AEKIT_MAX_MEMORY` ("8G", "512M", "2.5GB" or bytes), else 75% of the machine's physical memory (and
no more than the process's address-space limit, RLIMIT_AS, when one is set).
"""

from __future__ import annotations

import os
import re
import resource

from aekit.errors import ConfigError

DEFAULT_SHARE = 0.75  # of physical memory: the rest stays for the OS, the interpreter and torch's own pools
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_override: int | None = None


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
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n_bytes) < 1024 or unit == "TiB":
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
    if _override is not None:
        return _override
    env = os.environ.get("AEKIT_MAX_MEMORY")
    if env:
        return parse_size(env)
    limit = int(DEFAULT_SHARE * physical_memory())
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return limit if soft == resource.RLIM_INFINITY else min(limit, soft)


def check_memory(what: str, n_bytes: float, error=ConfigError) -> None:
    """`error` when `what` would need more than the limit: the estimate, the limit and how to raise it."""
    limit = max_memory()
    if n_bytes > limit:
        raise error(f"{what} needs about {format_size(n_bytes)} of memory, more than the limit of "
                    f"{format_size(limit)} (--max-memory or AEKIT_MAX_MEMORY raises it)")


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
