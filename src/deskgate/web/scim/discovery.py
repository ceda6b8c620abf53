"""SCIM discovery handlers: ServiceProviderConfig, Schemas, ResourceTypes.

deskgate publishes the core's schemas with the changes `render` describes (no `name.formatted`,
no `members.display`), and `active` as required: every agent is active or not (a POST without it
makes an active agent), so it can never be unassigned.
"""

from __future__ import annotations

from typing import Any

from scim2_models import Context, Meta, ResourceType, Schema, ServiceProviderConfig

from deskgate import scim
from deskgate.scim import models as scim_models
from deskgate.scim.errors import NotFoundException, NotImplementedException
from deskgate.web.scim.calls import Handler, ScimCall, ScimReply

_UNPUBLISHED: dict[tuple[str | None, str | None], str] = {
    (scim_models.USER_SCHEMA, "name"): "formatted",
    (scim_models.GROUP_SCHEMA, "members"): "display",
}


def _published(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema body from the core, adjusted as described above."""
    for attribute in schema.get("attributes", []):
        hidden = _UNPUBLISHED.get((schema.get("id"), attribute.get("name")))
        if hidden and "subAttributes" in attribute:
            attribute["subAttributes"] = [
                sub for sub in attribute["subAttributes"] if sub.get("name") != hidden
            ]
        if schema.get("id") == scim_models.USER_SCHEMA and attribute.get("name") == "active":
            attribute["required"] = True
    return schema


def _protocol_schemas(base_url: str) -> list[dict[str, Any]]:
    """The RFC 7643 §7 schemas of the discovery resources themselves (ResourceType,
    ServiceProviderConfig, Schema). `deskgate.scim.discovery` does not publish them;
    scim2-tester's `core_schemas_validation` requires them."""
    bodies = []
    for model in (ResourceType, ServiceProviderConfig, Schema):
        schema = model.to_schema()
        schema = schema.model_copy(
            update={
                "meta": Meta(resource_type="Schema", location=f"{base_url}/Schemas/{schema.id}")
            }
        )
        bodies.append(schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return bodies


def service_provider_config(call: ScimCall) -> ScimReply:
    return ScimReply(200, scim.service_provider_config_body(call.base_url))


def list_schemas(call: ScimCall) -> ScimReply:
    body = scim.schemas_body(call.base_url)
    extra = _protocol_schemas(call.base_url)
    body["Resources"] = [*(_published(schema) for schema in body.get("Resources", [])), *extra]
    body["totalResults"] = body["itemsPerPage"] = len(body["Resources"])
    return ScimReply(200, body)


def get_schema(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    try:
        return ScimReply(200, _published(scim.schema_body(call.base_url, id)))
    except NotFoundException:
        for body in _protocol_schemas(call.base_url):
            if str(body["id"]).lower() == id.lower():
                return ScimReply(200, body)
        raise


def list_resource_types(call: ScimCall) -> ScimReply:
    return ScimReply(200, scim.resource_types_body(call.base_url))


def get_resource_type(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    return ScimReply(200, scim.resource_type_body(call.base_url, id))


def not_implemented(what: str) -> Handler:
    def handler(call: ScimCall) -> ScimReply:
        raise NotImplementedException(detail=f"deskgate does not support {what}.")

    return handler
