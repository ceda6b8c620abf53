"""Agent queries. Every function takes the account id: nothing crosses accounts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.store.models import Agent, Role


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


def matching_sign_in(
    db: Session, account_id: str, *, user_name: str | None = None, email: str | None = None
) -> Sequence[Agent]:
    """The agents of this account with this userName or this contact email (case ignored).

    Agents deleted over SCIM come last, so a live agent that took over their userName wins."""
    column, value = (
        (Agent.user_name_normalized, normalize_user_name(user_name))
        if user_name is not None
        else (Agent.email_normalized, normalize_email(email or ""))
    )
    if not value:
        return []
    return db.scalars(
        select(Agent)
        .where(Agent.account_id == account_id, column == value)
        .order_by(Agent.scim_deleted_at.is_not(None), Agent.created_at, Agent.id)
    ).all()


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


def touch_sign_in(db: Session, agent: Agent, now: dt.datetime) -> None:
    db.execute(update(Agent).where(Agent.id == agent.id).values(last_sign_in_at=now))
