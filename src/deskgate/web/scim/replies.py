"""The reply to a one-resource request and to a list request, for /Users and /Groups alike.

With the default attribute set, bodies are built straight from records (`render.*_body`); a
request with `attributes`/`excludedAttributes` goes through the core's scim2-models resources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from scim2_models import Context

from deskgate import scim
from deskgate.scim.records import AgentRecord, GroupRecord, ResourceKind
from deskgate.web.scim import render
from deskgate.web.scim.calls import ScimCall, ScimReply

Record = TypeVar("Record", AgentRecord, GroupRecord)


@dataclass(frozen=True)
class Renderers(Generic[Record]):
    """How one resource type is rendered."""

    kind: ResourceKind
    collection: str
    """The endpoint's name in URLs: `Users`, `Groups`."""
    body: Callable[[Record, str], dict[str, Any]]
    """(record, base URL) -> the default-attribute body."""
    shaped: Callable[[Record, str, Context, scim.ListQuery], dict[str, Any]]
    """(record, base URL, context, attributes) -> a body through the core."""
    shaped_list: Callable[..., dict[str, Any]]
    """The core's ListResponse of a page (records, total_results=, query=, base_url=)."""


def resource_reply(
    call: ScimCall, kinds: Renderers[Record], record: Record, status: int, context: Context
) -> ScimReply:
    base_url = call.base_url
    headers = {"ETag": scim.format_etag(record.version)}
    if status == 201:
        headers["Location"] = f"{base_url}/{kinds.collection}/{record.id}"
    if call.shaped:
        shape = call.representation(kinds.kind)
        return ScimReply(
            status, headers=headers, render=lambda: kinds.shaped(record, base_url, context, shape)
        )
    return ScimReply(status, headers=headers, render=lambda: kinds.body(record, base_url))


def list_reply(
    call: ScimCall,
    kinds: Renderers[Record],
    query: scim.ListQuery,
    total: int,
    records: Sequence[Record],
) -> ScimReply:
    base_url = call.base_url

    def shaped() -> dict[str, Any]:
        body = kinds.shaped_list(records, total_results=total, query=query, base_url=base_url)
        return render.strip_derived_list(body)

    def default() -> dict[str, Any]:
        resources = [kinds.body(record, base_url) for record in records]
        return render.list_body(resources, total_results=total, start_index=query.start_index)

    plain = not query.attributes and not query.excluded_attributes
    return ScimReply(200, render=default if plain else shaped)
