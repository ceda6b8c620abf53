"""Manage › Security › Certificates (admins): add the IdP's next signing certificate ahead of a
rotation, remove one added here, and roll the SP key over."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from deskgate.errors import Conflict, Forbidden, InvalidInput, NotFound
from deskgate.services import certificates, sp_keys, sso
from deskgate.store.base import utcnow
from deskgate.store.models import Plan, SSOConnection
from deskgate.web.deps import Admin, CsrfChecked, Db, State
from deskgate.web.manage_security import _page as security_page
from deskgate.web.rendering import redirect_with_notice

router = APIRouter(prefix="/manage/security")

_PAGE = "/manage/security#certificates"


def _connection(db: Db, admin: Admin) -> SSOConnection:
    if admin.account.plan != Plan.SCALE_PLUS:
        raise Forbidden("Single sign-on is available on the Scale Plus plan.")
    return sso.ensure_connection(db, admin.account, utcnow())


def _refused(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    problem: InvalidInput | Conflict | Forbidden | NotFound,
) -> Response:
    # Every service refuses before it changes anything: there is nothing to undo.
    return security_page(
        request, db, admin, state, error=problem.message, status_code=problem.status_code
    )


@router.post("/certificates", dependencies=[CsrfChecked])
def add_certificate(
    request: Request,
    db: Db,
    admin: Admin,
    state: State,
    certificate_pem: Annotated[str, Form(max_length=64 * 1024)] = "",
) -> Response:
    try:
        row = certificates.add_by_admin(
            db, _connection(db, admin), certificate_pem, utcnow(), actor=admin.actor
        )
    except (InvalidInput, Conflict, Forbidden) as problem:
        return _refused(request, db, admin, state, problem)
    return redirect_with_notice(
        _PAGE,
        f"Certificate {row.subject} (SHA-256 {row.fingerprint}) added: signatures made with it "
        "are accepted from now on, beside the others.",
    )


@router.post("/certificates/{certificate_id}/remove", dependencies=[CsrfChecked])
def remove_certificate(
    request: Request, db: Db, admin: Admin, state: State, certificate_id: str
) -> Response:
    try:
        row = certificates.remove_by_admin(
            db, _connection(db, admin), certificate_id, utcnow(), actor=admin.actor
        )
    except (Conflict, Forbidden, NotFound) as problem:
        return _refused(request, db, admin, state, problem)
    return redirect_with_notice(
        _PAGE, f"Certificate {row.subject} removed: signatures made with it are refused."
    )


@router.post("/sp-key/rollover", dependencies=[CsrfChecked])
def start_sp_key_rollover(request: Request, db: Db, admin: Admin, state: State) -> Response:
    try:
        sp_keys.start_rollover(
            db, _connection(db, admin), admin.account.name, utcnow(), actor=admin.actor
        )
    except (Conflict, Forbidden) as problem:
        return _refused(request, db, admin, state, problem)
    return redirect_with_notice(
        _PAGE,
        "New SP certificate generated and published in the SP metadata beside the current one. "
        "Now give it to your IdP (see below), then complete the rollover.",
    )


@router.post("/sp-key/rollover/complete", dependencies=[CsrfChecked])
def complete_sp_key_rollover(request: Request, db: Db, admin: Admin, state: State) -> Response:
    try:
        sp_keys.complete_rollover(
            db,
            _connection(db, admin),
            utcnow(),
            overlap=state.settings.certificate_overlap,
            actor=admin.actor,
        )
    except (Conflict, Forbidden) as problem:
        return _refused(request, db, admin, state, problem)
    return redirect_with_notice(
        _PAGE,
        "SP key rollover completed: the new key signs sign-in requests; the old one is out of the "
        "SP metadata and still decrypts for "
        f"{state.settings.certificate_overlap_days} days.",
    )
