"""Property-based fuzz of the sign-in forms (/login, "Login with SSO"), the SP-initiated sign-in
URL and the ACS: NUL bytes, lone surrogates, invalid UTF-8, huge integers, very long strings
and deep JSON in every field, the address and the headers.

Whatever arrives: never a 5xx, and a refused request leaves the stored data as it was, but for
the records a refusal is meant to leave (a password failure for the throttle, an ACS attempt
for the admin).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from typing import Any

import pytest
import xmlsec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hostile
from helpers import csrf_token, post_form, sign_in, table_rows
from saml import samlfactory as f

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
IDP_ENTITY = "https://idp.example.test/metadata"
PAGE = ("text/html", "application/json")
EVENTS = ("events", "event_counters")
"""A refused sign-in is recorded as a sign_in.failed event, under the same caps as its row."""
THROTTLE = ("failed_sign_ins", *EVENTS)
ATTEMPTS = ("login_attempts", "seen_assertions", *EVENTS)
"""What a refused ACS POST may write: the attempt, for the admin; and a verified assertion's ID,
spent even when the sign-in is then refused (so it cannot be replayed once the cause is gone)."""

form_values = st.one_of(
    hostile.raw, hostile.integers.map(str), st.sampled_from(["admin1@example.com", "/console"])
)
form_fields = st.lists(
    st.tuples(
        st.sampled_from(["email", "password", "next", "csrf_token", "SAMLResponse", "RelayState"])
        | hostile.raw,
        form_values,
    ),
    max_size=4,
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
    ]
)
header_values = hostile.raw
headers = st.dictionaries(
    st.sampled_from(["User-Agent", "X-Forwarded-For", "Cookie", "Accept", "Referer"]),
    header_values,
    max_size=2,
)


def _assert_not_a_5xx(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PAGE), response.headers


def _send_form(
    client: Any,
    path: str,
    fields: list[tuple[Any, Any]],
    content_type: str,
    extra_headers: dict[str, bytes],
    token: str,
) -> Any:
    body = hostile.urlencoded([("csrf_token", token), *fields])
    return client.post(path, content=body, headers={"Content-Type": content_type, **extra_headers})


@pytest.fixture
def account(client: Any, make_account: Any) -> Any:
    return make_account()


@FUZZ
@given(
    path=st.sampled_from(["/login", "/login/sso", "/logout"]),
    fields=form_fields,
    content_type=content_types,
    extra_headers=headers,
    deep=st.none() | hostile.raw_json,
)
def test_fuzz_sign_in_forms(
    client: Any,
    account: Any,
    db: Any,
    path: str,
    fields: list[tuple[Any, Any]],
    content_type: str,
    extra_headers: dict[str, bytes],
    deep: bytes | None,
) -> None:
    token = csrf_token(client.get("/login").text)
    before = table_rows(db)
    if deep is not None:
        response = client.post(
            path, content=deep, headers={"Content-Type": content_type, **extra_headers}
        )
    else:
        response = _send_form(client, path, fields, content_type, extra_headers, token)
    _assert_not_a_5xx(response)
    if response.status_code >= 400:
        # A wrong password is recorded for the throttle (that is its job); nothing else is.
        kept = THROTTLE if response.status_code in (401, 429) else ()
        assert table_rows(db, exclude=kept) == {k: v for k, v in before.items() if k not in kept}


@FUZZ
@given(fields=form_fields, name=st.sampled_from(["email", "password"]), value=hostile.raw)
def test_fuzz_the_email_and_password_fields(
    client: Any, account: Any, db: Any, fields: list[tuple[Any, Any]], name: str, value: bytes
) -> None:
    """The two fields that reach the database, always present, with a valid CSRF token."""
    token = csrf_token(client.get("/login").text)
    base = {"email": account.admin_email, "password": "wrong password"}
    base[name] = value  # type: ignore[assignment]
    before = table_rows(db, exclude=THROTTLE)
    response = _send_form(
        client, "/login", list(base.items()), "application/x-www-form-urlencoded", {}, token
    )
    _assert_not_a_5xx(response)
    assert response.status_code in (400, 401, 429), response.text[:300]
    assert table_rows(db, exclude=THROTTLE) == before


# --- SAML: SP-initiated sign-in and the ACS -----------------------------------------------------


@dataclasses.dataclass
class Sso:
    token: str
    acs: str
    entity: str


@pytest.fixture
def sso(client: Any, account: Any) -> Sso:
    """An account with Okta connected (JIT on), its browser signed out again."""
    sign_in(client, account.admin_email)
    saved = post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {
            "idp_kind": "okta",
            "enabled": "on",
            "metadata_xml": f.idp_metadata_xml(entity_id=IDP_ENTITY),
            "allow_idp_initiated": "on",
            "jit_enabled": "on",
            "jit_role": "agent",
        },
    )
    assert saved.status_code == 200, saved.text
    post_form(client, "/console", "/logout", {})
    base = f"http://testserver/api/v1/sso/{account.sso_token}"
    return Sso(account.sso_token, f"{base}/acs/okta", f"{base}/metadata/okta")


def _xml_text(value: str) -> str:
    """`value` without what XML 1.0 cannot carry (lxml refuses to build it)."""
    return "".join(
        c
        for c in value
        if c in "\t\n\r"
        or 0x20 <= ord(c) <= 0xD7FF
        or 0xE000 <= ord(c) <= 0xFFFD
        or ord(c) >= 0x10000
    )


xml_texts = hostile.text.map(_xml_text)
long_xml_texts = hostile.long_text.map(_xml_text)
values = st.lists(xml_texts | long_xml_texts, min_size=1, max_size=2).map(tuple)
identity_changes = st.fixed_dictionaries(
    {
        "attributes": st.fixed_dictionaries(
            {"email": st.just(("agent@example.com",)) | values},
            optional=dict.fromkeys(("firstName", "lastName", "displayName", "title"), values),
        )
        | st.dictionaries(xml_texts, values, max_size=3)
    },
    optional={
        "name_id": xml_texts | st.sampled_from(["agent@example.com", "o'brien@example.com"]),
        "assertion_id": st.one_of(xml_texts, long_xml_texts).map(lambda v: "_" + v),
    },
)
protocol_changes = st.fixed_dictionaries(
    {},
    optional={
        "response_id": xml_texts.map(lambda v: "_" + v),
        "session_index": xml_texts | long_xml_texts,
        "in_response_to": xml_texts,
        "status_message": xml_texts,
    },
)
spec_changes = identity_changes | protocol_changes


def _signed_response(sso: Sso, changes: dict[str, Any]) -> bytes:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    spec = f.spec(
        sp_entity_id=sso.entity,
        acs_url=sso.acs,
        idp_entity_id=IDP_ENTITY,
        now=now,
        in_response_to=None,
    )
    spec = dataclasses.replace(spec, **changes)
    try:
        return f.make_response_xml(spec)
    except xmlsec.Error:  # an ID xmlsec cannot reference: the response goes unsigned
        return f.make_response_xml(spec, sign_assertion=False)


def _signed_or_spliced(draw: st.DrawFn, sso: Sso) -> bytes:
    xml = _signed_response(sso, draw(spec_changes))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(xml)))
        splice = draw(
            hostile.raw | st.sampled_from([b"&#0;", b"&#x1;", b"<!DOCTYPE x [<!ENTITY a 'b'>]>"])
        )
        xml = xml[:at] + splice + xml[at:]
    return base64.b64encode(xml)


def _post_acs(
    client: Any,
    token: bytes,
    idp: bytes,
    saml_response: bytes,
    relay_state: bytes,
    extra_headers: dict[str, bytes],
) -> Any:
    return client.post(
        f"/api/v1/sso/{hostile.percent(token)}/acs/{hostile.percent(idp)}",
        content=hostile.urlencoded([("SAMLResponse", saml_response), ("RelayState", relay_state)]),
        headers={"Content-Type": "application/x-www-form-urlencoded", **extra_headers},
    )


def _assert_refusal_changed_nothing(response: Any, db: Any, before: dict[str, Any]) -> None:
    _assert_not_a_5xx(response)
    event(f"ACS answered {response.status_code}")
    if response.status_code >= 400:  # the attempt is recorded for the admin; nothing else changes
        assert table_rows(db, exclude=ATTEMPTS) == before


@FUZZ
@given(data=st.data())
def test_fuzz_acs_with_hostile_signed_content(
    client: Any, sso: Sso, db: Any, data: st.DataObject
) -> None:
    """Signed responses (so the checks after the signature run) carrying hostile IDs, NameIDs,
    attributes and session indexes; or such a response with hostile bytes spliced in."""
    saml_response = _signed_or_spliced(data.draw, sso)
    before = table_rows(db, exclude=ATTEMPTS)
    response = _post_acs(client, sso.token.encode(), b"okta", saml_response, b"/console", {})
    _assert_refusal_changed_nothing(response, db, before)
    client.cookies.clear()


@FUZZ
@given(
    data=st.data(),
    relay_state=st.sampled_from([b"", b"/console"]) | hostile.raw,
    extra_headers=st.just({}) | headers,
)
def test_fuzz_acs_transport(
    client: Any,
    sso: Sso,
    db: Any,
    data: st.DataObject,
    relay_state: bytes,
    extra_headers: dict[str, bytes],
) -> None:
    """Hostile SSO token, IdP segment, RelayState, headers, and SAMLResponse fields that are not
    base64, or base64 of anything."""
    real = st.just(sso.token.encode())
    token = data.draw(st.one_of(real, real, hostile.url_raw))
    idp = data.draw(st.one_of(st.just(b"okta"), st.just(b"saml"), hostile.url_raw))
    saml_response = data.draw(
        st.one_of(
            hostile.raw,
            st.builds(base64.b64encode, hostile.raw | hostile.raw_json),
            st.just(b""),
            st.just(b"PHg+"),
            st.builds(lambda: base64.b64encode(_signed_response(sso, {}))),
        )
    )
    before = table_rows(db, exclude=ATTEMPTS)
    response = _post_acs(client, token, idp, saml_response, relay_state, extra_headers)
    _assert_refusal_changed_nothing(response, db, before)
    client.cookies.clear()


@FUZZ
@given(
    token=hostile.url_raw,
    idp=hostile.url_raw,
    next_path=hostile.url_raw,
    use_real_token=st.booleans(),
    endpoint=st.sampled_from(["login", "metadata"]),
    extra_headers=headers,
)
def test_fuzz_sp_initiated_sign_in(
    client: Any,
    sso: Sso,
    db: Any,
    token: bytes,
    idp: bytes,
    next_path: bytes,
    use_real_token: bool,
    endpoint: str,
    extra_headers: dict[str, bytes],
) -> None:
    token = sso.token.encode() if use_real_token else token
    path = f"/api/v1/sso/{hostile.percent(token)}/{endpoint}/{hostile.percent(idp)}?next={hostile.percent(next_path)}"
    before = table_rows(db)
    response = client.get(path, headers=extra_headers)
    _assert_not_a_5xx(response)
    if response.status_code >= 400:
        assert table_rows(db) == before


@FUZZ
@given(
    next_path=hostile.url_raw,
    page=st.sampled_from(["/login", "/login/sso", "/"]),
    extra=hostile.url_raw,
)
def test_fuzz_sign_in_pages(
    client: Any, db: Any, next_path: bytes, page: str, extra: bytes
) -> None:
    before = table_rows(db)
    response = client.get(f"{page}?next={hostile.percent(next_path)}&{hostile.percent(extra)}=1")
    _assert_not_a_5xx(response)
    assert table_rows(db) == before


def test_the_signed_fuzz_responses_are_accepted_when_nothing_is_hostile(
    client: Any, sso: Sso
) -> None:
    """The fuzz above starts from responses the ACS accepts: it does test the deep paths."""
    xml = _signed_response(sso, {})
    response = client.post(
        sso.acs.removeprefix("http://testserver"),
        data={"SAMLResponse": base64.b64encode(xml).decode()},
    )
    assert response.status_code == 303, response.text


# --- what the fuzz found -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "second",
    [
        {"email": ("agent@example.com",), "firstName": ("F" * 5000,), "lastName": ("L" * 401,)},
        {"email": ("agent@example.com",), "firstName": ("Bea",), "displayName": ("D" * 401,)},
    ],
    ids=["first-and-last-200-each", "display-name-401"],
)
@pytest.mark.parametrize(
    "first",
    [None, {"email": ("agent@example.com",), "firstName": ("Ada",)}],
    ids=["jit", "refresh"],
)
def test_long_names_from_the_idp_are_cut_to_the_column(
    client: Any, sso: Sso, db: Any, first: Any, second: Any
) -> None:
    """On PostgreSQL a 200+200-character name made a 401-character display name (a 500 at JIT),
    and an IdP displayName was stored as sent (a 500 when the agent's names were refreshed)."""
    from deskgate.store.models import Agent

    for attributes in (first, second):
        if attributes is None:
            continue
        xml = _signed_response(sso, {"attributes": attributes})
        response = client.post(
            sso.acs.removeprefix("http://testserver"),
            data={"SAMLResponse": base64.b64encode(xml).decode()},
        )
        assert response.status_code == 303, response.text[:300]
        client.cookies.clear()
    db.rollback()
    agent = db.query(Agent).filter_by(email="agent@example.com").one()
    assert len(agent.first_name) <= 200 and len(agent.display_name) <= 400
