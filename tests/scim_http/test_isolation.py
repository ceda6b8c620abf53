"""One account's token never reads or changes another account, and the answer never tells
whether an account exists."""

from __future__ import annotations

import datetime as dt
from typing import Any

from deskgate.services import scim_credentials
from deskgate.store.base import utcnow
from deskgate.store.models import Account, Agent, GroupMember

from scim_helpers import (
    ScimAccount,
    create_group,
    create_user,
    filter_users,
    fresh,
    is_scim_error,
    patch_body,
    user_body,
)


def test_a_token_works_only_under_its_own_accounts_base_url(
    scim_for: Any, make_scim_account: Any
) -> None:
    a, b = make_scim_account(), make_scim_account()
    a_token_on_b = scim_for(b, auth=f"Bearer {a.token}")
    unknown_account = scim_for(
        ScimAccount("acct_nope", "", "", a.token, "/scim/v2/acct_01nosuchaccount0000000000")
    )
    responses = [
        a_token_on_b.get("Users"),
        unknown_account.get("Users"),
        a_token_on_b.post("Users", json=user_body("x@y.com")),
    ]
    for response in responses:
        assert is_scim_error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert len({r.json()["detail"] for r in responses}) == 1  # same answer: no account probing


def test_ids_of_another_account_are_not_found(
    scim_for: Any, make_scim_account: Any, db: Any
) -> None:
    a, b = make_scim_account(), make_scim_account()
    scim_a, scim_b = scim_for(a), scim_for(b)
    b_user = create_user(scim_b, "shared@example.com", given="B")
    a_user = create_user(scim_a, "shared@example.com", given="A")  # same email, other account: fine
    b_group = create_group(scim_b, "B team", [b_user["id"]])

    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {
            "PUT": user_body("shared@example.com"),
            "PATCH": patch_body({"op": "replace", "value": {"active": False}}),
        }
        assert is_scim_error(
            scim_a.request(method, f"Users/{b_user['id']}", json=body.get(method)), 404
        )
        group_body = {
            "PUT": {"displayName": "x"},
            "PATCH": patch_body({"op": "replace", "path": "displayName", "value": "x"}),
        }
        assert is_scim_error(
            scim_a.request(method, f"Groups/{b_group['id']}", json=group_body.get(method)), 404
        )
    assert [
        u["id"] for u in filter_users(scim_a, 'userName eq "shared@example.com"')["Resources"]
    ] == [a_user["id"]]
    assert scim_a.get("Groups").json()["totalResults"] == 0
    b_agent = fresh(db).get(Agent, b_user["id"])
    assert (b_agent.first_name, b_agent.active, b_agent.version) == ("B", True, 1)


def test_a_group_cannot_take_another_accounts_agent(
    scim_for: Any, make_scim_account: Any, db: Any
) -> None:
    a, b = make_scim_account(), make_scim_account()
    scim_a, scim_b = scim_for(a), scim_for(b)
    mine = create_user(scim_a, "mine@example.com")
    theirs = create_user(scim_b, "theirs@example.com")

    created = scim_a.post(
        "Groups",
        json={"displayName": "Mixed", "members": [{"value": mine["id"]}, {"value": theirs["id"]}]},
    )
    assert is_scim_error(created, 400, "invalidValue")
    assert theirs["id"] in created.json()["detail"]
    assert scim_a.get("Groups").json()["totalResults"] == 0

    group = create_group(scim_a, "Mine", [mine["id"]])
    for body in (
        patch_body({"op": "add", "path": "members", "value": [{"value": theirs["id"]}]}),
        patch_body({"op": "replace", "path": "members", "value": [{"value": theirs["id"]}]}),
        patch_body(
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            {"op": "add", "path": "members", "value": [{"value": "agt_made_up"}]},
        ),
    ):
        assert is_scim_error(scim_a.patch(f"Groups/{group['id']}", json=body), 400, "invalidValue")
    put = scim_a.put(
        f"Groups/{group['id']}", json={"displayName": "Mine", "members": [{"value": theirs["id"]}]}
    )
    assert is_scim_error(put, 400, "invalidValue")
    rows = fresh(db).query(GroupMember).filter_by(group_id=group["id"]).all()
    assert [row.agent_id for row in rows] == [mine["id"]]
    assert scim_a.get(f"Groups/{group['id']}").json()["displayName"] == "Mine"


def test_scim_needs_the_scale_plus_plan(scim_for: Any, make_scim_account: Any, db: Any) -> None:
    account = make_scim_account()
    row = fresh(db).get(Account, account.id)
    row.plan = "scale"
    db.commit()
    response = scim_for(account).get("Users")
    assert is_scim_error(response, 403)
    assert "Scale Plus" in response.json()["detail"]


def test_rotated_tokens_stop_after_their_grace(
    scim_for: Any, scim_account: ScimAccount, db: Any
) -> None:
    old = scim_for(scim_account)
    assert old.get("Users").status_code == 200
    account = fresh(db).get(Account, scim_account.id)
    new = scim_credentials.issue(
        db, account, base_url="http://testserver", now=utcnow(), grace=dt.timedelta(hours=1)
    )
    db.commit()
    assert old.get("Users").status_code == 200  # within the grace period
    assert scim_for(scim_account, auth=f"Bearer {new.token}").get("Users").status_code == 200
    scim_credentials.issue(db, account, base_url="http://testserver", now=utcnow())
    db.commit()
    assert is_scim_error(old.get("Users"), 401)
    assert is_scim_error(scim_for(scim_account, auth=f"Bearer {new.token}").get("Users"), 401)


def test_token_forms_okta_and_entra_send(scim_for: Any, scim_account: ScimAccount) -> None:
    token = scim_account.token
    for auth in (f"Bearer {token}", f"bearer {token}", token, f"  Bearer   {token} "):
        assert scim_for(scim_account, auth=auth).get("ServiceProviderConfig").status_code == 200, (
            auth
        )
    for auth in ("", "Bearer", f"Basic {token}", f"Bearer {token}x", f"{token} {token}"):
        assert is_scim_error(scim_for(scim_account, auth=auth).get("ServiceProviderConfig"), 401), (
            auth
        )
