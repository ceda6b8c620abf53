"""Manage › Security › Domains (admins): claim a domain, verify it by DNS, remove it.

The section is templates/_domains.html, included in the Security page, which renders it with
`page_context`. A refused form re-renders the Security page with the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import idna
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from deskgate.errors import DeskgateError
from deskgate.services import domains
from deskgate.services.dns_txt import DNSLookupError, resolver_from
from deskgate.store import domains as domain_store
from deskgate.store.base import utcnow
from deskgate.store.models import Account
from deskgate.web.deps import Admin, CsrfChecked, Db, State
from deskgate.web.rendering import redirect_with_notice

router = APIRouter(prefix="/manage/security/domains")

_DOMAIN_FIELD = Annotated[str, Form(max_length=300)]
_SECTION = "/manage/security#domains"


@dataclass(frozen=True)
class DomainRow:
    domain: str
    shown: str
    """The domain as people write it (Unicode for an internationalized name)."""
    txt_name: str
    txt_value: str
    verified_at: dt.datetime | None
    checked_at: dt.datetime | None
    check_error: str | None


def _unicode(domain: str) -> str:
    try:
        return str(idna.decode(domain))
    except (idna.IDNAError, UnicodeError):
        return domain


def page_context(db: Session, account: Account) -> dict[str, Any]:
    return {
        "domain_rows": [
            DomainRow(
                domain=claim.domain,
                shown=_unicode(claim.domain),
                txt_name=domains.txt_name(claim.domain),
                txt_value=domains.txt_value(claim.token),
                verified_at=claim.verified_at,
                checked_at=claim.checked_at,
                check_error=claim.check_error,
            )
            for claim in domain_store.of_account(db, account.id)
        ]
    }


def _refused(
    request: Request, db: Db, admin: Admin, state: State, problem: DeskgateError
) -> Response:
    from deskgate.web.manage_security import _page  # the page this section sits on

    db.rollback()
    return _page(request, db, admin, state, error=problem.message, status_code=problem.status_code)


@router.post("", dependencies=[CsrfChecked])
def add_domain(
    request: Request, db: Db, admin: Admin, state: State, domain: _DOMAIN_FIELD = ""
) -> Response:
    try:
        claim = domains.add_domain(db, admin.account, domain, actor=admin.actor, now=utcnow())
    except DeskgateError as problem:
        return _refused(request, db, admin, state, problem)
    return redirect_with_notice(
        _SECTION,
        f"{claim.domain} is claimed. Publish its TXT record in your DNS, then press Verify now.",
    )


@router.post("/verify", dependencies=[CsrfChecked])
def verify_domain(
    request: Request, db: Db, admin: Admin, state: State, domain: _DOMAIN_FIELD = ""
) -> Response:
    try:
        check = domains.start_verification(db, admin.account, domain)
        if isinstance(check, domains.PendingCheck):
            db.commit()  # hold no database lock (SQLite: the write lock) while DNS answers
            try:
                problem = domains.look_up(check, resolver_from(state.settings.dns_resolver))
            except DNSLookupError as no_resolver:
                problem = str(no_resolver)
            result = domains.finish_verification(
                db, admin.account, check, problem, actor=admin.actor, now=utcnow()
            )
        else:
            result = check
    except DeskgateError as problem:
        return _refused(request, db, admin, state, problem)
    if result.verified:
        return redirect_with_notice(_SECTION, f"{result.domain} is verified.")
    return redirect_with_notice(
        _SECTION, f"{result.domain} is not verified yet: {result.reason or ''}"
    )


@router.post("/remove", dependencies=[CsrfChecked])
def remove_domain(
    request: Request, db: Db, admin: Admin, state: State, domain: _DOMAIN_FIELD = ""
) -> Response:
    try:
        removed = domains.remove_domain(db, admin.account, domain, actor=admin.actor)
    except DeskgateError as problem:
        return _refused(request, db, admin, state, problem)
    return redirect_with_notice(_SECTION, f"{removed} is removed.")
