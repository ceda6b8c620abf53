"""Browser sessions: created, found by the hash of the cookie value, revoked."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.display_text import for_display
from deskgate.store import batches
from deskgate.store.models import Account, Agent, AgentSession

_sessions: Table = AgentSession.__table__  # type: ignore[assignment]
_agents: Table = Agent.__table__  # type: ignore[assignment]
_accounts: Table = Account.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    method: str
    expires_at: dt.datetime
    last_seen_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SessionAgent:
    id: str
    account_id: str
    email: str
    first_name: str
    last_name: str
    display_name: str
    role: str
    active: bool


@dataclass(frozen=True, slots=True)
class SessionAccount:
    id: str
    name: str
    plan: str


# Core statements run on the session's connection, as in store/sso.py.
_ADD = insert(_sessions)
# One indexed query (the unique token hash) joining the agent and its account.
_FIND = (
    select(
        _sessions.c.id,
        _sessions.c.method,
        _sessions.c.expires_at,
        _sessions.c.last_seen_at,
        _agents.c.id,
        _agents.c.account_id,
        _agents.c.email,
        _agents.c.first_name,
        _agents.c.last_name,
        _agents.c.display_name,
        _agents.c.role,
        _agents.c.active,
        _accounts.c.id,
        _accounts.c.name,
        _accounts.c.plan,
    )
    .select_from(
        _sessions.join(_agents, _agents.c.id == _sessions.c.agent_id).join(
            _accounts, _accounts.c.id == _agents.c.account_id
        )
    )
    .where(_sessions.c.token_hash == bindparam("token_hash"))
)
_MARK_SEEN = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("session_id"))
    .values(last_seen_at=bindparam("seen_at"))
)
_DELETE_ONE = delete(_sessions).where(_sessions.c.id == bindparam("session_id"))


def add(
    db: Session,
    *,
    agent_id: str,
    account_id: str,
    token_hash: str,
    method: str,
    now: dt.datetime,
    expires_at: dt.datetime,
    ip: str | None,
    user_agent: str | None,
) -> None:
    db.connection().execute(
        _ADD,
        {
            "id": ids.new_id(ids.SESSION),
            "token_hash": token_hash,
            "agent_id": agent_id,
            "account_id": account_id,
            "method": method,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": expires_at,
            "ip": ip,
            "user_agent": for_display(user_agent, 400) or None,
        },
    )


def find(db: Session, token_hash: str) -> tuple[SessionInfo, SessionAgent, SessionAccount] | None:
    row = db.connection().execute(_FIND, {"token_hash": token_hash}).first()
    if row is None:
        return None
    return SessionInfo(*row[:4]), SessionAgent(*row[4:12]), SessionAccount(*row[12:])


def mark_seen(db: Session, session_id: str, now: dt.datetime) -> None:
    db.connection().execute(_MARK_SEEN, {"session_id": session_id, "seen_at": now})


def delete_one(db: Session, session_id: str) -> None:
    db.connection().execute(_DELETE_ONE, {"session_id": session_id})


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
