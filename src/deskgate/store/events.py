"""The event log: a transactional outbox with a gapless per-account cursor.

`record` adds an event to the transaction it is called in; nothing is written until that
transaction commits. Then, just before the COMMIT, the transaction takes its account's counter
row (`event_counters`, row-locked until the commit ends) and writes its events numbered
last_seq+1, +2, … . So an account's events are numbered in commit order with no gap: a reader
that has seen number n and reads `seq > n` can never later miss a number that committed after
its read (GET /api/v1/events, webhook deliveries). Taking the counter last, at commit, means the
lock is held only for the commit itself and is never waited on while holding another lock that
its holder wants (no deadlock); a rolled-back transaction writes no event and takes no number.

Every engine made by `store.base.make_engine` flushes at commit; `record` refuses a connection
of any other engine rather than lose an event silently.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, event, insert, select, text
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.orm import Session

from deskgate import ids
from deskgate.store.base import utcnow
from deskgate.store.models import Event, EventCounter


@dataclass(frozen=True)
class Actor:
    """Who made a change: an admin, the IdP through a SCIM token or an assertion, an API key,
    the operator (CLI), or deskgate itself (metadata refresh, retention, certificate watch)."""

    type: str
    id: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class NewEvent:
    account_id: str
    type: str
    actor: Actor
    data: Mapping[str, Any] = field(default_factory=dict)
    agent_id: str | None = None
    at: dt.datetime | None = None


_pending: weakref.WeakKeyDictionary[Connection, list[NewEvent]] = weakref.WeakKeyDictionary()
_flushing_engines: weakref.WeakSet[Engine] = weakref.WeakSet()

_EVENTS = cast(Table, Event.__table__)
_TAKE_NUMBERS = text(
    "INSERT INTO event_counters (account_id, last_seq) VALUES (:account_id, :n) "
    "ON CONFLICT (account_id) DO UPDATE SET last_seq = event_counters.last_seq + :n "
    "RETURNING last_seq"
)


def record(db: Session | Connection, new: NewEvent) -> None:
    """Add `new` to the current transaction of `db`: written when it commits, gone if it rolls
    back. Record after the change succeeded (an event recorded inside a SAVEPOINT that is then
    rolled back would still be written)."""
    conn = db.connection() if isinstance(db, Session) else db
    engine = getattr(conn.engine, "_proxied", conn.engine)  # an engine with options: its base
    if engine not in _flushing_engines:
        raise RuntimeError("this engine does not write events: build it with make_engine")
    if not conn.in_transaction():
        conn.begin()  # a commit with no transaction open would not flush
    _pending.setdefault(conn, []).append(new)


def flush_at_commit(engine: Engine) -> None:
    """Make `engine` write the recorded events of a transaction as it commits."""
    if engine in _flushing_engines:
        return
    # Before SQLite's runtime listener, which sends the COMMIT itself (store/base.make_engine).
    event.listen(engine, "commit", _write_pending)
    event.listen(engine, "rollback", _forget_pending)
    _flushing_engines.add(engine)


def _forget_pending(conn: Connection) -> None:
    _pending.pop(conn, None)


def _write_pending(conn: Connection) -> None:
    events = _pending.pop(conn, None)
    if not events:
        return
    now = utcnow()
    by_account: dict[str, list[NewEvent]] = {}
    for new in events:
        by_account.setdefault(new.account_id, []).append(new)
    rows = []
    for account_id in sorted(by_account):  # one order everywhere: no two commits cross locks
        batch = by_account[account_id]
        last = conn.execute(_TAKE_NUMBERS, {"account_id": account_id, "n": len(batch)}).scalar_one()
        first = int(last) - len(batch) + 1
        for offset, new in enumerate(batch):
            rows.append(
                {
                    "id": ids.new_id(ids.EVENT),
                    "account_id": account_id,
                    "seq": first + offset,
                    "type": new.type,
                    "at": new.at or now,
                    "actor_type": new.actor.type,
                    "actor_id": new.actor.id,
                    "actor_label": new.actor.label,
                    "agent_id": new.agent_id,
                    "data": dict(new.data),
                }
            )
    conn.execute(insert(_EVENTS), rows)


def page_after(
    db: Session | Connection,
    account_id: str,
    after_seq: int,
    limit: int,
    *,
    types: Sequence[str] | None = None,
) -> list[RowMapping]:
    """The account's events numbered above `after_seq`, oldest first (the cursor read)."""
    query = select(_EVENTS).where(_EVENTS.c.account_id == account_id, _EVENTS.c.seq > after_seq)
    if types:
        query = query.where(_EVENTS.c.type.in_(types))
    return list(db.execute(query.order_by(_EVENTS.c.seq).limit(limit)).mappings())


def latest_seq(db: Session | Connection, account_id: str) -> int:
    """The account's last event number (0 before its first event)."""
    value = db.execute(
        select(EventCounter.last_seq).where(EventCounter.account_id == account_id)
    ).scalar()
    return int(value or 0)
