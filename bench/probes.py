"""What a worker reads about its own process: resident memory now and at its peak."""

from __future__ import annotations

import resource
from typing import Final

__all__ = ["MICRO_KEY", "peak_rss_kib", "rss_kib"]

#: The page key of the body the offline (no socket) measurements decode.
MICRO_KEY: Final = "1700000000"


def rss_kib() -> int:
    """Resident set size right now, KiB (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_kib() -> int:
    """Peak resident set size so far, KiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
