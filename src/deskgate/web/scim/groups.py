"""SCIM /Groups handlers."""

from __future__ import annotations

from typing import Any

from scim2_models import Context

from deskgate import scim
from deskgate.scim.records import GroupRecord, ResourceKind
from deskgate.services.provisioning import groups as provisioning
from deskgate.web.scim import render
from deskgate.web.scim.calls import ScimCall, ScimReply

_GROUP = ResourceKind.GROUP


def _group_reply(call: ScimCall, record: GroupRecord, status: int, context: Context) -> ScimReply:
    base_url = call.base_url
    headers = {"ETag": scim.format_etag(record.version)}
    if status == 201:
        headers["Location"] = f"{base_url}/Groups/{record.id}"
    if call.shaped:
        shape = call.representation(_GROUP)
        return ScimReply(
            status,
            headers=headers,
            render=lambda: render.shaped_group(record, base_url, context, shape),
        )
    return ScimReply(status, headers=headers, render=lambda: render.group_body(record, base_url))


def _with_members(call: ScimCall) -> bool:
    if not call.shaped:
        return True
    shape = call.representation(_GROUP)
    return provisioning.wants_members(shape.attributes, shape.excluded_attributes)


def _group_list(call: ScimCall, query: scim.ListQuery) -> ScimReply:
    total, records = provisioning.list_groups(call.db, call.account_id, query)
    base_url = call.base_url

    def shaped() -> dict[str, Any]:
        body = scim.group_list_response(
            records, total_results=total, query=query, base_url=base_url
        )
        return render.strip_derived_list(body)

    def default() -> dict[str, Any]:
        resources = [render.group_body(record, base_url) for record in records]
        return render.list_body(resources, total_results=total, start_index=query.start_index)

    plain = not query.attributes and not query.excluded_attributes
    return ScimReply(200, render=default if plain else shaped)


def list_groups(call: ScimCall) -> ScimReply:
    return _group_list(call, call.list_query(_GROUP))


def search_groups(call: ScimCall) -> ScimReply:
    return _group_list(call, scim.parse_search_request(_GROUP, call.json()))


def create_group(call: ScimCall) -> ScimReply:
    record = provisioning.create_group(call.db, call.account_id, call.json(), now=call.now)
    return _group_reply(call, record, 201, Context.RESOURCE_CREATION_RESPONSE)


def get_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.get_group(call.db, call.account_id, id, with_members=_with_members(call))
    if scim.if_none_match_hit(call.headers.get("if-none-match"), record.version):
        return ScimReply(304, headers={"ETag": scim.format_etag(record.version)})
    return _group_reply(call, record, 200, Context.RESOURCE_QUERY_RESPONSE)


def replace_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.replace_group(
        call.db,
        call.account_id,
        id,
        call.json(),
        if_match=call.if_match,
        now=call.now,
        notes=call.notes,
        with_members=_with_members(call),
    )
    return _group_reply(call, record, 200, Context.RESOURCE_REPLACEMENT_RESPONSE)


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
    )
    return ScimReply(204, headers={"ETag": scim.format_etag(version)})


def delete_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    provisioning.delete_group(
        call.db, call.account_id, id, if_match=call.if_match, now=call.now, notes=call.notes
    )
    return ScimReply(204)
