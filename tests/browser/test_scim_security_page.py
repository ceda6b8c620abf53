"""SCIM in the browser: the Security page's credentials (generate, copy, rotate), and an agent
signed out on their next request after Okta's PATCH active:false, their next SSO refused."""

from __future__ import annotations

import httpx
import pytest

from helpers import TEST_PASSWORD
from support.simplesamlphp import IdPUser, start_simplesamlphp, submit_login_form

pytestmark = [pytest.mark.browser, pytest.mark.idp]

AGENT = IdPUser(
    username="kim",
    password="kim-password-1",
    email="kim@acme.test",
    first_name="Kim",
    last_name="Lee",
)
SCIM = "application/scim+json"


def admin_page(new_context, base, account):
    context = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=email]", account.admin_email)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console")
    return page


def test_generate_copy_and_rotate_scim_credentials(
    live_server, make_account, new_context, readme_shot
):
    base = live_server.base_url
    account = make_account()
    page = admin_page(new_context, base, account)
    page.goto(f"{base}/manage/security")
    page.click("#scim-token-form button[type=submit]")  # Generate SCIM credentials
    first = page.locator("#scim-token").inner_text()
    page.click("button[data-copy='#scim-token']")
    assert page.evaluate("navigator.clipboard.readText()") == first
    scim_base = page.locator("#scim-base-url").inner_text()
    users = f"{scim_base}/Users"
    assert httpx.get(users, headers={"Authorization": f"Bearer {first}"}).status_code == 200
    assert (
        httpx.get(users, headers={"Authorization": first}).status_code == 200
    )  # Okta Header Auth: bare token
    readme_shot(page, "scim-credentials")

    # Rotate with no grace: the old token stops at once, the new one works.
    page.select_option("select[name=grace_hours]", "0")
    page.click("#scim-token-form button[type=submit]")
    second = page.locator("#scim-token").inner_text()
    assert second != first
    assert httpx.get(users, headers={"Authorization": f"Bearer {first}"}).status_code == 401
    assert httpx.get(users, headers={"Authorization": f"Bearer {second}"}).status_code == 200

    # Rotate with a grace period: both work until it ends.
    page.select_option("select[name=grace_hours]", "24")
    page.click("#scim-token-form button[type=submit]")
    third = page.locator("#scim-token").inner_text()
    for token in (second, third):
        assert httpx.get(users, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.goto(f"{base}/manage/security")
    assert page.locator("#scim-token").count() == 0  # shown once only
    assert f"…{third[-4:]}" in page.locator("#scim").inner_text()


def test_okta_deactivation_signs_the_agent_out_and_refuses_their_next_sso(
    live_server, make_account, new_context, tmp_path
):
    base = live_server.base_url
    account = make_account()
    idp = start_simplesamlphp(tmp_path / "idp", users=[AGENT], hostname="idp.localhost")
    try:
        page = admin_page(new_context, base, account)
        page.goto(f"{base}/manage/security")
        page.check("#sso-enabled")
        page.fill("#metadata-xml", idp.metadata_xml)
        page.click("#sso-form button[type=submit]")
        token = page.locator("#scim-token").inner_text()
        scim_base = page.locator("#scim-base-url").inner_text()
        sp_entity_id = page.locator("#sp-entity-id").inner_text()
        idp.set_sp_metadata(httpx.get(page.locator("#sp-metadata-url").inner_text()).text)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM, "Accept": SCIM}

        # Okta creates the agent, who signs in through the IdP.
        created = httpx.post(
            f"{scim_base}/Users",
            headers=headers,
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": AGENT.email,
                "name": {"givenName": "Kim", "familyName": "Lee"},
                "emails": [{"primary": True, "value": AGENT.email, "type": "work"}],
                "active": True,
                "password": "ignored-by-deskgate",
                "groups": [],
            },
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        agent = new_context().new_page()
        agent.goto(idp.idp_initiated_url(sp_entity_id))
        submit_login_form(agent, AGENT.username, AGENT.password)
        agent.wait_for_url(f"{base}/console")

        # Okta deactivates: the very next request lands on the sign-in page.
        patch = httpx.patch(
            f"{scim_base}/Users/{user_id}",
            headers=headers,
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            },
        )
        assert patch.status_code == 200, patch.text
        assert patch.json()["active"] is False
        agent.reload()
        agent.wait_for_url(f"{base}/login?next=%2Fconsole")

        agent.goto(idp.idp_initiated_url(sp_entity_id))
        agent.locator("h1").wait_for()
        assert agent.locator("h1").inner_text() == "Single sign-on failed"
        assert "deactivated" in agent.locator("[role=alert]").inner_text()
    finally:
        idp.stop()
