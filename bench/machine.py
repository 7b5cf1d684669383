"""What the numbers were measured on: CPU, OS, Python, library versions, the commit."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["describe"]

ROOT = Path(__file__).resolve().parents[1]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min) at the start"


def describe() -> dict[str, str]:
    """The machine and software of this run, as label -> value."""
    from google.protobuf.internal import api_implementation

    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--", "aiomoomoo", "bench"):
        commit += " (with uncommitted changes under aiomoomoo/ or bench/)"
    return {
        "cpu": _cpu_model(),
        "nproc": f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable)",
        "load average": _load(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pandas": _version("pandas"),
        "numpy": _version("numpy"),
        "pyarrow": _version("pyarrow"),
        "protobuf": f"{_version('protobuf')} ({api_implementation.Type()} backend)",
        "uvloop": _version("uvloop"),
        "moomoo-api": _version("moomoo-api"),
        "aiolimiter": _version("aiolimiter"),
        "aiomoomoo": commit,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
