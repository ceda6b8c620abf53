"""Adding agents, changing roles, deactivating and reactivating."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.errors import Conflict, InvalidInput, NotFound
from deskgate.services import validation
from deskgate.services.event_snapshots import OPERATOR, record_agent_change
from deskgate.services.events import Actor, agent_snapshot
from deskgate.services.passwords import hash_password
from deskgate.store import agents as agent_store
from deskgate.store import sessions as session_store
from deskgate.store.base import utcnow
from deskgate.store.models import Agent, AgentSource, Role

MAX_DISPLAY_NAME = 400
"""The length of `agents.display_name`: two 200-character names and a space would be 401."""


def display_name_for(first_name: str, last_name: str, email: str) -> str:
    return (" ".join(part for part in (first_name, last_name) if part) or email)[:MAX_DISPLAY_NAME]


def add_agent(
    db: Session,
    account_id: str,
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    role: str = Role.AGENT.value,
    password: str | None = None,
    source: AgentSource = AgentSource.PASSWORD,
    user_name: str | None = None,
    actor: Actor = OPERATOR,
) -> Agent:
    """An agent made by deskgate (the admin, the Agents page, a JIT sign-in). Its userName is
    its email unless given (a JIT sign-in matched on NameID keeps the NameID); its one email is
    the primary work email. Records agent.created by `actor`."""
    email = validation.email(email)
    user_name = (user_name or "").strip() or email
    if agent_store.by_user_name(db, account_id, user_name) is not None:
        raise Conflict(
            f"An agent with the userName {user_name} already exists in this account.",
            attribute="email",
        )
    if any(
        not other.scim_deleted_at
        for other in agent_store.matching_sign_in(db, account_id, email=email)
    ):
        raise Conflict(
            f"An agent with the email {email} already exists in this account.", attribute="email"
        )
    first_name = validation.name(first_name, field="first_name")
    last_name = validation.name(last_name, field="last_name")
    checked_role = validation.role(role)
    if password is not None:
        password = validation.password(password)
    now = utcnow()
    agent = Agent(
        id=ids.new_id(ids.AGENT),
        account_id=account_id,
        user_name=user_name,
        user_name_normalized=agent_store.normalize_user_name(user_name),
        emails=[{"value": email, "type": "work", "primary": True}],
        email=email,
        email_normalized=agent_store.normalize_email(email),
        first_name=first_name,
        last_name=last_name,
        display_name=display_name_for(first_name, last_name, email),
        role=checked_role.value,
        active=True,
        source=source.value,
        external_id=None,
        password_hash=hash_password(password) if password is not None else None,
        enterprise={},
        version=1,
        created_at=now,
        updated_at=now,
    )
    try:
        with db.begin_nested():
            db.add(agent)
    except IntegrityError:
        # The unique index on (account, lower-cased userName) settles races between requests.
        raise Conflict(
            f"An agent with the userName {user_name} already exists in this account.",
            attribute="email",
        ) from None
    record_agent_change(db, account_id, actor, None, agent_snapshot(agent))
    return agent


def list_agents(db: Session, account_id: str) -> Sequence[Agent]:
    return agent_store.list_for_account(db, account_id)


def get_agent(db: Session, account_id: str, agent_id: str) -> Agent:
    agent = agent_store.get(db, account_id, agent_id)
    if agent is None:
        raise NotFound("No such agent in this account.")
    return agent


def _ensure_not_last_admin(db: Session, agent: Agent, action: str) -> None:
    agent_store.lock_account_admins(db, agent.account_id)
    if (
        agent.role == Role.ADMIN
        and agent.active
        and agent_store.count_active_admins(db, agent.account_id) <= 1
    ):
        raise InvalidInput(
            f"{agent.email} is the account's last active admin and cannot be {action}. "
            "Make another agent an admin first."
        )


def change_role(
    db: Session, account_id: str, agent_id: str, role: str, *, actor: Actor = OPERATOR
) -> Agent:
    agent = get_agent(db, account_id, agent_id)
    new_role = validation.role(role)
    if agent.role == new_role:
        return agent
    if new_role != Role.ADMIN:
        _ensure_not_last_admin(db, agent, "demoted")
    before = agent_snapshot(agent)
    agent.role = new_role.value
    agent.version += 1
    agent.updated_at = utcnow()
    record_agent_change(db, account_id, actor, before, agent_snapshot(agent))
    return agent


def set_active(
    db: Session, account_id: str, agent_id: str, active: bool, *, actor: Actor = OPERATOR
) -> Agent:
    """Deactivation takes effect at once: every session of the agent is revoked. Reactivating
    an agent the IdP deleted over SCIM makes it visible to SCIM again (same id), unless its
    userName now belongs to another agent (see `scim_hidden_reason`)."""
    agent = get_agent(db, account_id, agent_id)
    if agent.active == active:
        return agent
    if not active:
        _ensure_not_last_admin(db, agent, "deactivated")
        session_store.delete_for_agent(db, account_id, agent.id)
    before = agent_snapshot(agent)
    agent.active = active
    agent.version += 1
    agent.updated_at = utcnow()
    if active and agent.scim_deleted_at is not None and scim_hidden_reason(db, agent) is None:
        try:
            with db.begin_nested():
                agent.scim_deleted_at = None
                db.flush()
        except IntegrityError:  # the IdP re-created the userName a moment ago
            db.refresh(agent)
            agent.active = True
    record_agent_change(db, account_id, actor, before, agent_snapshot(agent))
    return agent


def scim_hidden_reason(db: Session, agent: Agent) -> str | None:
    """Why an agent deleted over SCIM stays hidden from SCIM, or None if it can be shown."""
    if agent.scim_deleted_at is None:
        return None
    holder = agent_store.by_user_name(db, agent.account_id, agent.user_name)
    if holder is None or holder.id == agent.id:
        return None
    return (
        f"It stays hidden from SCIM: your IdP deleted it, then created {holder.user_name} again as a "
        f"new agent ({holder.display_name or holder.email or holder.id}), which SCIM now shows."
    )
