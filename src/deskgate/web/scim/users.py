"""SCIM /Users handlers."""

from __future__ import annotations

from typing import Any

from scim2_models import Context

from deskgate import scim
from deskgate.scim.records import AgentRecord, ResourceKind
from deskgate.services.provisioning import users as provisioning
from deskgate.web.scim import render
from deskgate.web.scim.calls import ScimCall, ScimReply

_USER = ResourceKind.USER


def _user_reply(call: ScimCall, record: AgentRecord, status: int, context: Context) -> ScimReply:
    base_url = call.base_url
    headers = {"ETag": scim.format_etag(record.version)}
    if status == 201:
        headers["Location"] = f"{base_url}/Users/{record.id}"
    if call.shaped:
        shape = call.representation(_USER)
        return ScimReply(
            status,
            headers=headers,
            render=lambda: render.shaped_user(record, base_url, context, shape),
        )
    return ScimReply(status, headers=headers, render=lambda: render.user_body(record, base_url))


def _user_list(call: ScimCall, query: scim.ListQuery) -> ScimReply:
    total, records = provisioning.list_users(call.db, call.account_id, query)
    base_url = call.base_url

    def shaped() -> dict[str, Any]:
        body = scim.user_list_response(records, total_results=total, query=query, base_url=base_url)
        return render.strip_derived_list(body)

    def default() -> dict[str, Any]:
        resources = [render.user_body(record, base_url) for record in records]
        return render.list_body(resources, total_results=total, start_index=query.start_index)

    plain = not query.attributes and not query.excluded_attributes
    return ScimReply(200, render=default if plain else shaped)


def list_users(call: ScimCall) -> ScimReply:
    return _user_list(call, call.list_query(_USER))


def search_users(call: ScimCall) -> ScimReply:
    return _user_list(call, scim.parse_search_request(_USER, call.json()))


def create_user(call: ScimCall) -> ScimReply:
    record = provisioning.create_user(call.db, call.account_id, call.json(), now=call.now)
    return _user_reply(call, record, 201, Context.RESOURCE_CREATION_RESPONSE)


def get_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002 - the path parameter
    record = provisioning.get_user(call.db, call.account_id, id)
    if scim.if_none_match_hit(call.headers.get("if-none-match"), record.version):
        return ScimReply(304, headers={"ETag": scim.format_etag(record.version)})
    return _user_reply(call, record, 200, Context.RESOURCE_QUERY_RESPONSE)


def replace_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.replace_user(
        call.db, call.account_id, id, call.json(), if_match=call.if_match, now=call.now
    )
    return _user_reply(call, record, 200, Context.RESOURCE_REPLACEMENT_RESPONSE)


def patch_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.patch_user(
        call.db, call.account_id, id, call.json(), if_match=call.if_match, now=call.now
    )
    return _user_reply(call, record, 200, Context.RESOURCE_PATCH_RESPONSE)


def delete_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    provisioning.delete_user(
        call.db, call.account_id, id, if_match=call.if_match, now=call.now, notes=call.notes
    )
    return ScimReply(204)
