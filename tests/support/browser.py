"""Chromium through Playwright (sync API), for end-to-end tests.

Uses Debian's /usr/bin/chromium through `executable_path`: no browser is ever downloaded
(never run `playwright install`). Import the fixtures (and the report hook, for screenshots
of failing tests) into a conftest.py:

    from support.browser import browser, new_context, playwright, pytest_runtest_makereport, screenshot  # noqa: F401

Then in a test:

    def test_login(new_context, screenshot):
        page = new_context().new_page()
        page.goto(url)
        screenshot(page, "after-login")   # test-artifacts/<test name>/after-login.png
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

__all__ = [
    "ARTIFACTS_DIR",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "browser",
    "launch_chromium",
    "new_context",
    "playwright",
    "pytest_runtest_makereport",
    "save_screenshot",
    "screenshot",
]

CHROMIUM = os.environ.get("DESKGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS_DIR = Path(
    os.environ.get(
        "DESKGATE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"
    )
)
DEFAULT_TIMEOUT_MS = 15_000

_FAILED_KEY = pytest.StashKey[bool]()


def launch_chromium(playwright: Playwright, **options: Any) -> Browser:
    """Launch Debian's Chromium headless; extra options go to BrowserType.launch."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: apt-get install chromium (do not run `playwright install`)"
        )
    args = [*CHROMIUM_ARGS, *options.pop("args", [])]
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, **options)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "test"


def save_screenshot(page: Page, name: str, folder: Path | None = None) -> Path:
    """Save a full-page PNG of `page` as <folder>/<name>.png (default folder: test-artifacts/)."""
    folder = folder or ARTIFACTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Remember failures, so new_context can screenshot the pages of a failing test."""
    report = yield
    if report.failed:
        item.stash[_FAILED_KEY] = True
    return report


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium per test session (per xdist worker)."""
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def new_context(
    browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserContext]]:
    """Factory of isolated browser contexts (own cookies and storage), closed after the test.

    Keyword arguments go to Browser.new_context (e.g. base_url=..., locale="de-DE").
    Pages of a failing test are saved to test-artifacts/<test>/failure-<n>.png.
    """
    contexts: list[BrowserContext] = []

    def factory(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield factory
    failed = request.node.stash.get(_FAILED_KEY, False)
    for index, context in enumerate(contexts):
        if failed:
            for page_index, page in enumerate(context.pages):
                # A screenshot must not hide the failure.
                with contextlib.suppress(Exception):
                    save_screenshot(
                        page,
                        f"failure-{index}-{page_index}",
                        ARTIFACTS_DIR / _safe_name(request.node.nodeid),
                    )
        context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """screenshot(page, name) saves test-artifacts/<test id>/<name>.png and returns the path."""
    folder = ARTIFACTS_DIR / _safe_name(request.node.nodeid)
    return lambda page, name: save_screenshot(page, name, folder)
