"""Response bodies: the representation deskgate serves.

deskgate serves the core's resources with two changes, so that strict clients (scim2-tester
compares complex attributes whole, sub-attributes included) see values that round-trip:

* `name.formatted` is not returned: the core derives it from the name parts, so a client writing
  `name` never reads back what it wrote.
* `members.display` likewise: deskgate shows an agent's own name, not what the IdP sent.

The default attribute set (no `attributes`/`excludedAttributes`: every request Okta and Entra
make but Entra's group reads) is built here straight from the records as plain dicts: the same
JSON as the core's scim2-models serializers with the changes above
(tests/scim_http/test_render_fast.py compares them over varied records), at a fraction of the cost.
A request that shapes its answer goes through the core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from scim2_models import Context, Email

from deskgate import scim
from deskgate.scim.models import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from deskgate.scim.records import (
    ENTERPRISE_MANAGER_KEY,
    ENTERPRISE_STRING_KEYS,
    AgentRecord,
    EmailEntry,
    GroupRecord,
    as_utc,
    canonical_enterprise,
)

LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_EMAIL_TYPES = {member.value.lower(): member.value for member in Email.Type}
"""scim2-models answers an email's canonical `type` in its canonical case ("Work" -> "work")."""


# --- the core's bodies, adjusted -------------------------------------------------------------


def strip_derived(resource: dict[str, Any]) -> dict[str, Any]:
    name = resource.get("name")
    if isinstance(name, dict):
        name.pop("formatted", None)
        if not name:
            del resource["name"]
    members = resource.get("members")
    if isinstance(members, list):
        for member in members:
            if isinstance(member, dict):
                member.pop("display", None)
    return resource


def strip_derived_list(body: dict[str, Any]) -> dict[str, Any]:
    for resource in body.get("Resources", []):
        strip_derived(resource)
    return body


def shaped_user(
    record: AgentRecord, base_url: str, context: Context, query: scim.ListQuery
) -> dict[str, Any]:
    """A User with `attributes`/`excludedAttributes` applied (through the core)."""
    return strip_derived(
        scim.serialize_user(
            record,
            base_url,
            context=context,
            attributes=query.attributes,
            excluded_attributes=query.excluded_attributes,
        )
    )


def shaped_group(
    record: GroupRecord, base_url: str, context: Context, query: scim.ListQuery
) -> dict[str, Any]:
    return strip_derived(
        scim.serialize_group(
            record,
            base_url,
            context=context,
            attributes=query.attributes,
            excluded_attributes=query.excluded_attributes,
        )
    )


# --- the default attribute set, straight from records ------------------------------------------


def _timestamp(value: dt.datetime) -> str:
    text = as_utc(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _meta(kind: str, record: AgentRecord | GroupRecord, location: str) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "created": _timestamp(record.created_at),
        "lastModified": _timestamp(record.updated_at),
        "location": location,
        "version": scim.format_etag(record.version),
    }


def user_body(record: AgentRecord, base_url: str) -> dict[str, Any]:
    """The User with the default attributes (any response context: they return the same)."""
    base = base_url.rstrip("/")
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": record.id}
    if record.external_id:
        body["externalId"] = record.external_id
    body["meta"] = _meta("User", record, f"{base}/Users/{record.id}")
    body["userName"] = record.user_name
    name = {}
    if record.first_name:
        name["givenName"] = record.first_name
    if record.last_name:
        name["familyName"] = record.last_name
    if name:
        body["name"] = name
    for key, value in (
        ("displayName", record.display_name),
        ("title", record.title),
        ("locale", record.locale),
    ):
        if value:
            body[key] = value
    body["active"] = record.active
    if record.emails:
        body["emails"] = [_email(entry) for entry in record.emails]
    enterprise = canonical_enterprise(record.enterprise)
    if enterprise:
        body["schemas"].append(ENTERPRISE_SCHEMA)
        extension: dict[str, Any] = {
            key: enterprise[key] for key in ENTERPRISE_STRING_KEYS if key in enterprise
        }
        manager = enterprise.get(ENTERPRISE_MANAGER_KEY)
        if manager:
            extension["manager"] = {
                "value": manager["value"],
                "$ref": f"{base}/Users/{manager['value']}",
                **({"displayName": manager["displayName"]} if "displayName" in manager else {}),
            }
        body[ENTERPRISE_SCHEMA] = extension
    return body


def _email(entry: EmailEntry) -> dict[str, Any]:
    body = entry.as_dict()
    if entry.type is not None:
        body["type"] = _EMAIL_TYPES.get(entry.type.lower(), entry.type)
    return body


def group_body(record: GroupRecord, base_url: str) -> dict[str, Any]:
    """The Group with the default attributes (members without `display`)."""
    base = base_url.rstrip("/")
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": record.id}
    if record.external_id:
        body["externalId"] = record.external_id
    body["meta"] = _meta("Group", record, f"{base}/Groups/{record.id}")
    body["displayName"] = record.display_name
    if record.members:
        body["members"] = [
            {"value": member.agent_id, "$ref": f"{base}/Users/{member.agent_id}", "type": "User"}
            for member in record.members
        ]
    return body


def list_body(
    resources: Sequence[dict[str, Any]], *, total_results: int, start_index: int
) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total_results,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": list(resources),
    }
