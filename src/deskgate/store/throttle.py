"""Failed password sign-ins, one row per failed attempt, counted per email and per IP.

Checking the limit and recording a failure must be one atomic step, or N simultaneous guesses
all pass the check before any is recorded. `lock` makes the sign-in transaction the only one
for its email and its IP until it commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deskgate.store import batches
from deskgate.store.models import FailedSignIn


def _lock_key(kind: str, value: str) -> int:
    """A signed 64-bit advisory-lock key for one email or one IP (PostgreSQL's bigint)."""
    digest = hashlib.sha256(
        f"deskgate.sign-in.{kind}\x1f{value}".encode("utf-8", "surrogatepass")
    ).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock(db: Session, *, email_normalized: str, ip: str) -> None:
    """Hold the sign-in locks for this email and this IP until the transaction ends.

    PostgreSQL: transaction-scoped advisory locks, taken in ascending key order so that two
    sign-ins sharing an email or an IP wait for each other instead of deadlocking; they are
    released by the commit or rollback, across every node on the database. SQLite: nothing to
    do, since every deskgate transaction holds the database's single write lock from its BEGIN
    IMMEDIATE (store/base.py), so sign-ins are already one at a time.
    """
    if db.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({_lock_key("email", email_normalized), _lock_key("ip", ip)}):
        db.execute(select(func.pg_advisory_xact_lock(key)))


def record_failure(db: Session, *, email_normalized: str, ip: str, now: dt.datetime) -> None:
    db.add(FailedSignIn(email_normalized=email_normalized, ip=ip, at=now))
    db.flush()


def latest_failures(
    db: Session,
    *,
    since: dt.datetime,
    limit: int,
    email_normalized: str | None = None,
    ip: str | None = None,
) -> list[dt.datetime]:
    """When the newest `limit` failures after `since` happened, for an email or an IP; newest first."""
    if (email_normalized is None) == (ip is None):
        raise ValueError("give exactly one of email_normalized and ip")
    match = (
        FailedSignIn.email_normalized == email_normalized if ip is None else FailedSignIn.ip == ip
    )
    return list(
        db.scalars(
            select(FailedSignIn.at)
            .where(match, FailedSignIn.at > since)
            .order_by(FailedSignIn.at.desc())
            .limit(limit)
        )
    )


def prune(db: Session, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` failures at or before `before` (retention); how many went."""
    return batches.delete_older(db, FailedSignIn, FailedSignIn.at, before, limit)
