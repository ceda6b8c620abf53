"""SCIM base URL and bearer tokens: issued when SSO is saved (or on demand), rotated with grace."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from deskgate.errors import Forbidden, InvalidInput
from deskgate.services import events
from deskgate.services.event_snapshots import OPERATOR
from deskgate.services.events import Actor
from deskgate.services.tokens import hash_token, new_token
from deskgate.store import scim_tokens
from deskgate.store.models import Account, Plan

TOKEN_PREFIX = "dgscim_"
MAX_GRACE = dt.timedelta(days=30)


@dataclass(frozen=True)
class ScimCredentials:
    base_url: str
    token: str
    """Shown once; only its hash is stored."""


def scim_base_url(base_url: str, account: Account) -> str:
    return f"{base_url}/scim/v2/{account.id}"


def issue(
    db: Session,
    account: Account,
    *,
    base_url: str,
    now: dt.datetime,
    grace: dt.timedelta = dt.timedelta(0),
    actor: Actor = OPERATOR,
) -> ScimCredentials:
    """Issue a new token. Other live tokens keep working for `grace`, then stop.

    Records scim_token.created when the account had no live token, else scim_token.rotated
    naming the newest one it replaces (never a token value: ids and hints)."""
    if account.plan != Plan.SCALE_PLUS:
        raise Forbidden("SCIM provisioning is available on the Scale Plus plan.")
    if grace < dt.timedelta(0) or grace > MAX_GRACE:
        raise InvalidInput(
            f"The grace period must be between 0 and {MAX_GRACE.days} days.", field="grace"
        )
    replaced = scim_tokens.live_for_account(db, account.id, now)
    token = TOKEN_PREFIX + new_token(32)
    row = scim_tokens.add(
        db, account_id=account.id, token_hash=hash_token(token), hint=token[-4:], now=now
    )
    db.flush()  # the new row's id, to exclude it from the expiry below
    scim_tokens.expire_all_but(db, account.id, row.id, now + grace, now)
    if replaced:
        old = replaced[0]  # the newest
        old_expires_at = min(old.expires_at or now + grace, now + grace)
        events.record(
            db,
            account.id,
            "scim_token.rotated",
            actor,
            {
                "token_id": row.id,
                "hint": row.hint,
                "old_token_id": old.id,
                "old_expires_at": events.timestamp(old_expires_at),
            },
        )
    else:
        events.record(
            db, account.id, "scim_token.created", actor, {"token_id": row.id, "hint": row.hint}
        )
    return ScimCredentials(base_url=scim_base_url(base_url, account), token=token)


def has_live_token(db: Session, account: Account, now: dt.datetime) -> bool:
    return bool(scim_tokens.live_for_account(db, account.id, now))
