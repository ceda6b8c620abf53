"""Manage › API (admins): the account's API keys: create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from deskgate.errors import InvalidInput, NotFound
from deskgate.services import api_keys
from deskgate.store.base import utcnow
from deskgate.web.deps import Admin, CsrfChecked, Db, State
from deskgate.web.rendering import redirect_with_notice, render

router = APIRouter(prefix="/manage")


def _page(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    *,
    error: str | None = None,
    form: dict[str, object] | None = None,
    new_key: api_keys.NewApiKey | None = None,
    status_code: int = 200,
) -> Response:
    response = render(
        request,
        "manage_api.html",
        {
            "keys": api_keys.list_keys(db, admin.account.id),
            "scopes": api_keys.SCOPES,
            "name_max_length": api_keys.NAME_MAX_LENGTH,
            "api_base_url": f"{state.settings.base_url}/api/v1",
            "error": error,
            "form": form or {"name": "", "scopes": []},
            "new_key": new_key,
        },
        current=admin,
        status_code=status_code,
    )
    if new_key is not None:  # the page holds a secret: no cache may keep it
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/api")
def api_page(request: Request, db: Db, admin: Admin, state: State) -> Response:
    return _page(request, db, admin, state)


@router.post("/api/keys", dependencies=[CsrfChecked])
def create_key(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    name: Annotated[str, Form(max_length=1000)] = "",
    scopes: Annotated[list[str] | None, Form(max_length=40)] = None,
) -> Response:
    chosen = (scopes or [])[:10]
    try:
        new_key = api_keys.create(
            db,
            admin.account.id,
            name=name,
            scopes=chosen,
            actor=admin.actor,
            created_by=admin.agent.id,
            now=utcnow(),
        )
    except InvalidInput as problem:
        return _page(
            request,
            db,
            admin,
            state,
            error=problem.message,
            form={"name": name[:200], "scopes": chosen},
            status_code=problem.status_code,
        )
    return _page(request, db, admin, state, new_key=new_key)


@router.post("/api/keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_key(request: Request, db: Db, admin: Admin, state: State, key_id: str) -> Response:
    try:
        key = api_keys.revoke(
            db,
            admin.account.id,
            key_id,
            actor=admin.actor,
            now=utcnow(),
        )
    except NotFound as problem:
        return _page(request, db, admin, state, error=problem.message, status_code=404)
    return redirect_with_notice(
        "/manage/api", f"API key “{key.name}” revoked: requests with it are refused from now on."
    )
