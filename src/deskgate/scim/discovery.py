"""Discovery endpoints (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas.

The published schemas are scim2-models' own, trimmed to the attributes deskgate
stores, so that schema-driven clients (Entra's schema discovery, scim2-tester)
only exercise what round-trips. ``name.formatted`` is published read-only: it
is derived from the name parts.
"""

from __future__ import annotations

from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    ListResponse,
    Meta,
    Mutability,
    Pagination,
    Patch,
    ResourceType,
    Schema,
    SchemaExtension,
    ServiceProviderConfig,
    Sort,
    User,
)

from .errors import NotFoundException
from .models import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from .query import DEFAULT_COUNT, MAX_COUNT
from .records import ResourceKind

__all__ = [
    "protocol_schemas",
    "resource_type_body",
    "resource_types",
    "resource_types_body",
    "schema_body",
    "schemas",
    "schemas_body",
    "service_provider_config",
    "service_provider_config_body",
]

# attribute -> sub-attributes kept (None: not complex); names as published.
_USER_ATTRIBUTES: dict[str, tuple[str, ...] | None] = {
    "userName": None,
    "name": ("formatted", "familyName", "givenName"),
    "displayName": None,
    "title": None,
    "locale": None,
    "active": None,
    "emails": ("value", "display", "type", "primary"),
}
# (attribute, sub-attribute); None as the sub-attribute stands for the whole attribute.
_READ_ONLY: set[tuple[str, str | None]] = {
    ("name", "formatted"),
}


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def _trim(schema: Schema, keep: dict[str, tuple[str, ...] | None] | None) -> Schema:
    if keep is None:
        return schema
    attributes = []
    for attribute in schema.attributes or []:
        if attribute.name not in keep:
            continue
        update: dict[str, Any] = {}
        wanted = keep[attribute.name]
        if wanted is not None and attribute.sub_attributes:
            update["sub_attributes"] = [
                sub.model_copy(update={"mutability": Mutability.read_only})
                if (attribute.name, sub.name) in _READ_ONLY
                else sub
                for sub in attribute.sub_attributes
                if sub.name in wanted
            ]
        if (attribute.name, None) in _READ_ONLY:
            update["mutability"] = Mutability.read_only
        attributes.append(attribute.model_copy(update=update))
    return schema.model_copy(update={"attributes": attributes})


def _with_meta(schema: Schema, base: str, description: str | None = None) -> Schema:
    update: dict[str, Any] = {
        "meta": Meta(resource_type="Schema", location=f"{base}/Schemas/{schema.id}")
    }
    if description is not None:
        update["description"] = description
    return schema.model_copy(update=update)


def protocol_schemas(base_url: str) -> list[Schema]:
    """The RFC 7643 §7 schemas of the discovery resources themselves
    (ServiceProviderConfig, ResourceType, Schema), which scim2-tester expects
    on ``/Schemas``."""
    base = _base(base_url)
    return [
        _with_meta(model.to_schema(), base)
        for model in (ServiceProviderConfig, ResourceType, Schema)
    ]


def schemas(base_url: str, *, include_protocol: bool = False) -> list[Schema]:
    """The User, enterprise User and Group schemas, with ``meta.location``, then
    (``include_protocol``) the :func:`protocol_schemas`."""
    base = _base(base_url)
    published = [
        (_trim(User.to_schema(), _USER_ATTRIBUTES), "Agent accounts"),
        (EnterpriseUser.to_schema(), "Enterprise User"),
        (Group.to_schema(), "Groups of agents"),
    ]
    result = []
    for schema, description in published:
        result.append(_with_meta(schema, base, description))
    if include_protocol:
        result.extend(protocol_schemas(base_url))
    return result


def resource_types(base_url: str) -> list[ResourceType]:
    """User (with the optional enterprise extension) and Group."""
    base = _base(base_url)
    return [
        ResourceType(
            id=ResourceKind.USER.value,
            name=ResourceKind.USER.value,
            description="Agent accounts",
            endpoint="/Users",
            schema_=USER_SCHEMA,
            schema_extensions=[SchemaExtension(schema_=ENTERPRISE_SCHEMA, required=False)],
            meta=Meta(resource_type="ResourceType", location=f"{base}/ResourceTypes/User"),
        ),
        ResourceType(
            id=ResourceKind.GROUP.value,
            name=ResourceKind.GROUP.value,
            description="Groups of agents",
            endpoint="/Groups",
            schema_=GROUP_SCHEMA,
            schema_extensions=[],
            meta=Meta(resource_type="ResourceType", location=f"{base}/ResourceTypes/Group"),
        ),
    ]


def service_provider_config(
    base_url: str, *, documentation_uri: str | None = None
) -> ServiceProviderConfig:
    """PATCH, filter (maxResults = MAX_COUNT), sort and ETags supported; bulk and
    changePassword not; authentication with an OAuth bearer token."""
    return ServiceProviderConfig(
        documentation_uri=documentation_uri,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="Authentication with the SCIM bearer token an account admin "
                "creates in deskgate",
                spec_uri="https://www.rfc-editor.org/info/rfc6750",
                primary=True,
            )
        ],
        pagination=Pagination(
            cursor=False,
            index=True,
            default_pagination_method=Pagination.DefaultPaginationMethod.index,
            default_page_size=DEFAULT_COUNT,
            max_page_size=MAX_COUNT,
        ),
        meta=Meta(
            resource_type="ServiceProviderConfig",
            location=f"{_base(base_url)}/ServiceProviderConfig",
        ),
    )


_DUMP = Context.RESOURCE_QUERY_RESPONSE


def service_provider_config_body(base_url: str) -> dict[str, Any]:
    return service_provider_config(base_url).model_dump(scim_ctx=_DUMP)


def _list_body(items: list[Any], model: Any) -> dict[str, Any]:
    response = ListResponse[model](
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return response.model_dump(scim_ctx=_DUMP)


def resource_types_body(base_url: str) -> dict[str, Any]:
    """``GET /ResourceTypes``: a ListResponse."""
    return _list_body(resource_types(base_url), ResourceType)


def resource_type_body(base_url: str, name: str) -> dict[str, Any]:
    """``GET /ResourceTypes/{name}`` (name matched case-insensitively); 404 otherwise."""
    for resource_type in resource_types(base_url):
        if str(resource_type.id).lower() == name.lower():
            return resource_type.model_dump(scim_ctx=_DUMP)
    raise NotFoundException(detail=f"no resource type {name!r}")


def schemas_body(base_url: str, *, include_protocol: bool = False) -> dict[str, Any]:
    """``GET /Schemas``: a ListResponse (see :func:`schemas`)."""
    return _list_body(schemas(base_url, include_protocol=include_protocol), Schema)


def schema_body(base_url: str, schema_id: str) -> dict[str, Any]:
    """``GET /Schemas/{urn}`` (URN matched case-insensitively, protocol schemas
    included); 404 otherwise."""
    for schema in schemas(base_url, include_protocol=True):
        if str(schema.id).lower() == schema_id.lower():
            return schema.model_dump(scim_ctx=_DUMP)
    raise NotFoundException(detail=f"no schema {schema_id!r}")
