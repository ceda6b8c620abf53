"""The audit log's reads: an account's events, filtered, newest first, by keyset on `seq`.

Every filter is one the event indexes serve: (account_id, seq) for paging, (account_id, type,
seq), (account_id, agent_id, seq), (account_id, at) for the time range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, func, or_, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from deskgate.store import batches as deleting
from deskgate.store.agents import normalize_email
from deskgate.store.models import Agent, Event

_events = cast(Table, Event.__table__)


@dataclass(frozen=True)
class EventFilter:
    """What the admin asked for; every field narrows the result (None: no condition)."""

    actor_type: str | None = None
    actor: str | None = None
    """An actor's id (exact) or part of its label (email, "SCIM token …a1b2"), any case."""
    agent_ids: Collection[str] | None = None
    """The events about these agents (an empty collection matches nothing)."""
    types: Collection[str] | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    """Exclusive."""


def prune(db: Session, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` events (of any account) at or before `before` (retention); how many
    went. Numbers are never reused (the counter row stays), so a cursor past them still works."""
    return deleting.delete_older(db, Event, Event.at, before, limit)


def agent_ids_with_email(db: Session | Connection, account_id: str, email: str) -> list[str]:
    """The account's agents with this contact email (any case), deleted ones included."""
    return list(
        db.scalars(
            select(Agent.id).where(
                Agent.account_id == account_id, Agent.email_normalized == normalize_email(email)
            )
        )
    )


def _conditions(account_id: str, wanted: EventFilter) -> list[ColumnElement[bool]]:
    c = _events.c
    conditions: list[ColumnElement[bool]] = [c.account_id == account_id]
    if wanted.actor_type:
        conditions.append(c.actor_type == wanted.actor_type)
    if wanted.actor:
        conditions.append(
            or_(
                c.actor_id == wanted.actor,
                func.lower(c.actor_label).contains(wanted.actor.lower(), autoescape=True),
            )
        )
    if wanted.agent_ids is not None:
        conditions.append(c.agent_id.in_(list(wanted.agent_ids)))
    if wanted.types:
        conditions.append(c.type.in_(list(wanted.types)))
    if wanted.since is not None:
        conditions.append(c.at >= wanted.since)
    if wanted.until is not None:
        conditions.append(c.at < wanted.until)
    return conditions


def _newest_first(account_id: str, wanted: EventFilter, before_seq: int | None) -> Select[Any]:
    query = select(_events).where(*_conditions(account_id, wanted))
    if before_seq is not None:
        query = query.where(_events.c.seq < before_seq)
    return query.order_by(_events.c.seq.desc())


def page(
    db: Session | Connection,
    account_id: str,
    wanted: EventFilter,
    *,
    before_seq: int | None,
    limit: int,
) -> list[RowMapping]:
    """Up to `limit` matching events numbered below `before_seq` (None: from the newest)."""
    return list(db.execute(_newest_first(account_id, wanted, before_seq).limit(limit)).mappings())


def batches(
    read: Any, account_id: str, wanted: EventFilter, *, batch_size: int
) -> Iterator[list[RowMapping]]:
    """Every matching event, newest first, a batch at a time; `read()` opens a connection for
    each batch (a long export holds no transaction open between batches)."""
    before: int | None = None
    while True:
        with read() as db:
            rows = page(db, account_id, wanted, before_seq=before, limit=batch_size)
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        before = rows[-1]["seq"]
