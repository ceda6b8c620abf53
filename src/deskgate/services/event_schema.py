"""The JSON Schema (draft 2020-12) of an event as the API, webhooks and the CSV export give it:
the envelope (services/events.envelope) and, per event type, the shape of `data`.

Built from CATALOGUE and the snapshot fields, so a new event type is described as soon as it is
catalogued: `deskgate events schema` prints it and docs/events.schema.json is its output.
"""

from __future__ import annotations

from typing import Any

from deskgate.services.event_snapshots import ACTOR_TYPES, GROUP_FIELDS, SSO_FIELDS
from deskgate.services.events import AGENT_FIELDS, CATALOGUE, EventType
from deskgate.store.models import AgentSource, Role

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_STRING = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_ID = {"type": "string", "minLength": 1}
_IDS = {"type": "array", "items": _ID}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_AGENT_PROPERTIES: dict[str, Any] = {
    "id": _ID,
    "user_name": _STRING,
    "email": {"type": "string", "description": 'The contact email; "" when there is none.'},
    "first_name": _STRING,
    "last_name": _STRING,
    "display_name": _STRING,
    "role": {"enum": [role.value for role in Role]},
    "active": {"type": "boolean"},
    "source": {"enum": [source.value for source in AgentSource]},
    "external_id": _nullable(_STRING),
    "version": {"type": "integer", "minimum": 1},
    "created_at": _TIME,
    "updated_at": _TIME,
}
_GROUP_PROPERTIES: dict[str, Any] = {
    "id": _ID,
    "display_name": _STRING,
    "external_id": _nullable(_STRING),
    "grants_admin": {"type": "boolean"},
    "version": {"type": "integer", "minimum": 1},
    "created_at": _TIME,
    "updated_at": _TIME,
}
_SSO_PROPERTIES: dict[str, Any] = {
    "enabled": {"type": "boolean"},
    "idp_kind": _STRING,
    "idp_entity_id": _nullable(_STRING),
    "idp_sso_url": _nullable(_STRING),
    "idp_sso_binding": _nullable(_STRING),
    "metadata_url": _nullable(_STRING),
    "allow_idp_initiated": {"type": "boolean"},
    "jit_enabled": {"type": "boolean"},
    "jit_role": {"enum": [role.value for role in Role]},
    "require_sso": {"type": "boolean"},
    "allow_sha1": {"type": "boolean"},
    "sign_in_match": _STRING,
    "sp_certificate": _nullable(_STRING),
}

FIELD_TYPES: dict[str, Any] = {
    "method": {"enum": ["saml", "password"]},
    "email": _nullable(_STRING),
    "ip": _nullable(_STRING),
    "idp_initiated": _nullable({"type": "boolean"}),
    "reason_code": _STRING,
    "detail": _nullable(_STRING),
    "token_id": _ID,
    "hint": _STRING,
    "old_token_id": _ID,
    "old_expires_at": _TIME,
    "key_id": _ID,
    "name": _STRING,
    "scopes": {"type": "array", "items": _STRING},
    "webhook_id": _ID,
    "fingerprint": _STRING,
    "not_after": _TIME,
    "days": {"type": "integer"},
    "usage": _STRING,
    "source": _STRING,
    "reason": _STRING,
    "domain": _STRING,
}
"""The type of each field non-change events carry (a field not listed here may hold anything)."""


def _object(properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def _data_schema(event: EventType) -> dict[str, Any]:
    if not event.change:
        return _object({name: FIELD_TYPES.get(name, {}) for name in event.fields}, event.fields)
    family = event.name.partition(".")[0]
    extra: dict[str, Any] = {}
    if family == "agent":
        before: dict[str, Any] = {"$ref": "#/$defs/agent"}
        after: dict[str, Any] = {"$ref": "#/$defs/agent"}
        if event.name == "agent.created":
            before = {"type": "null"}
    elif family == "group":
        before = after = {"$ref": "#/$defs/group"}
        if event.name == "group.created":
            before = {"type": "null"}
        if event.name == "group.deleted":
            after = {"type": "null"}
        else:
            extra = {"members_added": _IDS, "members_removed": _IDS}
    elif family == "sso":
        before = after = {"anyOf": [{"$ref": "#/$defs/sso"}, {"$ref": "#/$defs/sso_token"}]}
    else:  # changes of other families: objects, null before a creation and after a deletion
        before = after = _nullable({"type": "object"})
    return _object({"before": before, "after": after, **extra}, ("before", "after", *extra))


def event_schema() -> dict[str, Any]:
    """The schema: the envelope, with one branch per event type (`type` decides which)."""
    variants = [
        {
            "title": name,
            "description": event.description,
            "properties": {
                "type": {"const": name},
                "agent_id": _ID if event.about_agent and event.change else _nullable(_ID),
                "data": _data_schema(event),
            },
        }
        for name, event in CATALOGUE.items()
    ]
    return {
        "$schema": DRAFT,
        "$id": "https://github.com/deskgate/deskgate/docs/events.schema.json",
        "title": "deskgate event",
        "description": "One event as GET /api/v1/events, webhook deliveries and the audit log "
        "export give it. `cursor` numbers an account's events 1, 2, 3, … in commit order.",
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^evt_"},
            "type": {"enum": list(CATALOGUE)},
            "timestamp": _TIME,
            "account_id": _ID,
            "cursor": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "actor": {"$ref": "#/$defs/actor"},
            "agent_id": _nullable(_ID),
            "data": {"type": "object"},
        },
        "required": [
            "id",
            "type",
            "timestamp",
            "account_id",
            "cursor",
            "actor",
            "agent_id",
            "data",
        ],
        "additionalProperties": False,
        "oneOf": variants,
        "$defs": {
            "actor": _object(
                {
                    "type": {"enum": list(ACTOR_TYPES)},
                    "id": _nullable(_STRING),
                    "label": _nullable(_STRING),
                },
                ("type", "id", "label"),
            ),
            "agent": {
                **_object({name: _AGENT_PROPERTIES[name] for name in AGENT_FIELDS}, AGENT_FIELDS),
                "description": "An agent's public view (as GET /api/v1/agents gives it).",
            },
            "group": _object(
                {name: _GROUP_PROPERTIES[name] for name in GROUP_FIELDS}, GROUP_FIELDS
            ),
            "sso": {
                **_object({name: _SSO_PROPERTIES[name] for name in SSO_FIELDS}, SSO_FIELDS),
                "description": "The SSO connection's settings; never its private key.",
            },
            "sso_token": {
                **_object({"sso_token": _STRING}, ("sso_token",)),
                "description": "An SSO token rotation: the token's last four characters only.",
            },
        },
    }
