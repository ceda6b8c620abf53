"""SCIM /Groups handlers."""

from __future__ import annotations

from scim2_models import Context

from deskgate import scim
from deskgate.scim.records import GroupRecord, ResourceKind
from deskgate.services.provisioning import groups as provisioning
from deskgate.web.scim import render, replies
from deskgate.web.scim.calls import ScimCall, ScimReply

_GROUP = ResourceKind.GROUP
_RENDERERS = replies.Renderers(
    kind=_GROUP,
    collection="Groups",
    body=render.group_body,
    shaped=render.shaped_group,
    shaped_list=scim.group_list_response,
)


def _with_members(call: ScimCall) -> bool:
    if not call.shaped:
        return True
    shape = call.representation(_GROUP)
    return provisioning.wants_members(shape.attributes, shape.excluded_attributes)


def _reply(call: ScimCall, record: GroupRecord, status: int, context: Context) -> ScimReply:
    return replies.resource_reply(call, _RENDERERS, record, status, context)


def _group_list(call: ScimCall, query: scim.ListQuery) -> ScimReply:
    total, records = provisioning.list_groups(call.db, call.account_id, query)
    return replies.list_reply(call, _RENDERERS, query, total, records)


def list_groups(call: ScimCall) -> ScimReply:
    return _group_list(call, call.list_query(_GROUP))


def search_groups(call: ScimCall) -> ScimReply:
    return _group_list(call, scim.parse_search_request(_GROUP, call.json()))


def create_group(call: ScimCall) -> ScimReply:
    record = provisioning.create_group(
        call.db, call.account_id, call.json(), now=call.now, actor=call.actor
    )
    return _reply(call, record, 201, Context.RESOURCE_CREATION_RESPONSE)


def get_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.get_group(call.db, call.account_id, id, with_members=_with_members(call))
    if scim.if_none_match_hit(call.headers.get("if-none-match"), record.version):
        return ScimReply(304, headers={"ETag": scim.format_etag(record.version)})
    return _reply(call, record, 200, Context.RESOURCE_QUERY_RESPONSE)


def replace_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.replace_group(
        call.db,
        call.account_id,
        id,
        call.json(),
        if_match=call.if_match,
        now=call.now,
        notes=call.notes,
        actor=call.actor,
        with_members=_with_members(call),
    )
    return _reply(call, record, 200, Context.RESOURCE_REPLACEMENT_RESPONSE)


def patch_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    """204 No Content: Okta and Entra both accept it for group PATCH (RFC 7644 §3.5.2 allows
    it), and it spares reading a large group's whole membership after adding one member."""
    version = provisioning.patch_group(
        call.db,
        call.account_id,
        id,
        call.json(),
        if_match=call.if_match,
        now=call.now,
        notes=call.notes,
        actor=call.actor,
    )
    return ScimReply(204, headers={"ETag": scim.format_etag(version)})


def delete_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    provisioning.delete_group(
        call.db,
        call.account_id,
        id,
        if_match=call.if_match,
        now=call.now,
        notes=call.notes,
        actor=call.actor,
    )
    return ScimReply(204)
