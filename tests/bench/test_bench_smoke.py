"""The benchmark (`python -m bench`, bench/) at its smoke size: it must keep working.

It runs as a subprocess, writing into a temporary folder (never docs/), against the suite's
database kind: SQLite by default, PostgreSQL (on the suite's server) when
DESKGATE_TEST_DATABASE=postgresql. Jackson is included when Node and npm are installed. Only
completion is checked: no errors, every user found by the crawl; no timing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
WITH_NODE = bool(shutil.which("npm") and shutil.which("node"))
ON_POSTGRES = os.environ.get("DESKGATE_TEST_DATABASE") == "postgresql"


def _bench_args(tmp_path: Path) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "bench",
        "--smoke",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "out"),
    ]
    args += ["--peers", "floor,scim2-server,jackson-mem" if WITH_NODE else "floor,scim2-server"]
    if ON_POSTGRES:
        args += [
            "--databases",
            "postgresql",
            "--postgres-url",
            os.environ["DESKGATE_TEST_DATABASE_URL"],
        ]
    else:
        args += ["--databases", "sqlite"]
    return args


def test_bench_smoke_run_completes_without_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        _bench_args(tmp_path),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr[-4000:]

    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert results["failures"] == []
    report = (tmp_path / "out" / "benchmarks.md").read_text()
    assert report.startswith("# Benchmarks")
    assert "| floor: raw ASGI (SQLite) |" in report
    assert (tmp_path / "out" / "benchmarks.png").stat().st_size > 0

    validators = results["saml_in_process"]["validators"]
    assert {v["key"] for v in validators} == {"deskgate", "stock", "bare"}
    assert all(v["errors"] == 0 and v["calls"] == 20 for v in validators)
    for http in results["saml_http"].values():
        assert http["errors"] == 0 and http["requests"] == 20

    measured = {entry["key"]: entry for entry in results["scim"]}
    expected = {
        "deskgate-postgresql" if ON_POSTGRES else "deskgate-sqlite",
        "floor",
        "scim2-server",
    }
    if WITH_NODE:
        # Jackson counts as measured or as unavailable with a reason (e.g. npm could not install it).
        unavailable = {u["what"] for u in results["unavailable"]}
        if not any(what.startswith("Jackson") for what in unavailable):
            expected.add("jackson-mem")
    assert expected <= measured.keys()
    for entry in measured.values():
        assert entry["errors"] == 0, entry["error_samples"]
        assert entry["users_done"] == 20
        assert entry["crawl"]["correct"], entry["crawl"]

    for scale in results["scale"].values():
        assert scale["load"]["agents"] >= 2_000
        assert scale["latency"]["errors"] == 0
        assert scale["import"]["errors"] == 0 and scale["import"]["users_done"] == 60
