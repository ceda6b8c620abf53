"""Manage › Security: the form that marks a SCIM group "members are admins"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response

from deskgate.services.provisioning import security_page
from deskgate.store.base import utcnow
from deskgate.web.deps import Admin, CsrfChecked, Db
from deskgate.web.rendering import redirect_with_notice

router = APIRouter(prefix="/manage")


@router.post("/security/scim-groups", dependencies=[CsrfChecked])
def set_group_admin(
    db: Db,
    admin: Admin,
    group_id: Annotated[str, Form(max_length=40)],
    grants_admin: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    change = security_page.set_group_grants_admin(
        db,
        admin.account.id,
        group_id,
        grants_admin in ("on", "true", "1"),
        now=utcnow(),
        actor=admin.actor,
    )
    if change.grants_admin:
        message = f"Members of {change.display_name} are now admins."
    else:
        message = f"Members of {change.display_name} no longer become admins through this group."
    if change.notes:
        message += " " + "; ".join(change.notes) + "."
    return redirect_with_notice("/manage/security#scim", message)
