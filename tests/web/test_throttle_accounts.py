"""The password throttle counts an email's failures per account: a sign-in to one account never
lifts the limit on another account's agent with the same email."""

from __future__ import annotations

from sqlalchemy import func, select

from deskgate.store.models import FailedSignIn

from helpers import TEST_PASSWORD, post_form, sign_in

ATTACKER_PASSWORD = "the attacker knows this one"


def add_agent(client, email: str, password: str) -> None:
    response = post_form(
        client,
        "/manage/agents",
        "/manage/agents",
        {
            "email": email,
            "first_name": "",
            "last_name": "",
            "role": "agent",
            "password": password,
        },
    )
    assert response.status_code == 303, response.text


def test_an_admin_of_another_account_cannot_reset_the_victims_count(
    client, new_client, make_account, db, settings
):
    victim = make_account()
    attacker_account = make_account()
    # The attacker adds an agent with the victim's email to their own account, with a password they know.
    assert sign_in(client, attacker_account.admin_email).status_code == 303
    add_agent(client, victim.admin_email, ATTACKER_PASSWORD)
    attacker = new_client()
    for guess in range(settings.login_failure_limit):
        assert sign_in(attacker, victim.admin_email, f"guess number {guess}").status_code == 401
        if guess < settings.login_failure_limit - 1:
            # Their own sign-in with the same email succeeds in between (it is under the limit)...
            own = sign_in(attacker, victim.admin_email, ATTACKER_PASSWORD)
            assert own.status_code == 303
            post_form(attacker, "/console", "/logout", {})
    # ...but it reset only their own account's count: the victim's reached the limit.
    refused = sign_in(attacker, victim.admin_email, "one guess too many")
    assert refused.status_code == 429
    assert "Too many failed sign-ins for this email" in refused.text
    assert sign_in(attacker, victim.admin_email, ATTACKER_PASSWORD).status_code == 429
    # The victim's own account is still locked, even with the right password (until the window ends).
    victim_browser = new_client()
    assert sign_in(victim_browser, victim.admin_email, TEST_PASSWORD).status_code == 429
    db.rollback()
    recorded = (
        select(func.count())
        .select_from(FailedSignIn)
        .where(FailedSignIn.email_normalized == victim.admin_email)
    )
    assert (
        db.scalar(recorded) == settings.login_failure_limit
    )  # refused attempts were never checked


def test_a_single_account_user_who_mistypes_then_signs_in_starts_again_from_zero(
    client, make_account, settings
):
    account = make_account()
    for _ in range(settings.login_failure_limit - 1):
        assert sign_in(client, account.admin_email, "wrong password!").status_code == 401
    assert sign_in(client, account.admin_email).status_code == 303
    post_form(client, "/console", "/logout", {})
    for _ in range(settings.login_failure_limit - 1):
        assert sign_in(client, account.admin_email, "wrong password!").status_code == 401
    assert sign_in(client, account.admin_email).status_code == 303


def test_a_person_in_two_accounts_resets_only_the_account_signed_in_to(
    client, new_client, make_account, settings
):
    first = make_account()
    second = make_account()
    sign_in(client, second.admin_email)
    add_agent(client, first.admin_email, ATTACKER_PASSWORD)  # same email, another password
    person = new_client()
    for _ in range(settings.login_failure_limit - 1):
        assert sign_in(person, first.admin_email, "wrong password!").status_code == 401
    assert (
        sign_in(person, first.admin_email, TEST_PASSWORD).status_code == 303
    )  # into the first account
    post_form(person, "/console", "/logout", {})
    # The second account's count was not reset: one more failure puts the email at the limit.
    assert sign_in(person, first.admin_email, "wrong password!").status_code == 401
    assert sign_in(person, first.admin_email, TEST_PASSWORD).status_code == 429


def test_an_email_no_agent_has_is_throttled_too(client, make_account, settings):
    make_account()
    for _ in range(settings.login_failure_limit):
        assert sign_in(client, "nobody@example.com", "wrong password!").status_code == 401
    assert sign_in(client, "NOBODY@example.com", "wrong password!").status_code == 429
