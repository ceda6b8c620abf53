"""Deleting old rows a bounded batch at a time (retention), on SQLite and PostgreSQL alike.

Each call deletes at most one batch; the caller commits between calls, so no transaction
holds SQLite's single write lock (or many PostgreSQL row locks) for long. On PostgreSQL the
chosen rows are locked SKIP LOCKED: two nodes pruning at once split the work, never wait.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, select, tuple_
from sqlalchemy.orm import Session


def delete_chosen(db: Session, model: Any, chosen: Select[Any]) -> int:
    """Delete the rows of `model` whose primary key `chosen` selects (it carries the LIMIT)."""
    key_columns = list(model.__table__.primary_key.columns)
    key = key_columns[0] if len(key_columns) == 1 else tuple_(*key_columns)
    result = db.execute(
        delete(model)
        .where(key.in_(chosen.with_for_update(skip_locked=True)))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def delete_older(db: Session, model: Any, column: Any, before: Any, limit: int) -> int:
    """Delete up to `limit` rows whose `column` is at or before `before`."""
    key_columns = list(model.__table__.primary_key.columns)
    return delete_chosen(db, model, select(*key_columns).where(column <= before).limit(limit))


def accounts_over(db: Session, model: Any, cap: int) -> list[str]:
    """Accounts holding more than `cap` rows of `model`."""
    return list(
        db.scalars(select(model.account_id).group_by(model.account_id).having(func.count() > cap))
    )


def delete_beyond_newest(db: Session, model: Any, account_id: str, keep: int, limit: int) -> int:
    """Delete up to `limit` of the account's rows older than its newest `keep` (by `at`, `id`)."""
    chosen = (
        select(model.id)
        .where(model.account_id == account_id)
        .order_by(model.at.desc(), model.id.desc())
        .offset(keep)
        .limit(limit)
    )
    return delete_chosen(db, model, chosen)
