from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from deskgate.config import Settings
from deskgate.web.app import create_app


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
