"""Groups whose members are admins: set on the Security page, applied on every membership change,
never demoting the account's last active admin. And the Security page's SCIM section."""

from __future__ import annotations

from typing import Any

import pytest

from deskgate.services import agents as agent_service
from deskgate.services.provisioning import scim_page_context
from deskgate.store.models import Agent, Group

from helpers import TEST_PASSWORD, post_form, sign_in
from scim_helpers import ScimAccount, create_group, create_user, fresh, patch_body


def role(db: Any, agent_id: str) -> str:
    return fresh(db).get(Agent, agent_id).role


def add(group_id: str, *agent_ids: str) -> dict[str, Any]:
    return patch_body({"op": "add", "path": "members", "value": [{"value": i} for i in agent_ids]})


def remove(agent_id: str) -> dict[str, Any]:
    return patch_body({"op": "remove", "path": f'members[value eq "{agent_id}"]'})


@pytest.fixture
def admin_web(web: Any, scim_account: ScimAccount) -> Any:
    assert sign_in(web, scim_account.admin_email).status_code == 303
    return web


def mark(web: Any, group_id: str, grants_admin: bool) -> Any:
    data = {"group_id": group_id, **({"grants_admin": "on"} if grants_admin else {})}
    return post_form(web, "/manage/security", "/manage/security/scim-groups", data)


def test_marking_a_group_promotes_its_members_and_membership_follows(
    scim: Any, admin_web: Any, db: Any
) -> None:
    ann, bob, cy = (create_user(scim, f"{n}@example.com")["id"] for n in ("ann", "bob", "cy"))
    admins = create_group(scim, "Admins", [ann])
    response = mark(admin_web, admins["id"], True)
    assert response.status_code == 303 and response.headers["location"] == "/manage/security#scim"
    assert fresh(db).get(Group, admins["id"]).grants_admin is True
    assert role(db, ann) == "admin"

    assert scim.patch(f"Groups/{admins['id']}", json=add(admins["id"], bob)).status_code == 204
    assert role(db, bob) == "admin"
    assert scim.patch(f"Groups/{admins['id']}", json=remove(bob)).status_code == 204
    assert role(db, bob) == "agent"

    # In two admin groups: leaving one keeps the role.
    leads = create_group(scim, "Leads", [cy])
    mark(admin_web, leads["id"], True)
    scim.patch(f"Groups/{admins['id']}", json=add(admins["id"], cy))
    scim.patch(f"Groups/{admins['id']}", json=remove(cy))
    assert role(db, cy) == "admin"
    scim.put(f"Groups/{leads['id']}", json={"displayName": "Leads", "members": []})
    assert role(db, cy) == "agent"

    # Unmarking demotes; deleting an admin group demotes too.
    mark(admin_web, admins["id"], False)
    assert role(db, ann) == "agent"
    mark(admin_web, admins["id"], True)
    assert role(db, ann) == "admin"
    assert scim.delete(f"Groups/{admins['id']}").status_code == 204
    assert role(db, ann) == "agent"


def test_the_last_active_admin_is_never_demoted_by_a_group(
    scim: Any, admin_web: Any, scim_account: ScimAccount, scim_log: Any, db: Any
) -> None:
    owners = create_group(scim, "Owners", [scim_account.admin_id])
    mark(admin_web, owners["id"], True)
    assert (
        scim.patch(f"Groups/{owners['id']}", json=remove(scim_account.admin_id)).status_code == 204
    )
    assert role(db, scim_account.admin_id) == "admin"
    detail = scim_log(scim_account.id)[-1].detail
    assert f"{scim_account.admin_email} stays admin" in detail

    # With another active admin, the same removal demotes.
    other = create_user(scim, "second.admin@example.com")["id"]
    scim.patch(f"Groups/{owners['id']}", json=add(owners["id"], other, scim_account.admin_id))
    assert role(db, other) == "admin"
    scim.patch(f"Groups/{owners['id']}", json=remove(scim_account.admin_id))
    assert role(db, scim_account.admin_id) == "agent"


def test_only_admins_with_a_valid_form_can_change_the_mapping(
    scim: Any, web: Any, new_web: Any, scim_account: ScimAccount, db: Any
) -> None:
    group = create_group(scim, "Ops")
    agent_service.add_agent(db, scim_account.id, email="plain@example.com", password=TEST_PASSWORD)
    db.commit()
    sign_in(web, "plain@example.com")
    assert (
        web.post(
            "/manage/security/scim-groups", data={"group_id": group["id"], "grants_admin": "on"}
        ).status_code
        == 403
    )
    web = new_web()
    sign_in(web, scim_account.admin_email)
    forged = web.post(
        "/manage/security/scim-groups",
        data={"group_id": group["id"], "grants_admin": "on", "csrf_token": "forged"},
    )
    assert forged.status_code == 403
    assert mark(web, "grp_unknown", True).status_code == 404
    assert fresh(db).get(Group, group["id"]).grants_admin is False


def test_security_page_section_shows_groups_and_recent_requests(
    scim: Any, admin_web: Any, app: Any, scim_account: ScimAccount, db: Any
) -> None:
    create_group(scim, "Support <Tier 1>", [create_user(scim, "t1@example.com")["id"]])
    for n in range(55):
        scim.get("Users", params={"filter": f'userName eq "n{n}@example.com"'})
    context = scim_page_context(fresh(db), scim_account.id)
    assert len(context["scim_log"]) == 50
    assert [(g.display_name, g.member_count, g.grants_admin) for g in context["scim_groups"]] == [
        ("Support <Tier 1>", 1, False)
    ]

    html = app.state.deskgate.templates.get_template("_scim_extra.html").render(
        csrf_token="tok", **context
    )
    assert "Support &lt;Tier 1&gt;" in html and "Make members admins" in html
    assert html.count("<td><code>GET ") == 50
    assert 'userName eq "n54@example.com"' in html.replace("&#34;", '"')
    assert scim_account.token not in html
    page = admin_web.get("/manage/security")
    assert page.status_code == 200
    assert "Support &lt;Tier 1&gt;" in page.text and "Recent provisioning requests" in page.text
    assert page.text.count("<td><code>GET ") == 50 and scim_account.token not in page.text
