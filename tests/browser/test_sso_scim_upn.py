"""An agent provisioned over SCIM the way Entra ID does it (userName = UPN, work email = mail,
different) signs in through a real IdP (SimpleSAMLphp) in Chromium, for each matching choice."""

from __future__ import annotations

import httpx
import pytest

from helpers import TEST_PASSWORD
from support.simplesamlphp import IdPUser, start_simplesamlphp, submit_login_form

pytestmark = [pytest.mark.browser, pytest.mark.idp]

UPN, MAIL = "sam.rivera@acme.onmicrosoft.test", "sam@acme.test"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
AGENT = IdPUser(
    username="sam",
    password="sam-password-1",
    email=MAIL,
    first_name="Sam",
    last_name="Rivera",
    extra_attributes={"upn": [UPN]},
    entra_claims=False,
)


@pytest.fixture
def idp(tmp_path):
    running = start_simplesamlphp(tmp_path / "idp", users=[AGENT], hostname="idp.localhost")
    yield running
    running.stop()


@pytest.mark.parametrize("match", ["user_name", "email"])
def test_upn_name_id_signs_in_the_scim_agent_whose_email_differs(
    live_server, make_account, new_context, idp, match
):
    base = live_server.base_url
    account = make_account()
    admin = new_context().new_page()
    admin.goto(f"{base}/login")
    admin.fill("input[name=email]", account.admin_email)
    admin.fill("input[name=password]", TEST_PASSWORD)
    admin.click("button[type=submit]")
    admin.wait_for_url(f"{base}/console")
    admin.goto(f"{base}/manage/security")
    admin.check("#sso-enabled")
    admin.fill("#metadata-xml", idp.metadata_xml)
    admin.uncheck("input[name=jit_enabled]")  # the SCIM agent must be found, not a new one made
    admin.check(f"input[name=sign_in_match][value={match}]")
    admin.click("#sso-form button[type=submit]")
    admin.locator("#sso-saved").wait_for()
    assert admin.locator(f"input[name=sign_in_match][value={match}]").is_checked()
    token = admin.locator("#scim-token").inner_text()
    sp_entity_id = admin.locator("#sp-entity-id").inner_text()
    sp_metadata = httpx.get(admin.locator("#sp-metadata-url").inner_text()).text

    created = httpx.post(
        f"{base}/scim/v2/{account.id}/Users",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": UPN,
            "name": {"givenName": "Sam", "familyName": "Rivera"},
            "emails": [{"value": MAIL, "type": "work", "primary": True}],
        },
    )
    assert created.status_code == 201, created.text

    # The IdP sends the UPN as NameID (Unspecified), and the mail as the 'email' attribute.
    idp.set_sp_metadata(sp_metadata, name_id_format=UNSPECIFIED, name_id_attribute="upn")
    agent = new_context().new_page()
    agent.goto(idp.idp_initiated_url(sp_entity_id, relay_state="/console"))
    submit_login_form(agent, AGENT.username, AGENT.password)
    agent.wait_for_url(f"{base}/console")
    assert agent.locator("#me-email").inner_text() == MAIL
    me = agent.request.get(f"{base}/api/v1/me").json()
    assert me["id"] == created.json()["id"]
