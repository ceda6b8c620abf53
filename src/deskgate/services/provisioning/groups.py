"""SCIM /Groups use cases (the rules are in the package's docstring)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from deskgate import ids
from deskgate.scim import (
    GroupRecord,
    GroupUpdate,
    ListQuery,
    MemberRef,
    apply_group_patch,
    check_if_match,
    group_fields_for_create,
    group_update_for_replace,
    referenced_member_ids,
)
from deskgate.scim.errors import InvalidValueException, NotFoundException, UniquenessException
from deskgate.scim.models import GROUP_SCHEMA
from deskgate.services import events
from deskgate.services.event_snapshots import group_snapshot
from deskgate.services.events import Actor
from deskgate.services.provisioning.roles import Notes, demote, promote
from deskgate.store import scim as store
from deskgate.store import scim_groups
from deskgate.store.scim_groups import StoredGroup


def _no_group(group_id: str) -> NotFoundException:
    return NotFoundException(detail=f"No group with id {group_id!r} in this account.")


def _name_taken(display_name: str) -> UniquenessException:
    return UniquenessException(
        attribute="displayName",
        value=display_name,
        detail=f"A group named {display_name!r} already exists in this account (names are "
        f'compared without case). Link to it: GET /Groups?filter=displayName eq "{display_name}".',
    )


def wants_members(attributes: Collection[str], excluded_attributes: Collection[str]) -> bool:
    """Whether a Group representation with these `attributes`/`excludedAttributes` shows members
    (Entra reads groups with `excludedAttributes=members`: then they are not loaded at all)."""
    prefix = GROUP_SCHEMA.lower() + ":"

    def names(values: Collection[str]) -> list[str]:
        return [value.lower().removeprefix(prefix) for value in values]

    if attributes:
        return any(name == "members" or name.startswith("members.") for name in names(attributes))
    return "members" not in names(excluded_attributes)


def list_groups(db: Connection, account_id: str, query: ListQuery) -> tuple[int, list[GroupRecord]]:
    total, groups = scim_groups.list_groups(db, account_id, query)
    members: Mapping[str, list[MemberRef]] = {}
    if groups and wants_members(query.attributes, query.excluded_attributes):
        members = scim_groups.members_of(db, [group.id for group in groups])
    return total, [scim_groups.group_record(group, members.get(group.id, ())) for group in groups]


def get_group(
    db: Connection, account_id: str, group_id: str, *, with_members: bool = True
) -> GroupRecord:
    group = scim_groups.get_group(db, account_id, group_id)
    if group is None:
        raise _no_group(group_id)
    return _group_record(db, group, with_members=with_members)


def create_group(
    db: Connection, account_id: str, payload: Any, *, now: dt.datetime, actor: Actor
) -> GroupRecord:
    fields = group_fields_for_create(payload)
    member_ids = [member.agent_id for member in fields.members]
    names = _require_agents(db, account_id, member_ids)
    group = StoredGroup(
        id=ids.new_id(ids.GROUP),
        display_name=fields.display_name,
        external_id=fields.external_id,
        grants_admin=False,
        version=1,
        created_at=now,
        updated_at=now,
    )
    values = {
        "id": group.id,
        "account_id": account_id,
        "display_name": group.display_name,
        "display_name_normalized": scim_groups.normalize_group_name(group.display_name),
        "external_id": group.external_id,
        "grants_admin": False,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    try:
        with db.begin_nested():
            scim_groups.insert_group(db, values)
    except IntegrityError:
        raise _name_taken(fields.display_name) from None
    scim_groups.add_members(db, group.id, member_ids)
    _record_group_change(db, account_id, actor, None, group, added=member_ids, removed=())
    return scim_groups.group_record(
        group, [MemberRef(agent_id, names[agent_id]) for agent_id in sorted(member_ids)]
    )


def replace_group(
    db: Connection,
    account_id: str,
    group_id: str,
    payload: Any,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
    actor: Actor,
    with_members: bool = True,
) -> GroupRecord:
    """PUT /Groups/{id}: the members sent become the whole membership."""
    group = _group_for_update(db, account_id, group_id, if_match)
    current = [MemberRef(agent_id) for agent_id in scim_groups.all_member_ids(db, group.id)]
    update = group_update_for_replace(scim_groups.group_record(group, current), payload)
    group = _apply_group_update(db, account_id, group, update, now=now, notes=notes, actor=actor)
    return _group_record(db, group, with_members=with_members)


def patch_group(
    db: Connection,
    account_id: str,
    group_id: str,
    body: Any,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
    actor: Actor,
) -> int:
    """PATCH /Groups/{id}; the group's version after. Adding or removing named members reads
    only those members' rows, never the whole group; other member operations (replace, remove
    all) read the membership."""
    group = _group_for_update(db, account_id, group_id, if_match)
    # The core says which members the operations name, from the same parse it applies them with.
    named = referenced_member_ids(body)
    if named is None:
        member_ids: Collection[str] = scim_groups.all_member_ids(db, group.id)
    else:
        member_ids = sorted(scim_groups.member_ids_among(db, group.id, named))
    # The record holds the members the operations can touch: added/removed come out exact.
    record = scim_groups.group_record(group, [MemberRef(agent_id) for agent_id in member_ids])
    update = apply_group_patch(record, body)
    return _apply_group_update(
        db, account_id, group, update, now=now, notes=notes, actor=actor
    ).version


def delete_group(
    db: Connection,
    account_id: str,
    group_id: str,
    *,
    if_match: str | None,
    now: dt.datetime,
    notes: Notes,
    actor: Actor,
) -> None:
    group = _group_for_update(db, account_id, group_id, if_match)
    if group.grants_admin:
        members = scim_groups.all_member_ids(db, group.id)
        demote(db, account_id, members, except_group=group.id, now=now, notes=notes, actor=actor)
    scim_groups.delete_group(db, account_id, group.id)
    events.record_change(db, account_id, "group.deleted", actor, group_snapshot(group), None)


def _group_for_update(
    db: Connection, account_id: str, group_id: str, if_match: str | None
) -> StoredGroup:
    group = scim_groups.get_group(db, account_id, group_id, for_update=True)
    if group is None:
        raise _no_group(group_id)
    check_if_match(if_match, group.version)
    return group


def _group_record(db: Connection, group: StoredGroup, *, with_members: bool) -> GroupRecord:
    members = scim_groups.members_of(db, [group.id])[group.id] if with_members else []
    return scim_groups.group_record(group, members)


def _require_agents(db: Connection, account_id: str, agent_ids: Collection[str]) -> dict[str, str]:
    """{id: display name} of these agents; 400 invalidValue if any is not a user of the account."""
    if not agent_ids:
        return {}
    names = store.agent_names(db, account_id, agent_ids)
    unknown = [agent_id for agent_id in agent_ids if agent_id not in names]
    if unknown:
        shown = ", ".join(repr(agent_id) for agent_id in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InvalidValueException(
            attribute="members.value",
            detail=f"Group members must be users of this account; no user has the id {shown}{more}.",
        )
    return names


def _apply_group_update(
    db: Connection,
    account_id: str,
    group: StoredGroup,
    update: GroupUpdate,
    *,
    now: dt.datetime,
    notes: Notes,
    actor: Actor,
) -> StoredGroup:
    """Store the update (version bumped when it changed anything) and record it (nothing when
    nothing changed); the group after."""
    if not update.changed:
        return group
    fields = update.fields
    added = [member.agent_id for member in update.added]
    _require_agents(db, account_id, added)
    values: dict[str, Any] = {"version": group.version + 1, "updated_at": now}
    if fields.display_name != group.display_name or fields.external_id != group.external_id:
        names = {
            "display_name": fields.display_name,
            "display_name_normalized": scim_groups.normalize_group_name(fields.display_name),
            "external_id": fields.external_id,
        }
        try:
            with db.begin_nested():
                scim_groups.update_group(db, account_id, group.id, names)
        except IntegrityError:
            raise _name_taken(fields.display_name) from None
    scim_groups.add_members(db, group.id, added)
    scim_groups.remove_members(db, group.id, update.removed)
    scim_groups.update_group(db, account_id, group.id, values)
    if group.grants_admin:
        promote(db, account_id, added, now=now, notes=notes, actor=actor)
        demote(
            db, account_id, update.removed, except_group=group.id, now=now, notes=notes, actor=actor
        )
    after = dataclasses.replace(
        group,
        display_name=fields.display_name,
        external_id=fields.external_id,
        version=group.version + 1,
        updated_at=now,
    )
    _record_group_change(db, account_id, actor, group, after, added=added, removed=update.removed)
    return after


def _record_group_change(
    db: Connection,
    account_id: str,
    actor: Actor,
    before: StoredGroup | None,
    after: StoredGroup,
    *,
    added: Collection[str],
    removed: Collection[str],
) -> None:
    """group.created or group.updated, with the members added and removed (agent ids)."""
    events.record_change(
        db,
        account_id,
        "group.created" if before is None else "group.updated",
        actor,
        group_snapshot(before) if before is not None else None,
        group_snapshot(after),
        extra={"members_added": sorted(added), "members_removed": sorted(removed)},
    )
