"""Migrations build, from an empty database, exactly the schema the models describe."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from deskgate.store import migrate
from deskgate.store.base import make_engine
from deskgate.store.models import Base


@pytest.fixture
def empty_database_url(tmp_path, database_url):
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = os.environ["DESKGATE_TEST_DATABASE_URL"]
    name = f"deskgate_empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_from_empty_matches_the_models_and_is_idempotent(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        assert inspect(engine).get_table_names() == []
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # every start runs it again: a no-op
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"models and migrations differ: {differences}"
    finally:
        engine.dispose()
