"""Issue 2's end-to-end path: an admin adds an agent, the agent signs in elsewhere, the admin
deactivates them, and the agent's next page load lands on the sign-in page."""

from __future__ import annotations

import pytest

from helpers import TEST_PASSWORD

pytestmark = pytest.mark.browser


def sign_in(page, base_url: str, email: str, password: str = TEST_PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_admin_adds_then_deactivates_an_agent_who_is_signed_out_at_once(
    live_server, make_account, new_context, readme_shot
):
    account = make_account(name="Acme Support")
    base = live_server.base_url

    admin = new_context().new_page()
    sign_in(admin, base, account.admin_email)
    admin.wait_for_url(f"{base}/console")
    assert admin.locator("#me-role").inner_text() == "admin"
    readme_shot(admin, "console")

    admin.goto(f"{base}/manage/agents")
    form = admin.locator("#add-agent")
    form.locator("input[name=email]").fill("riley@acme.test")
    form.locator("input[name=first_name]").fill("Riley")
    form.locator("input[name=last_name]").fill("Park")
    form.locator("input[name=password]").fill(TEST_PASSWORD)
    form.locator("button[type=submit]").click()
    admin.wait_for_url(f"{base}/manage/agents")
    assert "Added riley@acme.test." in admin.locator(".notice").inner_text()
    row = admin.locator("tr[data-email='riley@acme.test']")
    assert "Riley Park" in row.inner_text()
    readme_shot(admin, "manage-agents")

    agent = new_context().new_page()  # a second browser: its own cookies
    sign_in(agent, base, "riley@acme.test")
    agent.wait_for_url(f"{base}/console")
    assert agent.locator("#me-name").inner_text() == "Riley Park"
    assert agent.locator("a[href='/manage/agents']").count() == 0  # agents see no admin links

    row.locator("button:has-text('Deactivate')").click()
    admin.wait_for_url(f"{base}/manage/agents")
    assert "deactivated" in admin.locator("tr[data-email='riley@acme.test']").inner_text()

    agent.reload()
    agent.wait_for_url(f"{base}/login?next=%2Fconsole")
    assert agent.locator("h1").inner_text() == "Sign in to deskgate"
    sign_in(agent, base, "riley@acme.test")
    assert "deactivated" in agent.locator("[role=alert]").inner_text()


def test_wrong_password_shows_a_clear_message_in_the_browser(
    live_server, make_account, new_context
):
    account = make_account()
    page = new_context().new_page()
    sign_in(page, live_server.base_url, account.admin_email, "not my password")
    assert "don't match" in page.locator("[role=alert]").inner_text()
    assert page.url.endswith("/login")
