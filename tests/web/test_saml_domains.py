"""Which emails an IdP may sign in (JIT included) once the account claims domains: those in its
verified domains only; a claimed but unverified domain admits nothing yet."""

from __future__ import annotations

from support.domains import claim_domain, remove_domains
from web.test_saml_acs import (
    agents_named,
    assert_refused,
    last_attempt,
    path_of,
    post_acs,
    sso_account,  # noqa: F401  (the fixture: example.com verified)
)
from web.test_saml_scope import respond_as


def test_an_email_in_a_verified_domain_is_created_just_in_time(sso_account, new_client):
    response = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "new@example.com")
    )
    assert response.status_code == 303
    assert agents_named(sso_account.db, "new@example.com") == 1


def test_an_email_in_a_claimed_but_unverified_domain_is_refused_with_the_fix(
    sso_account, new_client
):
    claim_domain(sso_account.db, sso_account.account.id, "acme.test", verified=False)
    response = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "ada@acme.test")
    )
    assert_refused(sso_account, response, "email_domain_not_verified", email="ada@acme.test")
    detail = last_attempt(sso_account.db).detail
    assert "received one in acme.test, which this account claims but has not verified" in detail
    assert "Verify now" in detail


def test_with_only_unverified_claims_no_email_is_admitted(sso_account, new_client):
    remove_domains(sso_account.db, sso_account.account.id)
    claim_domain(sso_account.db, sso_account.account.id, "example.com", verified=False)
    response = post_acs(new_client(), path_of(sso_account.acs), sso_account.response())
    assert_refused(sso_account, response, "email_domain_not_verified")
    claim_domain(sso_account.db, sso_account.account.id, "other.test", verified=False)
    refused = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "x@elsewhere.test")
    )
    assert_refused(sso_account, refused, "email_domain_not_allowed", email="x@elsewhere.test")
    assert "expected an email in a verified domain (this account has verified none yet)" in (
        last_attempt(sso_account.db).detail
    )


def test_an_internationalized_domain_admits_its_emails_in_either_spelling(sso_account, new_client):
    claim_domain(sso_account.db, sso_account.account.id, "xn--bcher-kva.example")
    response = post_acs(
        new_client(), path_of(sso_account.acs), respond_as(sso_account, "ada@xn--bcher-kva.example")
    )
    assert response.status_code == 303
