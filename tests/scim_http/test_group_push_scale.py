"""Okta Group Push: 256 members in one PATCH, `replace members` and PUT, written set-based (a
handful of statements per operation, never one per member), quickly, also on a 10,000-member
group."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, insert

from deskgate import ids
from deskgate.store.base import utcnow
from deskgate.store.models import Agent, GroupMember

from scim_helpers import GROUP_SCHEMA, create_group, fresh, patch_body

MAX_STATEMENTS = 40
"""Per request, whatever the number of members (auth, log, group row, chunked member reads/writes)."""


def bulk_agents(db: Any, account_id: str, n: int, prefix: str = "bulk") -> list[str]:
    now = utcnow()
    rows = []
    for index in range(n):
        email = f"{prefix}{index}@push.example"
        rows.append(
            {
                "id": ids.new_id(ids.AGENT),
                "account_id": account_id,
                "user_name": email,
                "user_name_normalized": email,
                "emails": [{"value": email, "type": "work", "primary": True}],
                "email": email,
                "email_normalized": email,
                "first_name": "Bulk",
                "last_name": str(index),
                "display_name": "",
                "role": "agent",
                "active": True,
                "source": "scim",
                "enterprise": {},
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    db.execute(insert(Agent), rows)
    db.commit()
    return [row["id"] for row in rows]


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_group_push_of_256_members_in_one_patch(
    scim: Any, scim_account: Any, db: Any, engine: Any
) -> None:
    members = bulk_agents(db, scim_account.id, 256)
    group = create_group(scim, "Pushed")
    body = patch_body(
        {"op": "add", "path": "members", "value": [{"value": m, "display": m} for m in members]}
    )
    with counted(engine) as statements:
        response, seconds = timed(lambda: scim.patch(f"Groups/{group['id']}", json=body))
    print(f"\n256 members in one PATCH: {len(statements)} statements, {seconds * 1000:.0f} ms")
    assert response.status_code in (200, 204), response.text
    assert len(statements) <= MAX_STATEMENTS, f"{len(statements)} statements for 256 members"
    assert seconds < 1.0, f"{seconds:.2f} s"
    assert fresh(db).query(GroupMember).filter_by(group_id=group["id"]).count() == 256

    # Okta's `replace members` with another 256 (half of them new), then PUT with the first half.
    others = bulk_agents(db, scim_account.id, 128, prefix="other")
    replacement = members[:128] + others
    body = patch_body(
        {"op": "replace", "path": "members", "value": [{"value": m} for m in replacement]}
    )
    with counted(engine) as statements:
        response, seconds = timed(lambda: scim.patch(f"Groups/{group['id']}", json=body))
    assert response.status_code in (200, 204), response.text
    assert len(statements) <= MAX_STATEMENTS and seconds < 1.0, (len(statements), seconds)
    stored = {row.agent_id for row in fresh(db).query(GroupMember).filter_by(group_id=group["id"])}
    assert stored == set(replacement)

    put = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Pushed",
        "members": [{"value": m} for m in members[:64]],
    }
    with counted(engine) as statements:
        response, seconds = timed(lambda: scim.put(f"Groups/{group['id']}", json=put))
    assert response.status_code == 200, response.text
    assert len(statements) <= MAX_STATEMENTS and seconds < 1.0, (len(statements), seconds)
    assert {m["value"] for m in response.json()["members"]} == set(members[:64])


def test_patch_on_a_10000_member_group_stays_quick(
    scim: Any, scim_account: Any, db: Any, engine: Any
) -> None:
    members = bulk_agents(db, scim_account.id, 10_256)
    group = create_group(scim, "Everyone")
    db.execute(
        insert(GroupMember), [{"group_id": group["id"], "agent_id": m} for m in members[:10_000]]
    )
    db.commit()
    body = patch_body(
        {"op": "add", "path": "members", "value": [{"value": m} for m in members[10_000:]]},
        {"op": "remove", "path": "members", "value": [{"value": m} for m in members[:256]]},
    )
    with counted(engine) as statements:
        response, seconds = timed(lambda: scim.patch(f"Groups/{group['id']}", json=body))
    print(
        f"\n10,000-member group, +256/-256 in one PATCH: {len(statements)} statements, {seconds * 1000:.0f} ms"
    )
    assert response.status_code in (200, 204), response.text
    assert len(statements) <= MAX_STATEMENTS, f"{len(statements)} statements"
    assert seconds < 1.0, f"{seconds:.2f} s"
    assert fresh(db).query(GroupMember).filter_by(group_id=group["id"]).count() == 10_000
