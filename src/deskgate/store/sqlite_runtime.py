"""SQLite's transactions: readers never wait, writers wait in line, nobody sleeps.

SQLite (in WAL mode) has one write lock and lets any number of readers run beside the writer,
each on the snapshot it began with. deskgate's transactions come in two kinds:

- A writer (the default) takes its turn at the write lock at BEGIN (`BEGIN IMMEDIATE`). Taking it
  lazily, at the first INSERT/UPDATE/DELETE, is not safe: a transaction that read first and
  finds that another writer committed since cannot upgrade (SQLITE_BUSY_SNAPSHOT, "database is
  locked") and would have to start over, which services are not built to do.
- A reader (`sessions(write=False)`, `READ_ONLY`) begins deferred (`BEGIN`) and never touches the
  write lock, so it runs while a writer holds it. Writing in one is refused before SQLite sees it.

Writers wait for their turn in `WriterTurn`, never in SQLite's busy handler (which polls with
sleeps growing to 100 ms and lets whoever is awake jump the queue): threads on a lock, worker
processes on an flock(2) of a file beside the database; the kernel wakes the next writer the
moment the holder commits.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

READ_ONLY = "deskgate_read_only"
"""Execution option marking an engine's (or connection's) transactions as read-only."""
BUSY_TIMEOUT_SECONDS = 30
"""SQLite's own wait, only ever used against a writer outside deskgate (a manual `sqlite3`)."""
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class ReadOnlyTransactionError(RuntimeError):
    """A read-only transaction tried to write: a bug in its caller, not a user's mistake."""


class WriterTurn:
    """Turns at an SQLite database's single write lock, for every worker process on the node.

    Left to SQLite, a transaction that finds the lock taken polls with sleeps and loses the race
    to whoever is awake: under load the slowest requests waited a second. Here writers wait in
    line instead, and the kernel wakes the next one when the holder commits.
    """

    WAIT_SECONDS = BUSY_TIMEOUT_SECONDS  # then give up like SQLite: "database is locked"

    def __init__(self, path: str) -> None:
        # A plain Lock, not an RLock: a request's transaction may begin in one threadpool thread
        # and end in another, and any thread may release a Lock.
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


def configure(engine: Engine, *, writers_take_turns: bool = True) -> None:
    """Install deskgate's SQLite settings and transaction handling on `engine`.

    `writers_take_turns=False` makes every transaction deferred, for tools that must not hold the
    write lock while idle (test inspection); a write then waits in SQLite's busy handler.
    """
    database = engine.url.database or ""
    in_memory = database in ("", ":memory:")
    turn = WriterTurn(f"{database}-writer-turn") if writers_take_turns and not in_memory else None

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
        # isolation_level=None: pysqlite sends no BEGIN of its own; the "begin" event below does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            conn.info[READ_ONLY] = True
            return
        if not writers_take_turns:
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

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes_when_reading(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get(READ_ONLY) and statement.lstrip()[:7].upper().startswith(_WRITES):
            raise ReadOnlyTransactionError(
                f"a read-only transaction tried to write: {statement[:80]!r}"
            )

    def _end(conn: Any, statement: str) -> None:
        # The driver is in autocommit mode, so the transaction is ours to end; doing it here lets
        # the next writer in the moment it is over. SQLAlchemy's own commit()/rollback() that
        # follows finds no transaction open and does nothing.
        conn.info.pop(READ_ONLY, None)
        held = conn.info.pop("writer_turn", None)
        try:
            if conn.connection.dbapi_connection.in_transaction:
                conn.exec_driver_sql(statement)
        finally:
            if held is not None:
                held.release()

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        _end(conn, "COMMIT")

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Any) -> None:
        _end(conn, "ROLLBACK")
