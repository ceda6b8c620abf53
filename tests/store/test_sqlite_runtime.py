"""SQLite's transactions (store/sqlite_runtime.py): readers never wait for the write lock,
writers wait in line and never in SQLite's busy handler. SQLite only, whatever the suite's
database: these are properties of deskgate's SQLite runtime."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from deskgate.store.base import make_engine, make_sessionmaker, read_only
from deskgate.store.sqlite_runtime import ReadOnlyTransactionError


def _engine(path: Path, *, busy_timeout_ms: int | None = None) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    if busy_timeout_ms is not None:

        @event.listens_for(engine, "connect")
        def _busy_timeout(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, v TEXT)"))
    return engine


def test_a_reader_proceeds_while_a_writer_holds_the_turn(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "x.db")
    sessions = make_sessionmaker(engine)
    with sessions() as setup:
        setup.execute(text("INSERT INTO item (v) VALUES ('before')"))
        setup.commit()

    with sessions() as writer:
        writer.execute(text("INSERT INTO item (v) VALUES ('uncommitted')"))  # holds the turn
        seen: list[list[str]] = []

        def read() -> None:
            with sessions(write=False) as reader:
                seen.append(list(reader.execute(text("SELECT v FROM item")).scalars()))
            with read_only(engine).connect() as conn:
                seen.append(list(conn.execute(text("SELECT v FROM item")).scalars()))

        started = time.monotonic()
        thread = threading.Thread(target=read)
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the reader waited for the writer"
        assert time.monotonic() - started < 1
        assert seen == [["before"], ["before"]]  # their snapshot: not the writer's uncommitted row
        writer.commit()
    engine.dispose()


def test_a_read_only_transaction_may_not_write(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "x.db")
    with make_sessionmaker(engine)(write=False) as reader:
        with pytest.raises(ReadOnlyTransactionError, match="read-only transaction tried to write"):
            reader.execute(text("INSERT INTO item (v) VALUES ('no')"))
        reader.rollback()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM item")).scalar() == 0
    engine.dispose()


def test_writers_never_wait_in_sqlites_busy_handler(tmp_path: Path) -> None:
    """busy_timeout=0: any writer that SQLite itself made wait would fail at once with "database
    is locked". Two engines stand for two worker processes (separate pools, turns and flock
    descriptors), each with threads writing and reading at once."""
    path = tmp_path / "x.db"
    engines = [_engine(path, busy_timeout_ms=0) for _ in range(2)]
    errors: list[BaseException] = []
    writes_per_thread = 40

    def write(engine: Engine, name: str) -> None:
        sessions = make_sessionmaker(engine)
        try:
            for n in range(writes_per_thread):
                with sessions() as db:
                    db.execute(text("SELECT count(*) FROM item")).scalar()  # read, then write
                    db.execute(text("INSERT INTO item (v) VALUES (:v)"), {"v": f"{name}-{n}"})
                    db.commit()
        except BaseException as problem:
            errors.append(problem)

    def read(engine: Engine) -> None:
        sessions = make_sessionmaker(engine)
        try:
            for _ in range(writes_per_thread):
                with sessions(write=False) as db:
                    db.execute(text("SELECT count(*) FROM item")).scalar()
        except BaseException as problem:
            errors.append(problem)

    threads = [
        threading.Thread(target=write, args=(engine, f"e{e}t{t}"))
        for e, engine in enumerate(engines)
        for t in range(3)
    ]
    threads += [threading.Thread(target=read, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM item")).scalar() == 6 * writes_per_thread
    for engine in engines:
        engine.dispose()


def test_the_next_writer_starts_as_soon_as_the_holder_commits(tmp_path: Path) -> None:
    """Queued on the turn, a writer is woken by the commit: no busy-handler sleep (which grows to
    100 ms per poll) between the holder's commit and the next writer's BEGIN."""
    engine = _engine(tmp_path / "x.db")
    sessions = make_sessionmaker(engine)
    began: list[float] = []
    with sessions() as holder:
        holder.execute(text("INSERT INTO item (v) VALUES ('first')"))

        def second() -> None:
            with sessions() as db:
                db.execute(text("INSERT INTO item (v) VALUES ('second')"))
                began.append(time.monotonic())
                db.commit()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)  # the second writer is now queued
        assert began == []
        holder.commit()
        committed = time.monotonic()
    thread.join(timeout=5)
    assert began and began[0] - committed < 0.05
    engine.dispose()
