"""Every agent of an account in creation order, a page at a time after a (created_at, id) key:
the reads behind GET /api/v1/agents.

Agents deleted over SCIM are listed too (they are inactive, unless an admin reactivated one
that SCIM must keep hidden). The two kinds are read from their own partial indexes,
`ix_agents_scim_listing` and `ix_agents_deleted_listing`, each a keyset seek that stops at the
page size, and merged: a page costs the same at any depth, whatever the account's size.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import itertools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, select, tuple_
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from deskgate.store.models import Agent

_agents = cast(Table, Agent.__table__)
_KEY = (_agents.c.created_at, _agents.c.id)


@functools.cache
def _statement(
    columns: tuple[str, ...], *, deleted: bool | None, email: bool, active: bool, after: bool
) -> Select[Any]:
    """The page query for one shape of request (built once per shape; values are bound)."""
    stmt = select(*(_agents.c[name] for name in columns)).where(
        _agents.c.account_id == bindparam("account_id")
    )
    if deleted is not None:  # repeat the partial indexes' predicates, so they are used
        deleted_at = _agents.c.scim_deleted_at
        stmt = stmt.where(deleted_at.is_not(None) if deleted else deleted_at.is_(None))
    if email:
        stmt = stmt.where(_agents.c.email_normalized == bindparam("email"))
    if active:
        stmt = stmt.where(_agents.c.active == bindparam("active"))
    if after:
        stmt = stmt.where(
            tuple_(*_KEY)
            > tuple_(
                bindparam("after_at", type_=_agents.c.created_at.type),
                bindparam("after_id", type_=_agents.c.id.type),
            )
        )
    return stmt.order_by(*_KEY).limit(bindparam("limit"))


def page(
    db: Session | Connection,
    account_id: str,
    columns: Sequence[str],
    *,
    limit: int,
    after: tuple[dt.datetime, str] | None = None,
    email_normalized: str | None = None,
    active: bool | None = None,
) -> list[RowMapping]:
    """Up to `limit` agents after the key `after` (created_at, id), in creation order; with
    `email_normalized`, only agents with that contact email; with `active`, only those."""
    names = tuple(dict.fromkeys((*columns, "created_at", "id")))  # the key, for the merge
    values: dict[str, Any] = {"account_id": account_id, "limit": limit}
    if email_normalized is not None:
        values["email"] = email_normalized
    if active is not None:
        values["active"] = active
    if after is not None:
        values["after_at"], values["after_id"] = after
    shape = {
        "email": email_normalized is not None,
        "active": active is not None,
        "after": after is not None,
    }
    if email_normalized is not None:  # a handful of rows from the email index
        return list(db.execute(_statement(names, deleted=None, **shape), values).mappings())
    parts = [
        list(db.execute(_statement(names, deleted=deleted, **shape), values).mappings())
        for deleted in (False, True)
    ]
    merged = heapq.merge(*parts, key=lambda row: (row["created_at"], row["id"]))
    return list(itertools.islice(merged, limit))


def by_id(
    db: Session | Connection, account_id: str, agent_id: str, columns: Sequence[str]
) -> RowMapping | None:
    """The agent with this id in this account (any state), or None."""
    stmt = _by_id(tuple(columns))
    return db.execute(stmt, {"account_id": account_id, "agent_id": agent_id}).mappings().first()


@functools.cache
def _by_id(columns: tuple[str, ...]) -> Select[Any]:
    return select(*(_agents.c[name] for name in columns)).where(
        _agents.c.account_id == bindparam("account_id"), _agents.c.id == bindparam("agent_id")
    )
