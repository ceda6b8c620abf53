"""SCIM bearer tokens (hashed) of an account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.engine import Connection
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


# --- lookup on every SCIM request --------------------------------------------------------


@dataclass(frozen=True)
class TokenOwner:
    """A live SCIM token and the account it belongs to (plain values: no ORM objects to load)."""

    token_id: str
    last_used_at: dt.datetime | None
    account_id: str
    plan: str
    hint: str
    """The token's last characters: how events name it (never the token)."""


_TOKEN_OWNER = (
    select(
        ScimToken.id,
        ScimToken.expires_at,
        ScimToken.last_used_at,
        Account.id,
        Account.plan,
        ScimToken.hint,
    )
    .join(Account, Account.id == ScimToken.account_id)
    .where(ScimToken.token_hash == bindparam("token_hash"))
)
_scim_tokens = cast(Table, ScimToken.__table__)
_TOUCH_TOKEN = (
    update(_scim_tokens)
    .where(_scim_tokens.c.id == bindparam("token_id"))
    .values(last_used_at=bindparam("now", type_=_scim_tokens.c.last_used_at.type))
)


def token_owner(db: Session | Connection, token_hash: str, now: dt.datetime) -> TokenOwner | None:
    """The owner of an unexpired token, or None."""
    row = db.execute(_TOKEN_OWNER, {"token_hash": token_hash}).first()
    if row is None:
        return None
    token_id, expires_at, last_used_at, account_id, plan, hint = row
    if expires_at is not None and expires_at <= now:
        return None
    return TokenOwner(token_id, last_used_at, account_id, plan, hint)


def touch_token(db: Session | Connection, token_id: str, now: dt.datetime) -> None:
    db.execute(_TOUCH_TOKEN, {"token_id": token_id, "now": now})
