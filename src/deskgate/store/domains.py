"""Domain claims: the domains accounts claim, and which one verified each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Table,
    bindparam,
    case,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from deskgate.store.models import DomainClaim

_claims: Table = DomainClaim.__table__  # type: ignore[assignment]


PENDING_MARK = "?"


def claimed_domains(account_id: ColumnElement[str]) -> ScalarSelect[str]:
    """The account's domains, space-separated, each unverified one marked with a leading "?"
    (NULL when none): a column for a statement that reads the account anyway (the sign-in's
    connection query), cheaper than a statement of its own."""
    return (
        select(
            func.aggregate_strings(
                case(
                    (_claims.c.verified_at.is_(None), literal(PENDING_MARK) + _claims.c.domain),
                    else_=_claims.c.domain,
                ),
                " ",
            )
        )
        .where(_claims.c.account_id == account_id)
        .scalar_subquery()
    )


def of_account(db: Session, account_id: str) -> Sequence[DomainClaim]:
    return db.scalars(
        select(DomainClaim).where(DomainClaim.account_id == account_id).order_by(DomainClaim.domain)
    ).all()


def get(db: Session, account_id: str, domain: str) -> DomainClaim | None:
    return db.get(DomainClaim, (account_id, domain))


def count(db: Session, account_id: str) -> int:
    return int(db.scalar(select(func.count()).where(DomainClaim.account_id == account_id)) or 0)


def verified_owner(db: Session, domain: str) -> str | None:
    """The account that verified `domain`, if any (the partial unique index: at most one)."""
    return db.scalar(
        select(DomainClaim.account_id).where(
            DomainClaim.domain == domain, DomainClaim.verified_at.is_not(None)
        )
    )


def add(db: Session, account_id: str, domain: str, token: str, now: dt.datetime) -> DomainClaim:
    claim = DomainClaim(account_id=account_id, domain=domain, token=token, created_at=now)
    db.add(claim)
    db.flush()
    return claim


def remove(db: Session, account_id: str, domain: str) -> bool:
    result = db.execute(
        delete(DomainClaim).where(
            DomainClaim.account_id == account_id, DomainClaim.domain == domain
        ),
        execution_options={"synchronize_session": False},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_verified(db: Session, claim: DomainClaim, now: dt.datetime) -> None:
    """Raises IntegrityError (run it in a savepoint) if another account verified it first."""
    claim.verified_at = now
    claim.checked_at = now
    claim.check_error = None
    db.flush()


def record_failed_check(db: Session, claim: DomainClaim, now: dt.datetime, error: str) -> None:
    claim.checked_at = now
    claim.check_error = error
    db.flush()


def remove_pending_of_others(db: Session, domain: str, owner: str) -> list[str]:
    """Delete the other accounts' unverified claims on `domain`; their account ids."""
    rows = db.execute(
        delete(DomainClaim)
        .where(
            DomainClaim.domain == domain,
            DomainClaim.account_id != owner,
            DomainClaim.verified_at.is_(None),
        )
        .returning(DomainClaim.account_id),
        execution_options={"synchronize_session": False},
    )
    return sorted(account_id for (account_id,) in rows)


_GATE = select(_claims.c.domain, _claims.c.verified_at.is_not(None)).where(
    _claims.c.account_id == bindparam("account_id")
)


def gate_rows(db: Connection | Session, account_id: str) -> list[tuple[str, bool]]:
    """(domain, verified) of every claim of the account: what admits SCIM emails."""
    bind = db.connection() if isinstance(db, Session) else db
    return [
        (domain, bool(verified))
        for domain, verified in bind.execute(_GATE, {"account_id": account_id})
    ]
