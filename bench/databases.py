"""Databases for one run: SQLite files in the work folder, and PostgreSQL databases either on a
server the caller names (`--postgres-url`) or on a throwaway cluster (`.ci/postgres.sh`).

The throwaway cluster is made durable before use (fsync, synchronous_commit and full_page_writes
back on: `.ci/postgres.sh` turns them off for tests), so every write the bench counts is one a
real deployment would have to wait for.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SH = REPO_ROOT / ".ci" / "postgres.sh"


class PostgresUnavailable(RuntimeError):
    pass


def sqlite_url(path: Path) -> str:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


@dataclass
class Postgres:
    """A PostgreSQL server the bench may create databases on."""

    server_url: str
    """SQLAlchemy URL of a database to connect to for CREATE DATABASE."""
    cluster_dir: Path | None = None
    """Set when the bench started the server itself (stopped by `close`)."""
    created: list[str] = field(default_factory=list)

    @classmethod
    def start_throwaway(cls, parent: Path) -> Postgres:
        if shutil.which("bash") is None or not POSTGRES_SH.exists():
            raise PostgresUnavailable(f"{POSTGRES_SH} is missing")
        # Under /tmp: the server runs as another user, who must be able to reach the folder.
        parent.mkdir(parents=True, exist_ok=True)
        cluster = Path(
            subprocess.run(
                ["mktemp", "-d", "/tmp/deskgate-bench-pg.XXXXXX"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        done = subprocess.run(
            ["bash", str(POSTGRES_SH), "start", str(cluster)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            subprocess.run(["bash", str(POSTGRES_SH), "stop", str(cluster)], capture_output=True)
            raise PostgresUnavailable(f"could not start PostgreSQL: {done.stderr.strip()[-800:]}")
        postgres = cls(server_url=done.stdout.strip().splitlines()[-1], cluster_dir=cluster)
        postgres._make_durable()
        return postgres

    def _make_durable(self) -> None:
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(text(f"ALTER SYSTEM SET {setting} = on"))
            conn.execute(text("SELECT pg_reload_conf()"))
        engine.dispose()

    def settings(self) -> dict[str, str]:
        engine = create_engine(self.server_url)
        with engine.connect() as conn:
            found = {
                name: str(conn.execute(text(f"SHOW {name}")).scalar())
                for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
            }
        engine.dispose()
        return found

    def create_database(self, name: str) -> str:
        """A new, empty database `name` (dropped first if it exists); returns its URL."""
        if not re.fullmatch(r"[a-z0-9_]{1,48}", name):
            raise ValueError(f"bad database name {name!r}")
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        self.created.append(name)
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        if self.cluster_dir is not None:
            subprocess.run(
                ["bash", str(POSTGRES_SH), "stop", str(self.cluster_dir)],
                capture_output=True,
                timeout=120,
            )
            self.cluster_dir = None
            return
        engine = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
        self.created.clear()


def node_pg_url(sqlalchemy_url: str) -> str:
    """The same database as a `postgres://` URL for node-postgres."""
    url = make_url(sqlalchemy_url)
    auth = url.username or ""
    if url.password:
        auth += f":{url.password}"
    return f"postgres://{auth}@{url.host}:{url.port or 5432}/{url.database}"
