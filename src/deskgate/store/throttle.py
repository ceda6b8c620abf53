"""Failed password sign-ins, counted per email and per IP over a sliding window."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from deskgate.store import batches
from deskgate.store.models import FailedSignIn


def record_failure(db: Session, *, email_normalized: str, ip: str, now: dt.datetime) -> None:
    db.add(FailedSignIn(email_normalized=email_normalized, ip=ip, at=now))


def failures_since(
    db: Session, *, email_normalized: str, ip: str, since: dt.datetime
) -> tuple[int, int, dt.datetime | None]:
    """(failures for this email, failures from this IP, oldest counted failure) since `since`."""
    by_email = db.execute(
        select(func.count(), func.min(FailedSignIn.at)).where(
            FailedSignIn.email_normalized == email_normalized, FailedSignIn.at > since
        )
    ).one()
    by_ip = db.execute(
        select(func.count(), func.min(FailedSignIn.at)).where(
            FailedSignIn.ip == ip, FailedSignIn.at > since
        )
    ).one()
    oldest = min((t for t in (by_email[1], by_ip[1]) if t is not None), default=None)
    return int(by_email[0]), int(by_ip[0]), oldest


def clear_email(db: Session, email_normalized: str) -> None:
    db.execute(delete(FailedSignIn).where(FailedSignIn.email_normalized == email_normalized))


def prune(db: Session, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` failures at or before `before` (retention); how many went."""
    return batches.delete_older(db, FailedSignIn, FailedSignIn.at, before, limit)
