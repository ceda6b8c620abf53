"""Request bodies -> records: parsing POST/PUT bodies into fields and updates (responses are
`.responses`).

userName and emails
    ``userName`` is the IdP's identifier for the agent: any non-empty string
    (Entra sends the UPN, Okta whatever username format the admin chose),
    unique per account without case. ``emails`` are the agent's own addresses,
    stored and returned as sent (any string value: ``.local`` domains are real;
    at most one ``primary``, which scim2-models enforces). The agent's contact
    email is derived from both (:func:`deskgate.scim.records.contact_email`).

password
    Accepted and ignored on every write, never stored, never returned.

active
    Missing on create means active. Missing on PUT keeps the stored value
    (clients that PUT partial objects must not deactivate agents by accident).

enterprise manager
    Stored as ``{"value": <agent id>, "displayName": ...}``. scim2-models
    requires ``manager.$ref`` on create/replace; clients never send it, so the
    manager is parsed by hand (a bare id string, as Entra sends, is accepted).
    ``displayName`` is read-only for the server to fill: it is kept from the
    stored record while the manager id does not change, and dropped when it does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scim2_models import (
    Context,
    Email,
    EnterpriseUser,
    GroupMember,
    Manager,
)

from .errors import InvalidValueException
from .models import (
    ENTERPRISE_FIELDS,
    ENTERPRISE_SCHEMA,
    MAX_DISPLAY_NAME_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_EMAILS,
    MAX_ENTERPRISE_VALUE_LENGTH,
    MAX_EXTERNAL_ID_LENGTH,
    MAX_ID_LENGTH,
    MAX_LOCALE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_USER_NAME_LENGTH,
    GroupResource,
    UserResource,
    casefold_key,
    validate,
)
from .records import (
    ENTERPRISE_MANAGER_KEY,
    AgentFields,
    AgentRecord,
    EmailEntry,
    GroupFields,
    GroupRecord,
    GroupUpdate,
    MemberRef,
    UserUpdate,
    canonical_enterprise,
)

__all__ = [
    "agent_fields_for_create",
    "agent_update_for_replace",
    "from_scim_group",
    "from_scim_user",
    "group_fields_for_create",
    "group_update_for_replace",
    "member_changes",
    "parse_group",
    "parse_user",
]


# ---------------------------------------------------------------------------
# resources -> fields


def _clean(value: Any, attribute: str, max_length: int) -> str | None:
    """An optional string attribute: stripped, ``""`` -> None, bounded length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValueException(attribute=attribute, detail=f"'{attribute}' must be a string")
    text = value.strip()
    if not text:
        return None
    if len(text) > max_length:
        raise InvalidValueException(
            attribute=attribute,
            detail=f"'{attribute}' is longer than {max_length} characters",
        )
    return text


def _user_name(value: Any) -> str:
    user_name = _clean(value, "userName", MAX_USER_NAME_LENGTH)
    if user_name is None:
        raise InvalidValueException(attribute="userName", detail="'userName' is required")
    return user_name


def _emails(emails: Sequence[Email] | None) -> tuple[EmailEntry, ...]:
    """The emails to store, in the client's order; entries without a value are dropped
    (Entra's null updates blank them), at most one is primary (checked by scim2-models)."""
    result: list[EmailEntry] = []
    for email in emails or ():
        value = _clean(email.value, "emails.value", MAX_EMAIL_LENGTH)
        if value is None:
            continue
        kind = email.type.value if email.type is not None else None
        result.append(
            EmailEntry(
                value=value,
                type=_clean(kind, "emails.type", MAX_TITLE_LENGTH),
                primary=email.primary,
                display=_clean(email.display, "emails.display", MAX_DISPLAY_NAME_LENGTH),
            )
        )
    if len(result) > MAX_EMAILS:
        raise InvalidValueException(
            attribute="emails", detail=f"a user has at most {MAX_EMAILS} emails here"
        )
    return tuple(result)


def _enterprise_fields(user: UserResource) -> dict[str, Any]:
    extension = user[EnterpriseUser]
    if extension is None:
        return {}
    result: dict[str, Any] = {}
    for key, python_name in ENTERPRISE_FIELDS.items():
        value = _clean(
            getattr(extension, python_name),
            f"{ENTERPRISE_SCHEMA}:{key}",
            MAX_ENTERPRISE_VALUE_LENGTH,
        )
        if value is not None:
            result[key] = value
    manager = extension.manager
    if manager is not None:
        manager_id = _clean(manager.value, f"{ENTERPRISE_SCHEMA}:manager.value", MAX_ID_LENGTH)
        if manager_id is not None:
            entry = {"value": manager_id}
            display = _clean(
                manager.display_name,
                f"{ENTERPRISE_SCHEMA}:manager.displayName",
                MAX_DISPLAY_NAME_LENGTH,
            )
            if display is not None:
                entry["displayName"] = display
            result[ENTERPRISE_MANAGER_KEY] = entry
    return canonical_enterprise(result)


def from_scim_user(user: UserResource, *, default_active: bool = True) -> AgentFields:
    """The storable fields of a User (see the module doc for userName/emails).

    ``default_active`` is used when the resource carries no ``active``.
    Raises InvalidValueException (400 invalidValue) for a userName that is not
    an email address and for values longer than the store accepts.
    """
    name = user.name
    return AgentFields(
        user_name=_user_name(user.user_name),
        emails=_emails(user.emails),
        first_name=_clean(name.given_name if name else None, "name.givenName", MAX_NAME_LENGTH),
        last_name=_clean(name.family_name if name else None, "name.familyName", MAX_NAME_LENGTH),
        display_name=_clean(user.display_name, "displayName", MAX_DISPLAY_NAME_LENGTH),
        active=default_active if user.active is None else bool(user.active),
        external_id=_clean(user.external_id, "externalId", MAX_EXTERNAL_ID_LENGTH),
        locale=_clean(user.locale, "locale", MAX_LOCALE_LENGTH),
        title=_clean(user.title, "title", MAX_TITLE_LENGTH),
        enterprise=_enterprise_fields(user),
    )


def normalize_member(raw: Any) -> dict[str, Any]:
    """One ``members`` entry from a client, as ``{"value", "display"?, "type"?}``.

    A bare string is an id (Postman's "PATCH group member value as plain
    string"); ``$ref`` is dropped (we compute our own; Entra sends ``null``);
    ``displayName`` is read as ``display``. Only Users can be members.
    """
    if isinstance(raw, str):
        raw = {"value": raw}
    if not isinstance(raw, Mapping):
        raise InvalidValueException(
            attribute="members", detail="a member must be an object with a 'value'"
        )
    entry: dict[str, Any] = {}
    value_key = casefold_key(raw, "value")
    value = raw.get(value_key) if value_key else None
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueException(
            attribute="members.value", detail="a member needs a non-empty string 'value'"
        )
    if len(value.strip()) > MAX_ID_LENGTH:
        raise InvalidValueException(attribute="members.value", detail="member value is too long")
    entry["value"] = value.strip()
    display_key = casefold_key(raw, "display") or casefold_key(raw, "displayName")
    display = raw.get(display_key) if display_key else None
    if isinstance(display, str) and display.strip():
        entry["display"] = display.strip()
    type_key = casefold_key(raw, "type")
    member_type = raw.get(type_key) if type_key else None
    if member_type is not None:
        if not isinstance(member_type, str) or member_type.lower() != "user":
            raise InvalidValueException(
                attribute="members.type",
                detail="only Users can be group members (nested groups are not supported)",
            )
        entry["type"] = "User"
    return entry


def _dedupe(members: Iterable[MemberRef]) -> tuple[MemberRef, ...]:
    seen: dict[str, MemberRef] = {}
    for member in members:
        seen.setdefault(member.agent_id, member)
    return tuple(seen.values())


def member_refs(entries: Iterable[GroupMember]) -> tuple[MemberRef, ...]:
    """MemberRefs from scim2-models members, validated and de-duplicated."""
    refs = []
    for member in entries:
        entry = normalize_member(
            {"value": member.value, "display": member.display, "type": member.type}
        )
        refs.append(MemberRef(agent_id=entry["value"], display=entry.get("display")))
    return _dedupe(refs)


def from_scim_group(group: GroupResource) -> GroupFields:
    """The storable fields of a Group. ``displayName`` is required."""
    display_name = _clean(group.display_name, "displayName", MAX_DISPLAY_NAME_LENGTH)
    if display_name is None:
        raise InvalidValueException(attribute="displayName", detail="'displayName' is required")
    return GroupFields(
        display_name=display_name,
        external_id=_clean(group.external_id, "externalId", MAX_EXTERNAL_ID_LENGTH),
        members=member_refs(group.members or ()),
    )


def member_changes(
    old: Sequence[MemberRef], new: Sequence[MemberRef]
) -> tuple[tuple[MemberRef, ...], tuple[str, ...]]:
    """``(added, removed)`` between two memberships, compared on agent ids."""
    old_ids = {member.agent_id for member in old}
    new_ids = {member.agent_id for member in new}
    added = tuple(member for member in new if member.agent_id not in old_ids)
    removed = tuple(member.agent_id for member in old if member.agent_id not in new_ids)
    return added, removed


# ---------------------------------------------------------------------------
# request bodies


def _drop_key(data: dict[str, Any], name: str) -> None:
    key = casefold_key(data, name)
    while key is not None:
        del data[key]
        key = casefold_key(data, name)


def parse_manager(raw: Any) -> dict[str, Any] | None:
    """A manager as clients send it: ``"<id>"``, ``{"value": "<id>", ...}``, or
    null/empty for none. Returns ``{"value", "displayName"?}`` or None."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        raw = {"value": raw}
    if not isinstance(raw, Mapping):
        raise InvalidValueException(
            attribute="manager", detail="'manager' must be an object or a user id"
        )
    value_key = casefold_key(raw, "value")
    value = raw.get(value_key) if value_key else None
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidValueException(
            attribute="manager.value", detail="'manager.value' must be a string"
        )
    result: dict[str, Any] = {"value": value}
    display_key = casefold_key(raw, "displayName")
    display = raw.get(display_key) if display_key else None
    if isinstance(display, str) and display:
        result["displayName"] = display
    return result


def parse_user(payload: Any, *, replacement: bool = False) -> UserResource:
    """Validate a POST (or, with ``replacement``, a PUT) body into a User.

    Read-only attributes (``id``, ``meta``, ``groups``) are ignored, unknown
    attributes and schemas are ignored, ``password`` is dropped (see the module
    doc). Raises SCIMException (400) on an invalid body.
    """
    if not isinstance(payload, Mapping):
        # validate() reports it; keep one code path for the error.
        return validate(UserResource, payload, Context.RESOURCE_CREATION_REQUEST)
    data = dict(payload)
    _drop_key(data, "password")
    manager: dict[str, Any] | None = None
    extension_key = casefold_key(data, ENTERPRISE_SCHEMA)
    if extension_key is not None and isinstance(data[extension_key], Mapping):
        extension_data = dict(data[extension_key])
        manager_key = casefold_key(extension_data, "manager")
        if manager_key is not None:
            manager = parse_manager(extension_data.pop(manager_key))
        data[extension_key] = extension_data
    context = (
        Context.RESOURCE_REPLACEMENT_REQUEST if replacement else Context.RESOURCE_CREATION_REQUEST
    )
    user = validate(UserResource, data, context)
    if manager is not None:
        extension = user[EnterpriseUser]
        if extension is None:
            extension = EnterpriseUser()
            user[EnterpriseUser] = extension
        extension.manager = Manager.model_construct(
            value=manager["value"], ref=None, display_name=manager.get("displayName")
        )
    return user


def parse_group(payload: Any, *, replacement: bool = False) -> GroupResource:
    """Validate a POST (or, with ``replacement``, a PUT) body into a Group.

    ``members`` entries are normalised first (see :func:`normalize_member`).
    """
    context = (
        Context.RESOURCE_REPLACEMENT_REQUEST if replacement else Context.RESOURCE_CREATION_REQUEST
    )
    if not isinstance(payload, Mapping):
        return validate(GroupResource, payload, context)
    data = dict(payload)
    members_key = casefold_key(data, "members")
    if members_key is not None:
        members = data.pop(members_key)
        if members is None:
            members = []
        if not isinstance(members, list):
            raise InvalidValueException(attribute="members", detail="'members' must be an array")
        data["members"] = [normalize_member(member) for member in members]
    return validate(GroupResource, data, context)


def agent_fields_for_create(payload: Any) -> AgentFields:
    """POST /Users: the fields to store. The store enforces userName uniqueness
    (case-insensitive, 409 ``uniqueness``)."""
    return from_scim_user(parse_user(payload))


def _carry_manager_display(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the stored manager displayName while the manager id is unchanged."""
    result = dict(new)
    new_manager = new.get(ENTERPRISE_MANAGER_KEY)
    old_manager = old.get(ENTERPRISE_MANAGER_KEY)
    if (
        new_manager
        and old_manager
        and new_manager["value"] == old_manager["value"]
        and "displayName" not in new_manager
        and "displayName" in old_manager
    ):
        result[ENTERPRISE_MANAGER_KEY] = {**new_manager, "displayName": old_manager["displayName"]}
    return result


def agent_update_for_replace(record: AgentRecord, payload: Any) -> UserUpdate:
    """PUT /Users/{id}: replace semantics, except that a missing ``active`` keeps
    the stored value and a manager's displayName survives while its id does."""
    user = parse_user(payload, replacement=True)
    fields = from_scim_user(user, default_active=record.active)
    current = record.fields()
    enterprise = _carry_manager_display(fields.enterprise, current.enterprise)
    fields = dataclasses.replace(fields, enterprise=enterprise)
    return UserUpdate(fields=fields, changed=fields != current)


def group_fields_for_create(payload: Any) -> GroupFields:
    """POST /Groups: the fields to store. The store checks that every member is
    an agent of the account (400 invalidValue otherwise) and that displayName is
    unique (409 ``uniqueness``)."""
    return from_scim_group(parse_group(payload))


def group_update_for_replace(record: GroupRecord, payload: Any) -> GroupUpdate:
    """PUT /Groups/{id}: replace semantics (a missing ``members`` empties the
    group, RFC 7644 §3.5.1), with the exact member difference."""
    fields = from_scim_group(parse_group(payload, replacement=True))
    added, removed = member_changes(record.members, fields.members)
    current = record.fields()
    changed = bool(
        added
        or removed
        or fields.display_name != current.display_name
        or fields.external_id != current.external_id
    )
    return GroupUpdate(fields=fields, added=added, removed=removed, changed=changed)
