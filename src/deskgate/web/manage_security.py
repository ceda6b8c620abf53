"""Manage › Security (admins): single sign-on and provisioning settings."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from deskgate.errors import Conflict, Forbidden, InvalidInput
from deskgate.saml.attributes import ATTRIBUTE_NAMES
from deskgate.services import metadata_fetch, provisioning, scim_credentials, sso, sso_refresh
from deskgate.services.sign_in_match import IDP_ATTRIBUTE_HINTS
from deskgate.services.sso_config import urls_for
from deskgate.store import scim_tokens
from deskgate.store import sso as sso_store
from deskgate.store.base import utcnow
from deskgate.store.models import IdPKind, Plan, Role, SignInMatch
from deskgate.web import certificate_context, manage_domains
from deskgate.web.deps import Admin, CsrfChecked, Db, State
from deskgate.web.idp_guides import GUIDES
from deskgate.web.rendering import redirect_with_notice, render

router = APIRouter(prefix="/manage")

GRACE_CHOICES = {
    "0": "immediately",
    "1": "after 1 hour",
    "24": "after 24 hours",
    "168": "after 7 days",
}


def _page(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    *,
    idp: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    saved: sso.SavedSSO | None = None,
    new_scim: scim_credentials.ScimCredentials | None = None,
    form_values: dict[str, Any] | None = None,
) -> Response:
    account = admin.account
    context: dict[str, Any] = {"sso_available": account.plan == Plan.SCALE_PLUS}
    if account.plan != Plan.SCALE_PLUS:
        return render(
            request, "manage_security.html", context, current=admin, status_code=status_code
        )
    now = utcnow()
    connection = sso.ensure_connection(db, account, now)
    idp_kind = idp if idp in {k.value for k in IdPKind} else connection.idp_kind
    settings = state.settings
    context.update(
        connection=connection,
        idp_kind=idp_kind,
        idp_kinds=[(k.value, GUIDES[k].label) for k in IdPKind],
        guide=GUIDES[IdPKind(idp_kind)],
        urls=urls_for(settings.base_url, account.sso_token, idp_kind),
        **certificate_context.context(db, connection, now),
        attribute_names=ATTRIBUTE_NAMES,
        roles=[r.value for r in Role],
        **manage_domains.page_context(db, account),
        sign_in_matches=[
            (
                SignInMatch.USER_NAME.value,
                "NameID = the agent's userName (recommended with SCIM provisioning)",
            ),
            (SignInMatch.EMAIL.value, "Email (NameID or an email attribute) = the agent's email"),
        ],
        sign_in_match_hints=IDP_ATTRIBUTE_HINTS,
        attempts=sso_store.recent_attempts(db, account.id),
        scim_base_url=scim_credentials.scim_base_url(settings.base_url, account),
        scim_tokens=scim_tokens.live_for_account(db, account.id, now),
        grace_choices=GRACE_CHOICES,
        now=now,
        error=error,
        saved=saved,
        new_scim=new_scim or (saved.scim if saved else None),
        form=form_values or {},
        refresh_retry_hours=int(sso_refresh.METADATA_RETRY_AFTER.total_seconds() // 3600),
        **provisioning.scim_page_context(db, account.id),
    )
    return render(request, "manage_security.html", context, current=admin, status_code=status_code)


@router.get("/security")
def security_page(
    request: Request, db: Db, admin: Admin, state: State, idp: str | None = None
) -> Response:
    return _page(request, db, admin, state, idp=idp)


def _checked(value: str | None) -> bool:
    return value in ("on", "true", "1")


@router.post("/security/sso", dependencies=[CsrfChecked])
def save_sso(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    idp_kind: Annotated[str, Form(max_length=20)] = "okta",
    enabled: Annotated[str | None, Form(max_length=5)] = None,
    metadata_xml: Annotated[str, Form(max_length=1024 * 1024)] = "",
    metadata_url: Annotated[str, Form(max_length=2048)] = "",
    allow_idp_initiated: Annotated[str | None, Form(max_length=5)] = None,
    jit_enabled: Annotated[str | None, Form(max_length=5)] = None,
    jit_role: Annotated[str, Form(max_length=10)] = "agent",
    require_sso: Annotated[str | None, Form(max_length=5)] = None,
    allow_sha1: Annotated[str | None, Form(max_length=5)] = None,
    sign_in_match: Annotated[str, Form(max_length=20)] = SignInMatch.EMAIL.value,
) -> Response:
    form = sso.SSOSettingsForm(
        enabled=_checked(enabled),
        idp_kind=idp_kind,
        metadata_xml=metadata_xml,
        metadata_url=metadata_url,
        allow_idp_initiated=_checked(allow_idp_initiated),
        jit_enabled=_checked(jit_enabled),
        jit_role=jit_role,
        require_sso=_checked(require_sso),
        allow_sha1=_checked(allow_sha1),
        sign_in_match=sign_in_match,
    )
    try:
        fetched = None
        if metadata_url.strip():
            db.commit()  # hold no database lock (SQLite: the write lock) while waiting on the network
            fetched = metadata_fetch.fetch_metadata(
                metadata_url, allow_private=state.settings.allow_private_metadata_urls
            )
        with (
            db.begin_nested()
        ):  # all or nothing: a bad value leaves the stored settings as they were
            saved = sso.save_settings(
                db,
                admin.account,
                form,
                now=utcnow(),
                base_url=state.settings.base_url,
                fetched_metadata=fetched,
                allow_private_urls=state.settings.allow_private_metadata_urls,
                actor=admin.actor,
                certificate_overlap=state.settings.certificate_overlap,
            )
    except (InvalidInput, Conflict, Forbidden) as problem:
        return _page(
            request,
            db,
            admin,
            state,
            idp=idp_kind,
            error=problem.message,
            status_code=problem.status_code,
            form_values=form.__dict__,
        )
    return _page(request, db, admin, state, saved=saved)


@router.post("/security/sso-token", dependencies=[CsrfChecked])
def rotate_sso_token(db: Db, admin: Admin) -> Response:
    sso.rotate_sso_token(db, admin.account, actor=admin.actor)
    return redirect_with_notice(
        "/manage/security",
        "New SSO token issued. Update the ACS URL (or the token) in your identity provider now: "
        "the old URLs no longer work.",
    )


@router.post("/security/scim-token", dependencies=[CsrfChecked])
def issue_scim_token(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    grace_hours: Annotated[str, Form(max_length=5)] = "0",
) -> Response:
    if grace_hours not in GRACE_CHOICES:
        return _page(
            request,
            db,
            admin,
            state,
            error="Choose when the old token stops working.",
            status_code=400,
        )
    credentials = scim_credentials.issue(
        db,
        admin.account,
        base_url=state.settings.base_url,
        now=utcnow(),
        grace=dt.timedelta(hours=int(grace_hours)),
        actor=admin.actor,
    )
    return _page(request, db, admin, state, new_scim=credentials)
