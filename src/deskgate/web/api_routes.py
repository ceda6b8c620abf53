"""The /api/v1 data endpoints for machine clients (a chat service, the customer's tools):
agents and the event log, behind `Authorization: Bearer <API key>`.

Plain Starlette routes, polled often: each request is one hop to a worker thread and one
read-only transaction (on SQLite it never waits for the write lock) that checks the key and
reads the page. A refused key writes nothing; a good one writes `last_used_at` only when it is
due (every few minutes), in a short transaction of its own after the read.

Errors are JSON like every /api answer, `{"error": "<message>", "code": "<code>"}`: 401
`missing_api_key`/`invalid_api_key` (with `WWW-Authenticate: Bearer`), 403 `insufficient_scope`,
400 `invalid_parameter`, 404 `not_found`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from deskgate.errors import InvalidInput, NotFound
from deskgate.services import api_keys, api_reads
from deskgate.store.base import read_only, utcnow
from deskgate.web.deps import app_state
from deskgate.web.observability import note_account
from deskgate.web.plain_routes import PlainRoute

Read = Callable[[Connection, str, Request], dict[str, Any]]


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    message: str
    headers: dict[str, str] | None = None


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _refused(refusal: _Refusal) -> Response:
    return _json({"error": refusal.message, "code": refusal.code}, refusal.status, refusal.headers)


_MISSING_KEY = _Refusal(
    401,
    "missing_api_key",
    "Send an API key as 'Authorization: Bearer <key>'. Admins create keys on Manage › API.",
    {"WWW-Authenticate": 'Bearer realm="deskgate"'},
)
_INVALID_KEY = _Refusal(
    401,
    "invalid_api_key",
    "This API key is not valid: it is unknown or was revoked. Create a new one on Manage › API.",
    {"WWW-Authenticate": 'Bearer realm="deskgate", error="invalid_token"'},
)


def _insufficient_scope(scope: str) -> _Refusal:
    return _Refusal(
        403,
        "insufficient_scope",
        f"This API key lacks the scope {scope}, which this endpoint needs. "
        f"Create a key with {scope} on Manage › API.",
        {
            "WWW-Authenticate": f'Bearer realm="deskgate", error="insufficient_scope", scope="{scope}"'
        },
    )


def _serve(
    request: Request, reader: Engine, scope: str, read: Read
) -> tuple[str | None, dict[str, Any] | _Refusal]:
    """(the key's account, the answer): runs in a worker thread."""
    key = api_keys.key_from_header(request.headers.get("authorization"))
    if key is None:
        return None, _MISSING_KEY
    now = utcnow()
    with reader.connect() as conn, conn.begin():
        owner = api_keys.authenticate(conn, key)
        if owner is None:
            return None, _INVALID_KEY
        if scope not in owner.scopes:
            answer: dict[str, Any] | _Refusal = _insufficient_scope(scope)
        else:
            try:
                answer = read(conn, owner.account_id, request)
            except InvalidInput as problem:
                answer = _Refusal(400, "invalid_parameter", problem.message)
            except NotFound as problem:
                answer = _Refusal(404, "not_found", problem.message)
    if api_keys.use_is_due(owner, now):
        with app_state(request).engine.begin() as conn:
            api_keys.note_use(conn, owner, now)
    return owner.account_id, answer


def _endpoint(reader: Engine, scope: str, read: Read) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        account_id, answer = await run_in_threadpool(_serve, request, reader, scope, read)
        if account_id is not None:
            note_account(request.scope, account_id)
        return _refused(answer) if isinstance(answer, _Refusal) else _json(answer)

    return endpoint


def _agents(conn: Connection, account_id: str, request: Request) -> dict[str, Any]:
    params = request.query_params
    return api_reads.agents_page(
        conn,
        account_id,
        cursor=params.get("cursor"),
        limit=params.get("limit"),
        email=params.get("email"),
        active=params.get("active"),
    )


def _agent(conn: Connection, account_id: str, request: Request) -> dict[str, Any]:
    return api_reads.agent(conn, account_id, request.path_params["agent_id"])


def _events(conn: Connection, account_id: str, request: Request) -> dict[str, Any]:
    params = request.query_params
    return api_reads.events_page(
        conn,
        account_id,
        after=params.get("after"),
        limit=params.get("limit"),
        types=params.get("types"),
    )


def install(app: FastAPI, engine: Engine) -> None:
    reader = read_only(engine)
    for path, scope, read in (
        ("/api/v1/agents", "agents:read", _agents),
        ("/api/v1/agents/{agent_id}", "agents:read", _agent),
        ("/api/v1/events", "events:read", _events),
    ):
        app.router.routes.append(PlainRoute(path, _endpoint(reader, scope, read), method="GET"))
