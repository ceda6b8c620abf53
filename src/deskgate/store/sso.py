"""SSO connections, outstanding AuthnRequests, seen assertion IDs and sign-in attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.display_text import for_display
from deskgate.store import batches
from deskgate.store.models import LoginAttempt, SAMLRequest, SeenAssertion, SSOConnection, SSODomain


def _ip(ip: str | None) -> str | None:
    return ip[:64] if ip else None  # the column's size; a client address is never longer


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
            (SSOConnection.metadata_fetched_at.is_(None))
            | (SSOConnection.metadata_fetched_at < older_than),
            (SSOConnection.metadata_refresh_failed_at.is_(None))
            | (SSOConnection.metadata_refresh_failed_at < failed_before),
        )
        .order_by(
            SSOConnection.metadata_fetched_at.is_not(None),
            SSOConnection.metadata_fetched_at,
            SSOConnection.account_id,
        )
    ).all()


def add_request(
    db: Session,
    *,
    request_id: str,
    account_id: str,
    next_path: str,
    now: dt.datetime,
    ttl: dt.timedelta,
    ip: str | None = None,
) -> None:
    db.add(
        SAMLRequest(
            id=request_id,
            account_id=account_id,
            relay_state=next_path,
            created_at=now,
            expires_at=now + ttl,
            ip=_ip(ip),
        )
    )


def outstanding_requests(
    db: Session, account_id: str, ip: str | None, now: dt.datetime
) -> tuple[int, dt.datetime | None]:
    """(unexpired requests this IP started for the account, when the first of them expires)."""
    count, first_expiry = db.execute(
        select(func.count(), func.min(SAMLRequest.expires_at)).where(
            SAMLRequest.account_id == account_id,
            SAMLRequest.ip == _ip(ip),
            SAMLRequest.expires_at > now,
        )
    ).one()
    return int(count), first_expiry


def consume_request(
    db: Session, account_id: str, request_id: str, now: dt.datetime
) -> SAMLRequest | None:
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
    request = SAMLRequest(
        id=request_id, account_id=account_id, relay_state=row[0], expires_at=row[1]
    )
    return request if request.expires_at > now else None


def remember_assertion(
    db: Session, *, account_id: str, assertion_id: str, keep_until: dt.datetime
) -> bool:
    """Record an assertion ID; False if this account has seen it already (a replay).

    The primary key (account, assertion id) decides, so app nodes sharing one database agree.
    """
    try:
        with db.begin_nested():
            db.add(
                SeenAssertion(
                    account_id=account_id, assertion_id=assertion_id, expires_at=keep_until
                )
            )
    except IntegrityError:
        return False
    return True


# --- retention: each deletes at most `limit` rows and says how many went ---------------------


def prune_requests(db: Session, now: dt.datetime, limit: int) -> int:
    """Expired AuthnRequests: no response can be accepted for them any more."""
    return batches.delete_older(db, SAMLRequest, SAMLRequest.expires_at, now, limit)


def prune_seen_assertions(db: Session, now: dt.datetime, limit: int) -> int:
    """Assertion IDs past their replay window: the assertion itself is refused as expired."""
    return batches.delete_older(db, SeenAssertion, SeenAssertion.expires_at, now, limit)


def prune_attempts(db: Session, before: dt.datetime, limit: int) -> int:
    return batches.delete_older(db, LoginAttempt, LoginAttempt.at, before, limit)


def accounts_over_attempt_cap(db: Session, cap: int) -> list[str]:
    return batches.accounts_over(db, LoginAttempt, cap)


def attempts_cutoff(db: Session, account_id: str, keep: int) -> batches.Cutoff | None:
    return batches.cutoff_beyond_newest(db, LoginAttempt, account_id, keep)


def prune_attempts_up_to(db: Session, account_id: str, cutoff: batches.Cutoff, limit: int) -> int:
    return batches.delete_up_to(db, LoginAttempt, account_id, cutoff, limit)


EMAIL_LIMIT = 320


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
            email=for_display(email, EMAIL_LIMIT),
            agent_id=agent_id,
            reason_code=reason_code,
            detail=for_display(detail),
            ip=_ip(ip),
        )
    )


def refusals_since(db: Session, account_id: str, ip: str | None, since: dt.datetime) -> int:
    """How many refusals from this IP the account has recorded since `since`."""
    return int(
        db.scalar(
            select(func.count()).where(
                LoginAttempt.account_id == account_id,
                LoginAttempt.ip == _ip(ip),
                LoginAttempt.at > since,
                LoginAttempt.succeeded.is_(False),
            )
        )
        or 0
    )


def count_suppressed_refusal(db: Session, account_id: str, ip: str | None) -> None:
    """Count one more unrecorded refusal on the latest refusal row from this IP."""
    latest = (
        select(LoginAttempt.id)
        .where(
            LoginAttempt.account_id == account_id,
            LoginAttempt.ip == _ip(ip),
            LoginAttempt.succeeded.is_(False),
        )
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    db.execute(
        update(LoginAttempt)
        .where(LoginAttempt.id == latest)
        .values(suppressed=LoginAttempt.suppressed + 1)
        .execution_options(synchronize_session=False)
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
        db.scalars(
            select(SSODomain.domain)
            .where(SSODomain.account_id == account_id)
            .order_by(SSODomain.domain)
        )
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
