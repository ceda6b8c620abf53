"""API keys: created and revoked by admins (Manage › API) or the operator (CLI), and the
bearer check of the /api/v1 data endpoints.

A key is `dgk_` + 32 random bytes (base64url): the prefix lets secret scanners recognise a
leaked key. Only its SHA-256 is stored, with its last characters as a hint for the admin. Every
request looks the key up (no cache), so a revoked key stops at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.display_text import for_display
from deskgate.errors import InvalidInput, NotFound
from deskgate.services import events, validation
from deskgate.services.events import Actor
from deskgate.services.tokens import hash_token, new_token
from deskgate.store import api_keys as key_store
from deskgate.store.api_keys import KeyOwner
from deskgate.store.models import ApiKey

KEY_PREFIX = "dgk_"
KEY_BYTES = 32
SCOPES: dict[str, str] = {
    "agents:read": "Read agents: GET /api/v1/agents and /api/v1/agents/{id}",
    "events:read": "Read the event log: GET /api/v1/events",
}
NAME_MAX_LENGTH = 100
MAX_LIVE_KEYS = 100
"""Live keys per account: more is a leak waiting to happen, not a use case."""
TOUCH_INTERVAL = dt.timedelta(minutes=5)
"""How stale `last_used_at` may be: a client polling every second writes once per interval."""
OPERATOR = "operator"
"""`created_by` of keys made with the CLI."""


@dataclass(frozen=True)
class NewApiKey:
    id: str
    name: str
    scopes: list[str]
    key: str
    """Shown once; only its hash is stored."""


def scopes_from(values: Iterable[str]) -> list[str]:
    """The chosen scopes in catalogue order, each at most once; InvalidInput when none is
    chosen or one is unknown."""
    chosen = {value.strip() for value in values if value.strip()}
    unknown = sorted(chosen - SCOPES.keys())
    if unknown:
        raise InvalidInput(
            f"Unknown scope '{unknown[0][:60]}': choose from {', '.join(SCOPES)}.", field="scopes"
        )
    if not chosen:
        raise InvalidInput(f"Choose at least one scope ({', '.join(SCOPES)}).", field="scopes")
    return [scope for scope in SCOPES if scope in chosen]


def _name(value: str) -> str:
    name = validation.name(value, field="name", required=True, max_length=NAME_MAX_LENGTH)
    if for_display(name, NAME_MAX_LENGTH) != name:
        raise InvalidInput(
            "The name must be one line of visible characters (no control or invisible characters).",
            field="name",
        )
    return name


def create(
    db: Session,
    account_id: str,
    *,
    name: str,
    scopes: Iterable[str],
    actor: Actor,
    created_by: str,
    now: dt.datetime,
) -> NewApiKey:
    """Create a key; the returned `key` is the only time it exists outside the caller's hands."""
    name = _name(name)
    chosen = scopes_from(scopes)
    if key_store.count_live(db, account_id) >= MAX_LIVE_KEYS:
        raise InvalidInput(
            f"This account already has {MAX_LIVE_KEYS} live API keys: revoke unused ones first.",
            field="name",
        )
    key = KEY_PREFIX + new_token(KEY_BYTES)
    row = key_store.add(
        db,
        ApiKey(
            id=ids.new_id(ids.API_KEY),
            account_id=account_id,
            name=name,
            scopes=chosen,
            key_hash=hash_token(key),
            hint=key[-4:],
            created_at=now,
            created_by=created_by,
        ),
    )
    db.flush()
    events.record(
        db,
        account_id,
        "api_key.created",
        actor,
        {"key_id": row.id, "name": name, "scopes": chosen},
    )
    return NewApiKey(id=row.id, name=name, scopes=chosen, key=key)


def revoke(db: Session, account_id: str, key_id: str, *, actor: Actor, now: dt.datetime) -> ApiKey:
    """Revoke a key of the account: its next request is refused. Revoking a revoked key
    changes nothing (and records nothing)."""
    key = key_store.get(db, account_id, key_id) if ids.has_prefix(key_id, ids.API_KEY) else None
    if key is None:
        raise NotFound(f"No API key with id {key_id[:60]} in this account.")
    if key.revoked_at is None:
        key.revoked_at = now
        db.flush()
        events.record(
            db, account_id, "api_key.revoked", actor, {"key_id": key.id, "name": key.name}
        )
    return key


def list_keys(db: Session, account_id: str) -> Sequence[ApiKey]:
    return key_store.for_account(db, account_id)


# --- the bearer check ----------------------------------------------------------------------

_BEARER = re.compile(r"bearer +(\S+) *", re.IGNORECASE)


def key_from_header(authorization: str | None) -> str | None:
    """The key of `Authorization: Bearer <key>`, or None."""
    match = _BEARER.fullmatch(authorization.strip()) if authorization else None
    return match.group(1) if match else None


def authenticate(db: Session | Connection, key: str) -> KeyOwner | None:
    """The owner of a live key, or None (unknown, revoked, or not a deskgate key). Reads only:
    a refused request writes nothing."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    return key_store.key_owner(db, hash_token(key))


def use_is_due(owner: KeyOwner, now: dt.datetime) -> bool:
    """Whether `last_used_at` should be written for this request."""
    return owner.last_used_at is None or now - owner.last_used_at >= TOUCH_INTERVAL


def note_use(db: Session | Connection, owner: KeyOwner, now: dt.datetime) -> None:
    key_store.touch_key(db, owner.key_id, now, now - TOUCH_INTERVAL)
