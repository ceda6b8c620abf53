"""Webhook endpoints: add, change, disable, delete, rotate the secret, resend a delivery.

The dispatcher that sends the deliveries is services/webhook_dispatch.py. An endpoint's URL is
checked at save with the SSRF guard the sender uses (services/url_guard.py), so a URL that
points at a private address is refused at once, and again at every send (DNS may change).
A new (or re-enabled) endpoint receives the events recorded from then on, not earlier ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.errors import InvalidInput, NotFound
from deskgate.services import events, url_guard
from deskgate.services.events import CATALOGUE, Actor
from deskgate.store import events as event_store
from deskgate.store import webhooks as webhook_store
from deskgate.store.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"
ROTATION_OVERLAP = dt.timedelta(hours=24)
"""After a rotation the old secret signs too (a second signature) for this long."""

SUBJECT = url_guard.Subject(
    what="webhook URL",
    field="url",
    public_only="deskgate only sends webhooks to public addresses.",
    private_setting="private webhook URLs",
)


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str, *, allow_private: bool, resolve: url_guard.Resolver) -> str:
    """The URL, stripped, if deskgate may post to it; else InvalidInput saying why."""
    url = url.strip()
    if not url:
        raise InvalidInput("Give the URL deskgate should post events to.", field="url")
    if len(url) > 2048:
        raise InvalidInput("The webhook URL is longer than 2048 characters.", field="url")
    url_guard.pin(
        url_guard.parse(url, SUBJECT), SUBJECT, allow_private=allow_private, resolve=resolve
    )
    return url


def check_event_types(types: Iterable[str]) -> list[str]:
    """The chosen types, in catalogue order; an empty list means every type."""
    chosen = {t.strip() for t in types if t.strip()}
    unknown = sorted(chosen - CATALOGUE.keys())
    if unknown:
        raise InvalidInput(
            f"Unknown event type {unknown[0][:100]!r}; the types are: {', '.join(CATALOGUE)}.",
            field="event_types",
        )
    return [name for name in CATALOGUE if name in chosen]


def snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What events say about an endpoint (never its secrets)."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "description": endpoint.description,
    }


@dataclass(frozen=True)
class EndpointForm:
    url: str
    event_types: list[str]
    enabled: bool = True
    description: str = ""


def _checked(
    form: EndpointForm, *, allow_private: bool, resolve: url_guard.Resolver
) -> EndpointForm:
    description = form.description.strip()
    if len(description) > 400:
        raise InvalidInput("The description is longer than 400 characters.", field="description")
    return EndpointForm(
        url=check_url(form.url, allow_private=allow_private, resolve=resolve),
        event_types=check_event_types(form.event_types),
        enabled=form.enabled,
        description=description,
    )


def add_endpoint(
    db: Session,
    account_id: str,
    form: EndpointForm,
    actor: Actor,
    now: dt.datetime,
    *,
    allow_private: bool,
    resolve: url_guard.Resolver = url_guard.system_resolver,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret (shown once)."""
    form = _checked(form, allow_private=allow_private, resolve=resolve)
    endpoint = WebhookEndpoint(
        id=ids.new_id(ids.WEBHOOK_ENDPOINT),
        account_id=account_id,
        url=form.url,
        event_types=form.event_types,
        enabled=form.enabled,
        description=form.description,
        secret=new_secret(),
        last_seq=event_store.latest_seq(db, account_id),
        created_at=now,
        updated_at=now,
    )
    db.add(endpoint)
    db.flush()  # the row exists before the event that names it
    events.record_change(db, account_id, "webhook.created", actor, None, snapshot(endpoint))
    return endpoint, endpoint.secret


def _endpoint(db: Session, account_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = webhook_store.endpoint(db, account_id, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint in this account.")
    return endpoint


def update_endpoint(
    db: Session,
    account_id: str,
    endpoint_id: str,
    form: EndpointForm,
    actor: Actor,
    now: dt.datetime,
    *,
    allow_private: bool,
    resolve: url_guard.Resolver = url_guard.system_resolver,
) -> WebhookEndpoint:
    endpoint = _endpoint(db, account_id, endpoint_id)
    form = _checked(form, allow_private=allow_private, resolve=resolve)
    before = snapshot(endpoint)
    if form.enabled and not endpoint.enabled:
        # Events recorded while it was off are not sent: it starts again from now.
        endpoint.last_seq = event_store.latest_seq(db, account_id)
    endpoint.url = form.url
    endpoint.event_types = form.event_types
    endpoint.enabled = form.enabled
    endpoint.description = form.description
    after = snapshot(endpoint)
    if after != before:
        endpoint.updated_at = now
        events.record_change(db, account_id, "webhook.updated", actor, before, after)
    return endpoint


def set_enabled(
    db: Session, account_id: str, endpoint_id: str, enabled: bool, actor: Actor, now: dt.datetime
) -> WebhookEndpoint:
    endpoint = _endpoint(db, account_id, endpoint_id)
    before = snapshot(endpoint)
    if enabled and not endpoint.enabled:
        endpoint.last_seq = event_store.latest_seq(db, account_id)
    endpoint.enabled = enabled
    if snapshot(endpoint) != before:
        endpoint.updated_at = now
        events.record_change(db, account_id, "webhook.updated", actor, before, snapshot(endpoint))
    return endpoint


def delete_endpoint(db: Session, account_id: str, endpoint_id: str, actor: Actor) -> str:
    """Delete the endpoint with its deliveries; returns its URL."""
    endpoint = _endpoint(db, account_id, endpoint_id)
    before = snapshot(endpoint)
    db.delete(endpoint)
    db.flush()
    events.record_change(db, account_id, "webhook.deleted", actor, before, None)
    return str(before["url"])


def rotate_secret(
    db: Session, account_id: str, endpoint_id: str, actor: Actor, now: dt.datetime
) -> tuple[WebhookEndpoint, str]:
    """A new secret (returned, shown once); the current one keeps signing for 24 hours."""
    endpoint = _endpoint(db, account_id, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    events.record(
        db,
        account_id,
        "webhook.secret_rotated",
        actor,
        {
            "webhook_id": endpoint.id,
            "old_expires_at": events.timestamp(endpoint.previous_secret_expires_at),
        },
    )
    return endpoint, endpoint.secret


def resend(db: Session, account_id: str, delivery_id: str, now: dt.datetime) -> str:
    """Send a delivery's event again, as a new delivery (same webhook-id: the event's id)."""
    source = webhook_store.delivery(db, account_id, delivery_id)
    if source is None:
        raise NotFound("No such delivery in this account.")
    return webhook_store.add_delivery(db, source, now)


@dataclass(frozen=True)
class DeliveryLog:
    endpoint: WebhookEndpoint
    deliveries: list[RowMapping]
    attempts: dict[str, list[RowMapping]]


def delivery_log(db: Session, account_id: str, endpoint_id: str) -> DeliveryLog:
    endpoint = _endpoint(db, account_id, endpoint_id)
    deliveries = webhook_store.deliveries_of(db, account_id, endpoint_id)
    attempts = webhook_store.attempts_of(db, [d["id"] for d in deliveries])
    return DeliveryLog(endpoint, deliveries, attempts)
