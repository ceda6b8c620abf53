"""The only shapes the SCIM core knows of the application.

The storage layer fills the ``*Record`` classes and stores the ``*Fields`` and the
update results; nothing here touches a database, an HTTP request or the clock.

Conventions shared by every class:

* ``user_name`` is the IdP's identifier for the agent (SCIM ``userName``): any
  non-empty string, unique per account without case. ``emails`` are the agent's
  own addresses, as sent. The *contact email* (``AgentRecord.email``) is derived
  from both by :func:`contact_email`.
* Optional strings are ``None`` when unset, never ``""``; records coming from a
  store that keeps ``""`` are read the same way.
* ``enterprise`` is a plain dict keyed by the SCIM attribute names of the
  enterprise extension: ``employeeNumber``, ``costCenter``, ``organization``,
  ``division``, ``department`` (strings) and ``manager`` (a dict with ``value``,
  the manager's agent id, and optionally ``displayName``). Unset keys are absent.
* ``version`` is a counter the store bumps when, and only when, an update
  reports ``changed``; the ETag is derived from it.
* Timestamps are UTC; naive datetimes (SQLite drops the zone) are read as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

ENTERPRISE_STRING_KEYS: tuple[str, ...] = (
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
)
"""The string attributes of the enterprise extension, as keys of ``enterprise``."""

ENTERPRISE_MANAGER_KEY = "manager"


class ResourceKind(StrEnum):
    """The SCIM resource types deskgate serves (their ``meta.resourceType``)."""

    USER = "User"
    GROUP = "Group"


@dataclass(frozen=True, slots=True)
class MemberRef:
    """One member of a group: always an agent."""

    agent_id: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class EmailEntry:
    """One of an agent's emails, as the client sent it (``type`` keeps the client's case)."""

    value: str
    type: str | None = None
    primary: bool | None = None
    """None: not sent (returned as sent, so ``false`` stays ``false``)."""
    display: str | None = None

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"value": self.value}
        if self.type is not None:
            entry["type"] = self.type
        if self.primary is not None:
            entry["primary"] = self.primary
        if self.display is not None:
            entry["display"] = self.display
        return entry

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> EmailEntry:
        return cls(
            value=str(entry.get("value") or ""),
            type=entry.get("type"),
            primary=entry.get("primary"),
            display=entry.get("display"),
        )


def looks_like_email(value: str) -> bool:
    """local@domain, leniently (Okta's user@okta.local is an email here)."""
    local, at, domain = value.partition("@")
    return bool(
        at and local and domain and "@" not in domain and not any(c.isspace() for c in value)
    )


def contact_email(user_name: str, emails: Sequence[EmailEntry]) -> str:
    """The address deskgate writes to: the primary email, else the (first) work email, else
    the userName when it is an email address; "" when there is none."""
    for entry in emails:
        if entry.primary:
            return entry.value
    for entry in emails:
        if (entry.type or "").lower() == "work":
            return entry.value
    return user_name if looks_like_email(user_name) else ""


@dataclass(frozen=True, slots=True)
class AgentFields:
    """What a create, replace or patch of a User produces for storage."""

    user_name: str
    emails: tuple[EmailEntry, ...] = ()
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    active: bool = True
    external_id: str | None = None
    locale: str | None = None
    title: str | None = None
    enterprise: Mapping[str, Any] = field(default_factory=dict)

    @property
    def email(self) -> str:
        """The contact email (see :func:`contact_email`)."""
        return contact_email(self.user_name, self.emails)


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent as stored."""

    id: str
    user_name: str
    emails: tuple[EmailEntry, ...]
    first_name: str | None
    last_name: str | None
    display_name: str | None
    active: bool
    external_id: str | None
    locale: str | None
    title: str | None
    enterprise: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def email(self) -> str:
        """The contact email (see :func:`contact_email`)."""
        return contact_email(self.user_name, self.emails)

    def fields(self) -> AgentFields:
        """The stored values, in the shape an update produces (for comparisons)."""
        return AgentFields(
            user_name=self.user_name,
            emails=self.emails,
            first_name=self.first_name or None,
            last_name=self.last_name or None,
            display_name=self.display_name or None,
            active=self.active,
            external_id=self.external_id or None,
            locale=self.locale or None,
            title=self.title or None,
            enterprise=canonical_enterprise(self.enterprise),
        )


@dataclass(frozen=True, slots=True)
class GroupFields:
    """What a create, replace or patch of a Group produces for storage."""

    display_name: str
    external_id: str | None = None
    members: tuple[MemberRef, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group as stored. ``members`` must be the group's full current membership."""

    id: str
    display_name: str
    external_id: str | None
    members: tuple[MemberRef, ...]
    created_at: datetime
    updated_at: datetime
    version: int

    def fields(self) -> GroupFields:
        return GroupFields(
            display_name=self.display_name,
            external_id=self.external_id or None,
            members=self.members,
        )


@dataclass(frozen=True, slots=True)
class UserUpdate:
    """The outcome of a PUT or PATCH on a User.

    ``changed`` is False when the request left every stored value as it was: the
    store must then keep ``version`` (and the ETag) unchanged.
    """

    fields: AgentFields
    changed: bool


@dataclass(frozen=True, slots=True)
class GroupUpdate:
    """The outcome of a PUT or PATCH on a Group.

    ``added`` and ``removed`` are exact with respect to the record's membership:
    ``added`` holds only agents that were not members, ``removed`` only agents
    that were. A full replacement of the members is expressed the same way, as
    the difference between the old and the new list, so the store never diffs.
    ``fields.members`` is the complete resulting membership.
    """

    fields: GroupFields
    added: tuple[MemberRef, ...]
    removed: tuple[str, ...]
    changed: bool


def canonical_enterprise(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """The canonical form of an ``enterprise`` dict: known keys, no empty values.

    Two canonical dicts compare equal exactly when they describe the same values,
    which is what change detection relies on.
    """
    result: dict[str, Any] = {}
    if not value:
        return result
    for key in ENTERPRISE_STRING_KEYS:
        item = value.get(key)
        if isinstance(item, str) and item:
            result[key] = item
    manager = value.get(ENTERPRISE_MANAGER_KEY)
    if isinstance(manager, Mapping):
        manager_id = manager.get("value")
        if isinstance(manager_id, str) and manager_id:
            entry: dict[str, str] = {"value": manager_id}
            display = manager.get("displayName")
            if isinstance(display, str) and display:
                entry["displayName"] = display
            result[ENTERPRISE_MANAGER_KEY] = entry
    return result


def as_utc(value: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime (naive values are UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
