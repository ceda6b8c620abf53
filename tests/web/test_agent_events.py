"""Agent events from deskgate's own paths: the Agents page (actor: the admin), account creation
by the CLI (the operator) and the demo (the system), and password sign-ins. Exactly one event
per change, none for a change that changes nothing or is refused."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from deskgate.cli import main
from deskgate.services import demo
from deskgate.store.models import Agent

from event_checks import after_creation, events_of
from helpers import TEST_PASSWORD, post_form, sign_in


def _add_agent(client, **fields):
    data = {"email": "", "first_name": "", "last_name": "", "role": "agent", "password": ""}
    data.update(fields)
    return post_form(client, "/manage/agents", "/manage/agents", data)


def _agent_id(db, email):
    db.rollback()
    return db.scalar(select(Agent.id).where(Agent.email_normalized == email.lower()))


def _changed(event):
    before, after = event["data"]["before"], event["data"]["after"]
    return {name for name in after if before is None or before[name] != after[name]}


def test_agents_page_changes_are_one_event_each_by_the_admin(client, make_account, db):
    account = make_account()
    assert sign_in(client, account.admin_email).status_code == 303
    assert (
        _add_agent(client, email="Bo@Example.com", first_name="Bo", last_name="Berg").status_code
        == 303
    )
    bo = _agent_id(db, "bo@example.com")
    for form in ({"role": "admin"}, {"role": "admin"}):  # the second changes nothing
        post_form(client, "/manage/agents", f"/manage/agents/{bo}/role", form)
    for active in ("false", "false", "true"):
        post_form(client, "/manage/agents", f"/manage/agents/{bo}/active", {"active": active})

    recorded = after_creation(
        db,
        account.id,
        *(
            f"agent.{kind}"
            for kind in ("created", "updated", "role_changed", "deactivated", "reactivated")
        ),
    )
    assert [e["type"] for e in recorded] == [
        "agent.created",
        "agent.role_changed",
        "agent.deactivated",
        "agent.reactivated",
    ]
    admin = {"type": "admin", "id": account.admin_id, "label": account.admin_email}
    assert all(e["actor"] == admin and e["agent_id"] == bo for e in recorded)
    created, promoted, deactivated, reactivated = recorded
    assert created["data"]["before"] is None
    after = created["data"]["after"]
    assert {
        k: after[k]
        for k in (
            "id",
            "user_name",
            "email",
            "first_name",
            "last_name",
            "display_name",
            "role",
            "active",
            "source",
            "external_id",
            "version",
        )
    } == {
        "id": bo,
        "user_name": "Bo@Example.com",
        "email": "Bo@Example.com",
        "first_name": "Bo",
        "last_name": "Berg",
        "display_name": "Bo Berg",
        "role": "agent",
        "active": True,
        "source": "password",
        "external_id": None,
        "version": 1,
    }
    assert _changed(promoted) == {"role", "version", "updated_at"}
    assert (promoted["data"]["before"]["role"], promoted["data"]["after"]["role"]) == (
        "agent",
        "admin",
    )
    assert _changed(deactivated) == {"active", "version", "updated_at"}
    assert deactivated["data"]["after"]["active"] is False
    assert reactivated["data"]["after"]["active"] is True
    assert reactivated["data"]["after"]["version"] == 4


def test_a_refused_change_records_nothing(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    # The last admin can't demote or deactivate themselves; a duplicate email is refused.
    post_form(
        client, "/manage/agents", f"/manage/agents/{account.admin_id}/role", {"role": "agent"}
    )
    post_form(
        client, "/manage/agents", f"/manage/agents/{account.admin_id}/active", {"active": "false"}
    )
    assert _add_agent(client, email=account.admin_email.upper()).status_code == 409
    assert [e["type"] for e in after_creation(db, account.id)] == ["sign_in.succeeded"]


def test_account_creation_records_the_first_admin_by_the_operator(engine, database_url, db):
    result = CliRunner().invoke(
        main,
        [
            "accounts",
            "create",
            "--name",
            "Acme",
            "--plan",
            "scale-plus",
            "--admin-email",
            "ops@acme.test",
            "--admin-first-name",
            "Olga",
            "--admin-last-name",
            "Ops",
        ],
        env={"DESKGATE_DATABASE_URL": database_url},
        catch_exceptions=False,
    )
    account_id = json.loads(result.stdout)["account_id"]
    [created] = events_of(db, account_id)
    assert created["type"] == "agent.created"
    assert created["actor"] == {"type": "operator", "id": None, "label": "deskgate CLI"}
    assert created["data"]["after"]["role"] == "admin"
    assert created["data"]["after"]["email"] == "ops@acme.test"


def test_the_demo_account_is_created_by_the_system(engine, db):
    demo.ensure_demo_account(db)
    db.commit()
    admin = db.scalars(select(Agent).where(Agent.email == demo.DEMO_ADMIN_EMAIL)).one()
    admin.active = False
    db.commit()
    demo.ensure_demo_account(db)  # a later start reactivates the admin
    db.commit()
    recorded = events_of(db, admin.account_id)
    assert [e["type"] for e in recorded] == ["agent.created", "agent.reactivated"]
    assert {e["actor"]["type"] for e in recorded} == {"system"}
    assert recorded[0]["actor"]["label"] == "deskgate serve --demo"


def test_password_sign_ins_are_events_of_the_agents_account(client, new_client, make_account, db):
    first, second = make_account(), make_account()
    shared = "shared@example.com"
    for account in (first, second):
        browser = new_client()
        sign_in(browser, account.admin_email)
        _add_agent(browser, email=shared, password=TEST_PASSWORD)
    in_first, in_second = _agent_id_in(db, first.id, shared), _agent_id_in(db, second.id, shared)

    assert sign_in(client, shared, "wrong password").status_code == 401
    assert sign_in(client, "nobody@example.com", "wrong password").status_code == 401
    # Both accounts have an agent with this email: each sees the failed attempt on its agent.
    for account_id, agent_id in ((first.id, in_first), (second.id, in_second)):
        [failed] = after_creation(db, account_id, "sign_in.failed")
        assert failed["agent_id"] == agent_id
        assert failed["actor"] == {"type": "agent", "id": None, "label": shared}
        assert failed["data"] == {
            "method": "password",
            "email": shared,
            "ip": "testclient",
            "reason_code": "wrong_credentials",
            "detail": "The password does not match this agent's (or the agent has none).",
        }

    # The password picks the agent of the first account.
    db.rollback()
    second_agent = db.get(Agent, in_second)
    second_agent.password_hash = None
    db.commit()
    assert sign_in(client, shared).status_code == 303
    [succeeded] = after_creation(db, first.id, "sign_in.succeeded")[-1:]
    assert succeeded["agent_id"] == in_first
    assert succeeded["actor"] == {"type": "agent", "id": in_first, "label": shared}
    assert succeeded["data"] == {
        "method": "password",
        "email": shared,
        "ip": "testclient",
        "idp_initiated": None,
    }


def test_a_deactivated_agent_s_password_sign_in_is_a_failure_event(
    client, new_client, make_account, db
):
    account = make_account()
    admin = new_client()
    sign_in(admin, account.admin_email)
    _add_agent(admin, email="gone@example.com", password=TEST_PASSWORD)
    gone = _agent_id(db, "gone@example.com")
    post_form(admin, "/manage/agents", f"/manage/agents/{gone}/active", {"active": "false"})
    assert sign_in(client, "gone@example.com").status_code == 401
    [failed] = after_creation(db, account.id, "sign_in.failed")
    assert failed["agent_id"] == gone
    assert failed["actor"] == {"type": "agent", "id": gone, "label": "gone@example.com"}
    assert failed["data"]["reason_code"] == "agent_deactivated"


def test_throttled_attempts_write_no_events(client, make_account, db, settings):
    account = make_account()
    limit = settings.login_failure_limit
    for _ in range(limit + 5):
        sign_in(client, account.admin_email, "wrong password")
    failures = after_creation(db, account.id, "sign_in.failed")
    assert len(failures) == limit  # the rest were refused unrecorded (429)


def _agent_id_in(db, account_id, email):
    db.rollback()
    return db.scalar(
        select(Agent.id).where(Agent.account_id == account_id, Agent.email_normalized == email)
    )
