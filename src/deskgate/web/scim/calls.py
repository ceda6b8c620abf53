"""What a SCIM handler gets (`ScimCall`) and returns (`ScimReply`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from deskgate import scim
from deskgate.scim.errors import (
    InvalidSyntaxException,
    MethodNotAllowedException,
    SCIMException,
    UnauthorizedException,
)
from deskgate.scim.records import ResourceKind
from deskgate.services.events import Actor


@dataclass
class ScimCall:
    """One authenticated SCIM request, as the handlers see it."""

    db: Connection
    account_id: str
    base_url: str
    """The account's SCIM base URL (for `location` and `$ref`)."""
    params: Mapping[str, str]
    """Query parameters by lower-cased name (the first of each)."""
    headers: Mapping[str, str]
    """Request headers by lower-cased name (the first of each)."""
    body: bytes
    now: dt.datetime
    actor: Actor
    """The SCIM token the request authenticated with: who its events say made the changes."""
    notes: list[str] = field(default_factory=list)

    def json(self) -> Any:
        if not self.body.strip():
            raise InvalidSyntaxException(detail="The request needs a JSON body.")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as problem:
            raise InvalidSyntaxException(detail=f"The body is not valid JSON: {problem}.") from None

    def list_query(self, kind: ResourceKind) -> scim.ListQuery:
        p = self.params.get
        return scim.parse_list_query(
            kind,
            filter=p("filter"),
            start_index=p("startindex"),
            count=p("count"),
            sort_by=p("sortby"),
            sort_order=p("sortorder"),
            attributes=p("attributes"),
            excluded_attributes=p("excludedattributes"),
        )

    @property
    def shaped(self) -> bool:
        """Whether the request asks for other attributes than the default set."""
        return "attributes" in self.params or "excludedattributes" in self.params

    def representation(self, kind: ResourceKind) -> scim.ListQuery:
        """`attributes`/`excludedAttributes` of a single-resource request."""
        return scim.parse_list_query(
            kind,
            attributes=self.params.get("attributes"),
            excluded_attributes=self.params.get("excludedattributes"),
        )

    @property
    def if_match(self) -> str | None:
        return self.headers.get("if-match")


@dataclass
class ScimReply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    detail: str | None = None
    """For the request log: the error detail."""
    render: Callable[[], dict[str, Any] | bytes] | None = None
    """Builds the body (a dict, or JSON bytes) from plain records after the transaction has
    ended (serializing need not hold SQLite's write lock)."""
    content: bytes = b""

    def encode(self) -> ScimReply:
        if self.render is not None:
            rendered, self.render = self.render(), None
            if isinstance(rendered, bytes):
                self.content = rendered
            else:
                self.body = rendered
        if self.body is not None and not self.content:
            self.content = orjson.dumps(self.body)
        return self


Handler = Callable[..., ScimReply]


class WrongMethod(MethodNotAllowedException):
    def __init__(self, *, allow: str, **kwargs: Any) -> None:
        self.allow = allow
        super().__init__(**kwargs)


def error_reply(exc: SCIMException) -> ScimReply:
    headers = {}
    if isinstance(exc, UnauthorizedException):
        headers["WWW-Authenticate"] = 'Bearer realm="deskgate SCIM"'
    if isinstance(exc, WrongMethod):
        headers["Allow"] = exc.allow
    return ScimReply(exc.status, scim.error_body(exc), headers, detail=exc.detail)


def internal_error() -> SCIMException:
    return scim.exception_for_status(500, "Something went wrong on our side; try again shortly.")
