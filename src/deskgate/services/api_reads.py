"""What the /api/v1 data endpoints read: agents (a page, or one) and the event log after a
cursor. Parameters arrive as the client sent them (query strings) and are checked here, each
refusal an InvalidInput that names the parameter and what it accepts.

Agents are listed in creation order, all of them: those deleted over SCIM too (inactive, unless
an admin reactivated one that SCIM keeps hidden because the IdP re-created its userName). A chat
service keeps every agent its conversations name, so an agent never vanishes from this API;
`active` says whether it may sign in, and the `agent.deleted` event says the IdP deleted it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.errors import InvalidInput, NotFound
from deskgate.services.events import AGENT_FIELDS, CATALOGUE, agent_snapshot, envelope
from deskgate.store import agent_pages
from deskgate.store import events as event_store
from deskgate.store.agents import normalize_email

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CURSOR_DIGITS = 18
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Db = Session | Connection


def limit_from(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6 or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}); "
            f"received '{value[:40]}'.",
            field="limit",
        )
    return int(text)


# --- agents --------------------------------------------------------------------------------


def _agent_cursor(created_at: dt.datetime, agent_id: str) -> str:
    micros = (created_at - _EPOCH) // dt.timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{agent_id}".encode()).decode().rstrip("=")


def _agent_position(cursor: str) -> tuple[dt.datetime, str]:
    problem = InvalidInput(
        "cursor is not a cursor this API gave: pass the next_cursor of the previous page "
        "unchanged, or leave it out to start at the first agent.",
        field="cursor",
    )
    if len(cursor) > 200:
        raise problem
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        micros, agent_id = text.split(".", 1)
        if not micros.isdigit() or not ids.has_prefix(agent_id, ids.AGENT):
            raise problem
        return _EPOCH + dt.timedelta(microseconds=int(micros)), agent_id
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise problem from None


def _active_from(value: str | None) -> bool | None:
    if value is None:
        return None
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise InvalidInput(
            f"active must be true or false; received '{value[:40]}'.", field="active"
        )
    return text == "true"


def _email_from(value: str | None) -> str | None:
    if value is None:
        return None
    email = normalize_email(value)
    if not email:
        raise InvalidInput(
            "email is empty: give an address, or leave the parameter out.", field="email"
        )
    return email[:320]


def agents_page(
    db: Db,
    account_id: str,
    *,
    cursor: str | None,
    limit: str | None,
    email: str | None,
    active: str | None,
) -> dict[str, Any]:
    """{"data": [agent…], "next_cursor": "…" or null at the end}."""
    size = limit_from(limit)
    after = _agent_position(cursor) if cursor is not None else None
    rows = agent_pages.page(
        db,
        account_id,
        AGENT_FIELDS,
        limit=size + 1,  # one more: whether a next page exists, without a second query
        after=after,
        email_normalized=_email_from(email),
        active=_active_from(active),
    )
    shown = rows[:size]
    next_cursor = (
        _agent_cursor(shown[-1]["created_at"], shown[-1]["id"]) if len(rows) > size else None
    )
    return {"data": [agent_snapshot(row) for row in shown], "next_cursor": next_cursor}


def agent(db: Db, account_id: str, agent_id: str) -> dict[str, Any]:
    row = (
        agent_pages.by_id(db, account_id, agent_id, AGENT_FIELDS)
        if ids.has_prefix(agent_id, ids.AGENT)
        else None
    )
    if row is None:
        raise NotFound(f"No agent with id {agent_id[:60]} in this account.")
    return agent_snapshot(row)


# --- events --------------------------------------------------------------------------------


def _after_from(value: str | None) -> int:
    if value is None:
        return 0
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > MAX_CURSOR_DIGITS:
        raise InvalidInput(
            "after must be the cursor of an event (or a next_cursor) as this API gave it; "
            f"received '{value[:40]}'. Leave it out to start at the account's first event.",
            field="after",
        )
    return int(text)


def _types_from(value: str | None) -> list[str] | None:
    if value is None:
        return None
    chosen = list(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    unknown = [t for t in chosen if t not in CATALOGUE]
    if unknown:
        raise InvalidInput(
            f"Unknown event type '{unknown[0][:64]}' in types: use the names of the event "
            "catalogue, comma-separated (e.g. agent.created,agent.deactivated).",
            field="types",
        )
    return chosen or None


def events_page(
    db: Db, account_id: str, *, after: str | None, limit: str | None, types: str | None
) -> dict[str, Any]:
    """{"data": [event…], "next_cursor": "…", "has_more": bool}: the account's events after the
    cursor, oldest first. next_cursor is where the next call continues; it moves past events the
    `types` filter skipped, so a filtered poll never reads the same stretch twice."""
    after_seq = _after_from(after)
    size = limit_from(limit)
    wanted = _types_from(types)
    # The last number first: every event up to it has committed (the counter is taken in the
    # transaction that writes them), so a page cut at it has no hole a later read could fill.
    latest = event_store.latest_seq(db, account_id)
    if after_seq > latest:
        raise InvalidInput(
            f"after={after_seq} is past this account's last event ({latest}): a cursor is only "
            "valid for the account whose key read it.",
            field="after",
        )
    rows = [
        row
        for row in event_store.page_after(db, account_id, after_seq, size, types=wanted)
        if row["seq"] <= latest
    ]
    next_seq = rows[-1]["seq"] if len(rows) == size else latest
    return {
        "data": [envelope(cast(Mapping[str, Any], row)) for row in rows],
        "next_cursor": str(next_seq),
        "has_more": next_seq < latest,
    }
