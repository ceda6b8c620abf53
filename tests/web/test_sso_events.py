"""SSO events: the connection's settings saved by the admin (sso.enabled / sso.updated /
sso.disabled, none when nothing changed, never a private key), the SSO token rotated, and
sign-ins at the ACS: JIT creation and renames by the IdP,
sign_in.succeeded, sign_in.failed under the same per-IP cap as the attempt rows."""

from __future__ import annotations

from typing import Any

from deskgate.saml.certs import sha256_fingerprint
from deskgate.store.models import SSOConnection

from event_checks import after_creation, events_of
from helpers import post_form, sign_in
from saml import samlfactory as f
from web.test_saml_acs import IDP_ENTITY, idp_metadata, post_acs, sso_account  # noqa: F401

SSO_TYPES = ("sso.enabled", "sso.updated", "sso.disabled", "sso.metadata_refreshed")
FORM = {
    "idp_kind": "okta",
    "enabled": "on",
    "allow_idp_initiated": "on",
    "jit_enabled": "on",
    "jit_role": "agent",
}


def save(client: Any, **changes: str) -> Any:
    data = {**FORM, **changes}
    response = post_form(client, "/manage/security", "/manage/security/sso", data)
    assert response.status_code == 200, response.text
    return response


def test_saving_sso_settings_records_what_changed(client: Any, make_account: Any, db: Any) -> None:
    account = make_account()
    sign_in(client, account.admin_email)
    save(client, metadata_xml=idp_metadata())
    save(client)  # the same settings again: no event
    save(client, jit_role="admin")
    form_off = {k: v for k, v in FORM.items() if k != "enabled"}
    post_form(client, "/manage/security", "/manage/security/sso", {**form_off, "jit_role": "admin"})
    post_form(client, "/manage/security", "/manage/security/sso-token", {})

    recorded = events_of(db, account.id, *SSO_TYPES)
    assert [e["type"] for e in recorded] == [
        "sso.enabled",
        "sso.updated",
        "sso.disabled",
        "sso.updated",
    ]
    admin = {"type": "admin", "id": account.admin_id, "label": account.admin_email}
    assert all(e["actor"] == admin and e["agent_id"] is None for e in recorded)
    enabled, role, disabled, token = (e["data"] for e in recorded)
    assert (enabled["before"]["enabled"], enabled["after"]["enabled"]) == (False, True)
    assert enabled["after"]["idp_entity_id"] == IDP_ENTITY
    [added] = events_of(db, account.id, "certificate.added")  # its own event, same admin
    assert added["actor"] == admin
    assert added["data"]["fingerprint"] == sha256_fingerprint(f.keypair("idp").certificate_pem)
    assert (role["before"]["jit_role"], role["after"]["jit_role"]) == ("agent", "admin")
    assert disabled["after"]["enabled"] is False
    db.rollback()
    connection = db.get(SSOConnection, account.id)
    new_token = db.get(type(connection.account), account.id).sso_token
    assert token == {
        "before": {"sso_token": f"…{account.sso_token[-4:]}"},
        "after": {"sso_token": f"…{new_token[-4:]}"},
    }
    text = str(events_of(db, account.id))
    assert "PRIVATE KEY" not in text and account.sso_token not in text and new_token not in text
    # Saving the metadata issued the first SCIM token, by the same admin.
    [issued] = events_of(db, account.id, "scim_token.created")
    assert issued["actor"] == admin


def test_a_refused_save_records_nothing(client: Any, make_account: Any, db: Any) -> None:
    account = make_account()
    sign_in(client, account.admin_email)
    refused = post_form(
        client, "/manage/security", "/manage/security/sso", {**FORM, "metadata_xml": "<nope/>"}
    )
    assert refused.status_code == 400
    assert events_of(db, account.id, *SSO_TYPES) == []


def test_jit_sign_in_rename_and_success_are_events_by_the_idp(
    sso_account: Any, new_client: Any, db: Any
) -> None:
    idp = {"type": "idp", "id": None, "label": IDP_ENTITY}
    browser = new_client()
    acs = f"/api/v1/sso/{sso_account.token}/acs/okta"
    assert post_acs(browser, acs, sso_account.response()).status_code == 303
    renamed = sso_account.spec(
        attributes={
            "email": ("agent@example.com",),
            "firstName": ("Augusta",),
            "lastName": ("King",),
        }
    )
    again = post_acs(new_client(), acs, sso_account.response(renamed))
    assert again.status_code == 303

    recorded = [
        e
        for e in after_creation(db, sso_account.account.id)
        if e["type"].startswith(("agent.", "sign_in."))
    ]
    assert [e["type"] for e in recorded] == [
        "sign_in.succeeded",  # the admin's password sign-in that set SSO up
        "agent.created",
        "sign_in.succeeded",
        "agent.updated",
        "sign_in.succeeded",
    ]
    _, created, first, updated, second = recorded
    agent_id = created["agent_id"]
    assert all(e["actor"] == idp and e["agent_id"] == agent_id for e in recorded[1:])
    assert created["data"]["after"]["source"] == "jit"
    assert created["data"]["after"]["first_name"] == "Ada"
    assert first["data"] == {
        "method": "saml",
        "email": "agent@example.com",
        "ip": "testclient",
        "idp_initiated": True,
    }
    before, after = updated["data"]["before"], updated["data"]["after"]
    assert {k for k in after if before[k] != after[k]} == {
        "first_name",
        "last_name",
        "display_name",
        "version",
        "updated_at",
    }
    assert (after["first_name"], after["last_name"], after["version"]) == ("Augusta", "King", 2)
    assert second["data"]["method"] == "saml"


def test_refused_sign_ins_are_events_under_the_per_ip_cap(
    sso_account: Any, client: Any, db: Any, settings: Any
) -> None:
    cap = settings.sso_refusals_recorded_per_ip_per_minute
    wrong = sso_account.spec(audiences=("https://someone-else.example/",))
    acs = f"/api/v1/sso/{sso_account.token}/acs/okta"
    for _ in range(cap + 5):
        assert post_acs(client, acs, sso_account.response(wrong)).status_code == 403
    failed = events_of(db, sso_account.account.id, "sign_in.failed")
    assert len(failed) == cap  # like the attempt rows: the rest are only counted
    event = failed[0]
    assert event["actor"] == {"type": "idp", "id": None, "label": IDP_ENTITY}
    assert event["agent_id"] is None
    assert event["data"]["method"] == "saml" and event["data"]["ip"] == "testclient"
    assert event["data"]["reason_code"] and "someone-else" in event["data"]["detail"]
