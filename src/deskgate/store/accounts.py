"""Account queries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.store.models import Account


def add(db: Session, *, name: str, plan: str, sso_token: str) -> Account:
    account = Account(id=ids.new_id(ids.ACCOUNT), name=name, plan=plan, sso_token=sso_token)
    db.add(account)
    db.flush()  # surface a token clash here, not at commit
    return account


def get(db: Session, account_id: str) -> Account | None:
    return db.get(Account, account_id)


def by_sso_token(db: Session, sso_token: str) -> Account | None:
    return db.scalar(select(Account).where(Account.sso_token == sso_token))


def by_name(db: Session, name: str) -> Account | None:
    return db.scalar(select(Account).where(Account.name == name).order_by(Account.created_at))
