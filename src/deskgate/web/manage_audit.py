"""Manage › Audit log (admins): the account's events, filtered, paged, exported as CSV."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from deskgate.errors import InvalidInput
from deskgate.services import audit_log
from deskgate.services.event_snapshots import ACTOR_TYPES
from deskgate.services.events import CATALOGUE
from deskgate.store.base import utcnow
from deskgate.web.deps import Admin, Db, State
from deskgate.web.rendering import render

router = APIRouter(prefix="/manage")

_Text = Annotated[str, Query(max_length=320)]


def _form(
    actor_type: str, actor: str, agent: str, type: str, since: str, until: str
) -> audit_log.FilterForm:
    return audit_log.FilterForm(
        actor_type=actor_type, actor=actor, agent=agent, type=type, since=since, until=until
    )


@router.get("/audit")
def audit_page(
    request: Request,
    db: Db,
    admin: Admin,
    actor_type: _Text = "",
    actor: _Text = "",
    agent: _Text = "",
    type: _Text = "",  # noqa: A002 - the query parameter's name
    since: _Text = "",
    until: _Text = "",
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    form = _form(actor_type, actor, agent, type, since, until)
    context = {
        "form": form,
        "actor_types": ACTOR_TYPES,
        "event_types": list(CATALOGUE),
        "csv_url": "/manage/audit.csv" + (f"?{urlencode(form.query())}" if form.query() else ""),
    }
    try:
        wanted = audit_log.event_filter(db, admin.account.id, form)
    except InvalidInput as problem:
        return render(
            request,
            "manage_audit.html",
            {**context, "error": problem.message, "page": None},
            current=admin,
            status_code=problem.status_code,
        )
    page = audit_log.read_page(db, admin.account.id, wanted, before_seq=before)
    older_url = (
        f"/manage/audit?{urlencode({**form.query(), 'before': page.older_than})}"
        if page.older_than is not None
        else None
    )
    return render(
        request,
        "manage_audit.html",
        {**context, "page": page, "older_url": older_url, "paged": before is not None},
        current=admin,
    )


@router.get("/audit.csv")
def audit_csv(
    db: Db,
    admin: Admin,
    state: State,
    actor_type: _Text = "",
    actor: _Text = "",
    agent: _Text = "",
    type: _Text = "",  # noqa: A002
    since: _Text = "",
    until: _Text = "",
) -> Response:
    """The filtered events as CSV, streamed: each batch is read in a short read-only
    transaction of its own, after the request's own has ended."""
    form = _form(actor_type, actor, agent, type, since, until)
    wanted = audit_log.event_filter(db, admin.account.id, form)  # InvalidInput: the error page
    account_id = admin.account.id
    filename = f"deskgate-audit-{account_id}-{utcnow():%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        audit_log.csv_lines(lambda: state.sessions(write=False), account_id, wanted),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
