"""“Login with SSO”: from a work email to the account whose identity provider signs it in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from deskgate.domain_names import email_domain
from deskgate.store import agents as agent_store
from deskgate.store import domains as domain_store
from deskgate.store.models import Account, Plan, SSOConnection


@dataclass(frozen=True)
class SSORoute:
    account_id: str
    login_path: str


@dataclass(frozen=True)
class NoSSO:
    message: str


def login_path(sso_token: str, idp_kind: str) -> str:
    return f"/api/v1/sso/{sso_token}/login/{idp_kind}"


def next_query(target: str) -> str:
    return urlencode({"next": target})


def _usable(connection: SSOConnection | None, account: Account) -> TypeGuard[SSOConnection]:
    return (
        connection is not None
        and connection.enabled
        and bool(connection.idp_entity_id)
        and account.plan == Plan.SCALE_PLUS
    )


def _route(account: Account, connection: SSOConnection) -> SSORoute:
    return SSORoute(account.id, login_path(account.sso_token, connection.idp_kind))


def find_sso_for_email(db: Session, email: str) -> SSORoute | NoSSO:
    email = (email or "").strip()
    if "@" not in email:
        return NoSSO("Enter your work email address, like you@company.com.")
    # A verified domain belongs to its account: only that account's IdP signs its emails in,
    # whatever other accounts hold agents with them. Unverified claims route nothing.
    owner_id = domain_store.verified_owner(db, email_domain(email) or "")
    if owner_id is not None:
        owner = db.get(Account, owner_id)
        if owner is not None and _usable(owner.sso_connection, owner):
            return _route(owner, owner.sso_connection)
    else:  # no account proved the domain: the account(s) of the email's agents, as before
        for agent in agent_store.all_with_email(db, email):
            account = db.get(Account, agent.account_id)
            if account is not None and _usable(account.sso_connection, account):
                return _route(account, account.sso_connection)
    return NoSSO(
        f"Single sign-on is not set up for {email}. Sign in with your password, "
        "or ask your account's admin to turn on SSO under Manage › Security."
    )
