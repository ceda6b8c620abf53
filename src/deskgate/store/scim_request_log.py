"""The SCIM request log of an account: one row per request, never the token or a password."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Session

from deskgate.store import batches
from deskgate.store.models import (
    Account,
    ScimRequestLog,
)
from deskgate.store.scim import Executor

_INSERT_REQUEST_LOG = insert(cast(Table, ScimRequestLog.__table__))


_ACCOUNT_EXISTS = select(Account.id).where(Account.id == bindparam("account_id"))


def account_exists(db: Executor, account_id: str) -> bool:
    return db.execute(_ACCOUNT_EXISTS, {"account_id": account_id}).first() is not None


def add_request_log(db: Executor, values: Mapping[str, Any]) -> None:
    db.execute(_INSERT_REQUEST_LOG, dict(values))


def unauthenticated_requests_since(
    db: Executor, account_id: str, ip: str | None, since: dt.datetime
) -> int:
    """How many 401s from this source the account's log holds since `since`."""
    return int(
        db.scalar(
            select(func.count()).where(
                ScimRequestLog.account_id == account_id,
                ScimRequestLog.ip == ip,
                ScimRequestLog.at > since,
                ScimRequestLog.status == 401,
            )
        )
        or 0
    )


def recent_requests(db: Session, account_id: str, limit: int) -> list[ScimRequestLog]:
    return list(
        db.scalars(
            select(ScimRequestLog)
            .where(ScimRequestLog.account_id == account_id)
            .order_by(ScimRequestLog.at.desc(), ScimRequestLog.id.desc())
            .limit(limit)
        )
    )


def prune_request_log(db: Session, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` log rows at or before `before` (retention); how many went."""
    return batches.delete_older(db, ScimRequestLog, ScimRequestLog.at, before, limit)


def accounts_over_request_log_cap(db: Session, cap: int) -> list[str]:
    return batches.accounts_over(db, ScimRequestLog, cap)


def request_log_cutoff(db: Session, account_id: str, keep: int) -> batches.Cutoff | None:
    return batches.cutoff_beyond_newest(db, ScimRequestLog, account_id, keep)


def prune_request_log_up_to(
    db: Session, account_id: str, cutoff: batches.Cutoff, limit: int
) -> int:
    return batches.delete_up_to(db, ScimRequestLog, account_id, cutoff, limit)
