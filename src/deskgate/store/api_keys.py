"""API keys (hashed) of an account, and the key lookup of every /api/v1 data request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.store.models import ApiKey

_api_keys = cast(Table, ApiKey.__table__)


def add(db: Session, key: ApiKey) -> ApiKey:
    db.add(key)
    return key


def for_account(db: Session, account_id: str) -> Sequence[ApiKey]:
    """Every key of the account, live ones first, newest first."""
    return db.scalars(
        select(ApiKey)
        .where(ApiKey.account_id == account_id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
    ).all()


def count_live(db: Session, account_id: str) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
        )
        or 0
    )


def get(db: Session, account_id: str, key_id: str) -> ApiKey | None:
    return db.scalar(select(ApiKey).where(ApiKey.account_id == account_id, ApiKey.id == key_id))


# --- lookup on every API request ----------------------------------------------------------


@dataclass(frozen=True)
class KeyOwner:
    """A live key and what it may read (plain values: no ORM objects to load)."""

    key_id: str
    account_id: str
    scopes: frozenset[str]
    last_used_at: dt.datetime | None


_KEY_OWNER = select(
    _api_keys.c.id,
    _api_keys.c.account_id,
    _api_keys.c.scopes,
    _api_keys.c.last_used_at,
    _api_keys.c.revoked_at,
).where(_api_keys.c.key_hash == bindparam("key_hash"))

_TOUCH_KEY = (
    update(_api_keys)
    .where(
        _api_keys.c.id == bindparam("key_id"),
        # Another node may have noted the use a moment ago: then nothing is written.
        or_(
            _api_keys.c.last_used_at.is_(None),
            _api_keys.c.last_used_at < bindparam("due", type_=_api_keys.c.last_used_at.type),
        ),
    )
    .values(last_used_at=bindparam("now", type_=_api_keys.c.last_used_at.type))
)


def key_owner(db: Session | Connection, key_hash: str) -> KeyOwner | None:
    """The owner of a key that is not revoked, or None."""
    row = db.execute(_KEY_OWNER, {"key_hash": key_hash}).first()
    if row is None:
        return None
    key_id, account_id, scopes, last_used_at, revoked_at = row
    if revoked_at is not None:
        return None
    return KeyOwner(key_id, account_id, frozenset(scopes), last_used_at)


def touch_key(db: Session | Connection, key_id: str, now: dt.datetime, due: dt.datetime) -> None:
    """Note that the key was used at `now`, unless that was already noted since `due`."""
    db.execute(_TOUCH_KEY, {"key_id": key_id, "now": now, "due": due})
