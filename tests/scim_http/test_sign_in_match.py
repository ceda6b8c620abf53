"""Sign-in matching per connection, with agents provisioned over SCIM whose userName (the UPN)
differs from their email: NameID = userName, or email = email; ambiguity refused; never another
account's agent."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from deskgate.store.models import LoginAttempt

from helpers import post_form, sign_in
from saml import samlfactory as f
from scim_helpers import USER_SCHEMA
from support.domains import claim_domain

IDP_ENTITY = "https://idp.example.test/metadata"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
UPN, MAIL = "a.b@contoso.onmicrosoft.example", "a.b@contoso.example"


def configure_sso(
    client: Any,
    account: Any,
    match: str,
    *,
    jit: bool = False,
    email_domains: str = "",
    db: Any = None,
) -> None:
    sign_in(client, account.admin_email)
    saved = post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {
            "idp_kind": "okta",
            "enabled": "on",
            "allow_idp_initiated": "on",
            "jit_role": "agent",
            "metadata_xml": f.idp_metadata_xml(
                entity_id=IDP_ENTITY, sso_url="https://idp.example.test/sso"
            ),
            "sign_in_match": match,
            **({"jit_enabled": "on"} if jit else {}),
        },
    )
    assert saved.status_code == 200, saved.text
    for domain in email_domains.split():
        claim_domain(db, account.id, domain)
    post_form(client, "/console", "/logout", {})


def assertion(
    account: Any, name_id: str, *, email: str | None = None, name_id_format: str = UNSPECIFIED
) -> str:
    base = f"http://testserver/api/v1/sso/{account.sso_token}"
    attributes = {"firstName": ("Ada",), "lastName": ("Bee",)}
    if email is not None:
        attributes["email"] = (email,)
    spec = f.spec(
        sp_entity_id=f"{base}/metadata/okta",
        acs_url=f"{base}/acs/okta",
        idp_entity_id=IDP_ENTITY,
        now=dt.datetime.now(dt.UTC).replace(microsecond=0),
        in_response_to=None,
        name_id=name_id,
        name_id_format=name_id_format,
        attributes=attributes,
    )
    return f.make_response(spec)


def post_acs(browser: Any, account: Any, saml_response: str) -> Any:
    return browser.post(
        f"/api/v1/sso/{account.sso_token}/acs/okta", data={"SAMLResponse": saml_response}
    )


def provision(scim: Any, user_name: str, mail: str) -> dict[str, Any]:
    response = scim.post(
        "Users",
        json={
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "name": {"givenName": "Ada", "familyName": "Bee"},
            "emails": [{"value": mail, "type": "work", "primary": True}],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def last_attempt(db: Any) -> LoginAttempt:
    db.rollback()
    return db.scalars(
        select(LoginAttempt).order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
    ).first()


@pytest.fixture
def sso_scim(make_account: Any, issue_token: Any, scim_for: Any, client: Any) -> Any:
    """(account, scim client): a Scale Plus account with a SCIM token."""
    from scim_helpers import ScimAccount

    account = make_account()
    scim_account = ScimAccount(
        id=account.id,
        admin_email=account.admin_email,
        admin_id=account.admin_id,
        token=issue_token(account.id),
        base_path=f"/scim/v2/{account.id}",
    )
    return account, scim_for(scim_account)


@pytest.mark.parametrize(
    ("match", "name_id", "email"),
    [
        ("user_name", UPN, None),  # NameID = userName; no email needed
        ("user_name", UPN, MAIL),
        ("email", UPN, MAIL),  # the email attribute names the agent (NameID is the UPN)
        ("email", MAIL, None),  # NameID is the email
    ],
)
def test_upn_user_name_with_a_different_email_signs_in(
    sso_scim, client, new_client, db, match, name_id, email
):
    account, scim = sso_scim
    configure_sso(client, account, match)
    user = provision(scim, UPN, MAIL)
    browser = new_client()
    response = post_acs(browser, account, assertion(account, name_id, email=email))
    assert response.status_code == 303, response.text
    me = browser.get("/api/v1/me").json()
    assert (me["id"], me["email"]) == (user["id"], MAIL)


def test_user_name_matching_does_not_take_the_email_for_the_user_name(
    sso_scim, client, new_client, db
):
    account, scim = sso_scim
    configure_sso(client, account, "user_name", jit=True)
    provision(scim, UPN, MAIL)
    # NameID = the mail: no agent has it as userName, and JIT cannot make a second agent with MAIL.
    response = post_acs(new_client(), account, assertion(account, MAIL, email=MAIL))
    assert response.status_code in (400, 403), response.text
    attempt = last_attempt(db)
    assert attempt.reason_code == "jit_conflict", attempt.detail
    assert MAIL in attempt.detail


def test_non_email_user_name_signs_in_by_name_id(sso_scim, client, new_client, db):
    account, scim = sso_scim
    configure_sso(client, account, "user_name")
    user = provision(scim, "ryan3", "ryan@contoso.example")
    browser = new_client()
    response = post_acs(browser, account, assertion(account, "RYAN3"))  # userName: case ignored
    assert response.status_code == 303, response.text
    assert browser.get("/api/v1/me").json()["id"] == user["id"]


def test_with_email_domains_an_identity_without_any_email_is_refused(
    sso_scim, client, new_client, db
):
    account, scim = sso_scim
    configure_sso(client, account, "user_name", email_domains="contoso.example", db=db)
    created = scim.post(
        "Users",
        json={"schemas": [USER_SCHEMA], "userName": "svc-robot", "name": {"givenName": "R"}},
    )
    assert created.status_code == 201, created.text
    browser = new_client()
    response = post_acs(browser, account, assertion(account, "svc-robot"))
    assert 400 <= response.status_code < 500
    assert "dg_session" not in response.headers.get("set-cookie", "")
    attempt = last_attempt(db)
    assert attempt.reason_code == "email_domain_not_allowed"
    assert "expected an email in contoso.example, received none" in attempt.detail


def test_two_agents_with_the_email_are_refused_with_a_reason(sso_scim, client, new_client, db):
    account, scim = sso_scim
    configure_sso(client, account, "email")
    first = provision(scim, "one@contoso.onmicrosoft.example", "shared@contoso.example")
    second = provision(scim, "two@contoso.onmicrosoft.example", "shared@contoso.example")
    response = post_acs(
        new_client(), account, assertion(account, "x", email="shared@contoso.example")
    )
    assert 400 <= response.status_code < 500
    assert "dg_session" not in response.headers.get("set-cookie", "")
    attempt = last_attempt(db)
    assert attempt.reason_code == "ambiguous_agent"
    assert first["id"] in attempt.detail and second["id"] in attempt.detail


def test_another_accounts_agent_never_matches(
    sso_scim, make_account, issue_token, scim_for, client, new_client, db
):
    from scim_helpers import ScimAccount

    account, _ = sso_scim
    configure_sso(client, account, "user_name")
    other = make_account()
    other_scim = scim_for(
        ScimAccount(
            id=other.id,
            admin_email=other.admin_email,
            admin_id=other.admin_id,
            token=issue_token(other.id),
            base_path=f"/scim/v2/{other.id}",
        )
    )
    elsewhere = provision(other_scim, UPN, MAIL)
    response = post_acs(new_client(), account, assertion(account, UPN, email=MAIL))
    assert 400 <= response.status_code < 500
    attempt = last_attempt(db)
    assert attempt.reason_code == "jit_disabled" and attempt.agent_id is None
    assert elsewhere["id"] not in (attempt.detail or "")


def test_security_page_says_which_idp_attribute_to_send(make_account, client):
    account = make_account()
    configure_sso(client, account, "user_name")
    sign_in(client, account.admin_email)
    page = client.get("/manage/security").text
    assert 'name="sign_in_match" value="user_name" checked' in page
    assert "user.userprincipalname" in page and "Application username" in page
    assert "user.mail" in page


def test_unknown_matching_choice_is_refused_and_nothing_changes(make_account, client, db):
    account = make_account()
    configure_sso(client, account, "user_name")
    sign_in(client, account.admin_email)
    response = post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {"idp_kind": "okta", "enabled": "on", "sign_in_match": "guess"},
    )
    assert response.status_code == 400
    assert "Unknown sign-in matching" in response.text
    from deskgate.store.models import SSOConnection

    db.rollback()
    assert db.get(SSOConnection, account.id).sign_in_match == "user_name"


def test_jit_matched_by_user_name_keeps_the_name_id_as_user_name(sso_scim, client, new_client, db):
    account, scim = sso_scim
    configure_sso(client, account, "user_name", jit=True)
    browser = new_client()
    response = post_acs(
        browser,
        account,
        assertion(account, "newbie@contoso.onmicrosoft.example", email="newbie@contoso.example"),
    )
    assert response.status_code == 303, response.text
    me = browser.get("/api/v1/me").json()
    assert me["email"] == "newbie@contoso.example"
    # The IdP's later SCIM lookup finds this agent (no duplicate), by the same identifier.
    found = scim.get(
        "Users", params={"filter": 'userName eq "newbie@contoso.onmicrosoft.example"'}
    ).json()
    assert [user["id"] for user in found["Resources"]] == [me["id"]]
    sign_in(client, account.admin_email)
    assert "userName newbie@contoso.onmicrosoft.example" in client.get("/manage/agents").text
