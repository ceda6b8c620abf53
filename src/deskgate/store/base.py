"""Declarative base, shared column types, and engine/session construction."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import threading
from typing import Annotated, Any

from sqlalchemy import DateTime, MetaData, String, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


str_id = Annotated[str, mapped_column(String(40), primary_key=True)]
timestamp = Annotated[dt.datetime, mapped_column(UTCDateTime())]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Read once by SQLAlchemy when the mappings are built; never mutated.
    type_annotation_map: dict[Any, Any] = {dt.datetime: UTCDateTime()}  # noqa: RUF012


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SQLiteWriterTurn:
    """Turns at an SQLite database's single write lock, for every worker process on the node.

    deskgate's SQLite transactions take the write lock at BEGIN. Left to SQLite, a transaction
    that finds it taken polls with sleeps growing to 100 ms (its busy handler) and loses the race
    to whoever is awake: under load the slowest requests waited a second. Here they wait in
    line instead — threads on a lock, processes on an flock(2) of a file beside the database —
    and the kernel wakes the next one when the holder commits.
    """

    WAIT_SECONDS = 30  # then give up like SQLite's busy timeout: "database is locked"

    def __init__(self, path: str) -> None:
        # A plain Lock, not an RLock: FastAPI may begin a request's transaction in one threadpool
        # thread and commit it in another, and any thread may release a Lock.
        self._lock = threading.Lock()
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            self._fd = None  # read-only folder: fall back to SQLite's busy handler

    def acquire(self) -> None:
        if not self._lock.acquire(timeout=self.WAIT_SECONDS):
            raise TimeoutError("timed out waiting for the SQLite write lock")
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


def make_engine(
    database_url: str, *, sqlite_write_lock_at_begin: bool = True, **kwargs: Any
) -> Engine:
    """Engine with the per-backend settings deskgate relies on.

    `sqlite_write_lock_at_begin=False` gives plain deferred transactions, for tools that only
    read or that must not hold SQLite's single write lock while idle (test inspection).
    """
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in database_url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        database = engine.url.database
        turn = (
            SQLiteWriterTurn(f"{database}-writer-turn")
            if sqlite_write_lock_at_begin and database and database != ":memory:"
            else None
        )

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock at BEGIN: a read transaction that later writes would otherwise
            # fail with "database is locked" when another writer committed in between.
            if not sqlite_write_lock_at_begin:
                conn.exec_driver_sql("BEGIN")
                return
            if turn is not None:
                turn.acquire()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                if turn is not None:
                    turn.release()
                raise
            conn.info["writer_turn"] = turn

        def _end(conn: Any, statement: str) -> None:
            # The driver is in autocommit mode (below), so the transaction is ours to end; doing
            # it here lets the next writer in the moment it is over. SQLAlchemy's own
            # commit()/rollback() that follows finds no transaction open and does nothing.
            held = conn.info.pop("writer_turn", None)
            try:
                if conn.connection.dbapi_connection.in_transaction:
                    conn.exec_driver_sql(statement)
            finally:
                if held is not None:
                    held.release()

        @event.listens_for(engine, "commit")
        def _sqlite_commit(conn: Any) -> None:
            _end(conn, "COMMIT")

        @event.listens_for(engine, "rollback")
        def _sqlite_rollback(conn: Any) -> None:
            _end(conn, "ROLLBACK")

        # pysqlite's own transaction handling would send BEGIN itself; let the event above do it.
        @event.listens_for(engine, "connect")
        def _sqlite_no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(database_url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
