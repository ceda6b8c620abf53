"""The SCIM 2.0 API of each account, at `{BASE_URL}/scim/v2/{account_id}`, and the Security
page's group → admin form.

One route takes every request under a SCIM base URL and dispatches it with `_ROUTES`, so that
every answer is SCIM: an unknown path is a 404 Error body, a wrong method a 405, a body over
`MAX_BODY_BYTES` a 413, bad JSON a 400 `invalidSyntax`, and anything unexpected a 500 Error
body without a stack trace.

A request runs in one worker thread and one transaction: authenticate
(`services.provisioning.authenticate`), run the use case, add the request-log row, commit; the
response body is serialized after the commit, from plain records. When the request fails, the
transaction is rolled back (stored data unchanged) and its log row is written in a short
transaction of its own after the response is sent, so a 401's timing never tells whether the
account exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import unquote_plus

import orjson
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import Response
from scim2_models import (
    Context,
    ListResponse,
    Meta,
    PatchOp,
    ResourceType,
    Schema,
    ServiceProviderConfig,
)
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from deskgate import scim
from deskgate.scim import models as scim_models
from deskgate.scim.errors import (
    InvalidSyntaxException,
    MethodNotAllowedException,
    NotFoundException,
    NotImplementedException,
    PayloadTooLargeException,
    SCIMException,
    UnauthorizedException,
)
from deskgate.scim.records import AgentRecord, GroupRecord, ResourceKind
from deskgate.services import provisioning
from deskgate.store.base import utcnow
from deskgate.web.deps import Admin, CsrfChecked, Db, app_state, client_ip
from deskgate.web.rendering import redirect_with_notice

log = logging.getLogger("deskgate.scim")

# The core parametrizes scim2-models generics per call (`ListResponse[model]`, `PatchOp[model]`).
# pydantic caches parametrized classes in a WeakValueDictionary, so once garbage-collected each
# is rebuilt (~8 ms). Holding them here keeps the cache warm.
_PINNED_GENERICS = (
    ListResponse[scim_models.UserResource],
    ListResponse[scim_models.GroupResource],
    ListResponse[Schema],
    ListResponse[ResourceType],
    PatchOp[scim_models.UserResource],
    PatchOp[scim_models.GroupResource],
)

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (413 above), checked on Content-Length and on the bytes read."""

SCIM_JSON = "application/scim+json"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_USER = ResourceKind.USER
_GROUP = ResourceKind.GROUP


# --- what a handler gets and returns -------------------------------------------------------


@dataclass
class ScimCall:
    """One authenticated SCIM request, as the handlers below see it."""

    db: Session
    account_id: str
    base_url: str
    """The account's SCIM base URL (for `location` and `$ref`)."""
    params: Mapping[str, str]
    """Query parameters by lower-cased name (the first of each)."""
    headers: Headers
    body: bytes
    now: dt.datetime
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
    render: Callable[[], dict[str, Any]] | None = None
    """Builds `body` from plain records after the transaction has ended (serializing costs
    more than the queries: it need not hold SQLite's write lock)."""
    content: bytes = b""

    def encode(self) -> ScimReply:
        if self.render is not None:
            self.body, self.render = self.render(), None
        if self.body is not None and not self.content:
            self.content = orjson.dumps(self.body)
        return self

    def response(self, background: BackgroundTask | None = None) -> Response:
        self.encode()
        media_type = SCIM_JSON if self.body is not None else None
        return Response(self.content, self.status, self.headers, media_type, background)


Handler = Callable[..., ScimReply]


class _WrongMethod(MethodNotAllowedException):
    def __init__(self, *, allow: str, **kwargs: Any) -> None:
        self.allow = allow
        super().__init__(**kwargs)


def _error_reply(exc: SCIMException) -> ScimReply:
    headers = {}
    if isinstance(exc, UnauthorizedException):
        headers["WWW-Authenticate"] = 'Bearer realm="deskgate SCIM"'
    if isinstance(exc, _WrongMethod):
        headers["Allow"] = exc.allow
    return ScimReply(exc.status, scim.error_body(exc), headers, detail=exc.detail)


# --- representation --------------------------------------------------------------------------
#
# deskgate serves the core's resources and schemas with three changes, so that strict clients
# (scim2-tester compares complex attributes whole, sub-attributes included) see values that
# round-trip:
#   * `name.formatted` is neither published nor returned: the core derives it from the name
#     parts, so a client writing `name` never reads back what it wrote.
#   * `members.display` likewise: deskgate shows an agent's own name, not what the IdP sent.
#   * `active` is published as required: every agent is active or not (a POST without it makes
#     an active agent), so it can never be unassigned.


def _strip_derived(resource: dict[str, Any]) -> dict[str, Any]:
    name = resource.get("name")
    if isinstance(name, dict):
        name.pop("formatted", None)
        if not name:
            del resource["name"]
    members = resource.get("members")
    if isinstance(members, list):
        for member in members:
            if isinstance(member, dict):
                member.pop("display", None)
    return resource


def _strip_derived_list(body: dict[str, Any]) -> dict[str, Any]:
    for resource in body.get("Resources", []):
        _strip_derived(resource)
    return body


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


# --- users ---------------------------------------------------------------------------------


def _user_reply(call: ScimCall, record: AgentRecord, status: int, context: Context) -> ScimReply:
    shape = call.representation(_USER)
    base_url = call.base_url
    headers = {"ETag": scim.format_etag(record.version)}
    if status == 201:
        headers["Location"] = f"{base_url}/Users/{record.id}"

    def render() -> dict[str, Any]:
        return _strip_derived(
            scim.serialize_user(
                record,
                base_url,
                context=context,
                attributes=shape.attributes,
                excluded_attributes=shape.excluded_attributes,
            )
        )

    return ScimReply(status, headers=headers, render=render)


def _user_list(call: ScimCall, query: scim.ListQuery) -> ScimReply:
    total, records = provisioning.list_users(call.db, call.account_id, query)
    base_url = call.base_url

    def render() -> dict[str, Any]:
        body = scim.user_list_response(records, total_results=total, query=query, base_url=base_url)
        return _strip_derived_list(body)

    return ScimReply(200, render=render)


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


# --- groups --------------------------------------------------------------------------------


def _group_reply(call: ScimCall, record: GroupRecord, status: int, context: Context) -> ScimReply:
    shape = call.representation(_GROUP)
    base_url = call.base_url
    headers = {"ETag": scim.format_etag(record.version)}
    if status == 201:
        headers["Location"] = f"{base_url}/Groups/{record.id}"

    def render() -> dict[str, Any]:
        return _strip_derived(
            scim.serialize_group(
                record,
                base_url,
                context=context,
                attributes=shape.attributes,
                excluded_attributes=shape.excluded_attributes,
            )
        )

    return ScimReply(status, headers=headers, render=render)


def _with_members(call: ScimCall) -> bool:
    shape = call.representation(_GROUP)
    return provisioning.wants_members(shape.attributes, shape.excluded_attributes)


def _group_list(call: ScimCall, query: scim.ListQuery) -> ScimReply:
    total, records = provisioning.list_groups(call.db, call.account_id, query)
    base_url = call.base_url

    def render() -> dict[str, Any]:
        body = scim.group_list_response(
            records, total_results=total, query=query, base_url=base_url
        )
        return _strip_derived_list(body)

    return ScimReply(200, render=render)


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
    group = provisioning.patch_group(
        call.db,
        call.account_id,
        id,
        call.json(),
        if_match=call.if_match,
        now=call.now,
        notes=call.notes,
    )
    return ScimReply(204, headers={"ETag": scim.format_etag(group.version)})


def delete_group(call: ScimCall, id: str) -> ScimReply:  # noqa: A002
    provisioning.delete_group(
        call.db, call.account_id, id, if_match=call.if_match, now=call.now, notes=call.notes
    )
    return ScimReply(204)


# --- discovery -----------------------------------------------------------------------------


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


def _not_implemented(what: str) -> Handler:
    def handler(call: ScimCall) -> ScimReply:
        raise NotImplementedException(detail=f"deskgate does not support {what}.")

    return handler


# --- routing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    handlers: Mapping[str, Handler]


def _route(template: str, **handlers: Handler) -> _Route:
    regex = re.escape(template).replace(r"\{id\}", "(?P<id>[^/]+)")
    return _Route(re.compile(regex, re.IGNORECASE), handlers)


_SELF = _not_implemented("/Me (the SCIM token stands for the IdP, not for a user)")

_ROUTES: tuple[_Route, ...] = (
    _route("Users", GET=list_users, POST=create_user),
    _route("Users/.search", POST=search_users),
    _route("Users/{id}", GET=get_user, PUT=replace_user, PATCH=patch_user, DELETE=delete_user),
    _route("Groups", GET=list_groups, POST=create_group),
    _route("Groups/.search", POST=search_groups),
    _route("Groups/{id}", GET=get_group, PUT=replace_group, PATCH=patch_group, DELETE=delete_group),
    _route("ServiceProviderConfig", GET=service_provider_config),
    _route("Schemas", GET=list_schemas),
    _route("Schemas/{id}", GET=get_schema),
    _route("ResourceTypes", GET=list_resource_types),
    _route("ResourceTypes/{id}", GET=get_resource_type),
    _route(".search", POST=_not_implemented("searching several resource types at once")),
    _route("Bulk", POST=_not_implemented("bulk operations")),
    _route("Me", GET=_SELF, POST=_SELF, PUT=_SELF, PATCH=_SELF, DELETE=_SELF),
)


def _dispatch(method: str, rest: str) -> tuple[Handler, dict[str, str]]:
    for route in _ROUTES:
        match = route.pattern.fullmatch(rest)
        if match is None:
            continue
        handler = route.handlers.get(method)
        if handler is None:
            allow = ", ".join(route.handlers)
            raise _WrongMethod(
                allow=allow, detail=f"{method} is not allowed on /{rest}; use {allow}."
            )
        return handler, match.groupdict()
    raise NotFoundException(
        detail=f"There is no SCIM endpoint at /{rest}. deskgate serves /Users, /Groups, "
        "/ServiceProviderConfig, /Schemas and /ResourceTypes under this base URL."
    )


# --- the endpoint --------------------------------------------------------------------------


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY_BYTES (then it is not read further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _log_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{unquote_plus(query)}" if query else "")


@dataclass(frozen=True)
class _Outcome:
    reply: ScimReply
    failure_log: provisioning.RequestRecord | None = None
    """Set when the request failed: written after the response is sent."""


def _serve(request: Request, body: bytes | None, started: float) -> _Outcome:
    state = app_state(request)
    account_id = request.path_params["account_id"]
    rest = request.path_params.get("rest", "").strip("/")
    now = utcnow()

    def record(status: int, detail: str | None) -> provisioning.RequestRecord:
        return provisioning.RequestRecord(
            account_id=account_id,
            method=request.method,
            path=_log_path(request),
            status=status,
            duration_ms=(time.perf_counter() - started) * 1000,
            client=request.headers.get("user-agent"),
            detail=detail,
            ip=client_ip(request),
        )

    with state.sessions() as db:
        try:
            caller = provisioning.authenticate(
                db, account_id, request.headers.get("authorization"), now
            )
            if body is None:
                raise PayloadTooLargeException(
                    detail=f"The request body is larger than {MAX_BODY_BYTES} bytes."
                )
            handler, path_params = _dispatch(request.method, rest)
            call = ScimCall(
                db=db,
                account_id=account_id,
                base_url=f"{state.settings.base_url}/scim/v2/{account_id}",
                params=_params(request),
                headers=request.headers,
                body=body,
                now=now,
            )
            reply = handler(call, **path_params)
            detail = "; ".join(call.notes) or None
            provisioning.record_request(
                db, record(reply.status, detail), now=now, token=caller.token
            )
            db.commit()
        except SCIMException as exc:
            db.rollback()
            reply = _error_reply(exc)
            return _Outcome(reply, record(reply.status, reply.detail))
        except Exception:
            db.rollback()
            log.exception("SCIM %s %s failed", request.method, request.url.path)
            reply = _error_reply(_internal_error())
            return _Outcome(reply, record(reply.status, reply.detail))
    try:
        return _Outcome(reply.encode())
    except Exception:  # pragma: no cover - serializing records the core built does not fail
        log.exception(
            "SCIM %s %s: the response could not be rendered", request.method, request.url.path
        )
        return _Outcome(_error_reply(_internal_error()))


def _internal_error() -> SCIMException:
    return scim.exception_for_status(500, "Something went wrong on our side; try again shortly.")


def _params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name.lower(), value)
    return params


def _write_failure_log(
    request: Request, entry: provisioning.RequestRecord, token_known: bool
) -> None:
    """The log row of a failed request, in its own transaction (the request's was rolled back).
    A 401 is recorded only when the path's account exists, and a few a minute per source."""
    state = app_state(request)
    try:
        with state.sessions() as db:
            if token_known:
                provisioning.record_request(db, entry, now=utcnow())
            else:
                provisioning.record_unauthenticated_request(
                    db,
                    entry,
                    now=utcnow(),
                    per_ip_per_minute=state.settings.scim_unauthenticated_recorded_per_ip_per_minute,
                )
            db.commit()
    except Exception:
        log.exception("could not record a failed SCIM request")


async def scim_endpoint(request: Request) -> Response:
    started = time.perf_counter()
    body = await _read_body(request)
    outcome = await run_in_threadpool(_serve, request, body, started)
    background = None
    if outcome.failure_log is not None:
        token_known = outcome.reply.status != 401
        background = BackgroundTask(_write_failure_log, request, outcome.failure_log, token_known)
    return outcome.reply.response(background)


# --- Security page: group -> admin mapping ---------------------------------------------------

router = APIRouter(prefix="/manage")


@router.post("/security/scim-groups", dependencies=[CsrfChecked])
def set_group_admin(
    db: Db,
    admin: Admin,
    group_id: Annotated[str, Form(max_length=40)],
    grants_admin: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    change = provisioning.set_group_grants_admin(
        db, admin.account.id, group_id, grants_admin in ("on", "true", "1"), now=utcnow()
    )
    if change.grants_admin:
        message = f"Members of {change.display_name} are now admins."
    else:
        message = f"Members of {change.display_name} no longer become admins through this group."
    if change.notes:
        message += " " + "; ".join(change.notes) + "."
    return redirect_with_notice("/manage/security#scim", message)


def install(app: FastAPI) -> None:
    """Add the SCIM API and the Security page's group form to the app."""
    app.include_router(router)
    for path in ("/scim/v2/{account_id}", "/scim/v2/{account_id}/{rest:path}"):
        app.router.add_route(path, scim_endpoint, methods=_METHODS, include_in_schema=False)
