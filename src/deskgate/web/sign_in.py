"""Sign-in pages: password, "Login with SSO", sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from deskgate import redirects
from deskgate.errors import SignInRefused, TooManyAttempts
from deskgate.services import auth, sso_routing
from deskgate.store.base import utcnow
from deskgate.web.deps import SESSION_COOKIE, CsrfChecked, Db, MaybeSignedIn, State, client_ip
from deskgate.web.rendering import render

router = APIRouter()


def set_session_cookie(
    response: Response, cookie_value: str, state_secure: bool, max_age: int
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        cookie_value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=state_secure,
        path="/",
    )


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/login")
def login_page(request: Request, current: MaybeSignedIn, next: str | None = None) -> Response:
    target = redirects.local_path(next)
    if current is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", {"next": target, "email": "", "error": None})


@router.post("/login", dependencies=[CsrfChecked])
def login_submit(
    request: Request,
    db: Db,
    state: State,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = redirects.local_path(next)
    try:
        signed_in = auth.password_sign_in(
            db,
            email=email,
            password=password,
            throttle_policy=state.throttle_policy,
            session_policy=state.session_policy,
            now=utcnow(),
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except (SignInRefused, TooManyAttempts) as refused:
        # Rendered, not raised: the failure record must be committed for the throttle to count it.
        status = 429 if isinstance(refused, TooManyAttempts) else 401
        response: Response = render(
            request,
            "login.html",
            {"next": target, "email": email, "error": refused.message},
            status_code=status,
        )
        if isinstance(refused, TooManyAttempts):
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(
        response,
        signed_in.cookie_value,
        state.settings.secure_cookies,
        int(state.session_policy.lifetime.total_seconds()),
    )
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request, db: Db) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        auth.sign_out(db, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/login/sso")
def sso_page(request: Request, next: str | None = None) -> Response:
    return render(
        request, "login_sso.html", {"next": redirects.local_path(next), "email": "", "error": None}
    )


@router.post("/login/sso", dependencies=[CsrfChecked])
def sso_submit(
    request: Request,
    db: Db,
    state: State,
    email: Annotated[str, Form(max_length=320)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = redirects.local_path(next)
    route = sso_routing.find_sso_for_email(db, email)
    if isinstance(route, sso_routing.NoSSO):
        return render(
            request,
            "login_sso.html",
            {"next": target, "email": email, "error": route.message},
            status_code=400,
        )
    url = f"{route.login_path}?{sso_routing.next_query(target)}"
    return RedirectResponse(url, status_code=303)
