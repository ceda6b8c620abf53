"""Fixtures for the /api/v1 data endpoints: API keys made through the service (as the page and
the CLI do), agents inserted in bulk with chosen creation times, and bearer headers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.services import api_keys
from deskgate.services.events import actors
from deskgate.store.base import utcnow
from deskgate.store.models import Agent

from api_helpers import ALL_SCOPES


@pytest.fixture
def make_key(db: Session) -> Callable[..., api_keys.NewApiKey]:
    def make(
        account_id: str, scopes: Iterable[str] = ALL_SCOPES, name: str = "test key"
    ) -> api_keys.NewApiKey:
        created = api_keys.create(
            db,
            account_id,
            name=name,
            scopes=scopes,
            actor=actors.operator(),
            created_by=api_keys.OPERATOR,
            now=utcnow(),
        )
        db.commit()
        return created

    return make


@pytest.fixture
def insert_agents(db: Session) -> Callable[..., list[Agent]]:
    """Insert agents straight into the table: `specs` are dicts of Agent fields over defaults
    (created_at may repeat, to test the id tie-break)."""

    def insert(account_id: str, specs: Iterable[dict[str, Any]]) -> list[Agent]:
        rows = []
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for n, spec in enumerate(specs):
            email = spec.pop("email", f"agent{n}@example.com")
            user_name = spec.pop("user_name", f"user{n}-{ids.new_id('u')}")
            fields: dict[str, Any] = {
                "id": ids.new_id(ids.AGENT),
                "account_id": account_id,
                "user_name": user_name,
                "user_name_normalized": user_name.lower(),
                "email": email,
                "email_normalized": email.lower(),
                "first_name": f"First{n}",
                "last_name": f"Last{n}",
                "display_name": f"First{n} Last{n}",
                "source": "scim",
                "created_at": base + dt.timedelta(seconds=n),
                "updated_at": base + dt.timedelta(seconds=n),
                **spec,
            }
            rows.append(Agent(**fields))
        db.add_all(rows)
        db.commit()
        return rows

    return insert
