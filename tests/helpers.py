"""Helpers for tests: imported as `helpers` (the tests folder is on sys.path)."""

from __future__ import annotations

import re
from typing import Any

TEST_PASSWORD = "correct horse battery"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def post_form(client: Any, page_path: str, action: str, data: dict[str, str], **kwargs: Any) -> Any:
    """Load `page_path` (for its CSRF token), then post `data` to `action` as the page would."""
    page = client.get(page_path)
    return client.post(action, data={"csrf_token": csrf_token(page.text), **data}, **kwargs)


def sign_in(client: TestClient, email: str, password: str = TEST_PASSWORD, next: str = "") -> Any:
    return post_form(client, "/login", "/login", {"email": email, "password": password, "next": next})
