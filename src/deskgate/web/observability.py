"""Per-request observability: request id, one JSON log line, request metrics.

A pure ASGI middleware (BaseHTTPMiddleware costs far more per request). The log line names the
route *template* (`/api/v1/sso/{sso_token}/acs/{idp_kind}`), never the raw path, query string,
headers, cookies or body, so no token, password, cookie or SAML assertion can reach it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskgate import logs, metrics

log = logging.getLogger("deskgate.request")

REQUEST_ID_HEADER = b"x-request-id"
# What a balancer's id may look like: UUIDs, hex, AWS/GCP trace ids. Anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/=+-]{1,128}")
_ACCOUNT_KEY = "deskgate.account_id"
_GROUP_PREFIXES = (
    ("/static/", "static"),
    ("/scim/", "scim"),
    ("/api/v1/sso/", "sso"),
    ("/api/", "api"),
)
_OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def route_group(path: str) -> str:
    """One of pages, sso, scim, api, static, ops: the label requests are counted under."""
    for prefix, group in _GROUP_PREFIXES:
        if path.startswith(prefix):
            return group
    return "ops" if path in _OPS_PATHS else "pages"


def note_account(scope: MutableMapping[str, Any], account_id: str) -> None:
    """Name the account a request acts for, in its log line (called once the session is known)."""
    scope[_ACCOUNT_KEY] = account_id


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None


def _route_template(scope: Scope, group: str) -> str:
    route = getattr(scope.get("route"), "path", None)
    if route is not None:
        return str(route)
    # FastAPI names only its own routes in the scope; these two are Starlette routes.
    if group == "scim" and "path_params" in scope:
        return (
            "/scim/v2/{account_id}/{rest:path}"
            if "rest" in scope["path_params"]
            else "/scim/v2/{account_id}"
        )
    if group == "static":
        return "/static/{path}"
    return "unmatched"


def _account_id(scope: Scope, group: str, status: int) -> str | None:
    account_id = scope.get(_ACCOUNT_KEY)
    if account_id is None and group == "scim" and status not in (401, 404):
        # The SCIM URL names the account; past the bearer-token check it is the caller's.
        claimed = scope.get("path_params", {}).get("account_id")
        account_id = claimed[:64] if isinstance(claimed, str) else None
    return account_id


class RequestObservability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        header = (REQUEST_ID_HEADER, request_id.encode())
        reset = logs.request_id.set(request_id)
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            group = route_group(scope["path"])
            metrics.count_request(group, scope["method"], status, seconds)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": metrics.method_label(scope["method"]),
                        "route": _route_template(scope, group),
                        "group": group,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "account_id": _account_id(scope, group, status),
                        "client": (scope.get("client") or ("",))[0] or None,
                    },
                )
            logs.request_id.reset(reset)
