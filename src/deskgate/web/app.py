"""Composition root: build the whole web application from settings."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine

from deskgate import __version__
from deskgate.config import Settings
from deskgate.services.auth import SessionPolicy, ThrottlePolicy
from deskgate.store import secrets as secret_store
from deskgate.store.base import make_engine, make_sessionmaker
from deskgate.web import console, errors, manage_agents, manage_security, saml, sign_in
from deskgate.web.state import AppState

HERE = Path(__file__).parent


def _csrf_secret(settings: Settings, state_sessions: object) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    with state_sessions() as db:  # type: ignore[operator]
        value = secret_store.get_or_create(db, "secret_key", lambda: secrets.token_urlsafe(48))
        db.commit()
    return value.encode()


def create_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    """The deskgate ASGI app. The schema must already be migrated (`deskgate db upgrade`)."""
    engine = engine or make_engine(settings.database_url)
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
    app = FastAPI(
        title="deskgate", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.deskgate = state
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (sign_in, console, manage_agents, manage_security, saml):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    errors.install(app)
    return app
