"""Records -> scim2-models resources and response bodies (the requests' side is `.mapping`).

Every response carries ``meta`` (resourceType, created, lastModified, version ``W/"<n>"``,
location); a group's members are Users with ``$ref`` ``{base_url}/Users/{agent_id}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scim2_models import (
    Context,
    EnterpriseUser,
    GroupMember,
    ListResponse,
    Manager,
    Meta,
    Name,
    ResponseParameters,
)

from .etag import format_etag
from .models import ENTERPRISE_FIELDS, ClientEmail, GroupResource, UserResource
from .records import (
    ENTERPRISE_MANAGER_KEY,
    AgentRecord,
    GroupRecord,
    ResourceKind,
    as_utc,
)

if TYPE_CHECKING:
    from .query import ListQuery

__all__ = [
    "group_list_response",
    "serialize_group",
    "serialize_user",
    "to_scim_group",
    "to_scim_user",
    "user_list_response",
    "user_patch_base",
]


# ---------------------------------------------------------------------------
# records -> resources


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def _formatted_name(first: str | None, last: str | None) -> str | None:
    parts = [part for part in (first, last) if part]
    return " ".join(parts) or None


def _build_user(record: AgentRecord, base_url: str, *, for_patch: bool = False) -> UserResource:
    fields = record.fields()
    name = None
    if fields.first_name or fields.last_name:
        name = Name(
            given_name=fields.first_name,
            family_name=fields.last_name,
            formatted=None if for_patch else _formatted_name(fields.first_name, fields.last_name),
        )
    user = UserResource(
        id=record.id,
        external_id=fields.external_id,
        user_name=fields.user_name,
        name=name,
        display_name=fields.display_name,
        title=fields.title,
        locale=fields.locale,
        active=fields.active,
    )
    if fields.emails:
        user.emails = [
            ClientEmail(
                value=entry.value, type=entry.type, primary=entry.primary, display=entry.display
            )
            for entry in fields.emails
        ]
    if not for_patch:
        user.meta = Meta(
            resource_type=ResourceKind.USER.value,
            created=as_utc(record.created_at),
            last_modified=as_utc(record.updated_at),
            location=f"{_base(base_url)}/Users/{record.id}",
            version=format_etag(record.version),
        )
    extension = _enterprise_extension(fields.enterprise, base_url, for_patch=for_patch)
    if extension is not None:
        user[EnterpriseUser] = extension
    return user


def _enterprise_extension(
    enterprise: Mapping[str, Any], base_url: str, *, for_patch: bool
) -> EnterpriseUser | None:
    if not enterprise:
        return None
    values = {
        python_name: enterprise[key]
        for key, python_name in ENTERPRISE_FIELDS.items()
        if key in enterprise
    }
    extension = EnterpriseUser(**values)
    manager = enterprise.get(ENTERPRISE_MANAGER_KEY)
    if manager:
        manager_id = manager["value"]
        extension.manager = Manager.model_construct(
            value=manager_id,
            # model_construct skips validation: the plain URL string is what gets serialized.
            ref=None if for_patch else f"{_base(base_url)}/Users/{manager_id}",  # type: ignore[arg-type]
            display_name=manager.get("displayName"),
        )
    return extension


def user_patch_base(record: AgentRecord) -> UserResource:
    """The User a PATCH is applied to: writable attributes only (no meta, no
    derived emails/name.formatted, no manager $ref)."""
    return _build_user(record, "", for_patch=True)


def to_scim_user(record: AgentRecord, base_url: str) -> UserResource:
    """The SCIM User for an agent: ``meta`` with resourceType, created,
    lastModified, version (``W/"<version>"``) and location ``{base_url}/Users/{id}``."""
    return _build_user(record, base_url)


def to_scim_group(record: GroupRecord, base_url: str) -> GroupResource:
    """The SCIM Group: members are Users with ``$ref`` ``{base_url}/Users/{agent_id}``."""
    base = _base(base_url)
    return GroupResource(
        id=record.id,
        external_id=record.external_id or None,
        display_name=record.display_name,
        members=[
            GroupMember(
                value=member.agent_id,
                ref=f"{base}/Users/{member.agent_id}",
                type="User",
                display=member.display or None,
            )
            for member in record.members
        ],
        meta=Meta(
            resource_type=ResourceKind.GROUP.value,
            created=as_utc(record.created_at),
            last_modified=as_utc(record.updated_at),
            location=f"{base}/Groups/{record.id}",
            version=format_etag(record.version),
        ),
    )


# ---------------------------------------------------------------------------
# response bodies


def _response_parameters(
    attributes: Sequence[str], excluded_attributes: Sequence[str]
) -> ResponseParameters[Any] | None:
    if not attributes and not excluded_attributes:
        return None
    return ResponseParameters(
        attributes=list(attributes) or None,
        excluded_attributes=list(excluded_attributes) or None,
    )


def serialize_user(
    record: AgentRecord,
    base_url: str,
    *,
    context: Context = Context.RESOURCE_QUERY_RESPONSE,
    attributes: Sequence[str] = (),
    excluded_attributes: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON body for one User. Use ``context`` RESOURCE_CREATION_RESPONSE for
    201s, RESOURCE_REPLACEMENT_RESPONSE / RESOURCE_PATCH_RESPONSE for updates.
    ``attributes``/``excludedAttributes`` are those of a :class:`ListQuery`."""
    return to_scim_user(record, base_url).model_dump(
        scim_ctx=context,
        response_parameters=_response_parameters(attributes, excluded_attributes),
    )


def serialize_group(
    record: GroupRecord,
    base_url: str,
    *,
    context: Context = Context.RESOURCE_QUERY_RESPONSE,
    attributes: Sequence[str] = (),
    excluded_attributes: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON body for one Group (see :func:`serialize_user`)."""
    return to_scim_group(record, base_url).model_dump(
        scim_ctx=context,
        response_parameters=_response_parameters(attributes, excluded_attributes),
    )


def _list_response(
    resources: list[Any], model: Any, total_results: int, query: ListQuery
) -> dict[str, Any]:
    response = ListResponse[model](
        total_results=total_results,
        start_index=query.start_index,
        items_per_page=len(resources),
        resources=resources,
    )
    # An empty page keeps "Resources": [] (Entra expects it, tested).
    return response.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
        response_parameters=_response_parameters(query.attributes, query.excluded_attributes),
    )


def user_list_response(
    records: Sequence[AgentRecord], *, total_results: int, query: ListQuery, base_url: str
) -> dict[str, Any]:
    """A ListResponse body for one page of agents (``records`` is the page, in order;
    ``total_results`` counts every match of ``query.filter``)."""
    resources = [to_scim_user(record, base_url) for record in records]
    return _list_response(resources, UserResource, total_results, query)


def group_list_response(
    records: Sequence[GroupRecord], *, total_results: int, query: ListQuery, base_url: str
) -> dict[str, Any]:
    """A ListResponse body for one page of groups."""
    resources = [to_scim_group(record, base_url) for record in records]
    return _list_response(resources, GroupResource, total_results, query)
