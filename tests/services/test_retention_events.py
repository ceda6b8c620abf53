"""Retention of events: those older than DESKGATE_RETENTION_EVENTS_DAYS go, in batches; the
rest stay with their numbers, and numbering goes on from where it was (a cursor keeps working)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from deskgate.config import load_settings
from deskgate.services import events, retention
from deskgate.store import events as event_store
from deskgate.store.base import make_sessionmaker, read_only

from event_checks import events_of

NOW = dt.datetime.now(dt.UTC)
SYSTEM = events.actors.system("test")


def _record(engine, account_id: str, at: dt.datetime, n: int) -> None:
    with engine.connect() as conn:
        for i in range(n):
            events.record(
                conn,
                account_id,
                "scim_token.created",
                SYSTEM,
                {"token_id": f"scimtok_{i}", "hint": f"{i:04d}"},
                at=at,
            )
        conn.commit()


def test_old_events_go_in_batches_and_numbering_goes_on(engine, make_account, db) -> None:
    account_id = make_account().id  # its first admin's agent.created: now
    _record(engine, account_id, NOW - dt.timedelta(days=401), 7)
    _record(engine, account_id, NOW - dt.timedelta(days=399), 2)
    policy = dataclasses.replace(
        retention.RetentionPolicy.from_settings(load_settings({})), batch_size=3
    )
    assert policy.events_for == dt.timedelta(days=400)

    counts = retention.run(make_sessionmaker(engine), policy, NOW)

    assert counts["events"] == 7
    kept = events_of(db, account_id)
    assert [e["cursor"] for e in kept] == ["1", "9", "10"]
    with read_only(engine).connect() as conn:
        assert event_store.latest_seq(conn, account_id) == 10
        # A reader whose cursor points into the deleted range continues after it.
        assert [row["seq"] for row in event_store.page_after(conn, account_id, 3, 10)] == [9, 10]
    _record(engine, account_id, NOW, 1)
    assert events_of(db, account_id)[-1]["cursor"] == "11"
    assert retention.run(make_sessionmaker(engine), policy, NOW)["events"] == 0


def test_the_period_is_a_setting() -> None:
    settings = load_settings({"DESKGATE_RETENTION_EVENTS_DAYS": "30"})
    assert retention.RetentionPolicy.from_settings(settings).events_for == dt.timedelta(days=30)
