"""A real deskgate server (uvicorn on 127.0.0.1) and Chromium, for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from deskgate.config import load_settings
from deskgate.web.app import create_app

from support.server import serve_app

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    app: FastAPI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server_settings() -> dict[str, object]:
    """More settings for `live_server` (a test module overrides this fixture)."""
    return {}


@pytest.fixture
def live_server(engine, database_url, live_server_settings) -> Iterator[LiveServer]:
    """deskgate on a real port; its base URL is what every absolute URL (ACS, entity ID) uses."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = load_settings(
        {},
        database_url=database_url,
        base_url=base_url,
        secret_key="browser-test-secret",
        **live_server_settings,
    )
    app = create_app(settings, engine=engine)
    with serve_app(app, port=port) as url:
        assert url == base_url
        yield LiveServer(base_url=base_url, app=app)


DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def readme_shot(screenshot):
    """Like `screenshot`; with DESKGATE_DOC_SCREENSHOTS=1 also refreshes docs/screenshots/<name>.png
    (the pictures in the README's setup guides)."""

    def shoot(page, name: str) -> None:
        path = screenshot(page, name)
        if os.environ.get("DESKGATE_DOC_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")

    return shoot
