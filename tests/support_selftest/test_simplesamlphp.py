"""SimpleSAMLphp as a real IdP, driven through Chromium against a minimal python3-saml SP.

This is the reference for deskgate's end-to-end SSO tests: start the IdP, start the SP on a
real port, give each the other's metadata, then log in with a browser.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .mini_sp import MiniSP
from support.certs import make_key_pair
from support.server import serve_app
from support.simplesamlphp import (
    ENTRA_CLAIMS,
    IdPUser,
    RunningIdP,
    SimpleSAMLphpError,
    idp_error,
    start_simplesamlphp,
    submit_login_form,
)

pytestmark = [pytest.mark.idp, pytest.mark.browser]

EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
ALICE = IdPUser(
    "alice", "alice-password", "alice@example.com", "Alice", "Liddell", groups=["agents"]
)


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[RunningIdP]:
    """A SimpleSAMLphp IdP with user alice and no SP yet: each test registers its SP."""
    with start_simplesamlphp(tmp_path / "idp", users=[ALICE]) as running:
        yield running
        # pytest shows this only when the test fails.
        print(f"--- SimpleSAMLphp log {running.log_path}\n{running.log_tail(80)}")


@contextmanager
def running_sp(idp: RunningIdP, **idp_options: Any) -> Iterator[MiniSP]:
    """Serve a MiniSP trusting `idp`, and register its metadata with the IdP."""
    sp = MiniSP(
        idp.metadata_xml, want_encrypted_assertions=idp_options.get("encrypt_assertions", False)
    )
    with serve_app(sp.app) as base_url:
        sp.base_url = base_url  # the SP's URLs, hence its metadata, exist only now
        idp.set_sp_metadata(sp.metadata_xml(), **idp_options)
        yield sp


def sp_result(page: Page) -> dict[str, Any]:
    """The JSON the MiniSP shows after a valid response (fails with its error otherwise)."""
    error = page.locator("#error")
    if error.count():
        pytest.fail(f"SP rejected the response: {error.text_content()}")
    return json.loads(page.locator("#result").text_content() or "")


def test_sp_initiated_login(idp: RunningIdP, new_context: Callable[..., BrowserContext]) -> None:
    with running_sp(idp) as sp:
        page = new_context().new_page()
        page.goto(f"{sp.base_url}/login?next=/inbox")
        page.wait_for_url(f"{idp.base_url}/**")  # the IdP's login form
        submit_login_form(page, ALICE.username, ALICE.password)
        page.wait_for_url(f"{sp.base_url}/acs")

        result = sp_result(page)
        assert result["nameid"] == "alice@example.com"
        assert result["nameid_format"] == EMAIL_FORMAT
        assert result["in_response_to"] is not None
        assert result["relay_state"] == "/inbox"
        assert result["encrypted"] is False
        attributes = result["attributes"]
        assert attributes["email"] == ["alice@example.com"]
        assert attributes["firstName"] == ["Alice"]
        assert attributes["lastName"] == ["Liddell"]
        assert attributes[ENTRA_CLAIMS["email"]] == ["alice@example.com"]
        assert attributes[ENTRA_CLAIMS["object_id"]] == [ALICE.object_id]
        assert attributes[ENTRA_CLAIMS["groups"]] == ["agents"]

        # The IdP session persists: a second login goes straight back to the SP.
        page.goto(f"{sp.base_url}/login")
        page.wait_for_url(f"{sp.base_url}/acs")
        assert sp_result(page)["nameid"] == "alice@example.com"


def test_idp_initiated_login_with_users_changed_while_running(
    idp: RunningIdP, new_context: Callable[..., BrowserContext]
) -> None:
    bob = IdPUser("bob", "bob-password", "bob@example.org", "Bob", "Builder", entra_claims=False)
    idp.set_users([ALICE, bob])
    with running_sp(idp) as sp:
        page = new_context().new_page()
        page.goto(idp.idp_initiated_url(sp.entity_id, relay_state="/from-idp"))
        submit_login_form(page, "bob", "bob-password")
        page.wait_for_url(f"{sp.base_url}/acs")

        result = sp_result(page)
        assert result["nameid"] == "bob@example.org"
        assert result["in_response_to"] is None  # unsolicited
        assert result["relay_state"] == "/from-idp"
        assert ENTRA_CLAIMS["email"] not in result["attributes"]


def test_encrypted_assertion(idp: RunningIdP, new_context: Callable[..., BrowserContext]) -> None:
    with running_sp(idp, encrypt_assertions=True) as sp:
        page = new_context().new_page()
        page.goto(f"{sp.base_url}/login")
        submit_login_form(page, ALICE.username, ALICE.password)
        page.wait_for_url(f"{sp.base_url}/acs")

        result = sp_result(page)
        assert result["encrypted"] is True
        assert result["nameid"] == "alice@example.com"


def test_unsigned_response_is_rejected_by_a_strict_sp(
    idp: RunningIdP, new_context: Callable[..., BrowserContext]
) -> None:
    with running_sp(idp, sign_response=False) as sp:
        page = new_context().new_page()
        page.goto(f"{sp.base_url}/login")
        submit_login_form(page, ALICE.username, ALICE.password)
        page.wait_for_url(f"{sp.base_url}/acs")
        assert "not signed" in (page.locator("#error").text_content() or "")


def test_wrong_password_stays_on_the_idp(
    idp: RunningIdP, new_context: Callable[..., BrowserContext]
) -> None:
    with running_sp(idp) as sp:
        page = new_context().new_page()
        page.goto(f"{sp.base_url}/login")
        submit_login_form(page, ALICE.username, "not-her-password")
        expect(page.get_by_text("Incorrect username or password").first).to_be_visible()
        assert page.url.startswith(idp.base_url)


def test_authn_request_signed_with_an_unknown_key_is_refused(
    idp: RunningIdP, new_context: Callable[..., BrowserContext]
) -> None:
    with running_sp(idp) as sp:
        # Tell the IdP a different signing certificate than the one the SP signs with.
        metadata = sp.metadata_xml().replace(
            sp.key_pair.cert_base64, make_key_pair("impostor").cert_base64
        )
        idp.set_sp_metadata(metadata)
        page = new_context().new_page()
        page.goto(f"{sp.base_url}/login")
        with pytest.raises(SimpleSAMLphpError, match="Unable to validate signature"):
            submit_login_form(page, ALICE.username, ALICE.password)
        assert "Unable to validate signature" in (idp_error(page) or "")


def test_cross_site_idp_hostname(
    tmp_path: Path, new_context: Callable[..., BrowserContext]
) -> None:
    """An IdP on idp.localhost is cross-site to an SP on 127.0.0.1, as in production."""
    with start_simplesamlphp(tmp_path / "idp", users=[ALICE], hostname="idp.localhost") as idp:
        assert idp.base_url.startswith("http://idp.localhost:")
        with running_sp(idp) as sp:
            page = new_context().new_page()
            page.goto(f"{sp.base_url}/login")
            page.wait_for_url("http://idp.localhost:*/**")
            submit_login_form(page, ALICE.username, ALICE.password)
            page.wait_for_url(f"{sp.base_url}/acs")
            assert sp_result(page)["nameid"] == "alice@example.com"
