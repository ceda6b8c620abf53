"""SSO connections, outstanding AuthnRequests, seen assertion IDs and sign-in attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.display_text import for_display
from deskgate.store import batches
from deskgate.store.domains import claimed_domains
from deskgate.store.models import (
    Account,
    LoginAttempt,
    SAMLRequest,
    SeenAssertion,
    SSOConnection,
)

# The sign-in path runs Core statements built once here (SQLAlchemy then reuses their compiled
# form), on the tables rather than the mapped classes: no ORM unit of work, plain rows back.
# They go to the session's connection (`db.connection().execute`): the same transaction, without
# Session.execute's own pass (which never autoflushes for Core statements on tables anyway).
_accounts: Table = Account.__table__  # type: ignore[assignment]
_connections: Table = SSOConnection.__table__  # type: ignore[assignment]
_requests: Table = SAMLRequest.__table__  # type: ignore[assignment]
_seen: Table = SeenAssertion.__table__  # type: ignore[assignment]
_attempts: Table = LoginAttempt.__table__  # type: ignore[assignment]


def _ip(ip: str | None) -> str | None:
    return ip[:64] if ip else None  # the column's size; a client address is never longer


def connection(db: Session, account_id: str) -> SSOConnection | None:
    return db.get(SSOConnection, account_id)


_SIGN_IN_CONNECTION = (
    select(
        _accounts.c.id.label("account_id"),
        _accounts.c.name.label("account_name"),
        _accounts.c.plan,
        _connections.c.account_id.label("connection_id"),
        _connections.c.enabled,
        _connections.c.idp_kind,
        _connections.c.idp_entity_id,
        _connections.c.idp_sso_url,
        _connections.c.idp_sso_binding,
        _connections.c.allow_idp_initiated,
        _connections.c.jit_enabled,
        _connections.c.jit_role,
        _connections.c.allow_sha1,
        claimed_domains(_accounts.c.id).label("domains"),
        _connections.c.sign_in_match,
        _connections.c.updated_at,
    )
    .select_from(_accounts.outerjoin(_connections, _connections.c.account_id == _accounts.c.id))
    .where(_accounts.c.sso_token == bindparam("sso_token"))
)
_CONNECTION_KEYS = select(
    _connections.c.sp_private_key_pem,
    _connections.c.sp_certificate_pem,
    _connections.c.sp_next_private_key_pem,
    _connections.c.sp_next_certificate_pem,
    _connections.c.sp_previous_private_key_pem,
    _connections.c.sp_previous_certificate_pem,
).where(_connections.c.account_id == bindparam("account_id"))


def sign_in_connection(db: Session, sso_token: str) -> Row[*tuple[Any, ...]] | None:
    """The account with this SSO token and its connection's settings (None columns when it has
    no connection), in one indexed query; the keys and certificates are left out (see
    `connection_keys`)."""
    return db.connection().execute(_SIGN_IN_CONNECTION, {"sso_token": sso_token}).first()


def connection_keys(db: Session, account_id: str) -> Row[*tuple[Any, ...]] | None:
    """The SP keys (current, next, previous) of the account's connection; the IdP certificates
    are `store.certificates.pems`."""
    return db.connection().execute(_CONNECTION_KEYS, {"account_id": account_id}).first()


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


_ADD_REQUEST = insert(_requests)
_OUTSTANDING = select(func.count(), func.min(_requests.c.expires_at)).where(
    _requests.c.account_id == bindparam("account_id"),
    _requests.c.ip == bindparam("ip"),
    _requests.c.expires_at > bindparam("now"),
)
_CONSUME_REQUEST = (
    delete(_requests)
    .where(
        _requests.c.id == bindparam("request_id"),
        _requests.c.account_id == bindparam("account_id"),
    )
    .returning(_requests.c.relay_state, _requests.c.expires_at)
)


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
    db.connection().execute(
        _ADD_REQUEST,
        {
            "id": request_id,
            "account_id": account_id,
            "relay_state": next_path,
            "created_at": now,
            "expires_at": now + ttl,
            "ip": _ip(ip),
        },
    )


def outstanding_requests(
    db: Session, account_id: str, ip: str | None, now: dt.datetime
) -> tuple[int, dt.datetime | None]:
    """(unexpired requests this IP started for the account, when the first of them expires)."""
    count, first_expiry = (
        db.connection()
        .execute(_OUTSTANDING, {"account_id": account_id, "ip": _ip(ip), "now": now})
        .one()
    )
    return int(count), first_expiry


@dataclass(frozen=True)
class ConsumedRequest:
    relay_state: str | None


def consume_request(
    db: Session, account_id: str, request_id: str, now: dt.datetime
) -> ConsumedRequest | None:
    """Delete the outstanding request and return what it kept, if it is this account's and not
    expired.

    The DELETE … RETURNING is atomic: of two responses to one request, only one gets the row.
    """
    row = (
        db.connection()
        .execute(_CONSUME_REQUEST, {"request_id": request_id, "account_id": account_id})
        .first()
    )
    if row is None or row.expires_at <= now:
        return None
    return ConsumedRequest(relay_state=row.relay_state)


# One INSERT that does nothing on a duplicate key, on either backend: no SAVEPOINT, no flush.
# Its row count says which happened (SQLAlchemy keeps it for an INSERT only when asked).
_REMEMBER_ASSERTION = {
    "sqlite": sqlite_insert(_seen).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(_seen).on_conflict_do_nothing(),
}
_ROWCOUNT = {"preserve_rowcount": True}


def remember_assertion(
    db: Session, *, account_id: str, assertion_id: str, keep_until: dt.datetime
) -> bool:
    """Record an assertion ID; False if this account has seen it already (a replay).

    The primary key (account, assertion id) decides, so app nodes sharing one database agree.
    """
    result = db.connection().execute(
        _REMEMBER_ASSERTION[db.get_bind().dialect.name],
        {"account_id": account_id, "assertion_id": assertion_id, "expires_at": keep_until},
        execution_options=_ROWCOUNT,
    )
    return bool(result.rowcount == 1)


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
_ADD_ATTEMPT = insert(_attempts)


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
    db.connection().execute(
        _ADD_ATTEMPT,
        {
            "id": ids.new_id(ids.LOGIN_ATTEMPT),
            "account_id": account_id,
            "at": now,
            "method": method,
            "succeeded": succeeded,
            "email": for_display(email, EMAIL_LIMIT),
            "agent_id": agent_id,
            "reason_code": reason_code,
            "detail": for_display(detail),
            "ip": _ip(ip),
            "suppressed": 0,
        },
    )


_REFUSALS_SINCE = select(func.count()).where(
    _attempts.c.account_id == bindparam("account_id"),
    _attempts.c.ip == bindparam("ip"),
    _attempts.c.at > bindparam("since"),
    _attempts.c.succeeded.is_(False),
)
_LATEST_REFUSAL = (
    select(_attempts.c.id)
    .where(
        # Not the column names: those are reserved in an UPDATE's statement.
        _attempts.c.account_id == bindparam("of_account"),
        _attempts.c.ip == bindparam("from_ip"),
        _attempts.c.succeeded.is_(False),
    )
    .order_by(_attempts.c.at.desc(), _attempts.c.id.desc())
    .limit(1)
    .scalar_subquery()
)
_COUNT_SUPPRESSED = (
    update(_attempts)
    .where(_attempts.c.id == _LATEST_REFUSAL)
    .values(suppressed=_attempts.c.suppressed + 1)
)


def refusals_since(db: Session, account_id: str, ip: str | None, since: dt.datetime) -> int:
    """How many refusals from this IP the account has recorded since `since`."""
    return int(
        db.connection()
        .execute(_REFUSALS_SINCE, {"account_id": account_id, "ip": _ip(ip), "since": since})
        .scalar_one()
        or 0
    )


def count_suppressed_refusal(db: Session, account_id: str, ip: str | None) -> None:
    """Count one more unrecorded refusal on the latest refusal row from this IP."""
    db.connection().execute(_COUNT_SUPPRESSED, {"of_account": account_id, "from_ip": _ip(ip)})


def recent_attempts(db: Session, account_id: str, limit: int = 50) -> Sequence[LoginAttempt]:
    return db.scalars(
        select(LoginAttempt)
        .where(LoginAttempt.account_id == account_id)
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
        .limit(limit)
    ).all()
