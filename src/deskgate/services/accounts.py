"""Creating accounts with their first admin."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from deskgate.services import agents as agent_service
from deskgate.services import validation
from deskgate.services.event_snapshots import OPERATOR
from deskgate.services.events import Actor
from deskgate.services.passwords import generate_password
from deskgate.services.tokens import new_token
from deskgate.store import accounts as account_store
from deskgate.store.models import Account, Agent, AgentSource, Plan, Role


@dataclass(frozen=True)
class NewAccount:
    account: Account
    admin: Agent
    generated_password: str | None
    """Set only when no password was given; shown once, never stored in clear."""


def new_sso_token() -> str:
    """The account's SSO token: URL-safe, 22 random characters (128 bits)."""
    return new_token(16)


def create_account(
    db: Session,
    *,
    name: str,
    plan: str,
    admin_email: str,
    admin_first_name: str,
    admin_last_name: str,
    admin_password: str | None = None,
    actor: Actor = OPERATOR,
) -> NewAccount:
    """The account and its first admin, whose first and last name are required: SCIM clients
    (Okta's SPEC test) read the first listed user's name parts. The admin's agent.created names
    `actor` (the operator for the CLI, the system for the demo)."""
    name = validation.name(name, field="account_name", required=True)
    admin_first_name = validation.name(admin_first_name, field="admin_first_name", required=True)
    admin_last_name = validation.name(admin_last_name, field="admin_last_name", required=True)
    checked_plan: Plan = validation.plan(plan)
    generated = None
    if admin_password is None:
        admin_password = generated = generate_password()
    account = account_store.add(db, name=name, plan=checked_plan.value, sso_token=new_sso_token())
    admin = agent_service.add_agent(
        db,
        account.id,
        email=admin_email,
        first_name=admin_first_name,
        last_name=admin_last_name,
        role=Role.ADMIN.value,
        password=admin_password,
        source=AgentSource.PASSWORD,
        actor=actor,
    )
    return NewAccount(account=account, admin=admin, generated_password=generated)


def rotate_sso_token(db: Session, account: Account) -> str:
    account.sso_token = new_sso_token()
    db.flush()
    return account.sso_token
