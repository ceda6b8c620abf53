"""scim2-tester's whole suite (discovery, CRUD, attributes, PATCH add/replace/remove on every
attribute), in-process and over real HTTP, with the userNames and emails scim2-tester generates
itself (random strings, not addresses). Every check passes; the skipped ones are listed with
their reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from scim2_tester import CheckResult, Status, check_server

from scim_helpers import HttpxSCIMClient, ScimAccount

PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}
ALLOWED_SKIPS = {
    # RFC 7644 §3.4.3 lets a server answer 501 to a search at the root (all resource types);
    # deskgate searches one type at a time (POST /Users/.search, /Groups/.search).
    "search_with_attributes": "POST /.search across resource types is not supported (501)",
}


def _table(results: list[CheckResult]) -> str:
    rows = [("resource", "check", "status", "reason")]
    for result in results:
        reason = (result.reason or "").replace("\n", " ")
        rows.append(
            (result.resource_type or "-", result.title or "?", result.status.name, reason[:200])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        " | ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row))
        for row in rows
    ]
    counts = {status.name: sum(r.status is status for r in results) for status in Status}
    summary = ", ".join(f"{name}: {count}" for name, count in counts.items() if count)
    return "\n".join([*lines, f"{len(results)} checks — {summary}"])


def _run_and_check(client: httpx.Client, label: str, capsys: pytest.CaptureFixture[str]) -> None:
    results = check_server(HttpxSCIMClient(client))
    with capsys.disabled():
        print(f"\nscim2-tester ({label}):\n{_table(results)}")
    failures = [r for r in results if r.status not in PASSED and r.status is not Status.SKIPPED]
    assert not failures, _table(failures)
    skipped = [r for r in results if r.status is Status.SKIPPED]
    unexpected = [r for r in skipped if r.title not in ALLOWED_SKIPS]
    assert not unexpected, _table(unexpected)
    assert sum(r.status in PASSED for r in results) >= 80, (
        "scim2-tester ran far fewer checks than expected"
    )


@pytest.fixture
def live_scim(live_server: str, scim_account: ScimAccount) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{live_server}{scim_account.base_path}/",
        headers={"Authorization": f"Bearer {scim_account.token}"},
        timeout=30,
    ) as client:
        yield client


def test_scim2_tester_in_process(scim: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _run_and_check(scim, "in-process", capsys)


def test_scim2_tester_over_real_http(
    live_scim: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_and_check(live_scim, "real HTTP, uvicorn", capsys)
