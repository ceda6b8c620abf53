"""SAML endpoints under the account's SSO token: SP metadata, SP-initiated login, and the ACS."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from deskgate import redirects
from deskgate.saml.login import LoginPost
from deskgate.services import sso
from deskgate.store.base import utcnow
from deskgate.web.deps import Db, State, client_ip
from deskgate.web.rendering import render
from deskgate.web.sign_in import set_session_cookie
from deskgate.web.state import AppState

router = APIRouter(prefix="/api/v1/sso/{sso_token}")

MAX_SAML_RESPONSE = 512 * 1024


def _clock_skew(state: AppState) -> dt.timedelta:
    return dt.timedelta(seconds=state.settings.saml_clock_skew_seconds)


def _caps(state: AppState) -> sso.AnonymousCaps:
    return sso.AnonymousCaps(
        refusals_recorded_per_minute=state.settings.sso_refusals_recorded_per_ip_per_minute,
        pending_requests=state.settings.sso_pending_requests_per_ip,
    )


def _failure_page(request: Request, failure: sso.SSOFailure) -> Response:
    response = render(
        request,
        "error.html",
        {
            "title": "Single sign-on failed",
            "message": failure.message,
            "back_url": "/login",
            "back_label": "Back to sign-in",
        },
        status_code=failure.status_code,
    )
    if failure.retry_after is not None:
        response.headers["Retry-After"] = str(failure.retry_after)
    return response


@router.get("/metadata/{idp_kind}")
def sp_metadata(sso_token: str, idp_kind: str, db: Db, state: State) -> Response:
    xml = sso.sp_metadata_for(
        db,
        sso_token,
        idp_kind,
        base_url=state.settings.base_url,
        now=utcnow(),
        clock_skew=_clock_skew(state),
    )
    return Response(xml, media_type="application/samlmetadata+xml")


@router.get("/login/{idp_kind}")
def sp_initiated_login(
    request: Request, sso_token: str, idp_kind: str, db: Db, state: State, next: str | None = None
) -> Response:
    outcome = sso.start_login(
        db,
        sso_token=sso_token,
        idp_kind=idp_kind,
        next_path=redirects.local_path(next),
        now=utcnow(),
        base_url=state.settings.base_url,
        clock_skew=_clock_skew(state),
        ip=client_ip(request),
        caps=_caps(state),
    )
    if isinstance(outcome, sso.SSOFailure):
        return _failure_page(request, outcome)
    if isinstance(outcome, LoginPost):
        return render(request, "saml_post.html", {"url": outcome.url, "fields": outcome.fields})
    return RedirectResponse(outcome, status_code=303)


@router.post("/acs/{idp_kind}")
def assertion_consumer_service(
    request: Request,
    sso_token: str,
    idp_kind: str,
    db: Db,
    state: State,
    SAMLResponse: Annotated[str, Form(max_length=MAX_SAML_RESPONSE)] = "",
    RelayState: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    # No CSRF token here: the IdP posts this form cross-site; the signed response is the proof.
    if not SAMLResponse:
        return _failure_page(
            request,
            sso.SSOFailure(
                "No SAML response arrived. Start the sign-in again from your identity provider.",
                400,
            ),
        )
    outcome = sso.finish_login(
        db,
        sso_token=sso_token,
        idp_kind=idp_kind,
        saml_response=SAMLResponse,
        relay_state=RelayState or None,
        now=utcnow(),
        base_url=state.settings.base_url,
        clock_skew=_clock_skew(state),
        session_policy=state.session_policy,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        caps=_caps(state),
    )
    if isinstance(outcome, sso.SSOFailure):
        return _failure_page(request, outcome)
    response = RedirectResponse(outcome.redirect_to, status_code=303)
    set_session_cookie(
        response,
        outcome.cookie_value,
        state.settings.secure_cookies,
        int(state.session_policy.lifetime.total_seconds()),
    )
    return response
