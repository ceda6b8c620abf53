"""The lean ASGI app every `/scim/v2/{account_id}[/…]` request goes to (web/app.py sends it
here ahead of FastAPI), wrapped only in what SCIM needs: `RequestObservability` (request id,
JSON log line, metrics) and `SecurityHeaders`.

A request is checked like every other (`web.input_guard`: the address, query string and
headers; the body as JSON, refused before anything touches the database), then runs in one
transaction on a Core connection: authenticate (`services.provisioning.requests`), run the use
case, add the request-log row, commit; the response body is serialized after the commit, from
plain records. When the request fails, the transaction is rolled back (stored data unchanged)
and its log row is written in a short transaction of its own after the response is sent, so a
401's timing never tells whether the account exists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from deskgate.scim.errors import PayloadTooLargeException, SCIMException
from deskgate.services.events import actors
from deskgate.services.provisioning import requests as scim_requests
from deskgate.store.base import utcnow
from deskgate.web import input_guard
from deskgate.web.headers import SecurityHeaders
from deskgate.web.observability import RequestObservability
from deskgate.web.scim import MAX_BODY_BYTES, SCIM_JSON
from deskgate.web.scim.calls import ScimCall, ScimReply, error_reply, internal_error
from deskgate.web.scim.routes import dispatch
from deskgate.web.state import AppState

log = logging.getLogger("deskgate.scim")

PREFIX = "/scim/v2/"


def serves(scope: Scope) -> bool:
    """Whether a request is for the SCIM app: `/scim/v2/{account_id}` and below."""
    path: str = scope["path"]
    return path.startswith(PREFIX) and len(path) > len(PREFIX) and path[len(PREFIX)] != "/"


@dataclass(frozen=True)
class _Request:
    """What `_serve` reads of the HTTP request (plain values: it runs in a worker thread)."""

    method: str
    account_id: str
    rest: str
    headers: dict[str, str]
    """By lower-cased name, the first of each."""
    params: dict[str, str]
    """Query parameters by lower-cased name, the first of each."""
    body: bytes | None
    """None when over MAX_BODY_BYTES."""
    path: str
    log_path: str
    """The path and the decoded query string, for the request log."""
    ip: str
    started: float


@dataclass(frozen=True)
class _Outcome:
    reply: ScimReply
    failure_log: scim_requests.RequestRecord | None = None
    """Set when the request failed: written after the response is sent."""


class ScimApp:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.base_url = f"{state.settings.base_url}/scim/v2/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        account_id, slash, rest = scope["path"][len(PREFIX) :].partition("/")
        # What the request log line names (the route template and the account).
        scope["path_params"] = {"account_id": account_id, **({"rest": rest} if slash else {})}
        answered = False

        async def answer(reply: ScimReply) -> None:
            nonlocal answered
            answered = True
            await _send_reply(reply, send)

        try:
            try:
                input_guard.check_target(scope)
                body = await _read_body(scope, receive)
                if body:
                    input_guard.check_json(body)
            except input_guard.Refusal as refusal:
                await answer(error_reply(input_guard.scim_exception(refusal)))
                return
            request = _request(scope, account_id, rest, body, started)
            outcome = await run_in_threadpool(self._serve, request)
            await answer(outcome.reply)
            if outcome.failure_log is not None:
                token_known = outcome.reply.status != 401
                await run_in_threadpool(self._write_failure_log, outcome.failure_log, token_known)
        except _Disconnected:
            return
        except Exception:
            log.exception("SCIM %s %s failed", scope["method"], scope["path"])
            if answered:
                raise
            await answer(error_reply(internal_error()))

    def _serve(self, request: _Request) -> _Outcome:
        now = utcnow()
        account_id = request.account_id

        def record(status: int, detail: str | None) -> scim_requests.RequestRecord:
            return scim_requests.RequestRecord(
                account_id=account_id,
                method=request.method,
                path=request.log_path,
                status=status,
                duration_ms=(time.perf_counter() - request.started) * 1000,
                client=request.headers.get("user-agent"),
                detail=detail,
                ip=request.ip,
            )

        with self.state.engine.connect() as db:
            try:
                caller = scim_requests.authenticate(
                    db, account_id, request.headers.get("authorization"), now
                )
                if request.body is None:
                    raise PayloadTooLargeException(
                        detail=f"The request body is larger than {MAX_BODY_BYTES} bytes."
                    )
                handler, path_params = dispatch(request.method, request.rest.strip("/"))
                call = ScimCall(
                    db=db,
                    account_id=account_id,
                    base_url=self.base_url + account_id,
                    params=request.params,
                    headers=request.headers,
                    body=request.body,
                    now=now,
                    actor=actors.scim_token(caller.token.token_id, caller.token.hint),
                )
                reply = handler(call, **path_params)
                detail = "; ".join(call.notes) or None
                scim_requests.record_request(
                    db, record(reply.status, detail), now=now, token=caller.token
                )
                db.commit()
            except SCIMException as exc:
                db.rollback()
                reply = error_reply(exc)
                return _Outcome(reply, record(reply.status, reply.detail))
            except Exception:
                db.rollback()
                log.exception("SCIM %s %s failed", request.method, request.path)
                reply = error_reply(internal_error())
                return _Outcome(reply, record(reply.status, reply.detail))
        try:
            return _Outcome(reply.encode())
        except Exception:  # pragma: no cover - serializing records the core built does not fail
            log.exception(
                "SCIM %s %s: the response could not be rendered", request.method, request.path
            )
            return _Outcome(error_reply(internal_error()))

    def _write_failure_log(self, entry: scim_requests.RequestRecord, token_known: bool) -> None:
        """The log row of a failed request, in its own transaction (the request's was rolled
        back). A 401 is recorded only when the path's account exists, and a few a minute per
        source."""
        settings = self.state.settings
        try:
            with self.state.engine.begin() as db:
                if token_known:
                    scim_requests.record_request(db, entry, now=utcnow())
                else:
                    scim_requests.record_unauthenticated_request(
                        db,
                        entry,
                        now=utcnow(),
                        per_ip_per_minute=settings.scim_unauthenticated_recorded_per_ip_per_minute,
                    )
        except Exception:
            log.exception("could not record a failed SCIM request")


def scim_app(state: AppState) -> ASGIApp:
    """The SCIM app with its middlewares (the log line and metrics time everything)."""
    return RequestObservability(SecurityHeaders(ScimApp(state)))


# --- reading the request -------------------------------------------------------------------


class _Disconnected(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The body, or None when it is over MAX_BODY_BYTES (then it is not read further)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > MAX_BODY_BYTES:
                return None
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _request(
    scope: Scope, account_id: str, rest: str, body: bytes | None, started: float
) -> _Request:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    query = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, str] = {}
    if query:
        for name, value in QueryParams(query).multi_items():
            params.setdefault(name.lower(), value)
    path = Request(scope).url.path
    client = scope.get("client")
    return _Request(
        method=scope["method"],
        account_id=account_id,
        rest=rest,
        headers=headers,
        params=params,
        body=body,
        path=path,
        log_path=path + (f"?{unquote_plus(query)}" if query else ""),
        ip=client[0] if client else "unknown",
        started=started,
    )


async def _send_reply(reply: ScimReply, send: Send) -> None:
    reply.encode()
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in reply.headers.items()
    ]
    if reply.status >= 200 and reply.status not in (204, 304):
        headers.append((b"content-length", str(len(reply.content)).encode()))
    if reply.body is not None or reply.content:
        headers.append((b"content-type", SCIM_JSON.encode()))
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.content})
