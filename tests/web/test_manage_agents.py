from __future__ import annotations

import pytest
from sqlalchemy import func, select

from deskgate.store.models import Agent, AgentSession

from helpers import TEST_PASSWORD, post_form, sign_in


def add_agent(client, **fields):
    data = {"email": "", "first_name": "", "last_name": "", "role": "agent", "password": ""}
    data.update(fields)
    return post_form(client, "/manage/agents", "/manage/agents", data)


def agent_id(db, email):
    db.rollback()  # end the read snapshot: see what the app committed
    return db.scalar(select(Agent.id).where(Agent.email_normalized == email.lower()))


@pytest.fixture
def admin_client(client, make_account):
    account = make_account()
    assert sign_in(client, account.admin_email).status_code == 303
    client.account = account
    return client


def test_admin_adds_an_agent_who_can_then_sign_in(admin_client, new_client, db):
    response = add_agent(
        admin_client,
        email="Bo@Example.com",
        first_name="Bo",
        last_name="Berg",
        password=TEST_PASSWORD,
    )
    assert response.status_code == 303
    page = admin_client.get("/manage/agents")
    assert "Added Bo@Example.com." in page.text
    assert "Bo Berg" in page.text
    agent = db.scalars(select(Agent).where(Agent.email == "Bo@Example.com")).one()
    assert (agent.role, agent.active, agent.source, agent.account_id) == (
        "agent",
        True,
        "password",
        admin_client.account.id,
    )
    assert agent.password_hash and TEST_PASSWORD not in agent.password_hash
    bo = new_client()
    assert sign_in(bo, "bo@example.com").status_code == 303
    assert bo.get("/manage/agents").status_code == 403


def test_duplicate_email_in_another_case_is_refused_and_nothing_is_written(admin_client, db):
    add_agent(admin_client, email="carol@example.com")
    response = add_agent(admin_client, email="CAROL@example.COM", first_name="Other")
    assert response.status_code == 409
    assert "already exists" in response.text
    assert (
        db.scalar(
            select(func.count())
            .select_from(Agent)
            .where(Agent.email_normalized == "carol@example.com")
        )
        == 1
    )


def test_the_same_email_may_exist_in_two_accounts(admin_client, make_account, db):
    other = make_account()
    response = add_agent(admin_client, email=other.admin_email)
    assert response.status_code == 303


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not-an-email"}, "is not a valid email address"),
        ({"email": "x@example.com", "role": "owner"}, "Unknown role"),
        ({"email": "x@example.com", "password": "short"}, "at least 10 characters"),
        ({"email": "x@example.com", "first_name": "x" * 300}, "too long"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(admin_client, db, fields, message):
    before = db.scalar(select(func.count()).select_from(Agent))
    response = add_agent(admin_client, **fields)
    assert response.status_code == 400
    assert message in response.text
    assert db.scalar(select(func.count()).select_from(Agent)) == before


def test_non_admins_get_403_on_every_manage_page(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    add_agent(client, email="agent@example.com", password=TEST_PASSWORD)
    post_form(client, "/console", "/logout", {})
    sign_in(client, "agent@example.com")
    for path in ("/manage/agents", "/manage/security"):
        assert client.get(path).status_code == 403
    response = post_form(
        client, "/console", "/manage/agents", {"email": "z@example.com", "role": "admin"}
    )
    assert response.status_code == 403
    response = post_form(
        client, "/console", f"/manage/agents/{account.admin_id}/active", {"active": "false"}
    )
    assert response.status_code == 403
    db.rollback()  # end the read snapshot: see what the app committed
    assert db.get(Agent, account.admin_id).active


def test_manage_actions_need_a_csrf_token(admin_client, db):
    response = admin_client.post("/manage/agents", data={"email": "x@example.com", "role": "agent"})
    assert response.status_code == 403
    assert agent_id(db, "x@example.com") is None


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(admin_client, db):
    admin_id = admin_client.account.admin_id
    response = post_form(
        admin_client, "/manage/agents", f"/manage/agents/{admin_id}/role", {"role": "agent"}
    )
    assert response.status_code == 400
    assert "last active admin" in response.text
    response = post_form(
        admin_client, "/manage/agents", f"/manage/agents/{admin_id}/active", {"active": "false"}
    )
    assert response.status_code == 400
    db.rollback()  # end the read snapshot: see what the app committed
    admin = db.get(Agent, admin_id)
    assert (admin.role, admin.active) == ("admin", True)
    # With a second admin, the first may step down.
    add_agent(admin_client, email="second@example.com", role="admin")
    response = post_form(
        admin_client, "/manage/agents", f"/manage/agents/{admin_id}/role", {"role": "agent"}
    )
    assert response.status_code == 303
    db.rollback()  # end the read snapshot: see what the app committed
    assert db.get(Agent, admin_id).role == "agent"


def test_deactivated_admins_do_not_count_as_the_remaining_admin(admin_client, db):
    add_agent(admin_client, email="second@example.com", role="admin")
    second = agent_id(db, "second@example.com")
    assert (
        post_form(
            admin_client, "/manage/agents", f"/manage/agents/{second}/active", {"active": "false"}
        ).status_code
        == 303
    )
    admin_id = admin_client.account.admin_id
    response = post_form(
        admin_client, "/manage/agents", f"/manage/agents/{admin_id}/role", {"role": "agent"}
    )
    assert response.status_code == 400


def test_deactivation_revokes_sessions_at_once_and_blocks_sign_in(admin_client, new_client, db):
    add_agent(admin_client, email="dee@example.com", password=TEST_PASSWORD)
    dee = new_client()
    sign_in(dee, "dee@example.com")
    assert dee.get("/console").status_code == 200
    dee_id = agent_id(db, "dee@example.com")
    response = post_form(
        admin_client, "/manage/agents", f"/manage/agents/{dee_id}/active", {"active": "false"}
    )
    assert response.status_code == 303
    db.rollback()
    assert (
        db.scalar(
            select(func.count()).select_from(AgentSession).where(AgentSession.agent_id == dee_id)
        )
        == 0
    )
    assert dee.get("/console").status_code == 303
    assert dee.get("/api/v1/me").status_code == 401
    refused = sign_in(dee, "dee@example.com")
    assert refused.status_code == 401
    assert "deactivated" in refused.text
    # Reactivation restores sign-in.
    post_form(admin_client, "/manage/agents", f"/manage/agents/{dee_id}/active", {"active": "true"})
    assert sign_in(dee, "dee@example.com").status_code == 303


def test_an_admin_cannot_touch_another_accounts_agents(admin_client, make_account, db):
    other = make_account()
    for action, data in (
        (f"/manage/agents/{other.admin_id}/active", {"active": "false"}),
        (f"/manage/agents/{other.admin_id}/role", {"role": "agent"}),
    ):
        response = post_form(admin_client, "/manage/agents", action, data)
        assert response.status_code == 404
    db.rollback()  # end the read snapshot: see what the app committed
    victim = db.get(Agent, other.admin_id)
    assert (victim.active, victim.role) == (True, "admin")
    assert other.admin_email not in admin_client.get("/manage/agents").text


def test_security_page_says_sso_needs_scale_plus(client, make_account):
    account = make_account(plan="scale")
    sign_in(client, account.admin_email)
    page = client.get("/manage/security")
    assert page.status_code == 200
    assert "available on the <strong>Scale Plus</strong> plan" in page.text


def test_the_longest_names_make_a_display_name_that_fits(admin_client, db):
    """200 + 200 characters used to make a 401-character display name: a 500 on PostgreSQL."""
    response = add_agent(
        admin_client, email="long@example.com", first_name="F" * 200, last_name="L" * 200
    )
    assert response.status_code == 303, response.text
    db.rollback()
    agent = db.scalars(select(Agent).where(Agent.email_normalized == "long@example.com")).one()
    assert (agent.first_name, agent.last_name) == ("F" * 200, "L" * 200)
    assert agent.display_name == ("F" * 200 + " " + "L" * 200)[:400]
