"""Agent queries. Every function takes the account id: nothing crosses accounts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.store.models import Agent, Role

_agents: Table = Agent.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class SignInAgent:
    """What a sign-in decides on and shows about an agent: a plain row, not a loaded ORM object."""

    id: str
    account_id: str
    user_name: str
    email: str
    first_name: str
    last_name: str
    display_name: str
    role: str
    source: str
    active: bool
    scim_deleted_at: dt.datetime | None
    # For the events a sign-in records (the agent's public snapshot), read in the same query.
    external_id: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, agent: Agent) -> SignInAgent:
        return cls(**{name: getattr(agent, name) for name in cls.__slots__})


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_user_name(user_name: str) -> str:
    """userName is unique per account without case (RFC 7643 §4.1.1: caseExact false)."""
    return user_name.strip().lower()


def get(db: Session, account_id: str, agent_id: str) -> Agent | None:
    return db.scalar(select(Agent).where(Agent.account_id == account_id, Agent.id == agent_id))


def by_user_name(db: Session, account_id: str, user_name: str) -> Agent | None:
    """The agent with this userName, not deleted over SCIM (at most one: a unique index)."""
    return db.scalar(
        select(Agent).where(
            Agent.account_id == account_id,
            Agent.user_name_normalized == normalize_user_name(user_name),
            Agent.scim_deleted_at.is_(None),
        )
    )


def _matching(column_name: str) -> Select[Any]:
    return (
        select(*(_agents.c[name] for name in SignInAgent.__slots__))
        .where(
            _agents.c.account_id == bindparam("account_id"),
            _agents.c[column_name] == bindparam("value"),
        )
        .order_by(_agents.c.scim_deleted_at.is_not(None), _agents.c.created_at, _agents.c.id)
    )


_MATCHING_USER_NAME = _matching("user_name_normalized")
_MATCHING_EMAIL = _matching("email_normalized")


def matching_sign_in(
    db: Session, account_id: str, *, user_name: str | None = None, email: str | None = None
) -> list[SignInAgent]:
    """The agents of this account with this userName or this contact email (case ignored).

    Agents deleted over SCIM come last, so a live agent that took over their userName wins."""
    statement, value = (
        (_MATCHING_USER_NAME, normalize_user_name(user_name))
        if user_name is not None
        else (_MATCHING_EMAIL, normalize_email(email or ""))
    )
    if not value:
        return []
    rows = db.connection().execute(statement, {"account_id": account_id, "value": value})
    return [SignInAgent(*row) for row in rows]


def all_with_email(db: Session, email: str) -> Sequence[Agent]:
    """Agents with this email in any account (for the sign-in pages, which have no account yet)."""
    return db.scalars(
        select(Agent).where(Agent.email_normalized == normalize_email(email)).order_by(Agent.id)
    ).all()


def list_for_account(db: Session, account_id: str) -> Sequence[Agent]:
    return db.scalars(
        select(Agent).where(Agent.account_id == account_id).order_by(Agent.email_normalized)
    ).all()


def count_active_admins(db: Session | Connection, account_id: str) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(Agent)
            .where(Agent.account_id == account_id, Agent.role == Role.ADMIN, Agent.active.is_(True))
        )
        or 0
    )


def lock_account_admins(db: Session | Connection, account_id: str) -> None:
    """Serialise changes to an account's admins (last-admin rule) on PostgreSQL.

    SQLite already serialises writers (BEGIN IMMEDIATE); on PostgreSQL two concurrent demotions
    could each see the other admin still active, so lock the admin rows first.
    """
    dialect = db.dialect if isinstance(db, Connection) else db.get_bind().dialect
    if dialect.name == "postgresql":
        db.execute(
            select(Agent.id)
            .where(Agent.account_id == account_id, Agent.role == Role.ADMIN)
            .with_for_update()
        )


_TOUCH_SIGN_IN = (
    update(_agents)
    .where(_agents.c.id == bindparam("agent_key"))
    .values(last_sign_in_at=bindparam("signed_in_at"))
)
_TOUCH_SIGN_IN_RENAMED = _TOUCH_SIGN_IN.values(
    first_name=bindparam("new_first_name"),
    last_name=bindparam("new_last_name"),
    display_name=bindparam("new_display_name"),
    version=_agents.c.version + 1,
    updated_at=bindparam("signed_in_at"),
)


@dataclass(frozen=True)
class Names:
    first_name: str
    last_name: str
    display_name: str


def touch_sign_in(
    db: Session, agent_id: str, now: dt.datetime, *, renamed: Names | None = None
) -> None:
    """Note the sign-in on the agent (and, from an assertion, its refreshed names) in one UPDATE."""
    if renamed is None:
        db.connection().execute(_TOUCH_SIGN_IN, {"agent_key": agent_id, "signed_in_at": now})
        return
    db.connection().execute(
        _TOUCH_SIGN_IN_RENAMED,
        {
            "agent_key": agent_id,
            "signed_in_at": now,
            "new_first_name": renamed.first_name,
            "new_last_name": renamed.last_name,
            "new_display_name": renamed.display_name,
        },
    )
