"""Request dependencies: the transaction, the signed-in agent, admin checks, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from deskgate.errors import Forbidden, NotAuthenticated
from deskgate.services import auth
from deskgate.store.base import utcnow
from deskgate.store.models import Role
from deskgate.web import csrf
from deskgate.web.observability import note_account
from deskgate.web.state import AppState

SESSION_COOKIE = "dg_session"


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.deskgate
    return state


State = Annotated[AppState, Depends(app_state)]


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


def _current(request: Request, db: Db) -> auth.CurrentSession | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > 200:
        return None
    current = auth.current_session(db, cookie, utcnow())
    if current is not None:
        note_account(request.scope, current.account.id)
    return current


MaybeSignedIn = Annotated[auth.CurrentSession | None, Depends(_current)]


def _require_agent(current: MaybeSignedIn) -> auth.CurrentSession:
    if current is None:
        raise NotAuthenticated("Sign in to continue.")
    return current


SignedIn = Annotated[auth.CurrentSession, Depends(_require_agent)]


def _require_admin(current: SignedIn) -> auth.CurrentSession:
    if current.agent.role != Role.ADMIN:
        raise Forbidden("Only the account's admins can open this page.")
    return current


Admin = Annotated[auth.CurrentSession, Depends(_require_admin)]


async def _csrf(request: Request) -> None:
    await csrf.verify(request, app_state(request).csrf_secret)


CsrfChecked = Depends(_csrf)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
