"""The throwaway PostgreSQL cluster of .ci/postgres.sh, from Python.

    with throwaway_postgres() as url:   # postgresql+psycopg://deskgate@127.0.0.1:PORT/deskgate
        engine = create_engine(url)

`bash .ci/test` already starts one cluster per run and exports DESKGATE_TEST_DATABASE_URL;
this is for ad-hoc use (a script, a debugging session, the self-test).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["POSTGRES_SH", "throwaway_postgres"]

POSTGRES_SH = Path(__file__).resolve().parents[2] / ".ci" / "postgres.sh"


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a PostgreSQL cluster in a new folder under /tmp, yield its URL, then delete it."""
    # Under /tmp, not pytest's tmp_path: the server may run as another user (postgres).
    folder = Path(tempfile.mkdtemp(prefix="deskgate-pg-", dir="/tmp"))
    try:
        started = subprocess.run(
            ["bash", str(POSTGRES_SH), "start", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if started.returncode != 0:
            raise RuntimeError(f"postgres.sh start failed:\n{started.stderr}")
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(
            ["bash", str(POSTGRES_SH), "stop", str(folder)],
            capture_output=True,
            timeout=60,
            check=False,
        )
