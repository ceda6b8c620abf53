"""Manage › Security › Domains through the app, verified against a real DNS server on 127.0.0.1;
and what verification changes: "Login with SSO" routing by email domain."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from deskgate.config import load_settings
from deskgate.errors import Conflict
from deskgate.services import domains
from deskgate.services.dns_txt import Resolver, resolver_from
from deskgate.services.events import actors
from deskgate.store import events as event_store
from deskgate.store.base import utcnow
from deskgate.store.models import Account, DomainClaim

import hostile
from helpers import csrf_token, post_form, sign_in
from support.dns import dns_server, silent_dns  # noqa: F401  (fixtures)
from support.domains import claim_domain
from web.test_saml_acs import idp_metadata

SECURITY = "/manage/security"


@pytest.fixture
def settings(database_url, dns_server):
    """The app asks the test's DNS server."""
    return load_settings(
        {},
        database_url=database_url,
        base_url="http://testserver",
        secret_key="test-secret-key-not-for-production",
        dns_resolver=dns_server.address,
    )


def add(client, domain: str):
    return post_form(client, SECURITY, f"{SECURITY}/domains", {"domain": domain})


def verify(client, domain: str):
    return post_form(client, SECURITY, f"{SECURITY}/domains/verify", {"domain": domain})


def remove(client, domain: str):
    return post_form(client, SECURITY, f"{SECURITY}/domains/remove", {"domain": domain})


def claims(db, account_id: str | None = None) -> list[DomainClaim]:
    db.rollback()
    query = select(DomainClaim).order_by(DomainClaim.account_id, DomainClaim.domain)
    if account_id is not None:
        query = query.where(DomainClaim.account_id == account_id)
    return list(db.scalars(query))


def publish(dns_server, claim: DomainClaim) -> None:
    dns_server.txt[f"_deskgate-verification.{claim.domain}"] = [
        f"deskgate-verification={claim.token}"
    ]


def events_of(db, account_id: str) -> list[tuple[str, str, str | None, str]]:
    db.rollback()
    return [
        (e["type"], e["actor_type"], e["actor_label"], e["data"]["domain"])
        for e in event_store.page_after(
            db, account_id, 0, 100, types=["domain.added", "domain.verified", "domain.removed"]
        )
    ]


def notice(response) -> str:
    from urllib.parse import unquote

    return unquote(response.cookies.get("dg_notice", ""))


# --- the page ------------------------------------------------------------------------------


def test_an_admin_adds_a_domain_and_sees_the_txt_record_to_publish(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    added = add(client, " Acme.TEST ")
    assert added.status_code == 303 and added.headers["location"] == f"{SECURITY}#domains"
    [claim] = claims(db)
    assert (claim.account_id, claim.domain, claim.verified_at) == (account.id, "acme.test", None)
    assert len(claim.token) >= 32
    page = client.get(SECURITY).text
    assert "_deskgate-verification.acme.test" in page
    assert f"deskgate-verification={claim.token}" in page
    assert "not verified" in page and "Verify now" in page
    assert add(client, "acme.test").status_code == 303  # again: the same claim, unchanged
    assert [c.token for c in claims(db)] == [claim.token]
    assert events_of(db, account.id) == [
        ("domain.added", "admin", account.admin_email, "acme.test")
    ]


def test_verify_now_with_the_record_published_verifies_the_domain(
    client, make_account, db, dns_server
):
    account = make_account()
    sign_in(client, account.admin_email)
    add(client, "acme.test")
    publish(dns_server, claims(db)[0])
    verified = verify(client, "acme.test")
    assert verified.status_code == 303
    assert notice(verified) == "acme.test is verified."
    [claim] = claims(db)
    assert claim.verified_at is not None and claim.check_error is None
    page = client.get(SECURITY).text
    assert re.search(r'badge ok">verified</span> \d{4}-\d\d-\d\d', page)
    assert [e[0] for e in events_of(db, account.id)] == ["domain.added", "domain.verified"]
    assert verify(client, "acme.test").status_code == 303  # verified stays verified
    assert [e[0] for e in events_of(db, account.id)] == ["domain.added", "domain.verified"]


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        (None, "No TXT record found at _deskgate-verification.acme.test."),
        ([], "No TXT record found at _deskgate-verification.acme.test."),
        (
            ["deskgate-verification=someone-elses-token", "v=spf1 -all"],
            "Found TXT records at _deskgate-verification.acme.test (“deskgate-verification="
            "someone-elses-token”, “v=spf1 -all”) but none is deskgate-verification=",
        ),
    ],
)
def test_verify_now_without_the_right_record_says_why_and_changes_nothing_else(
    client, make_account, db, dns_server, records, reason
):
    account = make_account()
    sign_in(client, account.admin_email)
    add(client, "acme.test")
    if records is not None:
        dns_server.txt["_deskgate-verification.acme.test"] = records
    response = verify(client, "acme.test")
    assert response.status_code == 303
    assert reason in notice(response)
    [claim] = claims(db)
    assert claim.verified_at is None and reason in claim.check_error
    assert reason.replace("“", "&#34;")[:40] in client.get(SECURITY).text.replace("“", "&#34;")
    assert [e[0] for e in events_of(db, account.id)] == ["domain.added"]


def test_a_record_split_into_several_strings_verifies(client, make_account, db, dns_server):
    account = make_account()
    sign_in(client, account.admin_email)
    add(client, "acme.test")
    token = claims(db)[0].token
    dns_server.txt["_deskgate-verification.acme.test"] = [
        ["deskgate-verification=", token[:10], token[10:]]
    ]
    assert notice(verify(client, "acme.test")) == "acme.test is verified."


def test_a_dns_server_that_does_not_answer_is_a_reason_not_an_error(silent_dns):
    check = domains.PendingCheck("acme.test", "_deskgate-verification.acme.test", "x")
    reason = domains.look_up(check, resolver_from(silent_dns), timeout=0.3)
    assert reason is not None and "did not answer within 0.3 seconds" in reason
    assert domains.look_up(check, Resolver("127.0.0.1", 9), timeout=0.3)  # discard: refused


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("co.uk", "public suffix"),
        ("*.acme.test", "wildcards are not allowed"),
        ("ada@acme.test", "give the domain alone"),
        ("acme", "at least two labels"),
    ],
)
def test_an_invalid_domain_is_refused_with_the_reason_and_nothing_stored(
    client, make_account, db, raw, message
):
    account = make_account()
    sign_in(client, account.admin_email)
    response = add(client, raw)
    assert response.status_code == 400
    assert message in response.text and 'id="security-error"' in response.text
    assert claims(db) == [] and events_of(db, account.id) == []


def test_removing_a_domain(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    add(client, "acme.test")
    assert remove(client, "ACME.test").status_code == 303
    assert claims(db) == []
    assert [e[0] for e in events_of(db, account.id)] == ["domain.added", "domain.removed"]
    assert remove(client, "acme.test").status_code == 404
    claim_domain(db, account.id, "legacy_name.test", verified=False)  # as 0008 may have kept it
    assert remove(client, "legacy_name.test").status_code == 303
    assert claims(db) == []


def test_only_admins_with_a_csrf_token_change_domains(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    client.get(SECURITY)
    forged = client.post(f"{SECURITY}/domains", data={"domain": "acme.test"})
    assert forged.status_code == 403
    plain = make_account(plan="scale")
    other = client.__class__(client.app, base_url="http://testserver", follow_redirects=False)
    sign_in(other, plain.admin_email)
    assert add(other, "acme.test").status_code == 403  # not on Scale Plus
    assert claims(db) == []


# --- one domain, one account -----------------------------------------------------------------


def test_a_domain_verified_by_one_account_cannot_be_claimed_by_another_and_their_pending_claims_go(
    client, new_client, make_account, db, dns_server
):
    first, second, third = make_account(), make_account(), make_account()
    browsers = {}
    for account in (first, second, third):
        browsers[account.id] = new_client()
        sign_in(browsers[account.id], account.admin_email)
        add(browsers[account.id], "acme.test")
    assert len(claims(db)) == 3  # pending claims may coexist
    publish(dns_server, claims(db, second.id)[0])
    assert notice(verify(browsers[second.id], "acme.test")) == "acme.test is verified."
    [kept] = claims(db)
    assert kept.account_id == second.id and kept.verified_at is not None
    for loser in (first, third):
        assert events_of(db, loser.id)[-1] == (
            "domain.removed",
            "system",
            "acme.test was verified by another account",
            "acme.test",
        )
        refused = add(browsers[loser.id], "ACME.test")
        assert refused.status_code == 409
        assert "acme.test is already verified by another deskgate account" in refused.text
        again = verify(browsers[loser.id], "acme.test")
        assert again.status_code == 409 and "already verified by another" in again.text
    assert len(claims(db)) == 1


def test_a_verification_that_loses_the_race_is_refused(client, make_account, db, dns_server):
    first, second = make_account(), make_account()
    sign_in(client, first.admin_email)
    add(client, "acme.test")
    check = domains.start_verification(db, db.get(Account, first.id), "acme.test")
    assert isinstance(check, domains.PendingCheck)
    db.rollback()
    # Between the lookup and the write, the second account verifies the domain.
    db.add(DomainClaim(account_id=second.id, domain="acme.test", token="t", verified_at=utcnow()))
    db.commit()
    with pytest.raises(Conflict, match="already verified by another deskgate account"):
        domains.finish_verification(
            db, db.get(Account, first.id), check, None, actor=actors.operator(), now=utcnow()
        )
    db.rollback()
    assert [(c.account_id, c.verified_at is not None) for c in claims(db, first.id)] == [
        (first.id, False)
    ]


# --- routing "Login with SSO" ----------------------------------------------------------------


def connect_sso(client, account) -> None:
    sign_in(client, account.admin_email)
    saved = post_form(
        client,
        SECURITY,
        f"{SECURITY}/sso",
        {"idp_kind": "okta", "enabled": "on", "metadata_xml": idp_metadata(), "jit_enabled": "on"},
    )
    assert saved.status_code == 200, saved.text


def login_with_sso(client, email: str):
    return post_form(client, "/login/sso", "/login/sso", {"email": email, "next": "/console"})


def test_a_domain_routes_login_with_sso_only_once_verified(
    client, new_client, make_account, db, dns_server
):
    account = make_account()
    connect_sso(client, account)
    add(client, "acme.test")
    visitor = new_client()
    pending = login_with_sso(visitor, "someone@Acme.test")
    assert pending.status_code == 400 and "not set up for someone@Acme.test" in pending.text
    publish(dns_server, claims(db)[0])
    verify(client, "acme.test")
    routed = login_with_sso(visitor, "someone@Acme.test")
    assert routed.status_code == 303
    assert routed.headers["location"].startswith(f"/api/v1/sso/{account.sso_token}/login/okta")


def test_a_verified_domain_wins_over_another_accounts_agent_with_the_email(
    new_client, make_account, db, dns_server
):
    owner, squatter = make_account(), make_account()
    owner_admin, squatter_admin = new_client(), new_client()
    connect_sso(owner_admin, owner)
    connect_sso(squatter_admin, squatter)
    added = post_form(
        squatter_admin,
        "/manage/agents",
        "/manage/agents",
        {
            "email": "ceo@acme.test",
            "first_name": "C",
            "last_name": "E",
            "role": "agent",
            "password": "a long enough password",
        },
    )
    assert added.status_code in (200, 303), added.text
    visitor = new_client()
    # Nobody proved acme.test: the agent's account routes, as before domains existed.
    assert squatter.sso_token in login_with_sso(visitor, "ceo@acme.test").headers["location"]
    add(owner_admin, "acme.test")
    publish(dns_server, claims(db, owner.id)[0])
    verify(owner_admin, "acme.test")
    assert owner.sso_token in login_with_sso(visitor, "ceo@acme.test").headers["location"]


# --- hostile input -----------------------------------------------------------------------------


@given(
    value=st.one_of(
        hostile.raw, st.sampled_from(["xn--", "a.xn--zz", "ß.example", "a.-b.c", "Ａcme.example"])
    )
)
@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_domain_text_is_claimed_or_refused_with_a_4xx(client, make_account, db, value):
    account = db.scalar(select(Account).limit(1))
    if account is None:
        account = make_account()
        sign_in(client, account.admin_email)
    token = csrf_token(client.get(SECURITY).text)
    before = claims(db, account.id)
    response = client.post(
        f"{SECURITY}/domains",
        content=hostile.urlencoded([("csrf_token", token), ("domain", value)]),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code in (303, 400), response.text[:300]
    after = claims(db, account.id)
    if response.status_code == 400:
        assert [c.domain for c in after] == [c.domain for c in before]
    else:
        assert all(c.domain.isascii() and c.domain == c.domain.lower() for c in after)
