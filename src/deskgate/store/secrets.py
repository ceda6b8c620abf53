"""Instance secrets generated once and shared by every node on the database."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deskgate.store.models import InstanceSecret


def get_or_create(db: Session, name: str, generate: Callable[[], str]) -> str:
    """Return the stored secret, creating it if absent. Two nodes starting at once agree."""
    existing = db.scalar(select(InstanceSecret.value).where(InstanceSecret.name == name))
    if existing is not None:
        return existing
    try:
        with db.begin_nested():
            db.add(InstanceSecret(name=name, value=generate()))
    except IntegrityError:
        pass  # another node created it first; read theirs
    value = db.scalar(select(InstanceSecret.value).where(InstanceSecret.name == name))
    assert value is not None
    return value


def put(db: Session, name: str, value: str) -> None:
    row = db.get(InstanceSecret, name)
    if row is None:
        db.add(InstanceSecret(name=name, value=value))
    else:
        row.value = value
