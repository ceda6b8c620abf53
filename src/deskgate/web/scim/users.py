"""SCIM /Users handlers."""

from __future__ import annotations

from scim2_models import Context

from deskgate import scim
from deskgate.scim.records import AgentRecord, ResourceKind
from deskgate.services.provisioning import users as provisioning
from deskgate.web.scim import render, replies
from deskgate.web.scim.calls import ScimCall, ScimReply

_USER = ResourceKind.USER
_RENDERERS = replies.Renderers(
    kind=_USER,
    collection="Users",
    body=render.user_body,
    shaped=render.shaped_user,
    shaped_list=scim.user_list_response,
)


def _reply(call: ScimCall, record: AgentRecord, status: int, context: Context) -> ScimReply:
    return replies.resource_reply(call, _RENDERERS, record, status, context)


def _user_list(call: ScimCall, query: scim.ListQuery) -> ScimReply:
    total, records = provisioning.list_users(call.db, call.account_id, query)
    return replies.list_reply(call, _RENDERERS, query, total, records)


def list_users(call: ScimCall) -> ScimReply:
    return _user_list(call, call.list_query(_USER))


def search_users(call: ScimCall) -> ScimReply:
    return _user_list(call, scim.parse_search_request(_USER, call.json()))


def create_user(call: ScimCall) -> ScimReply:
    record = provisioning.create_user(
        call.db, call.account_id, call.json(), now=call.now, actor=call.actor
    )
    return _reply(call, record, 201, Context.RESOURCE_CREATION_RESPONSE)


def get_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002 - the path parameter
    record = provisioning.get_user(call.db, call.account_id, id)
    if scim.if_none_match_hit(call.headers.get("if-none-match"), record.version):
        return ScimReply(304, headers={"ETag": scim.format_etag(record.version)})
    return _reply(call, record, 200, Context.RESOURCE_QUERY_RESPONSE)


def replace_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.replace_user(
        call.db,
        call.account_id,
        id,
        call.json(),
        if_match=call.if_match,
        now=call.now,
        actor=call.actor,
    )
    return _reply(call, record, 200, Context.RESOURCE_REPLACEMENT_RESPONSE)


def patch_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    record = provisioning.patch_user(
        call.db,
        call.account_id,
        id,
        call.json(),
        if_match=call.if_match,
        now=call.now,
        actor=call.actor,
    )
    return _reply(call, record, 200, Context.RESOURCE_PATCH_RESPONSE)


def delete_user(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    provisioning.delete_user(
        call.db,
        call.account_id,
        id,
        if_match=call.if_match,
        now=call.now,
        notes=call.notes,
        actor=call.actor,
    )
    return ScimReply(204)
