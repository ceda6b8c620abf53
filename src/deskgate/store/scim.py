"""SCIM queries: agents as the provisioning API sees them.

Every function takes the account id; nothing crosses accounts. Agents deleted over SCIM
(`Agent.scim_deleted_at` set) are invisible here: a later POST of their userName creates a
new agent (RFC 7644 §3.6: the deleted resource's id stays 404).

Groups are `scim_groups`'s, list pages (filters, paging, totalResults) `scim_listing`'s, the
request log `scim_request_log`'s and token lookup `scim_tokens`'.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.scim.query import ListQuery
from deskgate.scim.records import AgentRecord, EmailEntry
from deskgate.store import scim_listing
from deskgate.store.models import (
    Agent,
    Role,
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


# --- agents ---------------------------------------------------------------------------------


def _visible_agents(account_id: Any) -> list[ColumnElement[bool]]:
    return [_agents.c.account_id == account_id, _agents.c.scim_deleted_at.is_(None)]


_GET_AGENT = select(*_AGENT_COLUMNS).where(
    _agents.c.id == bindparam("agent_id"), *_visible_agents(bindparam("account_id"))
)
_GET_AGENT_FOR_UPDATE = (
    select(*_AGENT_COLUMNS, _agents.c.role, _agents.c.source)
    .where(_agents.c.id == bindparam("agent_id"), *_visible_agents(bindparam("account_id")))
    .with_for_update()
)
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


def get_agent(db: Executor, account_id: str, agent_id: str) -> AgentRecord | None:
    """The agent, unless deleted over SCIM."""
    row = db.execute(_GET_AGENT, {"account_id": account_id, "agent_id": agent_id}).first()
    return agent_record(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class LockedAgent:
    """An agent about to be written over SCIM, with what its events show besides the record."""

    record: AgentRecord
    role: str
    source: str


def lock_agent(db: Executor, account_id: str, agent_id: str) -> LockedAgent | None:
    """The agent, unless deleted over SCIM, its row locked (PostgreSQL) so that concurrent
    writes to one agent run one after the other (If-Match, version bumps)."""
    row = db.execute(
        _GET_AGENT_FOR_UPDATE, {"account_id": account_id, "agent_id": agent_id}
    ).first()
    if row is None:
        return None
    return LockedAgent(agent_record(row), row.role, row.source)


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
    for chunk in chunks(agent_ids):
        rows = db.execute(
            select(Agent.id, Agent.display_name, Agent.email).where(
                Agent.id.in_(chunk), *_visible_agents(account_id)
            )
        )
        found.update((agent_id, name or email) for agent_id, name, email in rows)
    return found


SNAPSHOT_COLUMNS = (
    "id",
    "user_name",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "role",
    "active",
    "source",
    "external_id",
    "version",
    "created_at",
    "updated_at",
)
"""The columns of an agent's public view (services/events.py AGENT_FIELDS: events' before and
after, GET /api/v1/agents), read by the queries that load agents for a change anyway."""


def set_roles(
    db: Executor, account_id: str, agent_ids: Collection[str], role: Role, now: dt.datetime
) -> list[Mapping[str, Any]]:
    """Give these agents `role` (those who don't have it yet); return the changed agents as
    they were before (their snapshot columns, read by the query that finds them anyway)."""
    changed: list[Mapping[str, Any]] = []
    for chunk in chunks(agent_ids):
        rows: list[Mapping[str, Any]] = [
            dict(row)
            for row in db.execute(
                select(*(_agents.c[name] for name in SNAPSHOT_COLUMNS)).where(
                    _agents.c.account_id == account_id,
                    _agents.c.id.in_(chunk),
                    _agents.c.role != role.value,
                )
            ).mappings()
        ]
        if rows:
            db.execute(
                update(Agent)
                .where(Agent.account_id == account_id, Agent.id.in_([row["id"] for row in rows]))
                .values(role=role.value, version=Agent.version + 1, updated_at=now)
            )
            changed.extend(rows)
    return changed


def admins_among(
    db: Executor, account_id: str, agent_ids: Collection[str]
) -> list[tuple[str, str, bool]]:
    """(id, email, active) of the admins among these agents, in id order."""
    found: list[tuple[str, str, bool]] = []
    for chunk in chunks(agent_ids):
        rows = db.execute(
            select(Agent.id, Agent.email, Agent.active).where(
                Agent.account_id == account_id, Agent.id.in_(chunk), Agent.role == Role.ADMIN
            )
        )
        found.extend((agent_id, email, active) for agent_id, email, active in rows)
    return sorted(found)


def chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
