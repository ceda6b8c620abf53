"""“Login with SSO”: from a work email to the account whose identity provider signs it in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from deskgate.store import agents as agent_store
from deskgate.store.models import Account, Plan, SSOConnection, SSODomain


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


def find_sso_for_email(db: Session, email: str) -> SSORoute | NoSSO:
    email = (email or "").strip()
    if "@" not in email:
        return NoSSO("Enter your work email address, like you@company.com.")
    # The agent's own account first; then an account that claimed the email's domain.
    for agent in agent_store.all_with_email(db, email):
        account = db.get(Account, agent.account_id)
        if account is not None and _usable(account.sso_connection, account):
            return SSORoute(
                account.id, login_path(account.sso_token, account.sso_connection.idp_kind)
            )
    domain = email.rsplit("@", 1)[1].lower()
    account = db.scalar(
        select(Account)
        .join(SSODomain, SSODomain.account_id == Account.id)
        .where(SSODomain.domain == domain)
    )
    if account is not None and _usable(account.sso_connection, account):
        return SSORoute(account.id, login_path(account.sso_token, account.sso_connection.idp_kind))
    return NoSSO(
        f"Single sign-on is not set up for {email}. Sign in with your password, "
        "or ask your account's admin to turn on SSO under Manage › Security."
    )
