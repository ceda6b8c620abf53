"""SCIM bearer tokens (hashed) of an account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.store.models import Account, ScimToken


def add(db: Session, *, account_id: str, token_hash: str, hint: str, now: dt.datetime) -> ScimToken:
    token = ScimToken(
        id=ids.new_id(ids.SCIM_TOKEN),
        account_id=account_id,
        token_hash=token_hash,
        hint=hint,
        created_at=now,
    )
    db.add(token)
    return token


def live_for_account(db: Session, account_id: str, now: dt.datetime) -> Sequence[ScimToken]:
    return db.scalars(
        select(ScimToken)
        .where(
            ScimToken.account_id == account_id,
            or_(ScimToken.expires_at.is_(None), ScimToken.expires_at > now),
        )
        .order_by(ScimToken.created_at.desc())
    ).all()


def expire_all_but(
    db: Session, account_id: str, keep_id: str, expires_at: dt.datetime, now: dt.datetime
) -> None:
    """End every other live token of the account at `expires_at` (the rotation grace period)."""
    db.execute(
        update(ScimToken)
        .where(
            ScimToken.account_id == account_id,
            ScimToken.id != keep_id,
            or_(ScimToken.expires_at.is_(None), ScimToken.expires_at > expires_at),
        )
        .values(expires_at=expires_at)
    )


def find_account(
    db: Session, token_hash: str, now: dt.datetime
) -> tuple[ScimToken, Account] | None:
    row = db.execute(
        select(ScimToken, Account)
        .join(Account, Account.id == ScimToken.account_id)
        .where(ScimToken.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    token, account = row
    if token.expires_at is not None and token.expires_at <= now:
        return None
    return token, account
