"""Request dependencies: the transaction, the signed-in agent, admin checks, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from deskgate.errors import Forbidden, NotAuthenticated
from deskgate.services import auth
from deskgate.store import accounts as account_store
from deskgate.store.base import utcnow
from deskgate.store.models import Role
from deskgate.web import csrf
from deskgate.web.observability import note_account
from deskgate.web.state import AppState

SESSION_COOKIE = "dg_session"


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.deskgate
    return state


async def _app_state(request: Request) -> AppState:
    # async: FastAPI would run a plain function in the thread pool, a hop for nothing.
    return app_state(request)


State = Annotated[AppState, Depends(_app_state)]


def _db(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent.

    scope="function" (below) makes FastAPI run the code after `yield` when the route returns,
    before the response leaves, so a failed commit becomes an error response, not a lost write.
    """
    session = app_state(request).sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


Db = Annotated[Session, Depends(_db, scope="function")]


def _session_cookie(request: Request) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie if cookie and len(cookie) <= 200 else None


def _current(request: Request, db: Db) -> auth.CurrentSession | None:
    """The session check of the pages, in the request's transaction."""
    cookie = _session_cookie(request)
    if cookie is None:
        return None
    current = auth.current_session(db, cookie, utcnow())
    if current is not None:
        note_account(request.scope, current.account.id)
    return current


def _check_session(state: AppState, cookie: str) -> auth.CurrentSession | None:
    # The check only reads, in a read-only transaction (on SQLite it never waits for the write
    # lock); the rare write it calls for (last_seen_at every few minutes, removing an expired
    # session) follows in a short transaction of its own.
    now = utcnow()
    with state.sessions(write=False) as db:
        current, upkeep = auth.read_session(db, cookie, now)
    if upkeep is not None:
        with state.sessions() as db:
            auth.keep_up(db, upkeep, now)
            db.commit()
    return current


async def signed_in(request: Request) -> auth.CurrentSession:
    """The session check for plain endpoints (no dependency injection): its own short
    transaction, in one hop to a worker thread. Raises NotAuthenticated without a live session."""
    cookie = _session_cookie(request)
    current = (
        None
        if cookie is None
        else await run_in_threadpool(_check_session, app_state(request), cookie)
    )
    if current is None:
        raise NotAuthenticated("Sign in to continue.")
    note_account(request.scope, current.account.id)
    return current


MaybeSignedIn = Annotated[auth.CurrentSession | None, Depends(_current)]


async def _require_agent(current: MaybeSignedIn) -> auth.CurrentSession:
    if current is None:
        raise NotAuthenticated("Sign in to continue.")
    return current


SignedIn = Annotated[auth.CurrentSession, Depends(_require_agent)]


def _require_admin(current: SignedIn, db: Db) -> auth.AdminSession:
    if current.agent.role != Role.ADMIN:
        raise Forbidden("Only the account's admins can open this page.")
    # The admin pages change the account (settings, tokens): load it into the request's session.
    account = account_store.get(db, current.account.id)
    if account is None:  # deleted since the session check, in this very transaction: unlikely
        raise NotAuthenticated("Sign in to continue.")
    return auth.AdminSession(session=current.session, agent=current.agent, account=account)


Admin = Annotated[auth.AdminSession, Depends(_require_admin)]


async def _csrf(request: Request) -> None:
    await csrf.verify(request, app_state(request).csrf_secret)


CsrfChecked = Depends(_csrf)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
