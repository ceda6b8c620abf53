"""Single sign-on end to end in Chromium against a real IdP (SimpleSAMLphp under `php -S`).

The admin connects the IdP on the Security page (pasting its metadata), then agents sign in
SP-initiated ("Login with SSO") and IdP-initiated (the IdP's unsolicited login URL)."""

from __future__ import annotations

import httpx
import pytest

from helpers import TEST_PASSWORD
from support.dns import dns_server  # noqa: F401  (the fixture)
from support.simplesamlphp import IdPUser, start_simplesamlphp, submit_login_form

pytestmark = [pytest.mark.browser, pytest.mark.idp]

AGENT = IdPUser(
    username="sam",
    password="sam-password-1",
    email="sam@acme.test",
    first_name="Sam",
    last_name="Rivera",
)
ADMIN_PASSWORD = TEST_PASSWORD


@pytest.fixture
def idp(tmp_path):
    # "idp.localhost" resolves to loopback in Chromium and makes the IdP cross-site to us,
    # as it is in production (SameSite cookie rules included).
    running = start_simplesamlphp(tmp_path / "idp", users=[AGENT], hostname="idp.localhost")
    yield running
    running.stop()


@pytest.fixture
def live_server_settings(dns_server):
    """Domain verification asks the test's DNS server."""
    return {"dns_resolver": dns_server.address}


def admin_connects_the_idp(page, base, account, idp, shot, dns) -> dict[str, str]:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", account.admin_email)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console")
    page.click("a[href='/manage/security']")
    page.wait_for_url(f"{base}/manage/security")
    values = {
        key: page.locator(f"#{key}").inner_text()
        for key in ("acs-url", "sso-token", "sp-entity-id", "sp-metadata-url", "sso-login-url")
    }
    assert values["acs-url"] == f"{base}/api/v1/sso/{account.sso_token}/acs/okta"
    assert values["sso-token"] == account.sso_token
    shot(page, "security-before")
    page.check("#sso-enabled")
    page.fill("#metadata-xml", idp.metadata_xml)
    page.click("#sso-form button[type=submit]")
    page.locator("#sso-saved").wait_for()
    assert page.locator("#found-issuer").inner_text() == idp.entity_id
    assert page.locator("#sso-status").inner_text() == "on"
    scim_token = page.locator("#scim-token").inner_text()
    assert scim_token.startswith("dgscim_")
    assert page.locator("#scim-base-url").inner_text() == f"{base}/scim/v2/{account.id}"
    shot(page, "security-saved")
    # The agents' email domain: claimed, published in DNS, verified.
    page.fill("#domains input[name=domain]", "acme.test")
    page.click("#domains button:has-text('Add domain')")
    page.locator("#domain-1").wait_for()
    dns.txt[page.locator("#domain-1-name").inner_text()] = [
        page.locator("#domain-1-value").inner_text()
    ]
    page.click("#domain-1 button:has-text('Verify now')")
    page.locator("#domain-1 .badge.ok").wait_for()
    assert "acme.test is verified." in page.locator("p.notice[role=status]").inner_text()
    shot(page, "security-domains")
    return values


def test_sp_and_idp_initiated_sign_in_in_a_real_browser(
    live_server, make_account, new_context, idp, readme_shot, dns_server
):
    base = live_server.base_url
    account = make_account(name="Acme Support")
    values = admin_connects_the_idp(
        new_context().new_page(), base, account, idp, readme_shot, dns_server
    )
    # The IdP trusts us through our published SP metadata, as an admin would configure it.
    idp.set_sp_metadata(httpx.get(values["sp-metadata-url"]).text)

    # SP-initiated: Login with SSO -> work email -> IdP form -> back at our ACS -> console.
    agent = new_context().new_page()
    agent.goto(f"{base}/login?next=/console")
    agent.click("#sso-link")
    agent.fill("input[name=email]", AGENT.email)
    readme_shot(agent, "login-with-sso")
    agent.click("button[type=submit]")
    agent.wait_for_url(lambda url: url.startswith(idp.base_url.split(":")[0] + ":"))
    submit_login_form(agent, AGENT.username, AGENT.password)
    agent.wait_for_url(f"{base}/console")
    assert agent.locator("#me-email").inner_text() == AGENT.email
    assert agent.locator("#me-name").inner_text() == "Sam Rivera"
    readme_shot(agent, "console-after-sso")

    # IdP-initiated: a fresh browser starts at the IdP's unsolicited-login URL.
    other = new_context().new_page()
    other.goto(idp.idp_initiated_url(values["sp-entity-id"], relay_state="/console"))
    submit_login_form(other, AGENT.username, AGENT.password)
    other.wait_for_url(f"{base}/console")
    assert other.locator("#me-email").inner_text() == AGENT.email

    # One agent, provisioned just in time; both sign-ins recorded for the admin.
    admin = new_context().new_page()
    admin.goto(f"{base}/login")
    admin.fill("input[name=email]", account.admin_email)
    admin.fill("input[name=password]", ADMIN_PASSWORD)
    admin.click("button[type=submit]")
    admin.goto(f"{base}/manage/agents")
    assert "jit" in admin.locator("tr[data-email='sam@acme.test']").inner_text()
    admin.goto(f"{base}/manage/security")
    attempts = admin.locator("#sign-in-attempts").inner_text()
    assert attempts.count("signed in") >= 2 and "IdP-initiated" in attempts
    readme_shot(admin, "security-attempts")


def test_idp_initiated_sign_in_is_refused_when_turned_off(
    live_server, make_account, new_context, idp, readme_shot, dns_server
):
    base = live_server.base_url
    account = make_account()
    page = new_context().new_page()
    values = admin_connects_the_idp(page, base, account, idp, readme_shot, dns_server)
    idp.set_sp_metadata(httpx.get(values["sp-metadata-url"]).text)
    page.uncheck("input[name=allow_idp_initiated]")
    page.click("#sso-form button[type=submit]")
    page.locator("#sso-saved").wait_for()

    agent = new_context().new_page()
    agent.goto(idp.idp_initiated_url(values["sp-entity-id"]))
    submit_login_form(agent, AGENT.username, AGENT.password)
    agent.locator("h1").wait_for()
    assert agent.locator("h1").inner_text() == "Single sign-on failed"
    assert "Manage › Security" in agent.locator("[role=alert]").inner_text()
    readme_shot(agent, "sso-refused")
