"""Deleting old rows a bounded batch at a time (retention), on SQLite and PostgreSQL alike.

Each call deletes at most one batch; the caller commits between calls, so no transaction
holds SQLite's single write lock (or many PostgreSQL row locks) for long. On PostgreSQL the
chosen rows are locked SKIP LOCKED: two nodes pruning at once split the work, never wait.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, tuple_
from sqlalchemy.orm import Session


def delete_chosen(db: Session, model: Any, chosen: Select[Any]) -> int:
    """Delete the rows of `model` whose primary key `chosen` selects (it carries the LIMIT).

    The keys are read first, then deleted by value. A single `DELETE … WHERE key IN (SELECT …
    LIMIT n FOR UPDATE SKIP LOCKED)` is not bounded on PostgreSQL: when the planner rescans
    the subquery, each rescan skips the rows this statement already deleted and picks n more.
    """
    key_columns = list(model.__table__.primary_key.columns)
    keys = db.execute(chosen.with_for_update(skip_locked=True)).all()
    if not keys:
        return 0
    if len(key_columns) == 1:
        matching = key_columns[0].in_([key[0] for key in keys])
    else:
        matching = tuple_(*key_columns).in_([tuple(key) for key in keys])
    result = db.execute(delete(model).where(matching).execution_options(synchronize_session=False))
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


Cutoff = tuple[Any, str]
"""(at, id) of a row: it and every older row of the account go."""


def cutoff_beyond_newest(db: Session, model: Any, account_id: str, keep: int) -> Cutoff | None:
    """The newest of the account's rows that are not among its newest `keep` (by `at`, `id`).

    Found once, then deleted up to in batches: each batch stays cheap (no OFFSET walk) and
    locks only the rows it deletes."""
    row = db.execute(
        select(model.at, model.id)
        .where(model.account_id == account_id)
        .order_by(model.at.desc(), model.id.desc())
        .offset(keep)
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def delete_up_to(db: Session, model: Any, account_id: str, cutoff: Cutoff, limit: int) -> int:
    """Delete up to `limit` of the account's rows at or older than `cutoff`."""
    at, row_id = cutoff
    chosen = (
        select(model.id)
        .where(
            model.account_id == account_id,
            or_(model.at < at, and_(model.at == at, model.id <= row_id)),
        )
        .limit(limit)
    )
    return delete_chosen(db, model, chosen)
