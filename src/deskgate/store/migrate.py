"""Schema migrations (Alembic), run by `deskgate db upgrade` and at `deskgate serve` start."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "deskgate:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision. Safe to run on every start."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def head_revisions() -> frozenset[str]:
    """The revisions this code's migrations end at (read from the scripts, no database)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current_revisions(connection: Connection) -> frozenset[str]:
    """The revisions the database is at: a SELECT on alembic_version, for /readyz.

    Not alembic's MigrationContext, which logs two lines each time it is set up.
    """
    if not inspect(connection).has_table("alembic_version"):
        return frozenset()
    return frozenset(connection.scalars(text("SELECT version_num FROM alembic_version")))
