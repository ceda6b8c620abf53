"""Composition root: build the whole web application from settings."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from deskgate import __version__, metrics
from deskgate.config import Settings
from deskgate.services import (
    certificate_watch,
    metadata_fetch,
    retention,
    sso_refresh,
    webhook_dispatch,
)
from deskgate.services.auth import SessionPolicy, ThrottlePolicy
from deskgate.store import secrets as secret_store
from deskgate.store.base import make_engine, make_sessionmaker, utcnow
from deskgate.web import (
    api_routes,
    console,
    errors,
    health,
    manage_agents,
    manage_api,
    manage_audit,
    manage_certificates,
    manage_domains,
    manage_scim_groups,
    manage_security,
    manage_webhooks,
    saml,
    sign_in,
)
from deskgate.web.headers import SecurityHeaders
from deskgate.web.input_guard import InputGuard
from deskgate.web.observability import RequestObservability
from deskgate.web.scim import app as scim
from deskgate.web.state import AppState

HERE = Path(__file__).parent
METADATA_REFRESH_INTERVAL = 3600  # seconds between passes; each connection is refreshed once a day
log = logging.getLogger("deskgate.web")


async def _refresh_metadata_forever(state: AppState) -> None:
    """Every app node runs this; the work is idempotent, so several nodes need no lock."""
    allow_private = state.settings.allow_private_metadata_urls

    def fetch(url: str) -> bytes:
        return metadata_fetch.fetch_metadata(url, allow_private=allow_private)

    while True:
        # Sleep first: a node that just started has requests to serve, and nodes restarted
        # together should not all fetch at once.
        await asyncio.sleep(METADATA_REFRESH_INTERVAL)
        try:
            with metrics.background_pass("metadata_refresh"):
                await anyio.to_thread.run_sync(
                    partial(
                        sso_refresh.refresh_stale_metadata,
                        allow_http=allow_private,
                        certificate_overlap=state.settings.certificate_overlap,
                    ),
                    state.sessions,
                    fetch,
                    utcnow(),
                )
        except Exception:  # a pass that could not start (database down) must not end the loop
            log.exception("IdP metadata refresh failed")
        try:  # right after the refresh: it sees the certificates the refresh just read
            with metrics.background_pass("certificate_watch"):
                await anyio.to_thread.run_sync(certificate_watch.run, state.sessions, utcnow())
        except Exception:
            log.exception("certificate watch failed")


async def _retain_forever(state: AppState) -> None:
    """Every app node prunes on a timer; a pass is idempotent and deletes in short batches."""
    policy = retention.RetentionPolicy.from_settings(state.settings)
    while True:
        await asyncio.sleep(state.settings.retention_interval_seconds)  # first pass after a while
        try:
            with metrics.background_pass("retention"):
                counts = await anyio.to_thread.run_sync(
                    retention.run, state.sessions, policy, utcnow()
                )
            if any(counts.values()):
                log.info("retention deleted %s", counts)
        except Exception:  # a bad pass must not end the loop; the next one retries
            log.exception("retention pass failed")


def _csrf_secret(settings: Settings, state_sessions: object) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    with state_sessions() as db:  # type: ignore[operator]
        value = secret_store.get_or_create(db, "secret_key", lambda: secrets.token_urlsafe(48))
        db.commit()
    return value.encode()


class DeskgateApp(FastAPI):
    """FastAPI, with SCIM requests sent ahead of it to their own lean app (web/scim/app.py):
    they need none of the HTML stack, and they are the most frequent requests."""

    scim_app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scim.serves(scope):
            await self.scim_app(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """The deskgate ASGI app. The schema must already be migrated (`deskgate db upgrade`)."""
    engine = engine or make_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_max_overflow,
    )
    sessions = make_sessionmaker(engine)
    templates = Jinja2Templates(directory=HERE / "templates")
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        templates=templates,
        csrf_secret=_csrf_secret(settings, sessions),
        session_policy=SessionPolicy(lifetime=dt.timedelta(hours=settings.session_lifetime_hours)),
        throttle_policy=ThrottlePolicy(
            failures_per_email=settings.login_failure_limit,
            failures_per_ip=settings.login_failure_limit * 4,
            window=dt.timedelta(seconds=settings.login_failure_window_seconds),
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        refresher = asyncio.create_task(_refresh_metadata_forever(state))
        retainer = asyncio.create_task(_retain_forever(state))
        # Cancelled sends leave their leases, which run out: another node (or the next start)
        # sends them again.
        dispatcher = asyncio.create_task(
            webhook_dispatch.Dispatcher(
                sessions, webhook_dispatch.DispatchPolicy.from_settings(settings)
            ).run_forever()
        )
        try:
            yield
        finally:  # a pass under way finishes its thread first: no transaction is cut short
            refresher.cancel()
            retainer.cancel()
            dispatcher.cancel()
            await asyncio.gather(refresher, retainer, dispatcher, return_exceptions=True)

    app = DeskgateApp(
        title="deskgate",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.deskgate = state
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (
        sign_in,
        manage_agents,
        manage_security,
        manage_scim_groups,
        manage_certificates,
        manage_api,
        manage_domains,
        manage_webhooks,
        manage_audit,
    ):
        app.include_router(module.router)
    console.install(app)
    api_routes.install(app, engine)
    saml.install(app)

    health.install(app, state)
    app.scim_app = scim.scim_app(state)
    errors.install(app)
    app.add_middleware(errors.UnexpectedErrors)  # innermost: a 500 still gets every header
    app.add_middleware(InputGuard)  # inside SecurityHeaders: its refusals get the headers too
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestObservability)  # last added runs first: it times everything
    return app
