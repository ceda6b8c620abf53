"""SCIM queries on groups and their members, per account (plain values, Core statements).

Nothing here loads a whole large group unless asked to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from deskgate.scim.query import ListQuery
from deskgate.scim.records import GroupRecord, MemberRef
from deskgate.store import scim_listing
from deskgate.store.models import (
    Agent,
    Group,
    GroupMember,
)
from deskgate.store.scim import CHUNK, Executor, chunks


def group_record(group: StoredGroup, members: Sequence[MemberRef]) -> GroupRecord:
    return GroupRecord(
        id=group.id,
        display_name=group.display_name,
        external_id=group.external_id,
        members=tuple(members),
        created_at=group.created_at,
        updated_at=group.updated_at,
        version=group.version,
    )


def normalize_group_name(display_name: str) -> str:
    """Group names are unique per account whatever their case."""
    return display_name.strip().lower()


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """A group row without its members (plain values: no ORM object on the SCIM path)."""

    id: str
    display_name: str
    external_id: str | None
    grants_admin: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


_groups = cast(Table, Group.__table__)
_group_members = cast(Table, GroupMember.__table__)
_GROUP_COLUMNS_READ = (
    _groups.c.id,
    _groups.c.display_name,
    _groups.c.external_id,
    _groups.c.grants_admin,
    _groups.c.version,
    _groups.c.created_at,
    _groups.c.updated_at,
)
_GET_GROUP = select(*_GROUP_COLUMNS_READ).where(
    _groups.c.account_id == bindparam("account_id"), _groups.c.id == bindparam("group_id")
)
_GET_GROUP_FOR_UPDATE = _GET_GROUP.with_for_update()
_INSERT_GROUP = insert(_groups)


def get_group(
    db: Executor, account_id: str, group_id: str, *, for_update: bool = False
) -> StoredGroup | None:
    stmt = _GET_GROUP_FOR_UPDATE if for_update else _GET_GROUP
    row = db.execute(stmt, {"account_id": account_id, "group_id": group_id}).first()
    return StoredGroup(*row) if row is not None else None


def insert_group(db: Executor, values: Mapping[str, Any]) -> None:
    """Insert a group row. Raises IntegrityError on a name clash."""
    db.execute(_INSERT_GROUP, dict(values))


def update_group(db: Executor, account_id: str, group_id: str, values: Mapping[str, Any]) -> None:
    db.execute(
        update(_groups)
        .where(_groups.c.account_id == account_id, _groups.c.id == group_id)
        .values(**values)
    )


def list_groups(db: Executor, account_id: str, query: ListQuery) -> tuple[int, list[StoredGroup]]:
    """(matches, the page's groups)."""
    total, rows = scim_listing.group_page(db, account_id, query)
    width = len(scim_listing.GROUP_FIELDS)  # a page's rows may carry sort keys after the fields
    return total, [StoredGroup(*tuple(row)[:width]) for row in rows]


def members_of(db: Executor, group_ids: Collection[str]) -> dict[str, list[MemberRef]]:
    """{group id: its members (id order)} for a page of groups, in one query per chunk."""
    result: dict[str, list[MemberRef]] = {group_id: [] for group_id in group_ids}
    for chunk in chunks(group_ids):
        rows = db.execute(
            select(GroupMember.group_id, Agent.id, Agent.display_name, Agent.email)
            .join(Agent, Agent.id == GroupMember.agent_id)
            .where(GroupMember.group_id.in_(chunk))
            .order_by(GroupMember.group_id, Agent.id)
        )
        for group_id, agent_id, name, email in rows:
            result[group_id].append(MemberRef(agent_id, name or email))
    return result


def member_ids_among(db: Executor, group_id: str, agent_ids: Collection[str]) -> set[str]:
    """Which of these agents are members of the group (without reading the whole group)."""
    found: set[str] = set()
    for chunk in chunks(agent_ids):
        found.update(
            db.scalars(
                select(GroupMember.agent_id).where(
                    GroupMember.group_id == group_id, GroupMember.agent_id.in_(chunk)
                )
            )
        )
    return found


def all_member_ids(db: Executor, group_id: str) -> list[str]:
    return list(
        db.scalars(
            select(GroupMember.agent_id)
            .where(GroupMember.group_id == group_id)
            .order_by(GroupMember.agent_id)
        )
    )


def add_members(db: Executor, group_id: str, agent_ids: Iterable[str]) -> None:
    rows = [{"group_id": group_id, "agent_id": agent_id} for agent_id in agent_ids]
    for start in range(0, len(rows), CHUNK):
        db.execute(insert(GroupMember), rows[start : start + CHUNK])


def remove_members(db: Executor, group_id: str, agent_ids: Collection[str]) -> None:
    for chunk in chunks(agent_ids):
        db.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group_id, GroupMember.agent_id.in_(chunk)
            )
        )


def groups_of_agent(db: Executor, account_id: str, agent_id: str) -> list[StoredGroup]:
    rows = db.execute(
        select(*_GROUP_COLUMNS_READ)
        .join(_group_members, _group_members.c.group_id == _groups.c.id)
        .where(_groups.c.account_id == account_id, _group_members.c.agent_id == agent_id)
        .order_by(_groups.c.id)
    )
    return [StoredGroup(*row) for row in rows]


def in_admin_groups(
    db: Executor, account_id: str, agent_ids: Collection[str], *, except_group: str | None = None
) -> set[str]:
    """Which of these agents are members of a "members are admins" group (other than one)."""
    found: set[str] = set()
    for chunk in chunks(agent_ids):
        stmt = (
            select(GroupMember.agent_id)
            .join(Group, Group.id == GroupMember.group_id)
            .where(
                Group.account_id == account_id,
                Group.grants_admin.is_(True),
                GroupMember.agent_id.in_(chunk),
            )
        )
        if except_group is not None:
            stmt = stmt.where(Group.id != except_group)
        found.update(db.scalars(stmt))
    return found


def bump_groups(db: Executor, group_ids: Collection[str], now: dt.datetime) -> None:
    for chunk in chunks(group_ids):
        db.execute(
            update(Group)
            .where(Group.id.in_(chunk))
            .values(version=Group.version + 1, updated_at=now)
        )


def delete_group(db: Executor, account_id: str, group_id: str) -> None:
    db.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
    db.execute(delete(_groups).where(_groups.c.account_id == account_id, _groups.c.id == group_id))


@dataclass(frozen=True)
class GroupSummary:
    id: str
    display_name: str
    external_id: str | None
    grants_admin: bool
    member_count: int


def group_summaries(db: Session, account_id: str, limit: int) -> list[GroupSummary]:
    """The account's groups by name, with member counts (for the Security page)."""
    counts = (
        select(GroupMember.group_id, func.count().label("n"))
        .group_by(GroupMember.group_id)
        .subquery()
    )
    rows = db.execute(
        select(Group.id, Group.display_name, Group.external_id, Group.grants_admin, counts.c.n)
        .outerjoin(counts, counts.c.group_id == Group.id)
        .where(Group.account_id == account_id)
        .order_by(Group.display_name_normalized)
        .limit(limit)
    )
    return [GroupSummary(gid, name, ext, bool(admin), n or 0) for gid, name, ext, admin, n in rows]
