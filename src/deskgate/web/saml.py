"""SAML endpoints under the account's SSO token: SP metadata, SP-initiated login, and the ACS.

The ACS and the SP-initiated login are the sign-in hot path, so they are plain Starlette
endpoints (`install`): no dependency-injection pass, a direct parse of the urlencoded body,
and one hop to a worker thread for all the database and signature work (SQLAlchemy and the
database drivers block; on SQLite a transaction may wait for the write lock). The input guard
and every middleware still apply to them, and errors go through the app's handlers.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from urllib.parse import unquote_plus

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from python_multipart.multipart import parse_options_header
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from deskgate import redirects
from deskgate.saml.login import LoginPost
from deskgate.saml.untrusted_threads import validation_threads
from deskgate.services import sso, sso_config, sso_sign_in, sso_start
from deskgate.services.sso_config import SSOFailure
from deskgate.store.base import utcnow
from deskgate.web import errors
from deskgate.web.deps import Db, State, app_state, client_ip
from deskgate.web.plain_routes import PlainRoute
from deskgate.web.rendering import render
from deskgate.web.sign_in import set_session_cookie
from deskgate.web.state import AppState

router = APIRouter(prefix="/api/v1/sso/{sso_token}")

MAX_SAML_RESPONSE = 512 * 1024
MAX_RELAY_STATE = 2000
# What Starlette's form parser allows, kept so that the answers stay the same.
_MAX_FORM_FIELDS = 1000
_MAX_FIELD_BYTES = 1024 * 1024


def _clock_skew(state: AppState) -> dt.timedelta:
    return dt.timedelta(seconds=state.settings.saml_clock_skew_seconds)


def _caps(state: AppState) -> sso_config.AnonymousCaps:
    return sso_config.AnonymousCaps(
        refusals_recorded_per_minute=state.settings.sso_refusals_recorded_per_ip_per_minute,
        pending_requests=state.settings.sso_pending_requests_per_ip,
    )


def _failure_page(request: Request, failure: SSOFailure) -> Response:
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


# --- SP-initiated login ----------------------------------------------------------------------


def _load_config(
    state: AppState, db: Session, sso_token: str, idp_kind: str
) -> sso_config.SignInConfig | SSOFailure:
    return sso_config.load(
        db,
        sso_token=sso_token,
        idp_kind=idp_kind,
        base_url=state.settings.base_url,
        clock_skew=_clock_skew(state),
    )


def _start_login(
    state: AppState, sso_token: str, idp_kind: str, next_path: str, ip: str
) -> str | LoginPost | SSOFailure:
    with state.sessions() as db:
        config = _load_config(state, db, sso_token, idp_kind)
        if isinstance(config, SSOFailure):
            return config
        outcome = sso_start.start_login(
            db, config, next_path=next_path, now=utcnow(), ip=ip, caps=_caps(state)
        )
        db.commit()
    return outcome


async def sp_initiated_login(request: Request) -> Response:
    params = request.path_params
    outcome = await run_in_threadpool(
        _start_login,
        app_state(request),
        params["sso_token"],
        params["idp_kind"],
        redirects.local_path(request.query_params.get("next")),
        client_ip(request),
    )
    if isinstance(outcome, SSOFailure):
        return _failure_page(request, outcome)
    if isinstance(outcome, LoginPost):
        return render(request, "saml_post.html", {"url": outcome.url, "fields": outcome.fields})
    return RedirectResponse(outcome, status_code=303)


# --- the ACS -------------------------------------------------------------------------------


async def _form_fields(request: Request) -> dict[str, str]:
    """The urlencoded body as Starlette's form parser reads it (split on '&', names and values
    percent-decoded, the last of a repeated name wins), without its per-byte callbacks. Other
    media types have no fields, as there."""
    media_type, _ = parse_options_header(request.headers.get("content-type"))
    if media_type != b"application/x-www-form-urlencoded":
        return {}
    fields: dict[str, str] = {}
    count = 0
    for piece in (await request.body()).split(b"&"):
        if not piece:
            continue
        count += 1
        if count > _MAX_FORM_FIELDS:
            raise HTTPException(
                400, f"Too many fields. Maximum number of fields is {_MAX_FORM_FIELDS}."
            )
        if len(piece) - (b"=" in piece) > _MAX_FIELD_BYTES:
            raise HTTPException(
                400, f"Field exceeded maximum size of {_MAX_FIELD_BYTES // 1024}KB."
            )
        name, _, value = piece.partition(b"=")
        fields[unquote_plus(name.decode("latin-1"))] = unquote_plus(value.decode("latin-1"))
    return fields


def _too_long(fields: dict[str, str]) -> str | None:
    problems = [
        f"{name}: String should have at most {limit} characters"
        for name, limit in (("SAMLResponse", MAX_SAML_RESPONSE), ("RelayState", MAX_RELAY_STATE))
        if len(fields.get(name, "")) > limit
    ]
    return f"Some of what was sent is not valid ({'; '.join(problems)})." if problems else None


def _finish_login(
    state: AppState,
    sso_token: str,
    idp_kind: str,
    saml_response: str,
    relay_state: str | None,
    ip: str,
    user_agent: str | None,
) -> sso_sign_in.SSOSuccess | SSOFailure:
    now = utcnow()
    # On SQLite the connection is read in a read-only transaction of its own, which never waits
    # for the write lock, and the response is validated with no transaction open; only then does
    # the sign-in queue for the lock. PostgreSQL holds nothing for a read: one transaction there
    # spares a BEGIN, a COMMIT and a pool checkout.
    separate_read = state.engine.dialect.name == "sqlite"
    with state.sessions(write=not separate_read) as db:
        config = _load_config(state, db, sso_token, idp_kind)
        if isinstance(config, SSOFailure):
            return config
        if not separate_read:
            return _sign_in(state, db, config, saml_response, relay_state, now, ip, user_agent)
    # (leaving the block above ended the read: a rollback, as nothing was written)
    with state.sessions() as db:
        return _sign_in(state, db, config, saml_response, relay_state, now, ip, user_agent)


def _sign_in(
    state: AppState,
    db: Session,
    config: sso_config.SignInConfig,
    saml_response: str,
    relay_state: str | None,
    now: dt.datetime,
    ip: str,
    user_agent: str | None,
) -> sso_sign_in.SSOSuccess | SSOFailure:
    """Validate and sign in (finish_login opens no transaction before validating), then commit
    the session or the attempt record."""
    outcome = sso_sign_in.finish_login(
        db,
        config,
        saml_response=saml_response,
        relay_state=relay_state,
        now=now,
        session_policy=state.session_policy,
        ip=ip,
        user_agent=user_agent,
        caps=_caps(state),
    )
    db.commit()
    return outcome


async def assertion_consumer_service(request: Request) -> Response:
    # No CSRF token here: the IdP posts this form cross-site; the signed response is the proof.
    fields = await _form_fields(request)
    too_long = _too_long(fields)
    if too_long is not None:
        return errors.error_response(request, 400, too_long, errors.TITLES[400])
    saml_response = fields.get("SAMLResponse", "")
    if not saml_response:
        return _failure_page(
            request,
            SSOFailure(
                "No SAML response arrived. Start the sign-in again from your identity provider.",
                400,
            ),
        )
    state = app_state(request)
    params = request.path_params
    # On a thread of the pool that parses untrusted XML: the validation inside needs no hop.
    outcome = await validation_threads.run_async(
        partial(
            _finish_login,
            state,
            params["sso_token"],
            params["idp_kind"],
            saml_response,
            fields.get("RelayState") or None,
            client_ip(request),
            request.headers.get("user-agent"),
        )
    )
    if isinstance(outcome, SSOFailure):
        return _failure_page(request, outcome)
    response = RedirectResponse(outcome.redirect_to, status_code=303)
    set_session_cookie(
        response,
        outcome.cookie_value,
        state.settings.secure_cookies,
        int(state.session_policy.lifetime.total_seconds()),
    )
    return response


# --- registration --------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.router.routes.extend(
        [
            PlainRoute(
                "/api/v1/sso/{sso_token}/login/{idp_kind}", sp_initiated_login, method="GET"
            ),
            PlainRoute(
                "/api/v1/sso/{sso_token}/acs/{idp_kind}", assertion_consumer_service, method="POST"
            ),
        ]
    )
