"""SCIM admits a user's contact email only in the account's verified domains, once it claims
any; deactivation is never held up by a domain."""

from __future__ import annotations

from scim_helpers import USER_SCHEMA
from support.domains import claim_domain


def user(user_name: str, email: str | None = None) -> dict:
    body: dict = {"schemas": [USER_SCHEMA], "userName": user_name, "name": {"givenName": "A"}}
    if email is not None:
        body["emails"] = [{"value": email, "type": "work", "primary": True}]
    return body


def test_without_claimed_domains_any_email_is_admitted(scim):
    assert scim.post("Users", json=user("a", "a@anywhere.test")).status_code == 201


def test_only_emails_in_verified_domains_are_admitted(scim, scim_account, db):
    claim_domain(db, scim_account.id, "contoso.example")
    claim_domain(db, scim_account.id, "pending.example", verified=False)
    assert scim.post("Users", json=user("ok", "ok@Contoso.example")).status_code == 201
    outside = scim.post("Users", json=user("out", "out@other.example"))
    assert outside.status_code == 400
    assert outside.json()["scimType"] == "invalidValue"
    assert (
        "The contact email out@other.example is refused: expected an email in contoso.example, "
        "received one in other.example" in outside.json()["detail"]
    )
    pending = scim.post("Users", json=user("p", "p@pending.example"))
    assert pending.status_code == 400
    assert "claims but has not verified" in pending.json()["detail"]
    # A userName that is an address is the contact email when no email is sent.
    assert scim.post("Users", json=user("u@other.example")).status_code == 400
    # No email at all: nothing to route or match by.
    assert scim.post("Users", json=user("svc-robot")).status_code == 201


def test_an_update_to_an_email_outside_is_refused_and_deactivation_always_works(
    scim, scim_account, db
):
    created = scim.post("Users", json=user("ada", "ada@elsewhere.example")).json()
    claim_domain(db, scim_account.id, "contoso.example")  # claimed after Ada was provisioned
    moved = scim.patch(
        f"Users/{created['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "replace",
                    "path": "emails",
                    "value": [{"value": "ada@evil.example", "type": "work"}],
                }
            ],
        },
    )
    assert moved.status_code == 400 and "ada@evil.example is refused" in moved.json()["detail"]
    renamed = scim.patch(
        f"Users/{created['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": "Ada"}],
        },
    )
    assert renamed.status_code == 200  # her email did not change
    deactivated = scim.patch(
        f"Users/{created['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
