"""Input no route can mean (NUL and other control characters, lone surrogates, invalid UTF-8)
is refused at the edge with a 4xx that says what was wrong, and nothing is stored.

Each input of the security review's finding 5 has its own case here; on PostgreSQL every one
of them was a 500 before `deskgate.web.input_guard` (psycopg cannot send a NUL in a string).
"""

from __future__ import annotations

import pytest

from helpers import csrf_token, table_rows


def _post_page_form(client, page: str, action: str, fields: str):
    """POST a raw urlencoded body (so any byte can be sent) with the page's CSRF token."""
    token = csrf_token(client.get(page).text)
    return client.post(
        action,
        content=f"csrf_token={token}&{fields}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _assert_error_page(response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "That didn&#39;t work" in response.text
    assert fragment in response.text.replace("&#39;", "'"), response.text
    assert "dg_session" not in response.headers.get("set-cookie", "")


def _assert_json_error(response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert fragment in response.json()["error"], response.json()


@pytest.fixture
def unchanged(client, make_account, db):
    """An account; afterwards, every table is as it was (no throttle row, no attempt, no
    request row)."""
    account = make_account()
    client.get("/login")
    before = table_rows(db)
    yield account
    assert table_rows(db) == before


# --- finding 5: the inputs that were a 500 on PostgreSQL -------------------------------------


@pytest.mark.parametrize(
    ("page", "fields", "field"),
    [
        ("/login", "email=ada%00@example.com&password=x", "email"),
        ("/login", "email=admin1@example.com&password=pass%00word", "password"),
        ("/login/sso", "email=ada%00@example.com", "email"),
    ],
    ids=["login-email", "login-password", "sso-email"],
)
def test_nul_in_a_sign_in_form_is_refused(client, unchanged, page, fields, field):
    response = _post_page_form(client, page, page, fields)
    _assert_error_page(response, f"The form field '{field}' contains a control character (U+0000)")


@pytest.mark.parametrize("endpoint", ["login/okta", "acs/okta", "metadata/okta"])
def test_nul_in_the_sso_token_path_segment_is_refused(client, unchanged, endpoint):
    path = f"/api/v1/sso/{unchanged.sso_token}%00/{endpoint}"
    if endpoint.startswith("acs"):
        response = client.post(path, data={"SAMLResponse": "PHg+", "RelayState": "/console"})
    else:
        response = client.get(path)
    _assert_json_error(response, "The address contains a control character (U+0000)")


# --- the class around it ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ("email=ada%01@example.com&password=x", "contains a control character (U+0001)"),
        ("email=ada%1B@example.com&password=x", "contains a control character (U+001B)"),
        ("email=ada%FF@example.com&password=x", "is not valid UTF-8"),
        ("email=ada%ED%A0%80@example.com&password=x", "is not valid UTF-8"),  # a lone surrogate
        ("email=ada%C0%80@example.com&password=x", "is not valid UTF-8"),  # overlong NUL
        ("ema%00il=ada@example.com&password=x", "contains a control character (U+0000)"),
    ],
    ids=["soh", "escape", "ff", "surrogate", "overlong-nul", "nul-in-name"],
)
def test_controls_and_bad_utf8_in_form_fields_are_refused(client, unchanged, fields, problem):
    _assert_error_page(_post_page_form(client, "/login", "/login", fields), problem)


def test_form_whitespace_controls_are_kept(client, make_account):
    """Tab, CR and LF are text (pasted metadata has lines): they reach the route."""
    make_account()
    response = _post_page_form(
        client, "/login", "/login", "email=a%09b%0D%0A@example.com&password=x"
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "/login?next=/console%00",
            "The query parameter 'next' contains a control character (U+0000)",
        ),
        (
            "/login?next=/console%0D%0ASet-Cookie:x=1",
            "The query parameter 'next' contains a control character (U+000D)",
        ),
        ("/login?next=%FF", "The query parameter 'next' is not valid UTF-8"),
        ("/login?next=%ED%B0%80", "The query parameter 'next' is not valid UTF-8"),
        ("/login%00", "The address contains a control character (U+0000)"),
        ("/login/%ED%A0%80", "The address is not valid UTF-8"),
        ("/manage/agents/%FF", "The address is not valid UTF-8"),
    ],
)
def test_controls_and_bad_utf8_in_the_address_are_refused(client, unchanged, url, problem):
    _assert_error_page(client.get(url), problem)


def test_controls_in_a_header_are_refused(client, unchanged):
    response = client.get("/login", headers={"User-Agent": "probe\x00"})
    _assert_error_page(response, "The header 'user-agent' contains a control character (U+0000)")


def test_multipart_forms_are_refused(client, unchanged):
    token = csrf_token(client.get("/login").text)
    response = client.post(
        "/login",
        data={"csrf_token": token, "email": "ada\x00@example.com", "password": "x"},
        files={"unused": ("a.txt", b"x")},
    )
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.text


def test_forms_over_the_limit_are_413(client, unchanged):
    from deskgate.web.input_guard import MAX_FORM_BYTES

    response = client.post(
        "/login",
        content=b"email=" + b"a" * (MAX_FORM_BYTES + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_deep_json_to_an_api_path_is_refused(client, unchanged):
    response = client.post(
        f"/api/v1/sso/{unchanged.sso_token}/acs/okta",
        content=b"[" * 100 + b"]" * 100,
        headers={"Content-Type": "application/json"},
    )
    _assert_json_error(response, "nested deeper than")


def test_refusals_carry_the_security_headers(client, unchanged):
    response = client.get("/login?next=%00")
    assert response.headers["x-frame-options"] == "DENY"
