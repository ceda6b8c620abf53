"""Webhook endpoints, deliveries and attempts: the queries of the pages and of the dispatcher.

How several nodes share the work without sending one delivery twice at once:

- fan-out (`fan_out`): an endpoint's new events become deliveries and its cursor (`last_seq`)
  moves past them, in one transaction holding the endpoint row (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL; SQLite has one writer at a time), so no event is fanned out twice.
- claim (`claim`): due deliveries are locked (`FOR UPDATE SKIP LOCKED`), marked `delivering`
  with a lease (`locked_until` = now + send timeout + margin) and `attempts` + 1, and committed
  before anything is sent. A node killed mid-send leaves the lease, which runs out, and the
  delivery is due again: at least once. `finish` only applies to the attempt it was claimed for
  (`attempts` unchanged), so a late finisher cannot overwrite a newer attempt.
- order: a delivery about an agent is not claimed while an earlier one (lower event number)
  for the same endpoint and agent is still pending or delivering.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, exists, func, insert, select, update
from sqlalchemy.engine import CursorResult, RowMapping
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.store import events as event_store
from deskgate.store.models import (
    Event,
    EventCounter,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
DELIVERIES = cast(Table, WebhookDelivery.__table__)
ATTEMPTS = cast(Table, WebhookAttempt.__table__)
EVENTS = cast(Table, Event.__table__)
COUNTERS = cast(Table, EventCounter.__table__)

OPEN = ("pending", "delivering")
FAN_OUT_BATCH = 500


# --- endpoints (pages, CLI) ---


def endpoints_of(db: Session, account_id: str) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id)
    return list(db.scalars(query.order_by(WebhookEndpoint.created_at)))


def endpoint(db: Session, account_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    return db.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.account_id == account_id, WebhookEndpoint.id == endpoint_id
        )
    ).one_or_none()


def delivery_counts(db: Session, account_id: str) -> dict[str, dict[str, int]]:
    """{endpoint id: {state: deliveries}} for the account's endpoints."""
    rows = db.execute(
        select(DELIVERIES.c.endpoint_id, DELIVERIES.c.state, func.count())
        .where(DELIVERIES.c.account_id == account_id)
        .group_by(DELIVERIES.c.endpoint_id, DELIVERIES.c.state)
    )
    counts: dict[str, dict[str, int]] = {}
    for endpoint_id, state, count in rows:
        counts.setdefault(endpoint_id, {})[state] = count
    return counts


def deliveries_of(
    db: Session, account_id: str, endpoint_id: str, limit: int = 100
) -> list[RowMapping]:
    """The endpoint's newest deliveries (the delivery log)."""
    query = (
        select(DELIVERIES)
        .where(DELIVERIES.c.account_id == account_id, DELIVERIES.c.endpoint_id == endpoint_id)
        .order_by(DELIVERIES.c.created_at.desc(), DELIVERIES.c.id.desc())
        .limit(limit)
    )
    return list(db.execute(query).mappings())


def attempts_of(db: Session, delivery_ids: Sequence[str]) -> dict[str, list[RowMapping]]:
    """Every attempt of these deliveries, oldest first."""
    if not delivery_ids:
        return {}
    query = (
        select(ATTEMPTS)
        .where(ATTEMPTS.c.delivery_id.in_(delivery_ids))
        .order_by(ATTEMPTS.c.at, ATTEMPTS.c.id)
    )
    found: dict[str, list[RowMapping]] = {}
    for row in db.execute(query).mappings():
        found.setdefault(row["delivery_id"], []).append(row)
    return found


def delivery(db: Session, account_id: str, delivery_id: str) -> RowMapping | None:
    return (
        db.execute(
            select(DELIVERIES).where(
                DELIVERIES.c.account_id == account_id, DELIVERIES.c.id == delivery_id
            )
        )
        .mappings()
        .one_or_none()
    )


def add_delivery(db: Session, source: RowMapping, now: dt.datetime) -> str:
    """A new delivery of `source`'s event to its endpoint, due now (a resend)."""
    delivery_id = ids.new_id(ids.WEBHOOK_DELIVERY)
    db.execute(
        insert(DELIVERIES),
        [_new_delivery(delivery_id, source["account_id"], source["endpoint_id"], now, source)],
    )
    return delivery_id


def _new_delivery(
    delivery_id: str, account_id: str, endpoint_id: str, now: dt.datetime, event: Any
) -> dict[str, Any]:
    seq = event["event_seq"] if "event_seq" in event else event["seq"]
    event_id = event["event_id"] if "event_id" in event else event["id"]
    event_type = event["event_type"] if "event_type" in event else event["type"]
    return {
        "id": delivery_id,
        "account_id": account_id,
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_seq": seq,
        "event_type": event_type,
        "agent_id": event["agent_id"],
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


# --- the dispatcher ---


def work_waiting(db: Session, now: dt.datetime) -> tuple[bool, bool]:
    """(some endpoint has events to fan out, some delivery is due): the idle poll, one query."""
    behind = (
        select(ENDPOINTS.c.id)
        .join(COUNTERS, COUNTERS.c.account_id == ENDPOINTS.c.account_id)
        .where(ENDPOINTS.c.enabled, COUNTERS.c.last_seq > ENDPOINTS.c.last_seq)
    )
    due = select(DELIVERIES.c.id).where(
        DELIVERIES.c.state.in_(OPEN), DELIVERIES.c.next_attempt_at <= now
    )
    row = db.execute(select(exists(behind), exists(due))).one()
    return bool(row[0]), bool(row[1])


def endpoints_behind(db: Session) -> list[str]:
    query = (
        select(ENDPOINTS.c.id)
        .join(COUNTERS, COUNTERS.c.account_id == ENDPOINTS.c.account_id)
        .where(ENDPOINTS.c.enabled, COUNTERS.c.last_seq > ENDPOINTS.c.last_seq)
    )
    return list(db.scalars(query))


def fan_out(db: Session, endpoint_id: str, now: dt.datetime) -> int:
    """Turn up to FAN_OUT_BATCH of the endpoint's next events into deliveries and move its
    cursor past them; 0 if another node holds the endpoint. Returns events read."""
    locked = (
        db.execute(
            select(ENDPOINTS.c.account_id, ENDPOINTS.c.last_seq, ENDPOINTS.c.event_types)
            .where(ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.enabled)
            .with_for_update(skip_locked=True)
        )
        .mappings()
        .one_or_none()
    )
    if locked is None:
        return 0
    page = event_store.page_after(db, locked["account_id"], locked["last_seq"], FAN_OUT_BATCH)
    if not page:
        return 0
    wanted = set(locked["event_types"] or ())
    rows = [
        _new_delivery(
            ids.new_id(ids.WEBHOOK_DELIVERY), locked["account_id"], endpoint_id, now, event
        )
        for event in page
        if not wanted or event["type"] in wanted
    ]
    if rows:
        db.execute(insert(DELIVERIES), rows)
    db.execute(
        update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(last_seq=page[-1]["seq"])
    )
    return len(page)


@dataclass(frozen=True)
class Claimed:
    """A delivery this node holds the lease of, with what it takes to send it."""

    delivery_id: str
    attempts: int
    first_attempt_at: dt.datetime
    url: str
    secrets: tuple[str, ...]
    event: dict[str, Any]
    """The event row (services.events.envelope reads it)."""


def claim(db: Session, now: dt.datetime, lease_until: dt.datetime, limit: int) -> list[Claimed]:
    """Lease up to `limit` due deliveries (each the first open one of its agent)."""
    earlier = DELIVERIES.alias("earlier")
    waits_for_earlier = exists().where(
        earlier.c.endpoint_id == DELIVERIES.c.endpoint_id,
        earlier.c.agent_id == DELIVERIES.c.agent_id,
        earlier.c.event_seq < DELIVERIES.c.event_seq,
        earlier.c.state.in_(OPEN),
    )
    due = (
        select(DELIVERIES.c.id)
        .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        .where(
            DELIVERIES.c.state.in_(OPEN),
            DELIVERIES.c.next_attempt_at <= now,
            ENDPOINTS.c.enabled,
            ~waits_for_earlier,
        )
        .order_by(DELIVERIES.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=DELIVERIES)
    )
    chosen = list(db.scalars(due))
    if not chosen:
        return []
    db.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(chosen))
        .values(
            state="delivering",
            attempts=DELIVERIES.c.attempts + 1,
            locked_until=lease_until,
            next_attempt_at=lease_until,
            first_attempt_at=func.coalesce(DELIVERIES.c.first_attempt_at, now),
            updated_at=now,
        )
    )
    rows = db.execute(
        select(
            DELIVERIES.c.id.label("delivery_id"),
            DELIVERIES.c.attempts.label("delivery_attempts"),
            DELIVERIES.c.first_attempt_at,
            ENDPOINTS.c.url.label("endpoint_url"),
            ENDPOINTS.c.secret.label("endpoint_secret"),
            ENDPOINTS.c.previous_secret,
            ENDPOINTS.c.previous_secret_expires_at,
            *EVENTS.c,
        )
        .join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
        .where(DELIVERIES.c.id.in_(chosen))
        .order_by(DELIVERIES.c.event_seq)
    ).mappings()
    claimed = []
    for row in rows:
        secrets: tuple[str, ...] = (row["endpoint_secret"],)
        expires = row["previous_secret_expires_at"]
        if row["previous_secret"] and expires is not None and expires > now:
            secrets += (row["previous_secret"],)
        claimed.append(
            Claimed(
                delivery_id=row["delivery_id"],
                attempts=row["delivery_attempts"],
                first_attempt_at=row["first_attempt_at"],
                url=row["endpoint_url"],
                secrets=secrets,
                event=dict(row),
            )
        )
    return claimed


@dataclass(frozen=True)
class Outcome:
    at: dt.datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    state: str
    """succeeded, pending (a retry at `next_attempt_at`) or failed (given up)."""
    next_attempt_at: dt.datetime


def finish(db: Session, claimed: Claimed, outcome: Outcome) -> bool:
    """Record an attempt; False if the lease was lost (another node took the delivery over, or
    the endpoint was deleted meanwhile: then there is nothing left to record it on)."""
    done = db.connection().execute(
        update(DELIVERIES)
        .where(
            DELIVERIES.c.id == claimed.delivery_id,
            DELIVERIES.c.attempts == claimed.attempts,
            DELIVERIES.c.state == "delivering",
        )
        .values(
            state=outcome.state,
            next_attempt_at=outcome.next_attempt_at,
            locked_until=None,
            last_status_code=outcome.status_code,
            last_latency_ms=outcome.latency_ms,
            last_error=outcome.error,
            delivered_at=outcome.at if outcome.state == "succeeded" else None,
            updated_at=outcome.at,
        )
    )
    kept = bool(cast(CursorResult[Any], done).rowcount)
    still_there = kept or db.scalar(
        select(DELIVERIES.c.id).where(DELIVERIES.c.id == claimed.delivery_id)
    )
    if still_there:
        db.execute(
            insert(ATTEMPTS),
            [
                {
                    "id": ids.new_id(ids.WEBHOOK_ATTEMPT),
                    "delivery_id": claimed.delivery_id,
                    "at": outcome.at,
                    "status_code": outcome.status_code,
                    "latency_ms": outcome.latency_ms,
                    "error": outcome.error,
                }
            ],
        )
    return kept


def prune_finished(db: Session, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` succeeded or failed deliveries last changed before `before`."""
    old = (
        select(DELIVERIES.c.id)
        .where(DELIVERIES.c.updated_at < before, DELIVERIES.c.state.in_(("succeeded", "failed")))
        .limit(limit)
    )
    gone = list(db.scalars(old))
    if gone:
        db.execute(delete(DELIVERIES).where(DELIVERIES.c.id.in_(gone)))
    return len(gone)
