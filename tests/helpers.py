"""Helpers for tests: imported as `helpers` (the tests folder is on sys.path)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

TEST_PASSWORD = "correct horse battery"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def table_rows(db: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every committed row of every table (minus `exclude`), to compare before and after a
    request that must change nothing."""
    from sqlalchemy import select

    from deskgate.store.models import Base

    db.rollback()
    db.expire_all()
    return {
        table.name: sorted((tuple(row) for row in db.execute(select(table))), key=repr)
        for table in Base.metadata.sorted_tables
        if table.name not in exclude
    }


def post_form(client: Any, page_path: str, action: str, data: dict[str, str], **kwargs: Any) -> Any:
    """Load `page_path` (for its CSRF token), then post `data` to `action` as the page would."""
    page = client.get(page_path)
    return client.post(action, data={"csrf_token": csrf_token(page.text), **data}, **kwargs)


def sign_in(client: TestClient, email: str, password: str = TEST_PASSWORD, next: str = "") -> Any:
    return post_form(
        client, "/login", "/login", {"email": email, "password": password, "next": next}
    )


def race(
    count: int,
    action: Callable[[Any, int], Any],
    *,
    prepare: Callable[[Any, int], Any] | None = None,
    transport: Callable[[int], Any] | None = None,
) -> list[Any]:
    """Run `action(client, n)` for n in range(count) in threads released together; its results, by n.

    Each thread has its own httpx.Client (its own connection and cookies); `prepare(client, n)`
    runs before the barrier (connect, fetch a CSRF token...), so the actions really overlap.
    `transport(n)`, when given, makes client n's httpx transport (e.g. another source address).
    """
    import httpx

    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        with httpx.Client(timeout=60, transport=transport(n) if transport else None) as client:
            try:
                if prepare is not None:
                    prepare(client, n)
            except BaseException as exc:
                errors.append(exc)
            barrier.wait()
            if errors:
                return
            try:
                results[n] = action(client, n)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


_T = TypeVar("_T")


def run_async(main: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """`asyncio.run(main())` on a thread of its own: a session-wide Playwright (sync API) in this
    worker keeps an event loop marked running on the main thread, where asyncio.run() refuses."""
    results: list[_T] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(asyncio.run(main()))
        except BaseException as exc:
            failures.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    runner.join()
    if failures:
        raise failures[0]
    return results[0]
