"""Alembic environment: runs against the connection or URL handed over by store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from deskgate.store import models  # noqa: F401  (defines the tables on Base.metadata)
from deskgate.store.base import Base, make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
