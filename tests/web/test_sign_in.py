from __future__ import annotations

import pytest
from sqlalchemy import func, select

from deskgate.services.auth import WRONG_CREDENTIALS
from deskgate.store.models import AgentSession, FailedSignIn

from helpers import TEST_PASSWORD, csrf_token, post_form, sign_in


def test_password_sign_in_opens_a_session_and_lands_on_the_console(client, make_account, db):
    account = make_account()
    response = sign_in(client, account.admin_email)
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    assert "dg_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # base URL is http here
    console = client.get("/console")
    assert console.status_code == 200
    assert account.admin_email in console.text
    stored = db.scalars(select(AgentSession.token_hash)).all()
    assert len(stored) == 1
    assert client.cookies.get("dg_session") not in stored[0]  # only a hash is stored


def test_wrong_password_is_refused(client, make_account):
    account = make_account()
    response = sign_in(client, account.admin_email, "not the password")
    assert response.status_code == 401
    assert WRONG_CREDENTIALS in response.text.replace("&#39;", "'")
    assert "dg_session" not in response.headers.get("set-cookie", "")
    assert client.get("/console").status_code == 303


def test_unknown_email_gets_the_same_message_as_a_wrong_password(client, make_account):
    account = make_account()
    unknown = sign_in(client, "nobody@example.com", TEST_PASSWORD)
    wrong = sign_in(client, account.admin_email, "wrong password!")
    assert unknown.status_code == wrong.status_code == 401

    def error_of(html: str) -> str:
        return html.split('role="alert">', 1)[1].split("<", 1)[0]

    assert error_of(unknown.text) == error_of(wrong.text)


def test_email_is_matched_case_insensitively(client, make_account):
    account = make_account()
    response = sign_in(client, account.admin_email.upper())
    assert response.status_code == 303


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_sign_in_without_a_valid_csrf_token_is_refused(client, make_account, token):
    account = make_account()
    client.get("/login")  # sets the CSRF cookie
    data = {"email": account.admin_email, "password": TEST_PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/login", data=data)
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert client.get("/console").status_code == 303


def test_csrf_token_from_another_browser_is_refused(client, new_client, make_account):
    account = make_account()
    other = new_client()
    foreign_token = csrf_token(other.get("/login").text)
    client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": foreign_token, "email": account.admin_email, "password": TEST_PASSWORD},
    )
    assert response.status_code == 403


def test_repeated_failures_are_throttled_per_email_with_a_clear_message(
    client, make_account, db, settings
):
    account = make_account()
    for _ in range(settings.login_failure_limit):
        assert sign_in(client, account.admin_email, "wrong password!").status_code == 401
    throttled = sign_in(client, account.admin_email, TEST_PASSWORD)  # even the right password
    assert throttled.status_code == 429
    assert "Too many failed sign-ins for this email" in throttled.text
    assert int(throttled.headers["retry-after"]) > 0
    assert db.scalar(select(func.count()).select_from(FailedSignIn)) == settings.login_failure_limit


def test_failures_are_throttled_per_ip_across_emails(client, make_account, settings):
    make_account()
    for n in range(settings.login_failure_limit * 4):
        sign_in(client, f"probe{n}@example.com", "wrong password!")
    response = sign_in(client, "another@example.com", "wrong password!")
    assert response.status_code == 429
    assert "your network" in response.text


def test_success_clears_the_failure_count_for_that_email(client, make_account, settings):
    account = make_account()
    for _ in range(settings.login_failure_limit - 1):
        sign_in(client, account.admin_email, "wrong password!")
    assert sign_in(client, account.admin_email).status_code == 303
    post_form(client, "/console", "/logout", {})
    for _ in range(settings.login_failure_limit - 1):
        sign_in(client, account.admin_email, "wrong password!")
    assert sign_in(client, account.admin_email).status_code == 303


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [
        ("/manage/agents", "/manage/agents"),
        ("/console?tab=1", "/console?tab=1"),
        ("https://evil.example/", "/console"),
        ("//evil.example/", "/console"),
        ("/\\evil.example", "/console"),
        ("\\\\evil.example", "/console"),
        ("javascript:alert(1)", "/console"),
        ("/ok\r\nSet-Cookie: x=1", "/console"),
        ("", "/console"),
    ],
)
def test_next_only_ever_redirects_to_a_local_path(client, make_account, next_value, expected):
    account = make_account()
    response = sign_in(client, account.admin_email, next=next_value)
    assert response.status_code == 303
    assert response.headers["location"] == expected


def test_login_page_carries_a_safe_next_into_the_form(client):
    page = client.get("/login", params={"next": "https://evil.example/"})
    assert 'name="next" value="/console"' in page.text
    page = client.get("/login", params={"next": "/manage/agents"})
    assert 'name="next" value="/manage/agents"' in page.text


def test_anonymous_visitors_are_sent_to_sign_in_with_next(client):
    response = client.get("/manage/agents?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmanage%2Fagents%3Fx%3D1"


def test_sign_out_ends_the_session_on_the_server(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    stolen_cookie = client.cookies.get("dg_session")
    response = post_form(client, "/console", "/logout", {})
    assert response.status_code == 303
    assert db.scalar(select(func.count()).select_from(AgentSession)) == 0
    client.cookies.set("dg_session", stolen_cookie)
    assert client.get("/console").status_code == 303


def test_expired_session_is_refused(client, make_account, db):
    import datetime as dt

    account = make_account()
    sign_in(client, account.admin_email)
    session = db.scalars(select(AgentSession)).one()
    session.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.commit()
    assert client.get("/console").status_code == 303


def test_sso_page_says_when_sso_is_not_set_up(client, make_account):
    account = make_account()
    response = post_form(client, "/login/sso", "/login/sso", {"email": account.admin_email})
    assert response.status_code == 400
    assert "Single sign-on is not set up for" in response.text


def test_me_returns_the_signed_in_agent(client, make_account):
    account = make_account()
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").json() == {"error": "Sign in to continue."}
    sign_in(client, account.admin_email)
    me = client.get("/api/v1/me").json()
    assert me == {
        "id": account.admin_id,
        "email": account.admin_email,
        "first_name": "Ada",
        "last_name": me["last_name"],
        "role": "admin",
        "account": {"id": account.id, "name": account.name, "plan": "scale-plus"},
    }
    assert me["last_name"].startswith("Admin")
