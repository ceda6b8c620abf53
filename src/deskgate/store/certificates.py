"""IdP signing certificates of a connection, and the expiry notices already recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from deskgate.store.models import CertificateNotice, IdPCertificate, SSOConnection

_certificates: Table = IdPCertificate.__table__  # type: ignore[assignment]
_notices: Table = CertificateNotice.__table__  # type: ignore[assignment]

# The sign-in path reads only the PEMs, on a miss of the per-worker configuration cache.
_PEMS = (
    select(_certificates.c.certificate_pem)
    .where(_certificates.c.account_id == bindparam("account_id"))
    .order_by(_certificates.c.added_at, _certificates.c.id)
)


def pems(db: Session, account_id: str) -> list[str]:
    """Every certificate the connection accepts signatures from, oldest first."""
    return list(db.connection().execute(_PEMS, {"account_id": account_id}).scalars())


def for_account(db: Session, account_id: str) -> Sequence[IdPCertificate]:
    return db.scalars(
        select(IdPCertificate)
        .where(IdPCertificate.account_id == account_id)
        .order_by(IdPCertificate.added_at, IdPCertificate.id)
    ).all()


def by_id(db: Session, account_id: str, certificate_id: str) -> IdPCertificate | None:
    return db.scalars(
        select(IdPCertificate).where(
            IdPCertificate.account_id == account_id, IdPCertificate.id == certificate_id
        )
    ).first()


def connection_account_ids(db: Session) -> list[str]:
    """The account of every SSO connection, for the certificate watch."""
    return list(db.scalars(select(SSOConnection.account_id).order_by(SSOConnection.account_id)))


def notices(db: Session, account_id: str) -> set[tuple[str, str, int]]:
    """(usage, fingerprint, threshold_days) already recorded for the account."""
    rows = db.execute(
        select(_notices.c.usage, _notices.c.fingerprint, _notices.c.threshold_days).where(
            _notices.c.account_id == account_id
        )
    )
    return {(row.usage, row.fingerprint, row.threshold_days) for row in rows}


# Insert-if-absent on the primary key: of two nodes recording the same notice, the second waits
# for the first to commit (PostgreSQL) or for the write lock (SQLite), then inserts nothing.
_ADD_NOTICE = {
    "sqlite": sqlite_insert(_notices).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(_notices).on_conflict_do_nothing(),
}


def claim_notice(
    db: Session,
    account_id: str,
    usage: str,
    fingerprint: str,
    threshold_days: int,
    now: dt.datetime,
) -> bool:
    """Mark the notice as recorded; False when it was already (by this node or another)."""
    result = db.connection().execute(
        _ADD_NOTICE[db.get_bind().dialect.name],
        {
            "account_id": account_id,
            "usage": usage,
            "fingerprint": fingerprint,
            "threshold_days": threshold_days,
            "notified_at": now,
        },
        execution_options={"preserve_rowcount": True},
    )
    return bool(result.rowcount == 1)


def forget_notices(db: Session, account_id: str, usage: str, fingerprint: str) -> None:
    """A certificate that left the connection: its notices go too (it may come back)."""
    db.execute(
        delete(CertificateNotice).where(
            CertificateNotice.account_id == account_id,
            CertificateNotice.usage == usage,
            CertificateNotice.fingerprint == fingerprint,
        )
    )
