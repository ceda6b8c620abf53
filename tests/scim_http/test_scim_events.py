"""Events of SCIM writes: one per change, by the SCIM token the request authenticated with, with
the agent (or group) before and after; none for a write that changes nothing (Okta re-sends
identical PUTs and PATCHes) and none for a refused write. Groups that grant admin make
agent.role_changed events; a SCIM token issued or rotated is an event too."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from deskgate.store.models import ScimToken

from event_checks import events_of
from helpers import post_form, sign_in
from scim_helpers import (
    ScimAccount,
    create_group,
    create_user,
    is_scim_error,
    patch_body,
    user_body,
)

AGENT_TYPES = tuple(
    f"agent.{kind}"
    for kind in ("created", "updated", "role_changed", "deactivated", "reactivated", "deleted")
)
GROUP_TYPES = ("group.created", "group.updated", "group.deleted")


def token_actor(db: Any, account: ScimAccount) -> dict[str, Any]:
    db.rollback()
    token_id = db.scalar(select(ScimToken.id).where(ScimToken.account_id == account.id))
    return {"type": "scim_token", "id": token_id, "label": f"SCIM token …{account.token[-4:]}"}


def agent_events(db: Any, account: ScimAccount) -> list[dict[str, Any]]:
    """The agent events after the account's creation (its first admin's agent.created)."""
    return [e for e in events_of(db, account.id, *AGENT_TYPES) if e["cursor"] != "1"]


def changed_fields(event: dict[str, Any]) -> set[str]:
    before, after = event["data"]["before"], event["data"]["after"]
    return {name for name in after if before[name] != after[name]}


def test_post_put_patch_delete_are_one_event_each_by_the_token(
    scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    user = create_user(scim, "ann@example.com", given="Ann", family="Lee")
    uid = user["id"]
    renamed = user_body("ann@example.com", given="Anna", family="Lee")
    assert scim.put(f"Users/{uid}", json=renamed).status_code == 200
    deactivate = patch_body({"op": "replace", "value": {"active": False}})
    assert scim.patch(f"Users/{uid}", json=deactivate).status_code == 200
    reactivate = patch_body({"op": "replace", "path": "active", "value": True})
    assert scim.patch(f"Users/{uid}", json=reactivate).status_code == 200
    assert scim.delete(f"Users/{uid}").status_code == 204

    recorded = agent_events(db, scim_account)
    assert [e["type"] for e in recorded] == [
        "agent.created",
        "agent.updated",
        "agent.deactivated",
        "agent.reactivated",
        "agent.deleted",
    ]
    actor = token_actor(db, scim_account)
    assert all(e["actor"] == actor and e["agent_id"] == uid for e in recorded)
    created, updated, deactivated, reactivated, deleted = recorded
    assert created["data"]["before"] is None
    after = created["data"]["after"]
    assert after == {
        "id": uid,
        "user_name": "ann@example.com",
        "email": "ann@example.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "display_name": "Ann Lee",
        "role": "agent",
        "active": True,
        "source": "scim",
        "external_id": None,
        "version": 1,
        "created_at": after["created_at"],
        "updated_at": after["updated_at"],
    }
    assert changed_fields(updated) == {"first_name", "display_name", "version", "updated_at"}
    assert (updated["data"]["before"]["first_name"], updated["data"]["after"]["first_name"]) == (
        "Ann",
        "Anna",
    )
    assert changed_fields(deactivated) == {"active", "version", "updated_at"}
    assert changed_fields(reactivated) == {"active", "version", "updated_at"}
    assert changed_fields(deleted) == {"active", "version", "updated_at"}
    assert deleted["data"]["after"]["active"] is False
    assert deleted["data"]["after"]["version"] == 5


def test_a_put_that_renames_and_deactivates_is_one_deactivated_event(
    scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    uid = create_user(scim, "bo@example.com", given="Bo")["id"]
    body = user_body("bo@example.com", given="Bob", active=False)
    assert scim.put(f"Users/{uid}", json=body).status_code == 200
    [_, event] = agent_events(db, scim_account)
    assert event["type"] == "agent.deactivated"
    assert changed_fields(event) == {
        "first_name",
        "display_name",
        "active",
        "version",
        "updated_at",
    }


def test_writes_that_change_nothing_record_nothing(
    scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    body = user_body("cy@example.com", given="Cy")
    uid = scim.post("Users", json=body).json()["id"]
    for _ in range(3):  # Okta's re-sent PUTs and PATCHes
        assert scim.put(f"Users/{uid}", json=body).status_code == 200
        same = patch_body({"op": "replace", "value": {"active": True}})
        assert scim.patch(f"Users/{uid}", json=same).status_code == 200
    group = create_group(scim, "Team", [uid])
    again = {"displayName": "Team", "members": [{"value": uid}]}
    assert scim.put(f"Groups/{group['id']}", json=again).status_code == 200
    assert [e["type"] for e in agent_events(db, scim_account)] == ["agent.created"]
    assert [e["type"] for e in events_of(db, scim_account.id, *GROUP_TYPES)] == ["group.created"]


def test_refused_writes_record_nothing(scim: Any, scim_account: ScimAccount, db: Any) -> None:
    uid = create_user(scim, "dee@example.com")["id"]
    before = events_of(db, scim_account.id)
    assert is_scim_error(scim.post("Users", json=user_body("DEE@example.com")), 409, "uniqueness")
    create_user(scim, "eve@example.com")
    taken = user_body("eve@example.com")
    assert is_scim_error(scim.put(f"Users/{uid}", json=taken), 409, "uniqueness")
    stale = scim.patch(
        f"Users/{uid}",
        json=patch_body({"op": "replace", "value": {"active": False}}),
        headers={"If-Match": 'W/"99"'},
    )
    assert stale.status_code == 412
    after = events_of(db, scim_account.id)
    assert [e["type"] for e in after[len(before) :]] == ["agent.created"]  # eve only


def test_group_events_list_members_added_and_removed(
    scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    ann, bob = (create_user(scim, f"{n}@example.com")["id"] for n in ("ann", "bob"))
    group = create_group(scim, "Support", [ann])
    gid = group["id"]
    add_bob = patch_body({"op": "add", "path": "members", "value": [{"value": bob}]})
    assert scim.patch(f"Groups/{gid}", json=add_bob).status_code == 204
    rename = {"displayName": "Support EU", "members": [{"value": bob}]}
    assert scim.put(f"Groups/{gid}", json=rename).status_code == 200
    assert scim.delete(f"Users/{bob}").status_code == 204  # leaves the group
    assert scim.delete(f"Groups/{gid}").status_code == 204

    recorded = events_of(db, scim_account.id, *GROUP_TYPES)
    assert [e["type"] for e in recorded] == [
        "group.created",
        "group.updated",
        "group.updated",
        "group.updated",
        "group.deleted",
    ]
    actor = token_actor(db, scim_account)
    assert all(e["actor"] == actor and e["agent_id"] is None for e in recorded)
    created, added, renamed, left, deleted = (e["data"] for e in recorded)
    assert created["before"] is None and created["after"]["display_name"] == "Support"
    assert (created["members_added"], created["members_removed"]) == ([ann], [])
    assert (added["members_added"], added["members_removed"]) == ([bob], [])
    assert (renamed["before"]["display_name"], renamed["after"]["display_name"]) == (
        "Support",
        "Support EU",
    )
    assert (renamed["members_added"], renamed["members_removed"]) == ([], [ann])
    assert (left["members_added"], left["members_removed"]) == ([], [bob])
    assert deleted["after"] is None and deleted["before"]["display_name"] == "Support EU"


def test_admin_groups_make_role_changed_events(
    scim: Any, web: Any, scim_account: ScimAccount, db: Any
) -> None:
    ann, bob = (create_user(scim, f"{n}@example.com")["id"] for n in ("ann", "bob"))
    gid = create_group(scim, "Admins", [ann])["id"]
    assert sign_in(web, scim_account.admin_email).status_code == 303
    mark = {"group_id": gid, "grants_admin": "on"}
    post_form(web, "/manage/security", "/manage/security/scim-groups", mark)
    add_bob = patch_body({"op": "add", "path": "members", "value": [{"value": bob}]})
    scim.patch(f"Groups/{gid}", json=add_bob)
    scim.delete(f"Users/{ann}")  # deleted while an admin: one agent.deleted, demotion folded in

    admin = {"type": "admin", "id": scim_account.admin_id, "label": scim_account.admin_email}
    token = token_actor(db, scim_account)
    recorded = [
        (e["type"], e["agent_id"], e["actor"]["type"])
        for e in agent_events(db, scim_account)
        if e["type"] != "agent.created"
    ]
    assert recorded == [
        ("agent.role_changed", ann, "admin"),
        ("agent.role_changed", bob, "scim_token"),
        ("agent.deleted", ann, "scim_token"),
    ]
    promoted, joined, deleted = (
        e for e in agent_events(db, scim_account) if e["type"] != "agent.created"
    )
    assert promoted["actor"] == admin and joined["actor"] == token
    assert (promoted["data"]["before"]["role"], promoted["data"]["after"]["role"]) == (
        "agent",
        "admin",
    )
    assert (deleted["data"]["before"]["role"], deleted["data"]["after"]["role"]) == (
        "admin",
        "agent",
    )
    assert deleted["data"]["after"]["version"] == deleted["data"]["before"]["version"] + 2
    [marked] = [
        e for e in events_of(db, scim_account.id, "group.updated") if e["actor"]["type"] == "admin"
    ]
    assert (marked["data"]["before"]["grants_admin"], marked["data"]["after"]["grants_admin"]) == (
        False,
        True,
    )


def test_scim_tokens_issued_and_rotated_are_events_without_the_token(
    web: Any, scim_account: ScimAccount, db: Any
) -> None:
    assert sign_in(web, scim_account.admin_email).status_code == 303
    page = post_form(web, "/manage/security", "/manage/security/scim-token", {"grace_hours": "24"})
    assert page.status_code == 200
    created, rotated = events_of(db, scim_account.id, "scim_token.created", "scim_token.rotated")
    assert created["actor"]["type"] == "operator"  # the fixture issued the first one
    db.rollback()
    tokens = db.scalars(
        select(ScimToken)
        .where(ScimToken.account_id == scim_account.id)
        .order_by(ScimToken.created_at)
    ).all()
    old, new = tokens
    assert rotated["actor"] == {
        "type": "admin",
        "id": scim_account.admin_id,
        "label": scim_account.admin_email,
    }
    assert rotated["data"]["token_id"] == new.id and rotated["data"]["old_token_id"] == old.id
    assert rotated["data"]["hint"] == new.hint
    assert rotated["data"]["old_expires_at"].startswith(f"{old.expires_at:%Y-%m-%dT%H:%M:%S}")
    assert scim_account.token not in str(events_of(db, scim_account.id))
