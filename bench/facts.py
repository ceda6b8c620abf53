"""What the machine and the software under test are: the table at the top of docs/benchmarks.md."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

PYTHON_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "psycopg",
    "pydantic",
    "scim2-models",
    "scim2-server",
    "python3-saml",
    "xmlsec",
    "lxml",
    "aiohttp",
    "orjson",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        return subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def _debian() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def own_cpu_seconds() -> float:
    """CPU time (user + system) of this process so far: the bench's own client."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def _commit() -> str | None:
    """The checked-out commit (with `+dirty` for uncommitted changes), or None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def collect() -> dict[str, Any]:
    return {
        "commit": _commit(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": _debian(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "node": _node_version(),
        "packages": {name: _version(name) for name in PYTHON_PACKAGES},
        "load_average_at_start": [round(x, 2) for x in load_average()],
    }


class CpuMeter:
    """Share of the machine's CPU time that was busy between `start()` and `stop()`."""

    def __init__(self) -> None:
        self._start = (0, 0)
        self.busy = 0.0

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    def start(self) -> CpuMeter:
        self._start = self._read()
        return self

    def stop(self) -> float:
        total, idle = self._read()
        spent = total - self._start[0]
        self.busy = 1 - (idle - self._start[1]) / spent if spent else 0.0
        return self.busy
