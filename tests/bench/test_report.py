"""The bench report's targets, profiles and before/after sections, from hand-made results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# The repository's bench/ package (a regular package wins over this test folder's namespace one).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import report  # noqa: E402


def _scim(key: str, label: str, per_second: float, p95: float, cpu: float) -> dict[str, Any]:
    latency = {"p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 1.5}
    crawl = {"expected": 10, "missing": 0, "duplicates": 0, "correct": True, "listed": 10}
    return {
        "key": key,
        "label": label,
        "persists": "SQLite (WAL)",
        "processes": "uvicorn",
        "users": 10,
        "users_done": 10,
        "concurrency": 16,
        "per_second": per_second,
        "latency": latency,
        "errors": 0,
        "error_samples": [],
        "crawl": crawl,
        "server_cpu_ms_per_request": cpu,
        "steps": dict.fromkeys(("filter", "create", "get", "replace", "deactivate"), latency),
    }


def _profile(frame: str) -> dict[str, Any]:
    return {
        "samples": 100,
        "self": [[40.0, frame]],
        "inclusive": [[100.0, "Thread.run (threading.py)"], [70.0, frame]],
    }


def test_targets_profiles_and_before_and_after() -> None:
    before = {
        "command": "bench (before)",
        "started_at": "then",
        "machine": {"commit": "abc123"},
        "scim": [_scim("deskgate-sqlite", "deskgate (SQLite)", 300, 70, 4.5)],
        "profiles": {"scim-deskgate-sqlite": _profile("slow (deskgate/old.py)")},
    }
    results = {
        "scim": [
            _scim("deskgate-sqlite", "deskgate (SQLite)", 4000, 8, 0.25),
            _scim("floor", "floor: raw ASGI (SQLite)", 5000, 4, 0.1),
            _scim("jackson-mem", "Jackson (memory)", 3700, 11, 0.2),
        ],
        "profiles": {"scim-deskgate-sqlite": _profile("fast (deskgate/new.py)")},
        "before": report.before_summary(before),
    }
    rows = {row["target"]: row for row in report.targets(results)}
    assert rows["SCIM Okta pattern >= 0.7x the floor server (SQLite)"]["met"]
    assert rows["SCIM Okta pattern >= 1x Jackson in memory (SQLite)"]["met"]
    assert rows["SCIM p95 < 10 ms at K=16 (SQLite)"]["met"]
    assert rows["Server CPU per SCIM request <= 0.3 ms (SQLite)"]["met"]

    text = report.render(results)
    assert "| SCIM deskgate (SQLite) | 300 → 4,000 | 70.0 → 8.0 | 4.50 → 0.25 |" in text
    profiles = text[text.index("## Profiles") :]
    assert "slow (deskgate/old.py)" in profiles and "fast (deskgate/new.py)" in profiles
    assert "threading.py" not in profiles  # thread roots say nothing
    assert "(commit abc123)" in profiles


def test_a_slow_server_misses_by_a_stated_amount() -> None:
    results = {
        "scim": [
            _scim("deskgate-sqlite", "deskgate (SQLite)", 1000, 40, 1.2),
            _scim("floor", "floor: raw ASGI (SQLite)", 5000, 4, 0.1),
        ]
    }
    rows = {row["target"]: row for row in report.targets(results)}
    floor = rows["SCIM Okta pattern >= 0.7x the floor server (SQLite)"]
    assert not floor["met"] and floor["gap"] == "needs 3.50x more"
    assert rows["SCIM p95 < 10 ms at K=16 (SQLite)"]["gap"] == "4.0x over (30.0 ms)"
