"""The addresses IdPs really send (RFC 5322 dot-atom local parts: o'brien@, first.last+tag@ ...)
are accepted everywhere an agent is created: JIT at the ACS, the manage-agents form and the CLI.
One validator decides (services/validation.email); what it refuses is a clear 4xx, nothing is
written, and at the ACS the refusal is recorded with its reason for the admin."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from deskgate.cli import main
from deskgate.store.models import Agent

from helpers import TEST_PASSWORD, post_form, sign_in
from test_saml_acs import agents_named, assert_refused, last_attempt, path_of, post_acs, sso_account  # noqa: F401

ACCEPTED = [
    "o'brien@example.com",
    "Mary.O'Neil+support@example.com",
    "a!#$%&'*+/=?^_`{|}~-z@example.com",
    "josé.núñez@example.com",
]
REFUSED = [
    ("a..b@example.com", "two dots in a row"),
    (".lead@example.com", "start or end with a dot"),
    ("trail.@example.com", "start or end with a dot"),
    ('"quoted"@example.com', "quoted local parts"),
    ("(comment)x@example.com", "'(' is not allowed before @"),
    ("x" * 65 + "@example.com", "at most 64"),
    ("x@[192.0.2.1]", "is not a domain name"),
]


def jit_response(sso_account, email: str) -> str:
    return sso_account.response(sso_account.spec(name_id=email, attributes={"email": (email,)}))


@pytest.mark.parametrize("email", ACCEPTED)
def test_jit_creates_agents_with_rfc_5322_local_parts(sso_account, new_client, email):
    for _ in range(2):  # created once, then found again
        browser = new_client()
        response = post_acs(browser, path_of(sso_account.acs), jit_response(sso_account, email))
        assert response.status_code == 303, response.text
        assert browser.get("/api/v1/me").json()["email"] == email
    assert agents_named(sso_account.db, email) == 1
    attempt = last_attempt(sso_account.db)
    assert attempt.succeeded and attempt.email == email


@pytest.mark.parametrize(("email", "reason"), REFUSED)
def test_jit_refusal_of_an_address_is_recorded_with_the_reason(
    sso_account, client, new_client, email, reason
):
    response = post_acs(new_client(), path_of(sso_account.acs), jit_response(sso_account, email))
    assert_refused(sso_account, response, "invalid_email", email=email)
    assert "invalid_email" in response.text
    attempt = last_attempt(sso_account.db)
    assert reason in attempt.detail and attempt.email == email
    assert sign_in(client, sso_account.account.admin_email).status_code == 303
    page = client.get("/manage/security").text
    assert "invalid_email" in page


@pytest.fixture
def admin_client(client, make_account):
    account = make_account()
    assert sign_in(client, account.admin_email).status_code == 303
    return client


def add_agent(client, email: str):
    return post_form(
        client,
        "/manage/agents",
        "/manage/agents",
        {
            "email": email,
            "first_name": "",
            "last_name": "",
            "role": "agent",
            "password": TEST_PASSWORD,
        },
    )


@pytest.mark.parametrize("email", ACCEPTED)
def test_the_manage_agents_form_accepts_them_and_the_agent_signs_in(
    admin_client, new_client, db, email
):
    assert add_agent(admin_client, email).status_code == 303
    db.rollback()
    assert (
        db.scalars(select(Agent.email).where(Agent.email_normalized == email.lower())).one()
        == email
    )
    assert sign_in(new_client(), email).status_code == 303


@pytest.mark.parametrize(("email", "reason"), REFUSED)
def test_the_manage_agents_form_refuses_the_rest_with_the_reason(admin_client, db, email, reason):
    before = db.scalar(select(func.count()).select_from(Agent))
    response = add_agent(admin_client, email)
    assert response.status_code == 400
    assert reason in response.text.replace("&#39;", "'").replace("&#34;", '"')
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Agent)) == before


@pytest.fixture
def run(engine, database_url):
    def invoke(*args: str):
        return CliRunner().invoke(
            main, list(args), env={"DESKGATE_DATABASE_URL": database_url}, catch_exceptions=False
        )

    return invoke


def test_the_cli_creates_an_admin_with_such_an_address_and_refuses_the_rest(run, db):
    created = run(
        "accounts",
        "create",
        "--name",
        "Acme",
        "--plan",
        "free",
        "--admin-email",
        "o'brien@acme.test",
        "--admin-first-name",
        "Aoife",
        "--admin-last-name",
        "O'Brien",
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["admin_email"] == "o'brien@acme.test"
    refused = run(
        "accounts",
        "create",
        "--name",
        "Acme",
        "--plan",
        "free",
        "--admin-email",
        "a..b@acme.test",
        "--admin-first-name",
        "A",
        "--admin-last-name",
        "B",
    )
    assert refused.exit_code == 2
    assert "not a valid email address" in refused.stderr and "two dots in a row" in refused.stderr
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Agent)) == 1
