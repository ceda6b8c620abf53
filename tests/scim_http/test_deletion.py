"""Deleted over SCIM, then re-created or reactivated by an admin (RFC 7644 3.6: the old id
stays 404 unless the admin brings that very agent back)."""

from __future__ import annotations

from typing import Any

from deskgate.store.models import Agent

from helpers import post_form, sign_in
from scim_helpers import create_user, filter_users, fresh, is_scim_error, patch_body


def reactivate(client: Any, admin_email: str, agent_id: str) -> str:
    sign_in(client, admin_email)
    response = post_form(
        client, "/manage/agents", f"/manage/agents/{agent_id}/active", {"active": "true"}
    )
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"]).text


def test_admin_reactivation_makes_a_scim_deleted_agent_visible_again(
    scim: Any, scim_account: Any, client: Any, db: Any
) -> None:
    user = create_user(scim, "back@contoso.example")
    assert scim.delete(f"Users/{user['id']}").status_code == 204
    assert is_scim_error(scim.get(f"Users/{user['id']}"), 404)
    page = reactivate(client, scim_account.admin_email, user["id"])
    assert "reactivated" in page and "hidden from SCIM" not in page
    again = scim.get(f"Users/{user['id']}")
    assert again.status_code == 200 and again.json()["active"] is True
    assert filter_users(scim, 'userName eq "back@contoso.example"')["totalResults"] == 1
    assert fresh(db).get(Agent, user["id"]).scim_deleted_at is None


def test_reactivation_after_the_idp_recreated_the_user_name_says_why_it_stays_hidden(
    scim: Any, scim_account: Any, client: Any, db: Any
) -> None:
    old = create_user(scim, "twice@contoso.example")
    assert scim.delete(f"Users/{old['id']}").status_code == 204
    new = create_user(scim, "Twice@contoso.example")
    assert new["id"] != old["id"]
    page = reactivate(client, scim_account.admin_email, old["id"])
    assert "It stays hidden from SCIM" in page
    agent = fresh(db).get(Agent, old["id"])
    assert agent.active is True and agent.scim_deleted_at is not None
    for response in (
        scim.get(f"Users/{old['id']}"),
        scim.patch(
            f"Users/{old['id']}",
            json=patch_body({"op": "replace", "path": "active", "value": False}),
        ),
        scim.delete(f"Users/{old['id']}"),
    ):
        assert is_scim_error(response, 404)
    assert [
        u["id"] for u in filter_users(scim, 'userName eq "twice@contoso.example"')["Resources"]
    ] == [new["id"]]
