"""What an IdP's assertion may do, through the real ACS: how long the session lasts
(SessionNotOnOrAfter), which emails it may sign in (email domains), and which agents it may
never take over (admins created in deskgate with a password)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from deskgate.services import auth
from deskgate.store.models import Agent, AgentSession

from helpers import sign_in
from support.domains import remove_domains
from web.test_saml_acs import (
    agents_named,
    assert_refused,
    last_attempt,
    path_of,
    post_acs,
    sso_account,  # noqa: F401  (the fixture)
)


def sessions_of(db, email: str) -> list[AgentSession]:
    db.rollback()
    return list(
        db.scalars(
            select(AgentSession)
            .join(Agent, Agent.id == AgentSession.agent_id)
            .where(Agent.email_normalized == email)
        )
    )


def respond_as(sso_account, email: str, **changes):
    spec = sso_account.spec(name_id=email, attributes={"email": (email,)}, **changes)
    return sso_account.response(spec)


# --- SessionNotOnOrAfter -----------------------------------------------------------------


def test_the_session_ends_no_later_than_the_idps_session_not_on_or_after(
    sso_account, new_client, db
):
    ends = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=7)
    browser = new_client()
    response = post_acs(
        browser,
        path_of(sso_account.acs),
        sso_account.response(sso_account.spec(session_not_on_or_after=ends)),
    )
    assert response.status_code == 303
    [session] = sessions_of(db, "agent@example.com")
    assert session.expires_at == ends  # not our 12-hour lifetime
    assert browser.get("/api/v1/me").status_code == 200
    cookie = browser.cookies["dg_session"]
    assert auth.current_session(db, cookie, ends - dt.timedelta(seconds=1)) is not None
    assert auth.current_session(db, cookie, ends) is None


def test_without_session_not_on_or_after_the_session_has_our_lifetime(sso_account, new_client, db):
    before = dt.datetime.now(dt.UTC)
    assert (
        post_acs(new_client(), path_of(sso_account.acs), sso_account.response()).status_code == 303
    )
    [session] = sessions_of(db, "agent@example.com")
    assert dt.timedelta(hours=12) <= session.expires_at - before < dt.timedelta(hours=12, minutes=1)


def test_a_later_session_not_on_or_after_does_not_lengthen_our_lifetime(
    sso_account, new_client, db
):
    far = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    post_acs(
        new_client(),
        path_of(sso_account.acs),
        sso_account.response(sso_account.spec(session_not_on_or_after=far)),
    )
    [session] = sessions_of(db, "agent@example.com")
    assert session.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)


# --- email domains -----------------------------------------------------------------------


def test_an_email_outside_the_connections_domains_is_refused_with_the_reason(
    sso_account, new_client
):
    response = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "mallory@other.test")
    )
    assert_refused(sso_account, response, "email_domain_not_allowed", email="mallory@other.test")
    assert "domain" in response.text
    detail = last_attempt(sso_account.db).detail
    assert "expected an email in example.com" in detail and "received one in other.test" in detail


def test_a_look_alike_subdomain_is_outside_the_domain(sso_account, new_client):
    response = post_acs(
        new_client(),
        path_of(sso_account.acs),
        respond_as(sso_account, "agent@example.com.evil.test"),
    )
    assert_refused(
        sso_account, response, "email_domain_not_allowed", email="agent@example.com.evil.test"
    )


def test_domains_compare_without_case(sso_account, new_client):
    response = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "Agent@EXAMPLE.com")
    )
    assert response.status_code == 303
    assert agents_named(sso_account.db, "agent@example.com") == 1


def test_without_email_domains_any_email_is_accepted(sso_account, new_client):
    remove_domains(sso_account.db, sso_account.account.id)
    response = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "someone@other.test")
    )
    assert response.status_code == 303
    assert agents_named(sso_account.db, "someone@other.test") == 1


# --- admins the IdP did not provision ----------------------------------------------------


def test_the_idp_cannot_sign_in_as_a_password_admin(sso_account, new_client, db):
    admin_email = sso_account.account.admin_email
    browser = new_client()
    response = post_acs(browser, path_of(sso_account.acs), respond_as(sso_account, admin_email))
    assert response.status_code == 403
    assert "sign in with your password" in response.text
    assert "dg_session" not in response.headers.get("set-cookie", "")
    assert sessions_of(db, admin_email) == []
    attempt = last_attempt(db)
    assert (attempt.succeeded, attempt.reason_code, attempt.email) == (
        False,
        "admin_not_provisioned_by_idp",
        admin_email,
    )
    assert "not provisioned by this IdP" in attempt.detail
    # The break-glass password still works.
    assert sign_in(new_client(), admin_email).status_code == 303


def test_a_password_agent_that_is_not_an_admin_may_use_sso(sso_account, client, new_client, db):
    from helpers import post_form

    sign_in(client, sso_account.account.admin_email)
    added = post_form(
        client,
        "/manage/agents",
        "/manage/agents",
        {
            "email": "colleague@example.com",
            "first_name": "Col",
            "last_name": "League",
            "role": "agent",
            "password": "a long enough password",
        },
    )
    assert added.status_code in (200, 303), added.text
    response = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "colleague@example.com")
    )
    assert response.status_code == 303
    assert len(sessions_of(db, "colleague@example.com")) == 1


@pytest.mark.parametrize("source", ["jit", "scim"])
def test_admins_the_idp_provisioned_sign_in_with_sso(sso_account, new_client, db, source):
    assert (
        post_acs(new_client(), path_of(sso_account.acs), sso_account.response()).status_code == 303
    )
    db.rollback()
    agent = db.scalars(select(Agent).where(Agent.email_normalized == "agent@example.com")).one()
    agent.role, agent.source = "admin", source
    db.commit()
    assert (
        post_acs(new_client(), path_of(sso_account.acs), sso_account.response()).status_code == 303
    )
    db.rollback()
    assert (
        db.scalar(
            select(func.count()).select_from(AgentSession).where(AgentSession.agent_id == agent.id)
        )
        == 2
    )
