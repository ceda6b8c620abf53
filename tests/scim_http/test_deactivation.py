"""Deactivation by the IdP takes effect at once: sessions end, password and SSO sign-in are
refused with a clear message, and reactivation lets the agent back in."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from deskgate.services import agents as agent_service
from deskgate.store.models import Account, Agent, AgentSession, AgentSource

from helpers import TEST_PASSWORD, post_form, sign_in
from saml import samlfactory as saml_factory
from scim_helpers import ScimAccount, create_user, filter_users, fresh, patch_body, user_body

DEACTIVATE = patch_body({"op": "replace", "value": {"active": False}})  # exactly as Okta sends it
REACTIVATE = patch_body({"op": "replace", "value": {"active": True}})


def sessions_of(db: Any, agent_id: str) -> int:
    return fresh(db).scalar(
        select(func.count()).select_from(AgentSession).where(AgentSession.agent_id == agent_id)
    )


@pytest.fixture
def password_agent(scim_account: ScimAccount, db: Any) -> Agent:
    """An agent the admin added with a password, whom Okta then manages (linked by filter)."""
    agent = agent_service.add_agent(
        db,
        scim_account.id,
        email="pat@example.com",
        first_name="Pat",
        password=TEST_PASSWORD,
        source=AgentSource.PASSWORD,
    )
    db.commit()
    return agent


def test_okta_deactivation_signs_the_agent_out_and_reactivation_lets_them_back(
    scim: Any, web: Any, password_agent: Agent, db: Any
) -> None:
    assert sign_in(web, "pat@example.com").status_code == 303
    assert web.get("/console").status_code == 200
    assert sessions_of(db, password_agent.id) == 1

    assert scim.patch(f"Users/{password_agent.id}", json=DEACTIVATE).json()["active"] is False
    assert sessions_of(db, password_agent.id) == 0
    signed_out = web.get("/console")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")
    refused = sign_in(web, "pat@example.com")
    assert refused.status_code == 401
    assert "This agent account has been deactivated" in refused.text
    assert filter_users(scim, 'userName eq "pat@example.com"')["Resources"][0]["active"] is False

    assert scim.patch(f"Users/{password_agent.id}", json=REACTIVATE).json()["active"] is True
    assert sign_in(web, "pat@example.com").status_code == 303
    assert web.get("/console").status_code == 200


def test_put_with_active_false_deactivates_too(
    scim: Any, web: Any, password_agent: Agent, db: Any
) -> None:
    sign_in(web, "pat@example.com")
    body = {**user_body("pat@example.com", given="Pat", family="Smith"), "active": False}
    assert scim.put(f"Users/{password_agent.id}", json=body).json()["active"] is False
    assert sessions_of(db, password_agent.id) == 0
    assert web.get("/console").status_code == 303


def test_the_idp_may_deactivate_even_the_last_admin(
    scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    """The IdP is authoritative: unlike the admin pages, SCIM can deactivate the last admin."""
    response = scim.patch(f"Users/{scim_account.admin_id}", json=DEACTIVATE)
    assert response.status_code == 200 and response.json()["active"] is False
    assert fresh(db).get(Agent, scim_account.admin_id).active is False


# --- single sign-on ------------------------------------------------------------------------


def test_a_scim_user_signs_in_by_sso_at_once_until_deactivated(
    scim: Any, web: Any, new_web: Any, scim_account: ScimAccount, db: Any
) -> None:
    """No JIT: the agent exists only because SCIM created it, and SSO finds it by email."""
    idp = "https://idp.example.test/metadata"
    sign_in(web, scim_account.admin_email)
    saved = post_form(
        web,
        "/manage/security",
        "/manage/security/sso",
        {
            "idp_kind": "okta",
            "enabled": "on",
            "metadata_xml": saml_factory.idp_metadata_xml(entity_id=idp),
            "allow_idp_initiated": "on",
            "jit_role": "agent",
        },
    )  # jit_enabled left off
    assert saved.status_code == 200, saved.text
    sso_token = fresh(db).get(Account, scim_account.id).sso_token
    acs = f"http://testserver/api/v1/sso/{sso_token}/acs/okta"

    def sso_sign_in() -> Any:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        spec = saml_factory.spec(
            sp_entity_id=f"http://testserver/api/v1/sso/{sso_token}/metadata/okta",
            acs_url=acs,
            idp_entity_id=idp,
            now=now,
            in_response_to=None,
            name_id="sam@example.com",
            attributes={"email": ("sam@example.com",)},
        )
        browser = new_web()
        response = browser.post(
            urlsplit(acs).path, data={"SAMLResponse": saml_factory.make_response(spec)}
        )
        return browser, response

    user = create_user(scim, "Sam@Example.com", given="Sam", family="Provisioned")
    browser, response = sso_sign_in()
    assert response.status_code == 303, response.text
    assert browser.get("/api/v1/me").json()["email"] == "Sam@Example.com"

    scim.patch(f"Users/{user['id']}", json=DEACTIVATE)
    assert browser.get("/console").status_code == 303  # signed out
    _, refused = sso_sign_in()
    assert refused.status_code == 403 and "deactivated" in refused.text

    scim.patch(f"Users/{user['id']}", json=REACTIVATE)
    _, again = sso_sign_in()
    assert again.status_code == 303
    assert (
        fresh(db).scalar(
            select(func.count())
            .select_from(Agent)
            .where(Agent.email_normalized == "sam@example.com")
        )
        == 1
    )
