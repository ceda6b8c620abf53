"""PostgreSQL connections (store/postgres_runtime.py): after the server ends the pool's
connections (a restart, `pg_terminate_backend`), the very next request runs on a new one."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from deskgate.store.base import make_engine, make_sessionmaker


def test_the_next_request_after_the_server_ended_every_pooled_connection_works(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = make_engine(database_url, pool_size=3, max_overflow=0)
    sessions = make_sessionmaker(engine)
    held = [engine.connect() for _ in range(3)]  # fill the pool
    pids = [conn.execute(text("SELECT pg_backend_pid()")).scalar_one() for conn in held]
    for conn in held:
        conn.close()  # back to the pool, still open
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")  # fresh pg_stat_activity
    with admin.connect() as conn:
        for pid in pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        deadline = time.monotonic() + 10
        while conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"), {"pids": pids}
        ).scalar():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    admin.dispose()

    for _ in range(4):  # every request, the first included, on a live connection
        with sessions(write=False) as db:
            pid = db.execute(text("SELECT pg_backend_pid()")).scalar_one()
            assert pid not in pids
    engine.dispose()
