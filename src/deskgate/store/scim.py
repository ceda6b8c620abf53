"""SCIM queries: agents and groups as the provisioning API sees them, and the request log.

Every function takes the account id; nothing crosses accounts. Agents deleted over SCIM
(`Agent.scim_deleted_at` set) are invisible here: a later POST of their userName creates a
new agent (RFC 7644 §3.6: the deleted resource's id stays 404).

List pages (filters, paging, totalResults) are `scim_listing`'s. Nothing here loads a whole
table or a whole large group unless asked to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.scim.query import ListQuery
from deskgate.scim.records import AgentRecord, EmailEntry, GroupRecord, MemberRef
from deskgate.store import batches, scim_listing
from deskgate.store.models import (
    Account,
    Agent,
    Group,
    GroupMember,
    Role,
    ScimRequestLog,
    ScimToken,
)

Executor = Session | Connection
"""What the functions here run statements on: the SCIM path's Core connection, or a page's
session (both only `execute`)."""

CHUNK = 500
"""Most ids in one `IN (...)` list (SQLite's bound-parameter limit is far above this)."""


# --- records -------------------------------------------------------------------------------
#
# Agents are read and written with Core statements built once (bound parameters), and come out
# as the core's AgentRecord: the provisioning requests are the hot path, and ORM objects and
# per-call statement building cost more there than the queries themselves.

# A mapped class's __table__ is typed as any FromClause; these are plain Tables.
_agents = cast(Table, Agent.__table__)
_AGENT_COLUMNS = (
    _agents.c.id,
    _agents.c.user_name,
    _agents.c.emails,
    _agents.c.first_name,
    _agents.c.last_name,
    _agents.c.display_name,
    _agents.c.active,
    _agents.c.external_id,
    _agents.c.locale,
    _agents.c.title,
    _agents.c.enterprise,
    _agents.c.created_at,
    _agents.c.updated_at,
    _agents.c.version,
)
AGENT_FIELD_COLUMNS = (
    "user_name",
    "user_name_normalized",
    "emails",
    "email",
    "email_normalized",
    "first_name",
    "last_name",
    "display_name",
    "active",
    "external_id",
    "locale",
    "title",
    "enterprise",
)
"""The columns a SCIM write sets (see `update_agent_fields`)."""


def agent_record(row: Any) -> AgentRecord:
    """The record of an agent row (Core row or ORM object); "" reads as unset."""
    return AgentRecord(
        id=row.id,
        user_name=row.user_name,
        emails=tuple(EmailEntry.from_dict(entry) for entry in row.emails or ()),
        first_name=row.first_name or None,
        last_name=row.last_name or None,
        display_name=row.display_name or None,
        active=row.active,
        external_id=row.external_id,
        locale=row.locale,
        title=row.title,
        enterprise=row.enterprise or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


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


# --- agents ---------------------------------------------------------------------------------


def _visible_agents(account_id: Any) -> list[ColumnElement[bool]]:
    return [_agents.c.account_id == account_id, _agents.c.scim_deleted_at.is_(None)]


_GET_AGENT = select(*_AGENT_COLUMNS).where(
    _agents.c.id == bindparam("agent_id"), *_visible_agents(bindparam("account_id"))
)
_GET_AGENT_FOR_UPDATE = _GET_AGENT.with_for_update()
_AGENT_BY_USER_NAME = select(*_AGENT_COLUMNS).where(
    _agents.c.user_name_normalized == bindparam("user_name_normalized"),
    *_visible_agents(bindparam("account_id")),
)
_INSERT_AGENT = insert(_agents)
_UPDATE_AGENT_FIELDS = (
    update(_agents)
    .where(
        _agents.c.account_id == bindparam("match_account_id"), _agents.c.id == bindparam("match_id")
    )
    .values(
        {
            name: bindparam(name, type_=_agents.c[name].type)
            for name in (*AGENT_FIELD_COLUMNS, "version", "updated_at")
        }
    )
)


def get_agent(
    db: Executor, account_id: str, agent_id: str, *, for_update: bool = False
) -> AgentRecord | None:
    """The agent, unless deleted over SCIM. `for_update` locks its row (PostgreSQL) so that
    concurrent writes to one agent run one after the other (If-Match, version bumps)."""
    stmt = _GET_AGENT_FOR_UPDATE if for_update else _GET_AGENT
    row = db.execute(stmt, {"account_id": account_id, "agent_id": agent_id}).first()
    return agent_record(row) if row is not None else None


def agent_by_user_name(
    db: Executor, account_id: str, user_name_normalized: str
) -> AgentRecord | None:
    """The visible agent with this (lower-cased) userName."""
    row = db.execute(
        _AGENT_BY_USER_NAME,
        {"account_id": account_id, "user_name_normalized": user_name_normalized},
    ).first()
    return agent_record(row) if row is not None else None


def insert_agent(db: Executor, values: Mapping[str, Any]) -> None:
    """Insert an agent row (every column given). Raises IntegrityError on a userName clash."""
    db.execute(_INSERT_AGENT, dict(values))


def update_agent_fields(
    db: Executor, account_id: str, agent_id: str, values: Mapping[str, Any]
) -> None:
    """Write every column of `AGENT_FIELD_COLUMNS`, `version` and `updated_at`."""
    db.execute(
        _UPDATE_AGENT_FIELDS, {**values, "match_account_id": account_id, "match_id": agent_id}
    )


def update_agent(db: Executor, account_id: str, agent_id: str, values: Mapping[str, Any]) -> None:
    db.execute(
        update(_agents)
        .where(_agents.c.account_id == account_id, _agents.c.id == agent_id)
        .values(**values)
    )


def list_agents(db: Executor, account_id: str, query: ListQuery) -> tuple[int, list[AgentRecord]]:
    total, rows = scim_listing.agent_page(db, account_id, query, _AGENT_COLUMNS)
    return total, [agent_record(row) for row in rows]


def agent_names(db: Executor, account_id: str, agent_ids: Collection[str]) -> dict[str, str]:
    """{agent id: display name or email} for the ids that are visible agents of the account."""
    found: dict[str, str] = {}
    for chunk in _chunks(agent_ids):
        rows = db.execute(
            select(Agent.id, Agent.display_name, Agent.email).where(
                Agent.id.in_(chunk), *_visible_agents(account_id)
            )
        )
        found.update((agent_id, name or email) for agent_id, name, email in rows)
    return found


def set_roles(
    db: Executor, account_id: str, agent_ids: Collection[str], role: Role, now: dt.datetime
) -> list[str]:
    """Give these agents `role` (those who don't have it yet); return the ids changed."""
    changed: list[str] = []
    for chunk in _chunks(agent_ids):
        ids = list(
            db.scalars(
                select(Agent.id).where(
                    Agent.account_id == account_id, Agent.id.in_(chunk), Agent.role != role.value
                )
            )
        )
        if ids:
            db.execute(
                update(Agent)
                .where(Agent.account_id == account_id, Agent.id.in_(ids))
                .values(role=role.value, version=Agent.version + 1, updated_at=now)
            )
            changed.extend(ids)
    return changed


def admins_among(
    db: Executor, account_id: str, agent_ids: Collection[str]
) -> list[tuple[str, str, bool]]:
    """(id, email, active) of the admins among these agents, in id order."""
    found: list[tuple[str, str, bool]] = []
    for chunk in _chunks(agent_ids):
        rows = db.execute(
            select(Agent.id, Agent.email, Agent.active).where(
                Agent.account_id == account_id, Agent.id.in_(chunk), Agent.role == Role.ADMIN
            )
        )
        found.extend((agent_id, email, active) for agent_id, email, active in rows)
    return sorted(found)


# --- groups ---------------------------------------------------------------------------------


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
    for chunk in _chunks(group_ids):
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
    for chunk in _chunks(agent_ids):
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
    for chunk in _chunks(agent_ids):
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
    for chunk in _chunks(agent_ids):
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
    for chunk in _chunks(group_ids):
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


# --- tokens and the request log --------------------------------------------------------------


@dataclass(frozen=True)
class TokenOwner:
    """A live SCIM token and the account it belongs to (plain values: no ORM objects to load)."""

    token_id: str
    last_used_at: dt.datetime | None
    account_id: str
    plan: str


_TOKEN_OWNER = (
    select(ScimToken.id, ScimToken.expires_at, ScimToken.last_used_at, Account.id, Account.plan)
    .join(Account, Account.id == ScimToken.account_id)
    .where(ScimToken.token_hash == bindparam("token_hash"))
)
_scim_tokens = cast(Table, ScimToken.__table__)
_TOUCH_TOKEN = (
    update(_scim_tokens)
    .where(_scim_tokens.c.id == bindparam("token_id"))
    .values(last_used_at=bindparam("now", type_=_scim_tokens.c.last_used_at.type))
)
_INSERT_REQUEST_LOG = insert(cast(Table, ScimRequestLog.__table__))


def token_owner(db: Executor, token_hash: str, now: dt.datetime) -> TokenOwner | None:
    """The owner of an unexpired token, or None."""
    row = db.execute(_TOKEN_OWNER, {"token_hash": token_hash}).first()
    if row is None:
        return None
    token_id, expires_at, last_used_at, account_id, plan = row
    if expires_at is not None and expires_at <= now:
        return None
    return TokenOwner(token_id, last_used_at, account_id, plan)


_ACCOUNT_EXISTS = select(Account.id).where(Account.id == bindparam("account_id"))


def account_exists(db: Executor, account_id: str) -> bool:
    return db.execute(_ACCOUNT_EXISTS, {"account_id": account_id}).first() is not None


def touch_token(db: Executor, token_id: str, now: dt.datetime) -> None:
    db.execute(_TOUCH_TOKEN, {"token_id": token_id, "now": now})


def add_request_log(db: Executor, values: Mapping[str, Any]) -> None:
    db.execute(_INSERT_REQUEST_LOG, dict(values))


def unauthenticated_requests_since(
    db: Executor, account_id: str, ip: str | None, since: dt.datetime
) -> int:
    """How many 401s from this source the account's log holds since `since`."""
    return int(
        db.scalar(
            select(func.count()).where(
                ScimRequestLog.account_id == account_id,
                ScimRequestLog.ip == ip,
                ScimRequestLog.at > since,
                ScimRequestLog.status == 401,
            )
        )
        or 0
    )


def recent_requests(db: Session, account_id: str, limit: int) -> list[ScimRequestLog]:
    return list(
        db.scalars(
            select(ScimRequestLog)
            .where(ScimRequestLog.account_id == account_id)
            .order_by(ScimRequestLog.at.desc(), ScimRequestLog.id.desc())
            .limit(limit)
        )
    )


def prune_request_log(db: Session, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` log rows at or before `before` (retention); how many went."""
    return batches.delete_older(db, ScimRequestLog, ScimRequestLog.at, before, limit)


def accounts_over_request_log_cap(db: Session, cap: int) -> list[str]:
    return batches.accounts_over(db, ScimRequestLog, cap)


def request_log_cutoff(db: Session, account_id: str, keep: int) -> batches.Cutoff | None:
    return batches.cutoff_beyond_newest(db, ScimRequestLog, account_id, keep)


def prune_request_log_up_to(
    db: Session, account_id: str, cutoff: batches.Cutoff, limit: int
) -> int:
    return batches.delete_up_to(db, ScimRequestLog, account_id, cutoff, limit)


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
