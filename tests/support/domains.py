"""Arrange domain claims directly in the database (the DNS proof is tested in test_domains)."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import delete
from sqlalchemy.orm import Session

from deskgate.store.models import DomainClaim


def claim_domain(db: Session, account_id: str, domain: str, *, verified: bool = True) -> None:
    now = dt.datetime.now(dt.UTC)
    db.rollback()
    db.add(
        DomainClaim(
            account_id=account_id,
            domain=domain,
            token=secrets.token_urlsafe(24),
            created_at=now,
            verified_at=now if verified else None,
        )
    )
    db.commit()


def remove_domains(db: Session, account_id: str) -> None:
    db.rollback()
    db.execute(delete(DomainClaim).where(DomainClaim.account_id == account_id))
    db.commit()
