"""Manage › Security: the SCIM request log, the groups, and the "members are admins" flag."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from deskgate.errors import NotFound
from deskgate.services import events
from deskgate.services.event_snapshots import OPERATOR, group_snapshot
from deskgate.services.events import Actor
from deskgate.services.provisioning.roles import Notes, demote, promote
from deskgate.store import scim_groups, scim_request_log

RECENT_REQUESTS = 50
PAGE_GROUPS = 200
"""Most groups listed on the Security page (by name)."""


@dataclass(frozen=True)
class AdminGroupChange:
    display_name: str
    grants_admin: bool
    notes: Notes


def set_group_grants_admin(
    db: Session,
    account_id: str,
    group_id: str,
    grants_admin: bool,
    *,
    now: dt.datetime,
    actor: Actor = OPERATOR,
) -> AdminGroupChange:
    """Security page: mark a group "members are admins" (promote its members) or unmark it
    (demote those no other admin group holds, never the last active admin)."""
    group = scim_groups.get_group(db, account_id, group_id, for_update=True)
    if group is None:
        raise NotFound("No such group in this account. It may have been deleted by your IdP.")
    notes: Notes = []
    if group.grants_admin != grants_admin:
        # The flag must hold before the admin-group lookups below.
        scim_groups.update_group(db, account_id, group.id, {"grants_admin": grants_admin})
        members = scim_groups.all_member_ids(db, group.id)
        if grants_admin:
            promote(db, account_id, members, now=now, notes=notes, actor=actor)
        else:
            demote(
                db, account_id, members, except_group=group.id, now=now, notes=notes, actor=actor
            )
        before = group_snapshot(group)
        events.record_change(
            db,
            account_id,
            "group.updated",
            actor,
            before,
            {**before, "grants_admin": grants_admin},
            extra={"members_added": [], "members_removed": []},
        )
    return AdminGroupChange(display_name=group.display_name, grants_admin=grants_admin, notes=notes)


# --- Security page --------------------------------------------------------------------------


def scim_page_context(db: Session, account_id: str) -> dict[str, Any]:
    """What `_scim_extra.html` shows: the latest requests and the groups (with their admin flag)."""
    return {
        "scim_log": scim_request_log.recent_requests(db, account_id, RECENT_REQUESTS),
        "scim_groups": scim_groups.group_summaries(db, account_id, PAGE_GROUPS),
    }
