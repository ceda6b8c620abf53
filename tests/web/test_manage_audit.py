"""Manage › Audit log: admins only; the account's events newest first, paged by cursor,
filtered by actor, agent, type and time; before/after diffs; the CSV export of the filter,
with a header and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from sqlalchemy import select

from deskgate.services import audit_log, events
from deskgate.store.models import Agent

from event_checks import events_of
from helpers import TEST_PASSWORD, post_form, sign_in


def _cursors(html: str) -> list[int]:
    return [int(c) for c in re.findall(r'data-cursor="(\d+)"', html)]


def _types(html: str) -> list[str]:
    return re.findall(r'data-type="([^"]+)"', html)


def _add_agent(client: Any, email: str, **fields: str) -> str:
    data = {"email": email, "first_name": "", "last_name": "", "role": "agent", "password": ""}
    response = post_form(client, "/manage/agents", "/manage/agents", {**data, **fields})
    assert response.status_code == 303, response.text
    return email


def _agent_id(db: Any, account_id: str, email: str) -> str:
    db.rollback()
    return db.scalar(select(Agent.id).where(Agent.account_id == account_id, Agent.email == email))


@pytest.fixture
def admin(client: Any, make_account: Any, db: Any) -> Any:
    """An admin signed in, with some history: Bo added and made admin, Cy added."""
    account = make_account()
    assert sign_in(client, account.admin_email).status_code == 303
    _add_agent(client, "bo@example.com", first_name="Bo")
    bo = _agent_id(db, account.id, "bo@example.com")
    post_form(client, "/manage/agents", f"/manage/agents/{bo}/role", {"role": "admin"})
    _add_agent(client, "cy@example.com")
    client.account, client.bo = account, bo
    return client


def test_the_page_lists_the_account_s_events_newest_first(
    admin: Any, make_account: Any, db: Any
) -> None:
    db.rollback()  # end the fixture's read: the inspection session writes next
    make_account()  # another account's events never show
    page = admin.get("/manage/audit")
    assert page.status_code == 200
    assert 'href="/manage/audit"' in page.text  # the nav link
    stored = events_of(db, admin.account.id)
    assert _cursors(page.text) == [int(e["cursor"]) for e in reversed(stored)]
    assert _types(page.text)[:3] == ["agent.created", "agent.role_changed", "agent.created"]
    assert "bo@example.com" in page.text and admin.account.admin_email in page.text


def test_a_change_shows_its_fields_with_the_changed_ones_marked(admin: Any) -> None:
    page = admin.get("/manage/audit", params={"type": "agent.role_changed"})
    assert _types(page.text) == ["agent.role_changed"]
    assert re.search(
        r'<tr class="changed"><td>role</td><td>agent</td><td>admin</td></tr>', page.text
    )
    assert re.search(r'<tr class="same"><td>email</td><td>bo@example.com</td>', page.text)
    assert "<summary>role, version, updated_at</summary>" in page.text


def test_filters_narrow_the_list(admin: Any, db: Any) -> None:
    account = admin.account

    def listed(**params: str) -> list[str]:
        page = admin.get("/manage/audit", params=params)
        assert page.status_code == 200, page.text
        return _types(page.text)

    assert listed(agent="BO@example.com") == ["agent.role_changed", "agent.created"]
    assert listed(agent=admin.bo, type="agent.created") == ["agent.created"]
    assert listed(actor_type="agent") == ["sign_in.succeeded"]
    assert (
        listed(actor_type="admin", actor=account.admin_email.upper()[:6]).count("agent.created")
        == 2
    )
    assert listed(actor=account.admin_id)[-1] == "sign_in.succeeded"
    assert listed(actor="nobody") == []
    assert listed(since="2999-01-01") == []
    assert listed(until="2000-01-01") == []
    assert len(listed(since="2000-01-01", until="2999-01-01T00:00")) == len(
        events_of(db, account.id)
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"type": "agent.exploded"}, "Unknown event type"),
        ({"actor_type": "hacker"}, "Unknown actor type"),
        ({"since": "yesterday"}, "is not a time"),
        ({"since": "2026-05-02", "until": "2026-05-01"}, "must be after its start"),
    ],
)
def test_a_filter_that_can_t_be_used_says_why(
    admin: Any, params: dict[str, str], message: str
) -> None:
    page = admin.get("/manage/audit", params=params)
    assert page.status_code == 400
    assert message in page.text
    assert admin.get("/manage/audit.csv", params=params).status_code == 400


def test_pages_follow_the_cursor(admin: Any, db: Any, engine: Any) -> None:
    account_id = admin.account.id
    with engine.connect() as conn:
        for n in range(120):
            events.record(
                conn,
                account_id,
                "scim_token.created",
                events.actors.system("test"),
                {"token_id": f"scimtok_{n}", "hint": f"{n:04d}"},
            )
        conn.commit()
    total = len(events_of(db, account_id))
    seen: list[int] = []
    url = "/manage/audit"
    while url:
        page = admin.get(url)
        assert page.status_code == 200
        cursors = _cursors(page.text)
        assert len(cursors) <= audit_log.PAGE_SIZE
        seen.extend(cursors)
        found = re.search(r'<a href="([^"]+)" id="audit-older">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert seen == list(range(total, 0, -1))
    filtered = admin.get("/manage/audit", params={"type": "scim_token.created"}).text
    older = re.search(r'<a href="([^"]+)" id="audit-older">', filtered).group(1)
    assert "type=scim_token.created" in older  # the filter is kept across pages


def test_the_csv_export_is_the_filtered_events_with_a_header(admin: Any, db: Any) -> None:
    response = admin.get("/manage/audit.csv", params={"type": "agent.created"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == audit_log.CSV_HEADER
    stored = events_of(db, admin.account.id, "agent.created")
    assert [row[0] for row in rows[1:]] == [e["cursor"] for e in reversed(stored)]
    bo = next(row for row in rows[1:] if row[6] == admin.bo)
    assert bo[2] == "agent.created" and bo[3] == "admin" and bo[5] == admin.account.admin_email
    assert '"first_name":"Bo"' in bo[8]
    assert "role" in bo[7].split()
    everything = list(csv.reader(io.StringIO(admin.get("/manage/audit.csv").text)))
    assert len(everything) - 1 == len(events_of(db, admin.account.id))


def test_the_csv_never_starts_a_cell_with_a_formula(
    client: Any, make_account: Any, db: Any
) -> None:
    account = make_account(admin_email="=1+2@example.com")
    assert sign_in(client, account.admin_email).status_code == 303
    _add_agent(client, "-x@example.com", first_name="=HYPERLINK(1)")
    rows = list(csv.reader(io.StringIO(client.get("/manage/audit.csv").text)))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'=1+2@example.com" in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    for value in ("=A1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert audit_log.csv_cell(value) == "'" + value
    assert audit_log.csv_cell("plain") == "plain"


def test_only_admins_see_the_audit_log(client: Any, new_client: Any, make_account: Any) -> None:
    account = make_account()
    admin = new_client()
    sign_in(admin, account.admin_email)
    _add_agent(admin, "agent@example.com", password=TEST_PASSWORD)
    agent = new_client()
    assert sign_in(agent, "agent@example.com").status_code == 303
    for path in ("/manage/audit", "/manage/audit.csv"):
        assert agent.get(path).status_code == 403
        anonymous = client.get(path)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert 'href="/manage/audit"' not in agent.get("/console").text
