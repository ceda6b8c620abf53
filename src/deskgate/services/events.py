"""The event catalogue, the actors, and the public shape of an event.

One place names every event type: the cursor API, webhooks (endpoint filters), the audit log
page, the JSON Schema (`deskgate events schema`) and the README all read `CATALOGUE`.

The public JSON of an event (GET /api/v1/events, webhook bodies, the CSV export):

    {"id": "evt_…", "type": "agent.updated", "timestamp": "2026-12-03T10:00:00.123456Z",
     "account_id": "acct_…", "cursor": "42",
     "actor": {"type": "scim_token", "id": "scimtok_…", "label": "SCIM token …a1b2"},
     "agent_id": "agt_…", "data": {"before": {…}, "after": {…}}}

Changes carry `data.before` and `data.after` (null before a creation, after a deletion); other
events carry their own fields in `data` (CATALOGUE says which).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.store import events as event_store
from deskgate.store import scim as scim_store
from deskgate.store.events import Actor, NewEvent

__all__ = ["CATALOGUE", "Actor", "EventType", "actors", "agent_snapshot", "envelope", "record"]


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    change: bool = True
    """A change: `data` is {"before", "after"}. Otherwise `data` holds `fields`."""
    fields: tuple[str, ...] = ()
    about_agent: bool = False
    """Carries `agent_id` (webhooks deliver these in order per agent)."""


def _types(*types: EventType) -> dict[str, EventType]:
    return {t.name: t for t in types}


CATALOGUE: dict[str, EventType] = _types(
    # Agents
    EventType(
        "agent.created",
        "An agent was created (by an admin, JIT sign-in, SCIM or the CLI).",
        about_agent=True,
    ),
    EventType(
        "agent.updated",
        "An agent's names, emails, userName or other attributes changed.",
        about_agent=True,
    ),
    EventType(
        "agent.role_changed", "An agent became an admin or stopped being one.", about_agent=True
    ),
    EventType(
        "agent.deactivated",
        "An agent was deactivated: sessions ended, no sign-in.",
        about_agent=True,
    ),
    EventType("agent.reactivated", "A deactivated agent was made active again.", about_agent=True),
    EventType(
        "agent.deleted",
        "The IdP deleted the agent over SCIM (kept inactive for history).",
        about_agent=True,
    ),
    # Sign-ins
    EventType(
        "sign_in.succeeded",
        "An agent signed in.",
        change=False,
        fields=("method", "email", "ip", "idp_initiated"),
        about_agent=True,
    ),
    EventType(
        "sign_in.failed",
        "A sign-in was refused; `reason_code` says why, `detail` what was expected and what arrived.",
        change=False,
        fields=("method", "email", "ip", "reason_code", "detail"),
        about_agent=True,
    ),
    # Groups
    EventType("group.created", "A group was created over SCIM."),
    EventType("group.updated", "A group's name, members or admin grant changed."),
    EventType("group.deleted", "A group was deleted over SCIM."),
    # SSO and SCIM configuration
    EventType("sso.updated", "The SSO connection's settings or IdP metadata changed."),
    EventType("sso.enabled", "Single sign-on was turned on."),
    EventType("sso.disabled", "Single sign-on was turned off."),
    EventType(
        "sso.metadata_refreshed",
        "Automatic refresh read new IdP metadata (certificates may have changed).",
    ),
    EventType(
        "scim_token.created", "A SCIM token was created.", change=False, fields=("token_id", "hint")
    ),
    EventType(
        "scim_token.rotated",
        "A SCIM token was replaced; the old one works until `old_expires_at`.",
        change=False,
        fields=("token_id", "hint", "old_token_id", "old_expires_at"),
    ),
    EventType(
        "scim_token.revoked", "A SCIM token was revoked.", change=False, fields=("token_id", "hint")
    ),
    # API keys and webhooks
    EventType(
        "api_key.created",
        "An API key was created.",
        change=False,
        fields=("key_id", "name", "scopes"),
    ),
    EventType(
        "api_key.revoked", "An API key was revoked.", change=False, fields=("key_id", "name")
    ),
    EventType("webhook.created", "A webhook endpoint was added."),
    EventType("webhook.updated", "A webhook endpoint's URL, event types or state changed."),
    EventType("webhook.deleted", "A webhook endpoint was removed."),
    EventType(
        "webhook.secret_rotated",
        "A webhook endpoint's signing secret was rotated; the old one signs too until `old_expires_at`.",
        change=False,
        fields=("webhook_id", "old_expires_at"),
    ),
    # Certificates and keys
    EventType(
        "certificate.added",
        "An IdP signing certificate was added to the connection (`source`: metadata or admin).",
        change=False,
        fields=("fingerprint", "subject", "not_after", "source"),
    ),
    EventType(
        "certificate.removed",
        "An IdP signing certificate was removed from the connection (`reason`: "
        "dropped_from_metadata, overlap_ended, expired or removed_by_admin).",
        change=False,
        fields=("fingerprint", "subject", "not_after", "reason"),
    ),
    EventType(
        "certificate.expiring",
        "A certificate expires in `days` days (sent once at each of 90, 30, 7 and 1 days: "
        "`threshold_days`); `usage` is idp_signing or sp.",
        change=False,
        fields=("fingerprint", "subject", "not_after", "days", "threshold_days", "usage"),
    ),
    EventType(
        "certificate.expired",
        "A certificate has expired (sent once); `usage` is idp_signing or sp.",
        change=False,
        fields=("fingerprint", "subject", "not_after", "usage"),
    ),
    EventType(
        "sp_key.rollover_started",
        "A new SP signing/encryption key was added; both are in the SP metadata.",
        change=False,
        fields=("fingerprint", "not_after"),
    ),
    EventType(
        "sp_key.rollover_completed",
        "The new SP key signs; the previous one (`previous_fingerprint`) left the SP metadata.",
        change=False,
        fields=("fingerprint", "previous_fingerprint"),
    ),
    # Domains
    EventType(
        "domain.added",
        "A domain was claimed; it routes nothing until verified.",
        change=False,
        fields=("domain",),
    ),
    EventType(
        "domain.verified",
        "A domain was verified by its DNS TXT record.",
        change=False,
        fields=("domain",),
    ),
    EventType("domain.removed", "A domain was removed.", change=False, fields=("domain",)),
)


class actors:
    """Constructors for the actors deskgate knows."""

    @staticmethod
    def admin(agent_id: str, email: str) -> Actor:
        return Actor("admin", agent_id, email)

    @staticmethod
    def scim_token(token_id: str, hint: str) -> Actor:
        return Actor("scim_token", token_id, f"SCIM token …{hint}")

    @staticmethod
    def idp(entity_id: str | None) -> Actor:
        return Actor("idp", None, entity_id)

    @staticmethod
    def agent(agent_id: str | None, email: str | None) -> Actor:
        """The person signing in (a password sign-in, or its failure)."""
        return Actor("agent", agent_id, email)

    @staticmethod
    def api_key(key_id: str, name: str) -> Actor:
        return Actor("api_key", key_id, name)

    @staticmethod
    def operator() -> Actor:
        """The deskgate CLI."""
        return Actor("operator", None, "deskgate CLI")

    @staticmethod
    def system(what: str) -> Actor:
        return Actor("system", None, what)


def record(
    db: Session | Connection,
    account_id: str,
    type: str,
    actor: Actor,
    data: Mapping[str, Any] | None = None,
    *,
    agent_id: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Record an event in the current transaction (written when it commits)."""
    if type not in CATALOGUE:
        raise ValueError(f"unknown event type {type!r}: add it to CATALOGUE")
    event_store.record(
        db, NewEvent(account_id, type, actor, dict(data or {}), agent_id=agent_id, at=at)
    )


def record_change(
    db: Session | Connection,
    account_id: str,
    type: str,
    actor: Actor,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    agent_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Record a change: `data` is {"before", "after"} (plus `extra`, e.g. a group's members
    added and removed)."""
    data = {"before": _jsonable(before), "after": _jsonable(after)}
    if extra:
        data.update(_jsonable(extra) or {})
    record(db, account_id, type, actor, data, agent_id=agent_id)


AGENT_FIELDS = scim_store.SNAPSHOT_COLUMNS
"""The public view of an agent (events' before/after, GET /api/v1/agents)."""


def agent_snapshot(agent: Any) -> dict[str, Any]:
    """The public view of an agent (events' before/after, GET /api/v1/agents): an Agent or a
    row mapping with the AGENT_FIELDS."""
    get = agent.get if isinstance(agent, Mapping) else lambda name: getattr(agent, name)
    return {name: _jsonable_value(get(name)) for name in AGENT_FIELDS}


def _jsonable(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {key: _jsonable_value(value) for key, value in values.items()}


def _jsonable_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return timestamp(value)
    if isinstance(value, Mapping):
        return {key: _jsonable_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable_value(item) for item in value]
    return value


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(row: Mapping[str, Any]) -> dict[str, Any]:
    """The public JSON of a stored event (a row of `events`)."""
    return {
        "id": row["id"],
        "type": row["type"],
        "timestamp": timestamp(row["at"]),
        "account_id": row["account_id"],
        "cursor": str(row["seq"]),
        "actor": {"type": row["actor_type"], "id": row["actor_id"], "label": row["actor_label"]},
        "agent_id": row["agent_id"],
        "data": row["data"],
    }
