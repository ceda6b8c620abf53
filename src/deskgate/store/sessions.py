"""Browser sessions: created, found by the hash of the cookie value, revoked."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.display_text import for_display
from deskgate.store import batches
from deskgate.store.models import Account, Agent, AgentSession


def add(
    db: Session,
    *,
    agent: Agent,
    token_hash: str,
    method: str,
    now: dt.datetime,
    expires_at: dt.datetime,
    ip: str | None,
    user_agent: str | None,
) -> AgentSession:
    row = AgentSession(
        id=ids.new_id(ids.SESSION),
        token_hash=token_hash,
        agent_id=agent.id,
        account_id=agent.account_id,
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
        ip=ip,
        user_agent=for_display(user_agent, 400) or None,
    )
    db.add(row)
    return row


def find(db: Session, token_hash: str) -> tuple[AgentSession, Agent, Account] | None:
    row = db.execute(
        select(AgentSession, Agent, Account)
        .join(Agent, Agent.id == AgentSession.agent_id)
        .join(Account, Account.id == Agent.account_id)
        .where(AgentSession.token_hash == token_hash)
    ).first()
    return (row[0], row[1], row[2]) if row else None


def mark_seen(db: Session, session_id: str, now: dt.datetime) -> None:
    db.execute(update(AgentSession).where(AgentSession.id == session_id).values(last_seen_at=now))


def delete_one(db: Session, session_id: str) -> None:
    db.execute(delete(AgentSession).where(AgentSession.id == session_id))


def delete_for_agent(db: Session | Connection, account_id: str, agent_id: str) -> int:
    result = db.execute(
        delete(AgentSession).where(
            AgentSession.account_id == account_id, AgentSession.agent_id == agent_id
        )
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def prune_expired(db: Session, now: dt.datetime, limit: int) -> int:
    """Delete up to `limit` expired sessions (retention); how many went."""
    return batches.delete_older(db, AgentSession, AgentSession.expires_at, now, limit)
