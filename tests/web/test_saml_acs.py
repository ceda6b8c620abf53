"""The ACS over HTTP: real signed responses (made with a test IdP key), our own attacks,
JIT provisioning, replay and cross-account checks. Every refusal: 4xx, no agent, no session."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import re
import threading
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import func, select

from deskgate.services.agents import set_active
from deskgate.store.models import Agent, AgentSession, LoginAttempt, SSOConnection

from helpers import post_form, sign_in
from saml import samlfactory as f
from support.domains import claim_domain

IDP_ENTITY = "https://idp.example.test/metadata"
IDP_SSO = "https://idp.example.test/sso"


def idp_metadata(key: f.KeyPair | None = None) -> str:
    return f.idp_metadata_xml(key, entity_id=IDP_ENTITY, sso_url=IDP_SSO)


class SSOAccount:
    def __init__(self, client, account, db):
        self.client, self.account, self.db = client, account, db
        self.token = account.sso_token
        self.base = "http://testserver"
        self.acs = f"{self.base}/api/v1/sso/{self.token}/acs/okta"
        self.entity = f"{self.base}/api/v1/sso/{self.token}/metadata/okta"

    def spec(self, **changes):
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        values = {
            "sp_entity_id": self.entity,
            "acs_url": self.acs,
            "idp_entity_id": IDP_ENTITY,
            "now": now,
            "in_response_to": None,
        }
        values.update(changes)
        return f.spec(**values)

    def response(self, spec=None, **kwargs) -> str:
        return f.make_response(spec or self.spec(), **kwargs)

    def set_option(self, **values):
        self.db.rollback()
        connection = self.db.get(SSOConnection, self.account.id)
        for key, value in values.items():
            setattr(connection, key, value)
        self.db.commit()


@pytest.fixture
def sso_account(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    saved = post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {
            "idp_kind": "okta",
            "enabled": "on",
            "metadata_xml": idp_metadata(),
            "allow_idp_initiated": "on",
            "jit_enabled": "on",
            "jit_role": "agent",
        },
    )
    assert saved.status_code == 200, saved.text
    claim_domain(db, account.id, "example.com")  # its emails only
    post_form(client, "/console", "/logout", {})
    return SSOAccount(client, account, db)


def post_acs(client, acs_path: str, saml_response: str, relay_state: str = ""):
    return client.post(acs_path, data={"SAMLResponse": saml_response, "RelayState": relay_state})


def path_of(url: str) -> str:
    return urlsplit(url).path


def agents_named(db, email):
    db.rollback()
    return db.scalar(
        select(func.count()).select_from(Agent).where(Agent.email_normalized == email.lower())
    )


def last_attempt(db) -> LoginAttempt:
    db.rollback()
    return db.scalars(
        select(LoginAttempt).order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
    ).first()


def assert_refused(sso_account, response, reason: str | None = None, email="agent@example.com"):
    assert 400 <= response.status_code < 500, response.text
    assert "Single sign-on failed" in response.text
    assert "dg_session" not in response.headers.get("set-cookie", "")
    assert agents_named(sso_account.db, email) == 0
    if reason is not None:
        attempt = last_attempt(sso_account.db)
        assert attempt is not None and not attempt.succeeded
        assert attempt.reason_code == reason, attempt.detail


# --- happy paths ---------------------------------------------------------------------


def test_idp_initiated_sign_in_creates_the_agent_just_in_time(sso_account, new_client):
    browser = new_client()
    response = post_acs(
        browser, path_of(sso_account.acs), sso_account.response(), "/console?from=okta"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console?from=okta"
    me = browser.get("/api/v1/me").json()
    assert (me["email"], me["first_name"], me["last_name"], me["role"]) == (
        "agent@example.com",
        "Ada",
        "Lovelace",
        "agent",
    )
    sso_account.db.rollback()
    agent = sso_account.db.scalars(select(Agent).where(Agent.email == "agent@example.com")).one()
    assert (agent.source, agent.account_id, agent.password_hash) == (
        "jit",
        sso_account.account.id,
        None,
    )
    attempt = last_attempt(sso_account.db)
    assert attempt.succeeded and attempt.email == "agent@example.com"


def test_relay_state_that_is_not_a_local_path_lands_on_the_console(sso_account, new_client):
    response = post_acs(
        new_client(), path_of(sso_account.acs), sso_account.response(), "https://evil.example/"
    )
    assert response.headers["location"] == "/console"


def _request_id_from_redirect(location: str) -> str:
    query = parse_qs(urlsplit(location).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return etree.fromstring(xml).get("ID")


def test_sp_initiated_sign_in_round_trip_with_next(sso_account, new_client):
    browser = new_client()
    start = browser.get(
        f"/api/v1/sso/{sso_account.token}/login/okta", params={"next": "/manage/agents"}
    )
    assert start.status_code == 303
    assert start.headers["location"].startswith(IDP_SSO + "?SAMLRequest=")
    request_id = _request_id_from_redirect(start.headers["location"])
    response = post_acs(
        browser,
        path_of(sso_account.acs),
        sso_account.response(sso_account.spec(in_response_to=request_id)),
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/manage/agents"
    # The same request cannot be answered twice (even by a fresh assertion).
    again = post_acs(
        new_client(),
        path_of(sso_account.acs),
        sso_account.response(sso_account.spec(in_response_to=request_id)),
    )
    assert again.status_code == 403
    assert last_attempt(sso_account.db).reason_code == "unknown_in_response_to"


def test_login_with_sso_page_routes_by_email_domain(sso_account, new_client):
    browser = new_client()
    response = post_form(
        browser, "/login/sso", "/login/sso", {"email": "someone@example.com", "next": "/console"}
    )
    assert response.status_code == 303
    assert (
        response.headers["location"]
        == f"/api/v1/sso/{sso_account.token}/login/okta?next=%2Fconsole"
    )


def test_known_agents_get_their_names_refreshed_and_no_duplicate(sso_account, new_client):
    post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    renamed = sso_account.spec(
        attributes={
            "email": ("AGENT@example.com",),
            "firstName": ("Augusta",),
            "lastName": ("King",),
        }
    )
    response = post_acs(new_client(), path_of(sso_account.acs), sso_account.response(renamed))
    assert response.status_code == 303
    assert agents_named(sso_account.db, "agent@example.com") == 1
    agent = sso_account.db.scalars(
        select(Agent).where(Agent.email_normalized == "agent@example.com")
    ).one()
    assert (agent.first_name, agent.last_name) == ("Augusta", "King")


def test_encrypted_assertion_is_decrypted_with_the_accounts_sp_key(sso_account, new_client):
    sso_account.db.rollback()
    sp_cert = sso_account.db.get(SSOConnection, sso_account.account.id).sp_certificate_pem
    response = post_acs(
        new_client(),
        path_of(sso_account.acs),
        sso_account.response(encrypt_for=sp_cert, sign_response=True),
    )
    assert response.status_code == 303


# --- refusals ------------------------------------------------------------------------


def test_replayed_assertion_is_refused(sso_account, new_client):
    saml_response = sso_account.response()
    assert post_acs(new_client(), path_of(sso_account.acs), saml_response).status_code == 303
    replay = post_acs(new_client(), path_of(sso_account.acs), saml_response)
    assert replay.status_code == 403
    assert last_attempt(sso_account.db).reason_code == "replayed_assertion"


def test_response_for_account_a_posted_to_account_b_fails(
    sso_account, client, make_account, db, new_client
):
    other = make_account()
    admin = new_client()
    sign_in(admin, other.admin_email)
    post_form(
        admin,
        "/manage/security",
        "/manage/security/sso",
        {
            "idp_kind": "okta",
            "enabled": "on",
            "metadata_xml": idp_metadata(),
            "allow_idp_initiated": "on",
            "jit_enabled": "on",
        },
    )
    other_token = re.search(r'id="sso-token">([^<]+)', admin.get("/manage/security").text).group(1)
    response = post_acs(new_client(), f"/api/v1/sso/{other_token}/acs/okta", sso_account.response())
    assert_refused(sso_account, response)
    db.rollback()
    attempt = db.scalars(select(LoginAttempt).where(LoginAttempt.account_id == other.id)).one()
    assert attempt.reason_code in {"wrong_audience", "wrong_destination", "wrong_recipient"}
    assert other_token in attempt.detail  # what we expected is spelled out for the admin


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"audiences": ("https://someone-else.example/sp",)}, "wrong_audience"),
        ({"recipient": "https://evil.example/acs"}, "wrong_recipient"),
        ({"destination": "https://evil.example/acs"}, "wrong_destination"),
        (
            {
                "response_issuer": "https://evil-idp.example",
                "assertion_issuer": "https://evil-idp.example",
            },
            "wrong_issuer",
        ),
        ({"method": "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"}, None),
    ],
)
def test_mis_addressed_responses_are_refused(sso_account, new_client, changes, reason):
    response = post_acs(
        new_client(), path_of(sso_account.acs), sso_account.response(sso_account.spec(**changes))
    )
    assert_refused(sso_account, response, reason)


def test_expired_assertion_is_refused_with_the_time_for_the_admin(sso_account, new_client):
    past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=30)
    response = post_acs(
        new_client(), path_of(sso_account.acs), sso_account.response(sso_account.spec(now=past))
    )
    assert_refused(sso_account, response)
    assert "ago" in last_attempt(sso_account.db).detail


def test_not_yet_valid_assertion_is_refused(sso_account, new_client):
    future = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=30)
    response = post_acs(
        new_client(), path_of(sso_account.acs), sso_account.response(sso_account.spec(now=future))
    )
    assert_refused(sso_account, response)


def test_unsolicited_response_is_refused_when_idp_initiated_is_off(sso_account, new_client):
    sso_account.set_option(allow_idp_initiated=False)
    response = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert_refused(sso_account, response, "unsolicited_response")


def test_unknown_in_response_to_is_refused(sso_account, new_client):
    response = post_acs(
        new_client(),
        path_of(sso_account.acs),
        sso_account.response(sso_account.spec(in_response_to="_never-issued")),
    )
    assert_refused(sso_account, response, "unknown_in_response_to")


def test_signature_by_an_unknown_key_with_its_cert_in_keyinfo_is_refused(sso_account, new_client):
    response = post_acs(
        new_client(), path_of(sso_account.acs), sso_account.response(idp_key=f.keypair("attacker"))
    )
    assert_refused(sso_account, response)
    assert last_attempt(sso_account.db).reason_code in {
        "unknown_signing_certificate",
        "signature_invalid",
    }


def test_unsigned_response_is_refused(sso_account, new_client):
    response = post_acs(
        new_client(), path_of(sso_account.acs), sso_account.response(sign_assertion=False)
    )
    assert_refused(sso_account, response, "unsigned")


def test_sha1_signature_is_refused_unless_allowed(sso_account, new_client):
    from onelogin.saml2.constants import OneLogin_Saml2_Constants as C

    sha1 = {"sign_algorithm": C.RSA_SHA1, "digest_algorithm": C.SHA1}
    assert_refused(
        sso_account,
        post_acs(new_client(), path_of(sso_account.acs), sso_account.response(**sha1)),
        "sha1_refused",
    )
    sso_account.set_option(allow_sha1=True)
    assert (
        post_acs(new_client(), path_of(sso_account.acs), sso_account.response(**sha1)).status_code
        == 303
    )


def _signed_response_tree(sso_account, **spec_changes) -> etree._Element:
    return etree.fromstring(f.make_response_xml(sso_account.spec(**spec_changes)))


def _post_tree(sso_account, client, tree):
    return post_acs(
        client, path_of(sso_account.acs), base64.b64encode(etree.tostring(tree)).decode()
    )


def test_wrapping_a_forged_assertion_beside_the_signed_one_is_refused(sso_account, new_client):
    tree = _signed_response_tree(
        sso_account, attributes={"email": ("nobody@example.com",)}, name_id="nobody@example.com"
    )
    signed = tree.find(f"{{{f.NS_SAML}}}Assertion")
    forged = copy.deepcopy(signed)
    forged.set("ID", "_forged")
    forged.remove(forged.find(f"{{{f.NS_DS}}}Signature"))
    forged.find(f".//{{{f.NS_SAML}}}NameID").text = "agent@example.com"
    for value in forged.iter(f"{{{f.NS_SAML}}}AttributeValue"):
        value.text = "agent@example.com"
    tree.insert(list(tree).index(signed), forged)  # XSW: forged first, signed second
    assert_refused(sso_account, _post_tree(sso_account, new_client(), tree))
    assert agents_named(sso_account.db, "nobody@example.com") == 0


def test_moving_the_signed_assertion_into_an_extension_is_refused(sso_account, new_client):
    tree = _signed_response_tree(
        sso_account, name_id="nobody@example.com", attributes={"email": ("nobody@example.com",)}
    )
    signed = tree.find(f"{{{f.NS_SAML}}}Assertion")
    forged = copy.deepcopy(signed)
    forged.remove(forged.find(f"{{{f.NS_DS}}}Signature"))
    forged.set("ID", "_evil")
    forged.find(f".//{{{f.NS_SAML}}}NameID").text = "agent@example.com"
    tree.remove(signed)
    extensions = etree.SubElement(tree, f"{{{f.NS_SAMLP}}}Extensions")
    extensions.append(signed)
    tree.insert(1, extensions)
    tree.append(forged)
    assert_refused(sso_account, _post_tree(sso_account, new_client(), tree))


def test_comment_injected_into_nameid_never_truncates_the_identity(sso_account, new_client):
    # The attacker owns "agent@example.com.evil.test" at the IdP and gets that signed; the
    # comment is invisible to the (comment-less) canonical form, so the signature still holds.
    evil = "agent@example.com.evil.test"
    tree = _signed_response_tree(sso_account, name_id=evil, attributes={})
    name_id = tree.find(f".//{{{f.NS_SAML}}}NameID")
    name_id.text = "agent@example.com"
    name_id.append(etree.Comment(""))
    name_id[-1].tail = ".evil.test"
    response = _post_tree(sso_account, new_client(), tree)
    assert agents_named(sso_account.db, "agent@example.com") == 0
    if response.status_code == 303:
        assert agents_named(sso_account.db, evil) == 1
    else:
        assert 400 <= response.status_code < 500


def test_tampered_content_after_signing_is_refused(sso_account, new_client):
    tree = _signed_response_tree(
        sso_account, name_id="nobody@example.com", attributes={"email": ("nobody@example.com",)}
    )
    tree.find(f".//{{{f.NS_SAML}}}NameID").text = "agent@example.com"
    for value in tree.iter(f"{{{f.NS_SAML}}}AttributeValue"):
        value.text = "agent@example.com"
    assert_refused(sso_account, _post_tree(sso_account, new_client(), tree), "signature_invalid")


@pytest.mark.parametrize(
    "payload",
    [
        "not base64 at all %%%",
        base64.b64encode(b"<unclosed").decode(),
        base64.b64encode(b"plain text").decode(),
        base64.b64encode(
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
        ).decode(),
        base64.b64encode(
            b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol2;</samlp:Response>'
        ).decode(),
        "",
    ],
)
def test_malformed_input_gets_a_4xx_page_never_a_5xx(sso_account, new_client, payload):
    response = post_acs(new_client(), path_of(sso_account.acs), payload)
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text
    assert agents_named(sso_account.db, "agent@example.com") == 0


def test_unknown_token_and_wrong_idp_segment_are_404(sso_account, new_client):
    assert (
        post_acs(
            new_client(), "/api/v1/sso/not-a-token/acs/okta", sso_account.response()
        ).status_code
        == 404
    )
    assert (
        post_acs(
            new_client(), f"/api/v1/sso/{sso_account.token}/acs/entra", sso_account.response()
        ).status_code
        == 404
    )


def test_rotated_token_stops_the_old_acs_url(sso_account, client):
    sign_in(client, sso_account.account.admin_email)
    post_form(client, "/manage/security", "/manage/security/sso-token", {})
    assert post_acs(client, path_of(sso_account.acs), sso_account.response()).status_code == 404


def test_jit_off_refuses_unknown_agents_with_a_clear_message(sso_account, new_client):
    sso_account.set_option(jit_enabled=False)
    response = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert_refused(sso_account, response, "jit_disabled")
    assert "Ask your admin to add you" in response.text


def test_a_deactivated_agent_is_never_let_in_nor_reactivated(sso_account, new_client):
    post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    sso_account.db.rollback()
    agent = sso_account.db.scalars(select(Agent).where(Agent.email == "agent@example.com")).one()
    set_active(sso_account.db, sso_account.account.id, agent.id, False)
    sso_account.db.commit()
    response = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert response.status_code == 403
    assert "deactivated" in response.text
    sso_account.db.rollback()
    assert not sso_account.db.get(Agent, agent.id).active
    assert (
        sso_account.db.scalar(
            select(func.count()).select_from(AgentSession).where(AgentSession.agent_id == agent.id)
        )
        == 0
    )


def test_require_sso_turns_password_sign_in_off_for_agents_not_admins(sso_account, client, db):
    from deskgate.services.passwords import hash_password

    from helpers import TEST_PASSWORD

    post_acs(client, path_of(sso_account.acs), sso_account.response())
    db.rollback()
    agent = db.scalars(select(Agent).where(Agent.email == "agent@example.com")).one()
    agent.password_hash = hash_password(TEST_PASSWORD)
    db.commit()
    sso_account.set_option(require_sso=True)
    post_form(client, "/console", "/logout", {})
    refused = sign_in(client, "agent@example.com")
    assert refused.status_code == 401 and "requires single sign-on" in refused.text
    assert sign_in(client, sso_account.account.admin_email).status_code == 303


def test_security_page_lists_recent_attempts_with_the_reason(sso_account, client, new_client):
    post_acs(
        new_client(),
        path_of(sso_account.acs),
        sso_account.response(sso_account.spec(audiences=("https://wrong.example/sp",))),
    )
    sign_in(client, sso_account.account.admin_email)
    page = client.get("/manage/security")
    assert "wrong_audience" in page.text
    assert "https://wrong.example/sp" in page.text


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.one_of(
        st.text(max_size=300), st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())
    )
)
def test_fuzzed_saml_responses_never_cause_a_5xx(sso_account, client, payload):
    response = post_acs(client, path_of(sso_account.acs), payload, relay_state="/console")
    assert response.status_code < 500


def test_an_idp_that_only_takes_http_post_gets_an_auto_submitted_authn_request(
    client, make_account, new_client
):
    account = make_account()
    sign_in(client, account.admin_email)
    post_only = idp_metadata().replace("bindings:HTTP-Redirect", "bindings:HTTP-POST")
    saved = post_form(
        client,
        "/manage/security",
        "/manage/security/sso",
        {
            "idp_kind": "saml",
            "enabled": "on",
            "metadata_xml": post_only,
            "jit_enabled": "on",
            "jit_role": "agent",
        },
    )
    assert saved.status_code == 200
    browser = new_client()
    page = browser.get(f"/api/v1/sso/{account.sso_token}/login/saml", params={"next": "/console"})
    assert page.status_code == 200
    assert f'action="{IDP_SSO}"' in page.text
    saml_request = re.search(r'name="SAMLRequest" value="([^"]+)"', page.text).group(1)
    request_id = etree.fromstring(base64.b64decode(saml_request)).get("ID")
    sso = SSOAccount(browser, account, None)
    sso.acs, sso.entity = (u.replace("/okta", "/saml") for u in (sso.acs, sso.entity))
    response = post_acs(
        browser, path_of(sso.acs), sso.response(sso.spec(in_response_to=request_id))
    )
    assert response.status_code == 303 and response.headers["location"] == "/console"


def test_pages_carry_security_headers(client):
    headers = client.get("/login").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"


def test_the_acs_parses_responses_on_the_retiring_threads(sso_account, new_client, monkeypatch):
    """Attacker XML must not reach a long-lived thread's lxml name dictionary (see
    deskgate/saml/untrusted_threads.py)."""
    from deskgate.services import sso_sign_in

    seen: list[str] = []
    original = sso_sign_in.validate_response

    def recording(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(sso_sign_in, "validate_response", recording)
    response = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert response.status_code == 303
    assert seen == ["deskgate-saml-untrusted"]
