"""Fixtures shared by the whole suite.

The database is real: SQLite by default, PostgreSQL when DESKGATE_TEST_DATABASE=postgresql
(with DESKGATE_TEST_DATABASE_URL pointing at a server; `.ci/test` runs both). Each pytest-xdist
worker gets its own database, migrated once with Alembic; every test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from deskgate.config import Settings, load_settings
from deskgate.services import accounts as account_service
from deskgate.store import migrate
from deskgate.store.base import make_engine, make_sessionmaker
from deskgate.store.models import Base
from deskgate.web.app import create_app

from helpers import TEST_PASSWORD

# Chromium through Playwright, defined once for the whole suite: a second sync Playwright in
# the same process fails ("Sync API inside the asyncio loop").
from support.browser import browser, new_context, playwright, pytest_runtest_makereport, screenshot  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parent.parent


def _backend() -> str:
    backend = os.environ.get("DESKGATE_TEST_DATABASE", "sqlite")
    if backend not in ("sqlite", "postgresql"):
        raise pytest.UsageError(
            f"DESKGATE_TEST_DATABASE must be sqlite or postgresql, not {backend!r}"
        )
    return backend


def pytest_report_header(config: pytest.Config) -> str:
    return f"deskgate test database: {_backend()}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _backend() == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'deskgate.db'}"
        return
    server_url = os.environ.get("DESKGATE_TEST_DATABASE_URL")
    if not server_url:
        raise pytest.UsageError(
            "DESKGATE_TEST_DATABASE=postgresql needs DESKGATE_TEST_DATABASE_URL "
            "(bash .ci/test starts a throwaway server and sets it)"
        )
    name = f"deskgate_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _empty_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # DELETE beats TRUNCATE on PostgreSQL for tables this small (no lock storm, no file swap).
    with engine.begin() as conn:
        for table in tables:
            conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    """The test database, with every table empty."""
    _empty_tables(migrated_engine)
    return migrated_engine


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        {},
        database_url=database_url,
        base_url="http://testserver",
        secret_key="test-secret-key-not-for-production",
    )


@pytest.fixture
def db(engine: Engine, database_url: str) -> Iterator[Session]:
    """A session for arranging and inspecting data; commit what the app must see.

    Its own engine, with deferred transactions on SQLite, so an open read here never holds the
    write lock the app under test needs.
    """
    inspect_engine = make_engine(database_url, sqlite_write_lock_at_begin=False)
    with make_sessionmaker(inspect_engine)() as session:
        yield session
    inspect_engine.dispose()


@dataclass
class AccountFixture:
    id: str
    name: str
    sso_token: str
    admin_email: str
    admin_id: str
    password: str = TEST_PASSWORD


@pytest.fixture
def make_account(db: Session):  # type: ignore[no-untyped-def]
    counter = iter(range(1, 10_000))

    def make(
        plan: str = "scale-plus", name: str | None = None, admin_email: str | None = None
    ) -> AccountFixture:
        n = next(counter)
        created = account_service.create_account(
            db,
            name=name or f"Account {n}",
            plan=plan,
            admin_email=admin_email or f"admin{n}@example.com",
            admin_password=TEST_PASSWORD,
            admin_first_name="Ada",
            admin_last_name=f"Admin{n}",
        )
        db.commit()
        return AccountFixture(
            id=created.account.id,
            name=created.account.name,
            sso_token=created.account.sso_token,
            admin_email=created.admin.email,
            admin_id=created.admin.id,
        )

    return make


# --- the app in-process (TestClient: real ASGI app, real database; no sockets) ---


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def new_client(app: FastAPI) -> Iterator[object]:
    """Factory for more browsers (separate cookie jars)."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        c = TestClient(app, base_url="http://testserver", follow_redirects=False)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
