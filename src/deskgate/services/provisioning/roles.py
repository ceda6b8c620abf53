"""Admin roles from groups that grant admin (`Group.grants_admin`): joining one promotes the
agent; leaving it demotes them unless another such group still holds them; the account's last
active admin is never demoted this way (noted in the request log).

Each role change is an `agent.role_changed` event by `actor`; a caller that folds the role
change into another event of the same agent (a SCIM DELETE) passes `actor=None` and gets the
changed agents back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from deskgate.services.event_snapshots import changed, record_agent_change
from deskgate.services.events import Actor, agent_snapshot
from deskgate.store import agents as agent_store
from deskgate.store import scim as store
from deskgate.store import scim_groups
from deskgate.store.models import Role
from deskgate.store.scim import Executor

Notes = list[str]
"""What a use case did that the admin should see in the request log (e.g. a skipped demotion)."""


def promote(
    db: Executor,
    account_id: str,
    agent_ids: Collection[str],
    *,
    now: dt.datetime,
    notes: Notes,
    actor: Actor | None,
) -> list[str]:
    """Make these agents admins; the ids of those who were not."""
    promoted = store.set_roles(db, account_id, agent_ids, Role.ADMIN, now)
    _record_role_changes(db, account_id, promoted, Role.ADMIN, now, actor)
    if promoted:
        notes.append(
            f"{len(promoted)} agent(s) made admin (joined a group whose members are admins)"
        )
    return [row["id"] for row in promoted]


def demote(
    db: Executor,
    account_id: str,
    agent_ids: Collection[str],
    *,
    except_group: str | None,
    now: dt.datetime,
    notes: Notes,
    actor: Actor | None,
) -> list[str]:
    """Demote admins who left an admin group, unless another admin group still holds them.
    The account's last active admin keeps the role (noted). The ids of those demoted."""
    admins = store.admins_among(db, account_id, agent_ids)
    if not admins:
        return []
    still_admin = scim_groups.in_admin_groups(
        db, account_id, [a[0] for a in admins], except_group=except_group
    )
    candidates = [admin for admin in admins if admin[0] not in still_admin]
    if not candidates:
        return []
    agent_store.lock_account_admins(db, account_id)
    active_admins = agent_store.count_active_admins(db, account_id)
    demoted: list[str] = []
    for agent_id, email, active in candidates:
        if active and active_admins <= 1:
            notes.append(f"{email} stays admin: the account's last active admin is never demoted")
            continue
        demoted.append(agent_id)
        active_admins -= 1 if active else 0
    changed_rows = store.set_roles(db, account_id, demoted, Role.AGENT, now)
    _record_role_changes(db, account_id, changed_rows, Role.AGENT, now, actor)
    if demoted:
        notes.append(f"{len(demoted)} agent(s) made agent (left a group whose members are admins)")
    return demoted


def _record_role_changes(
    db: Executor,
    account_id: str,
    rows: list[Mapping[str, Any]],
    role: Role,
    now: dt.datetime,
    actor: Actor | None,
) -> None:
    if actor is None:
        return
    for row in rows:
        before = agent_snapshot(row)
        after = changed(before, role=role.value, version=row["version"] + 1, updated_at=now)
        record_agent_change(db, account_id, actor, before, after)
