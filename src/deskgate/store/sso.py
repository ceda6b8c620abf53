"""SSO connections, outstanding AuthnRequests, seen assertion IDs and sign-in attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.store.models import LoginAttempt, SAMLRequest, SeenAssertion, SSOConnection, SSODomain


def connection(db: Session, account_id: str) -> SSOConnection | None:
    return db.get(SSOConnection, account_id)


def connections_with_metadata_url(
    db: Session, *, older_than: dt.datetime, failed_before: dt.datetime
) -> Sequence[SSOConnection]:
    """Connections whose metadata URL was last read before `older_than`, leaving out those whose
    last refresh failed at or after `failed_before`; the longest-waiting first."""
    return db.scalars(
        select(SSOConnection)
        .where(
            SSOConnection.metadata_url.is_not(None),
            (SSOConnection.metadata_fetched_at.is_(None)) | (SSOConnection.metadata_fetched_at < older_than),
            (SSOConnection.metadata_refresh_failed_at.is_(None))
            | (SSOConnection.metadata_refresh_failed_at < failed_before),
        )
        .order_by(SSOConnection.metadata_fetched_at.is_not(None), SSOConnection.metadata_fetched_at,
                  SSOConnection.account_id)
    ).all()


def add_request(
    db: Session, *, request_id: str, account_id: str, next_path: str, now: dt.datetime, ttl: dt.timedelta
) -> None:
    db.add(
        SAMLRequest(
            id=request_id, account_id=account_id, relay_state=next_path, created_at=now, expires_at=now + ttl
        )
    )


def consume_request(db: Session, account_id: str, request_id: str, now: dt.datetime) -> SAMLRequest | None:
    """Delete and return the outstanding request, if it is this account's and not expired.

    The DELETE … RETURNING is atomic: of two responses to one request, only one gets the row.
    """
    row = db.execute(
        delete(SAMLRequest)
        .where(SAMLRequest.id == request_id, SAMLRequest.account_id == account_id)
        .returning(SAMLRequest.relay_state, SAMLRequest.expires_at)
    ).first()
    if row is None:
        return None
    request = SAMLRequest(id=request_id, account_id=account_id, relay_state=row[0], expires_at=row[1])
    return request if request.expires_at > now else None


def remember_assertion(
    db: Session, *, account_id: str, assertion_id: str, keep_until: dt.datetime
) -> bool:
    """Record an assertion ID; False if this account has seen it already (a replay).

    The primary key (account, assertion id) decides, so app nodes sharing one database agree.
    """
    try:
        with db.begin_nested():
            db.add(SeenAssertion(account_id=account_id, assertion_id=assertion_id, expires_at=keep_until))
    except IntegrityError:
        return False
    return True


def prune(db: Session, now: dt.datetime) -> None:
    db.execute(delete(SeenAssertion).where(SeenAssertion.expires_at <= now))
    db.execute(delete(SAMLRequest).where(SAMLRequest.expires_at <= now))


def record_attempt(
    db: Session,
    *,
    account_id: str,
    method: str,
    succeeded: bool,
    now: dt.datetime,
    email: str | None = None,
    agent_id: str | None = None,
    reason_code: str | None = None,
    detail: str | None = None,
    ip: str | None = None,
) -> None:
    db.add(
        LoginAttempt(
            id=ids.new_id(ids.LOGIN_ATTEMPT),
            account_id=account_id,
            at=now,
            method=method,
            succeeded=succeeded,
            email=email[:320] if email else None,
            agent_id=agent_id,
            reason_code=reason_code,
            detail=detail[:4000] if detail else None,
            ip=ip,
        )
    )


def recent_attempts(db: Session, account_id: str, limit: int = 50) -> Sequence[LoginAttempt]:
    return db.scalars(
        select(LoginAttempt)
        .where(LoginAttempt.account_id == account_id)
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
        .limit(limit)
    ).all()


def domains(db: Session, account_id: str) -> list[str]:
    return list(
        db.scalars(select(SSODomain.domain).where(SSODomain.account_id == account_id).order_by(SSODomain.domain))
    )


def replace_domains(db: Session, account_id: str, new_domains: list[str]) -> str | None:
    """Set the account's SSO domains. Returns a domain another account already holds, if any."""
    db.execute(delete(SSODomain).where(SSODomain.account_id == account_id))
    for domain in new_domains:
        try:
            with db.begin_nested():
                db.add(SSODomain(domain=domain, account_id=account_id))
        except IntegrityError:
            return domain
    return None
