"""What every command shares: settings, one transaction per command, JSON out, exit 2 on bad input."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
from sqlalchemy.orm import Session

from deskgate.config import Settings, load_settings
from deskgate.errors import DeskgateError
from deskgate.store import migrate
from deskgate.store.base import make_engine, make_sessionmaker


def fail(message: str) -> NoReturn:
    click.echo(f"deskgate: {message}", err=True)
    sys.exit(2)


def load() -> Settings:
    try:
        return load_settings()
    except Exception as problem:  # pydantic's message names the bad variable
        fail(f"bad configuration: {problem}".splitlines()[0])


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """One transaction for the command: committed only if the command succeeds."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with make_sessionmaker(engine)() as db:
            try:
                yield db
                db.commit()
            except DeskgateError as problem:
                db.rollback()
                fail(problem.message)
    finally:
        engine.dispose()


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))
