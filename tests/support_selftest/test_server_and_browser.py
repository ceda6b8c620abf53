"""serve_app (uvicorn in a thread) and the Playwright fixtures."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from support.server import serve_app


async def cookie_page(request: Request) -> Response:
    seen = request.cookies.get("visit", "none")
    response = HTMLResponse(f"<p id='seen'>{seen}</p>")
    response.set_cookie("visit", request.query_params.get("set", seen))
    return response


APP = Starlette(
    routes=[Route("/", lambda request: PlainTextResponse("ok")), Route("/cookie", cookie_page)]
)


def test_serve_app_serves_real_http_and_stops() -> None:
    with serve_app(APP) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{base_url}/").text == "ok"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/")


def test_serve_app_reports_a_failing_lifespan() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield

    with (
        pytest.raises(RuntimeError, match="during startup"),
        serve_app(Starlette(lifespan=lifespan)),
    ):
        pass


@pytest.mark.browser
def test_contexts_do_not_share_cookies(new_context: Callable[..., BrowserContext]) -> None:
    with serve_app(APP) as base_url:
        first = new_context().new_page()
        first.goto(f"{base_url}/cookie?set=first")
        first.goto(f"{base_url}/cookie")
        assert first.locator("#seen").text_content() == "first"

        second = new_context().new_page()
        second.goto(f"{base_url}/cookie")
        assert second.locator("#seen").text_content() == "none"


@pytest.mark.browser
def test_screenshot_fixture(
    new_context: Callable[..., BrowserContext], screenshot: Callable[[Page, str], Path]
) -> None:
    page = new_context().new_page()
    page.set_content("<h1>deskgate</h1>")
    path = screenshot(page, "heading")
    assert path.parent.parent.name == "test-artifacts"
    assert path.read_bytes().startswith(b"\x89PNG")
