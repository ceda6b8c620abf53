"""Operations endpoints: /healthz (process up), /readyz (database and schema), /metrics."""

from __future__ import annotations

import hmac
import logging
from functools import cache

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from deskgate import metrics
from deskgate.store import migrate
from deskgate.store.base import read_only
from deskgate.web.state import AppState

router = APIRouter(include_in_schema=False)
log = logging.getLogger("deskgate.web")


@cache
def _code_heads() -> frozenset[str]:
    return migrate.head_revisions()  # the scripts do not change while the process runs


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and its schema is at this code's migration head, else 503."""
    state: AppState = request.app.state.deskgate
    expected = _code_heads()
    try:
        # Read-only: a probe never queues behind SQLite writers.
        with read_only(state.engine).connect() as connection:
            current = migrate.current_revisions(connection)
    except Exception as problem:  # any failure to reach the database means "not ready"
        # The class only: a driver's message may name hosts and users.
        log.warning("readiness: database unreachable (%s)", type(problem).__name__)
        return _not_ready(f"database unreachable ({type(problem).__name__})")
    if current != expected:
        return _not_ready(
            f"database schema at {', '.join(sorted(current)) or 'no revision'}, "
            f"this code expects {', '.join(sorted(expected))}: run `deskgate db upgrade`"
        )
    return JSONResponse({"status": "ready"})


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


def _metrics_with_token(token: str) -> object:
    expected = f"Bearer {token}".encode()

    def serve_metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse(
                {
                    "detail": "Send the metrics token as 'Authorization: Bearer <DESKGATE_METRICS_TOKEN>'."
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    return serve_metrics


def install(app: FastAPI, state: AppState) -> None:
    """Add the health endpoints, and /metrics when DESKGATE_METRICS_TOKEN is set."""
    app.include_router(router)
    if state.settings.metrics_token is not None:
        app.add_api_route(
            "/metrics",
            _metrics_with_token(state.settings.metrics_token.get_secret_value()),  # type: ignore[arg-type]
            methods=["GET"],
            include_in_schema=False,
        )
    metrics.instrument_pool(state.engine)
