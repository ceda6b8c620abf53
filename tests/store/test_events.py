"""The event log's outbox: written at commit, numbered in commit order without gaps."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from deskgate.services import events
from deskgate.store import events as event_store
from deskgate.store.base import make_sessionmaker, read_only

SYSTEM = events.actors.system("test")


def _seqs(engine: Engine, account_id: str) -> list[int]:
    """The account's event numbers after the ones its creation recorded (its first admin's
    agent.created), counted from 1."""
    with read_only(engine).connect() as conn:
        rows = event_store.page_after(conn, account_id, 0, 100_000)
    created = sum(1 for row in rows if row["type"] == "agent.created")
    return [row["seq"] - created for row in rows[created:]]


def test_events_are_written_at_commit_and_numbered_from_one(
    engine: Engine, make_account: Callable[..., object]
) -> None:
    account = make_account()
    account_id = account.id  # type: ignore[attr-defined]
    with make_sessionmaker(engine)() as db:
        events.record(db, account_id, "sso.enabled", SYSTEM, {"before": None, "after": None})
        events.record(db, account_id, "sso.disabled", SYSTEM, {"before": None, "after": None})
        assert _seqs(engine, account_id) == []  # nothing before the commit
        db.commit()
    with read_only(engine).connect() as conn:
        rows = event_store.page_after(conn, account_id, 1, 10)  # 1: the admin's agent.created
        assert [(r["seq"], r["type"]) for r in rows] == [(2, "sso.enabled"), (3, "sso.disabled")]
        assert event_store.latest_seq(conn, account_id) == 3
        assert [r["seq"] for r in event_store.page_after(conn, account_id, 2, 10)] == [3]
        assert events.envelope(rows[0])["actor"] == {"type": "system", "id": None, "label": "test"}


def test_a_rolled_back_transaction_writes_no_event_and_takes_no_number(
    engine: Engine, make_account: Callable[..., object]
) -> None:
    account_id = make_account().id  # type: ignore[attr-defined]
    with engine.connect() as conn:
        events.record(conn, account_id, "sso.enabled", SYSTEM)
        conn.rollback()
        conn.commit()  # a later commit on the same connection writes nothing left over
        events.record(conn, account_id, "sso.disabled", SYSTEM)
        conn.commit()
    assert _seqs(engine, account_id) == [1]


def test_unknown_types_and_foreign_engines_are_refused(
    engine: Engine, make_account: Callable[..., object], database_url: str
) -> None:
    account_id = make_account().id  # type: ignore[attr-defined]
    with engine.connect() as conn, pytest.raises(ValueError, match="unknown event type"):
        events.record(conn, account_id, "agent.exploded", SYSTEM)
    plain = create_engine(database_url)
    with plain.connect() as conn, pytest.raises(RuntimeError, match="does not write events"):
        events.record(conn, account_id, "sso.enabled", SYSTEM)
    plain.dispose()


def test_concurrent_writers_leave_no_gap_and_no_duplicate_for_a_reader(
    engine: Engine, make_account: Callable[..., object]
) -> None:
    """Writers on several threads commit events while a reader follows the cursor: the reader
    sees every number exactly once, in order (a number committed after its read is never one
    it has already passed)."""
    account_id = make_account().id  # type: ignore[attr-defined]
    writers, per_writer = 4, 25
    sessions = make_sessionmaker(engine)
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(per_writer):
                with sessions() as db:
                    db.execute(text("SELECT 1"))
                    events.record(db, account_id, "sso.updated", SYSTEM)
                    db.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with read_only(engine).connect() as conn:
        start = event_store.latest_seq(conn, account_id)  # the account's creation

    def read() -> None:
        cursor = start
        while True:
            finished = done.is_set()
            with read_only(engine).connect() as conn:
                rows = event_store.page_after(conn, account_id, cursor, 7)
            for row in rows:
                seen.append(row["seq"])
                cursor = row["seq"]
            if finished and not rows:
                return

    threads = [threading.Thread(target=write) for _ in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert not errors
    assert seen == list(range(start + 1, start + writers * per_writer + 1))


def test_events_of_two_accounts_in_one_transaction_each_get_their_own_numbers(
    engine: Engine, make_account: Callable[..., object], db: Session
) -> None:
    first, second = make_account().id, make_account().id  # type: ignore[attr-defined]
    with engine.connect() as conn:
        events.record(conn, second, "sso.enabled", SYSTEM)
        events.record(conn, first, "sso.enabled", SYSTEM)
        events.record(conn, second, "sso.disabled", SYSTEM)
        conn.commit()
    assert _seqs(engine, first) == [1]
    assert _seqs(engine, second) == [1, 2]
