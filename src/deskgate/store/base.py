"""Declarative base, shared column types, and engine/session construction."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from sqlalchemy import DateTime, MetaData, String, TypeDecorator, create_engine
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

from deskgate.store import postgres_runtime, sqlite_runtime

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


POOL_SIZE = 10
"""PostgreSQL connections each worker process keeps open (config: DESKGATE_DATABASE_POOL_SIZE).
A worker is one core: more requests than this in flight on it only queue for the CPU, and a
pool smaller than the usual load would open and close overflow connections all the time."""
POOL_MAX_OVERFLOW = 5
"""Extra connections a worker may open under a burst, closed when returned."""
POOL_RECYCLE_SECONDS = 1800
"""Connections older than this are replaced at checkout (a proxy or firewall may drop idle ones)."""


def make_engine(
    database_url: str,
    *,
    sqlite_write_lock_at_begin: bool = True,
    pool_size: int = POOL_SIZE,
    max_overflow: int = POOL_MAX_OVERFLOW,
    **kwargs: Any,
) -> Engine:
    """Engine with the per-backend settings deskgate relies on.

    SQLite: see store/sqlite_runtime.py (writers take turns at BEGIN, readers never wait).
    `sqlite_write_lock_at_begin=False` gives plain deferred transactions, for tools that only
    read or that must not hold SQLite's single write lock while idle (test inspection).

    PostgreSQL: a pool of `pool_size` (+ `max_overflow`) connections per worker process; a
    connection the server closed is replaced at checkout (store/postgres_runtime.py).
    """
    # Here, not at the top: events imports the models, which import this module.
    from deskgate.store import events

    sqlite = database_url.startswith("sqlite")
    if sqlite:
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": sqlite_runtime.BUSY_TIMEOUT_SECONDS,
        }
    else:
        kwargs.setdefault("pool_recycle", POOL_RECYCLE_SECONDS)
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
    engine = create_engine(database_url, **kwargs)
    # Events are written before the COMMIT, which on SQLite is sent by a listener of the runtime
    # installed below: listeners run in the order they were added.
    events.flush_at_commit(engine)
    if sqlite:
        sqlite_runtime.configure(engine, writers_take_turns=sqlite_write_lock_at_begin)
    else:
        postgres_runtime.configure(engine)
    return engine


def read_only(engine: Engine) -> Engine:
    """`engine` for transactions that only read: on SQLite they never wait for the write lock
    (e.g. `with read_only(engine).connect() as conn:` for a readiness check)."""
    return engine.execution_options(**{sqlite_runtime.READ_ONLY: True})


class Sessions(sessionmaker[Session]):
    """A sessionmaker whose sessions write by default; `sessions(write=False)` gives a read-only
    one, which on SQLite never waits for the write lock (store/sqlite_runtime.py)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(bind=engine, expire_on_commit=False, autoflush=True)
        self._reader = read_only(engine)

    def __call__(self, *, write: bool = True, **local_kw: Any) -> Session:
        if not write:
            local_kw.setdefault("bind", self._reader)
        return super().__call__(**local_kw)


def make_sessionmaker(engine: Engine) -> Sessions:
    return Sessions(engine)
