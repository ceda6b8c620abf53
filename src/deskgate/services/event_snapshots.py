"""What events say about agents, groups and the SSO connection: their public snapshots, and
which event type an agent's change is.

Snapshots never hold a secret: no private key, no password hash, no token value (an SSO token
appears as its last four characters, certificates as their SHA-256 fingerprints).

One event per change of an agent: `agent_change_type` names the change by what matters most —
deletion, then deactivation, then reactivation, then a role change, else an update — and the
event carries the whole before and after, so a SCIM PUT that renames and deactivates at once is
one `agent.deactivated` whose before/after also show the new names. A write that changes
nothing records nothing (the SCIM core reports `changed=False`; the version stays).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.saml.certs import sha256_fingerprint
from deskgate.scim.records import AgentRecord
from deskgate.services import events
from deskgate.services.events import Actor, actors, agent_snapshot

ACTOR_TYPES = ("admin", "scim_token", "idp", "agent", "api_key", "operator", "system")
"""Every kind of actor `services.events.actors` makes."""
OPERATOR = actors.operator()
"""Who makes a change when the caller names no one: the operator (the CLI, scripts)."""

GROUP_FIELDS = (
    "id",
    "display_name",
    "external_id",
    "grants_admin",
    "version",
    "created_at",
    "updated_at",
)
"""A group in events (its members are listed in `data.members_added`/`members_removed`)."""

SSO_FIELDS = (
    "enabled",
    "idp_kind",
    "idp_entity_id",
    "idp_sso_url",
    "idp_sso_binding",
    "metadata_url",
    "allow_idp_initiated",
    "jit_enabled",
    "jit_role",
    "require_sso",
    "allow_sha1",
    "sign_in_match",
    "sp_certificate",
)
"""The SSO connection in events: its settings and the SP's own certificate as its fingerprint;
never the SP private key. IdP certificates and domains have events of their own
(certificate.*, domain.*)."""


def agent_change_type(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """The event type of an agent's change (see the module docstring)."""
    if before is None:
        return "agent.created"
    if before["active"] and not after["active"]:
        return "agent.deactivated"
    if not before["active"] and after["active"]:
        return "agent.reactivated"
    if before["role"] != after["role"]:
        return "agent.role_changed"
    return "agent.updated"


def record_agent_change(
    db: Session | Connection,
    account_id: str,
    actor: Actor,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    *,
    deleted: bool = False,
) -> None:
    """Record the one event of an agent's change (`deleted`: the IdP deleted it over SCIM)."""
    kind = "agent.deleted" if deleted else agent_change_type(before, after)
    events.record_change(db, account_id, kind, actor, before, after, agent_id=str(after["id"]))


def changed(before: Mapping[str, Any], **updates: Any) -> dict[str, Any]:
    """The snapshot `before` with `updates` applied: an after-state built without reading the
    row again (datetimes written as snapshots write them)."""
    return {
        **before,
        **{
            name: events.timestamp(value) if isinstance(value, dt.datetime) else value
            for name, value in updates.items()
        },
    }


def scim_agent_snapshot(record: AgentRecord, *, role: str, source: str) -> dict[str, Any]:
    """The public snapshot of an agent as the SCIM path holds it (the same values
    `agent_snapshot` gives for its row: unset names are "")."""
    return agent_snapshot(
        {
            "id": record.id,
            "user_name": record.user_name,
            "email": record.email,
            "first_name": record.first_name or "",
            "last_name": record.last_name or "",
            "display_name": record.display_name or "",
            "role": role,
            "active": record.active,
            "source": source,
            "external_id": record.external_id,
            "version": record.version,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
    )


def group_snapshot(group: Any) -> dict[str, Any]:
    """A group (a StoredGroup, a Group row or a mapping) as events show it."""
    get = group.get if isinstance(group, Mapping) else lambda name: getattr(group, name)
    return {name: get(name) for name in GROUP_FIELDS}


def sso_snapshot(connection: Any) -> dict[str, Any]:
    """An SSO connection (an SSOConnection row) as events show it."""
    return {
        "enabled": bool(connection.enabled),
        "idp_kind": connection.idp_kind,
        "idp_entity_id": connection.idp_entity_id,
        "idp_sso_url": connection.idp_sso_url,
        "idp_sso_binding": connection.idp_sso_binding,
        "metadata_url": connection.metadata_url,
        "allow_idp_initiated": bool(connection.allow_idp_initiated),
        "jit_enabled": bool(connection.jit_enabled),
        "jit_role": connection.jit_role,
        "require_sso": bool(connection.require_sso),
        "allow_sha1": bool(connection.allow_sha1),
        "sign_in_match": connection.sign_in_match,
        "sp_certificate": _fingerprint(connection.sp_certificate_pem)
        if connection.sp_certificate_pem
        else None,
    }


def record_sso_change(
    db: Session | Connection,
    account_id: str,
    actor: Actor,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
) -> None:
    """sso.enabled / sso.disabled when single sign-on was turned on or off, else sso.updated;
    nothing when the settings are as they were."""
    if before == after:
        return
    was_on = bool(before and before["enabled"])
    if after["enabled"] != was_on:
        kind = "sso.enabled" if after["enabled"] else "sso.disabled"
    else:
        kind = "sso.updated"
    events.record_change(db, account_id, kind, actor, before, after)


def _fingerprint(pem: str) -> str:
    try:
        return sha256_fingerprint(pem)
    except ValueError:  # stored certificates were checked when saved; never fail an event
        return "unreadable certificate"
