"""CSRF protection: a signed double-submit token.

A random value lives in an HttpOnly cookie; forms carry HMAC(secret, value). A cross-site page
can make the browser send the cookie but cannot read it, so it cannot forge the form field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from deskgate.errors import Forbidden

COOKIE = "dg_csrf"
FIELD = "csrf_token"


def _sign(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


def cookie_value(request: Request) -> str:
    """The request's CSRF cookie value, minting one (set on the response by `set_cookie`)."""
    value = getattr(request.state, "csrf_cookie", None) or request.cookies.get(COOKIE)
    if not value or len(value) > 100:
        value = secrets.token_urlsafe(24)
    request.state.csrf_cookie = value
    return value


def token_for(request: Request, secret: bytes) -> str:
    return _sign(secret, cookie_value(request))


def set_cookie(request: Request, response: Response, *, secure: bool) -> None:
    value = getattr(request.state, "csrf_cookie", None)
    if value and value != request.cookies.get(COOKIE):
        response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/")


async def verify(request: Request, secret: bytes) -> None:
    form = await request.form()
    sent = form.get(FIELD)
    cookie = request.cookies.get(COOKIE)
    if (
        not isinstance(sent, str)
        or not cookie
        or not hmac.compare_digest(sent, _sign(secret, cookie))
    ):
        raise Forbidden(
            "This form has expired or was not sent from deskgate (CSRF check failed). "
            "Reload the page and try again."
        )
