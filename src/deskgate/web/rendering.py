"""Render a page with what every template needs (CSRF token, the signed-in agent)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from deskgate.services.auth import AdminSession, CurrentSession
from deskgate.web import csrf
from deskgate.web.deps import app_state

NOTICE_COOKIE = "dg_notice"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    current: CurrentSession | AdminSession | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    state = app_state(request)
    notice = request.cookies.get(NOTICE_COOKIE)
    values: dict[str, Any] = {
        "notice": unquote(notice)[:300] if notice else None,
        "request": request,
        "csrf_token": csrf.token_for(request, state.csrf_secret),
        "current": current,
        "base_url": state.settings.base_url,
    }
    values.update(context or {})
    response = state.templates.TemplateResponse(request, template, values, status_code=status_code)
    csrf.set_cookie(request, response, secure=state.settings.secure_cookies)
    if notice:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    return response


def redirect_with_notice(location: str, notice: str) -> RedirectResponse:
    """Redirect after a POST, with a one-time message for the next page (a cookie, not the URL,
    so nobody can put words on our pages with a crafted link)."""
    response = RedirectResponse(location, status_code=303)
    response.set_cookie(
        NOTICE_COOKIE, quote(notice[:300]), max_age=60, httponly=True, samesite="lax", path="/"
    )
    return response
