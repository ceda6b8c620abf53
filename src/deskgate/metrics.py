"""Prometheus metrics: what deskgate counts, and the few helpers that count it.

Every label takes a small, fixed set of values (route groups, methods, status codes, reason
codes): never a path, an email or an id. With several `deskgate serve --workers`, the server
points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start (web/server.py),
and a scrape adds up every worker's values.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event
from sqlalchemy.engine import Engine

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "deskgate_http_requests",
    "HTTP requests answered, by route group, method and status code.",
    ["group", "method", "status"],
)
HTTP_DURATION = Histogram(
    "deskgate_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route group.",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SIGN_INS = Counter(
    "deskgate_sign_ins",
    "Sign-in attempts, by method (password, saml), result (success, refused) and reason code.",
    ["method", "result", "reason"],
)
SCIM_REQUESTS = Counter(
    "deskgate_scim_requests",
    "SCIM API requests, by method and status code.",
    ["method", "status"],
)
BACKGROUND_RUNS = Counter(
    "deskgate_background_runs",
    "Background passes (metadata_refresh, retention), by result (ok, failed).",
    ["task", "result"],
)
BACKGROUND_DURATION = Histogram(
    "deskgate_background_duration_seconds",
    "Duration of background passes.",
    ["task"],
    buckets=(0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0),
)
# livesum: with several workers, the node's total over the workers that are alive.
DB_POOL_CHECKED_OUT = Gauge(
    "deskgate_db_pool_checked_out",
    "Database connections currently checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "deskgate_db_pool_size",
    "Connections the pool keeps (without overflow).",
    multiprocess_mode="livesum",
)

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The request method, or "other": a client cannot create label values at will."""
    return method if method in _KNOWN_METHODS else "other"


def count_request(group: str, method: str, status: int, seconds: float) -> None:
    method = method_label(method)
    HTTP_REQUESTS.labels(group, method, str(status)).inc()
    HTTP_DURATION.labels(group).observe(seconds)
    if group == "scim":
        SCIM_REQUESTS.labels(method, str(status)).inc()


def count_sign_in(method: str, *, succeeded: bool, reason: str | None = None) -> None:
    """Count one sign-in attempt; `reason` is a fixed reason code, never free text."""
    SIGN_INS.labels(method, "success" if succeeded else "refused", reason or "").inc()


@contextmanager
def background_pass(task: str) -> Iterator[None]:
    """Time one pass of a background loop and count it as ok or failed (then re-raise)."""
    started = time.perf_counter()
    try:
        yield
    except Exception:
        BACKGROUND_RUNS.labels(task, "failed").inc()
        raise
    else:
        BACKGROUND_RUNS.labels(task, "ok").inc()
    finally:
        BACKGROUND_DURATION.labels(task).observe(time.perf_counter() - started)


_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()


def instrument_pool(engine: Engine) -> None:
    """Follow the engine's pool: checkouts and checkins move a gauge (once per engine)."""
    if engine in _instrumented:
        return
    _instrumented.add(engine)
    size = getattr(engine.pool, "size", None)
    if callable(size):
        DB_POOL_SIZE.inc(size())

    def checked_out(*_args: Any) -> None:
        DB_POOL_CHECKED_OUT.inc()

    def checked_in(*_args: Any) -> None:
        DB_POOL_CHECKED_OUT.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape_registry() -> CollectorRegistry:
    """What a scrape reports: this process, or every worker's files when there are several."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The scrape body and its content type, in the format the scraper's Accept header asks for."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(scrape_registry()), content_type
