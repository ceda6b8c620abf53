"""Manage › Audit log: the account's events as admins read and export them.

Filters come from the page's query string and are checked here (a bad one is a 400 that says
which and why); rows are the public envelope (services/events.envelope) plus what the page
shows: the agent's email and, for changes, each field before and after.

The CSV export is the same filtered events, newest first, one row per event. A cell that a
spreadsheet would run as a formula (starting with = + - @, or a tab or carriage return) is
prefixed with a single quote: event data holds text others chose (names, emails, userNames).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deskgate.errors import InvalidInput
from deskgate.services.event_snapshots import ACTOR_TYPES
from deskgate.services.events import CATALOGUE, envelope
from deskgate.store import audit as audit_store
from deskgate.store.audit import EventFilter
from deskgate.store.models import Agent

PAGE_SIZE = 50
EXPORT_BATCH = 500
CSV_HEADER = (
    "cursor",
    "timestamp",
    "type",
    "actor_type",
    "actor_id",
    "actor_label",
    "agent_id",
    "changed_fields",
    "data",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class FilterForm:
    """The filter fields as typed (shown back in the form)."""

    actor_type: str = ""
    actor: str = ""
    agent: str = ""
    type: str = ""
    since: str = ""
    until: str = ""

    def query(self) -> dict[str, str]:
        """The non-empty fields, for links that keep the filter."""
        return {name: value for name, value in self.__dict__.items() if value}


def event_filter(db: Session, account_id: str, form: FilterForm) -> EventFilter:
    """The store filter for `form`, or InvalidInput naming the field that can't be used."""
    actor_type = form.actor_type.strip()
    if actor_type and actor_type not in ACTOR_TYPES:
        raise InvalidInput(
            f"Unknown actor type {actor_type!r}: choose one of {', '.join(ACTOR_TYPES)}.",
            field="actor_type",
        )
    event_type = form.type.strip()
    if event_type and event_type not in CATALOGUE:
        raise InvalidInput(f"Unknown event type {event_type!r}.", field="type")
    agent = form.agent.strip()
    agent_ids: list[str] | None = None
    if agent:
        agent_ids = (
            audit_store.agent_ids_with_email(db, account_id, agent) if "@" in agent else [agent]
        )
    since = _moment(form.since, "since", end_of_day=False)
    until = _moment(form.until, "until", end_of_day=True)
    if since is not None and until is not None and until <= since:
        raise InvalidInput("The end of the time range must be after its start.", field="until")
    return EventFilter(
        actor_type=actor_type or None,
        actor=form.actor.strip() or None,
        agent_ids=agent_ids,
        types=[event_type] if event_type else None,
        since=since,
        until=until,
    )


def _moment(text: str, field: str, *, end_of_day: bool) -> dt.datetime | None:
    """A UTC time from `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]`; a bare date as the end of a
    range takes the whole day."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            return moment + dt.timedelta(days=1) if end_of_day else moment
        parsed = dt.datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).", field=field
        ) from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


@dataclass(frozen=True)
class FieldChange:
    name: str
    before: str
    after: str
    changed: bool


@dataclass(frozen=True)
class AuditRow:
    event: dict[str, Any]
    """The public envelope."""
    agent_email: str | None
    changes: list[FieldChange]
    """For a change: every field, before and after."""
    details: list[tuple[str, str]]
    """For other events (and a change's extra fields, like a group's members): name, value."""

    @property
    def changed_fields(self) -> list[str]:
        return [change.name for change in self.changes if change.changed]


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    older_than: int | None
    """The cursor of the next (older) page, or None when this is the last."""


def read_page(
    db: Session, account_id: str, wanted: EventFilter, *, before_seq: int | None
) -> AuditPage:
    found = audit_store.page(db, account_id, wanted, before_seq=before_seq, limit=PAGE_SIZE + 1)
    rows = found[:PAGE_SIZE]
    emails = _agent_emails(db, account_id, {row["agent_id"] for row in rows if row["agent_id"]})
    return AuditPage(
        rows=[audit_row(row, emails.get(row["agent_id"] or "")) for row in rows],
        older_than=rows[-1]["seq"] if len(found) > PAGE_SIZE else None,
    )


def _agent_emails(db: Session, account_id: str, agent_ids: set[str]) -> dict[str, str]:
    if not agent_ids:
        return {}
    found = db.execute(
        select(Agent.id, Agent.email, Agent.user_name).where(
            Agent.account_id == account_id, Agent.id.in_(sorted(agent_ids))
        )
    )
    return {agent_id: email or user_name for agent_id, email, user_name in found}


def audit_row(row: Any, agent_email: str | None = None) -> AuditRow:
    """A stored event (a row of `events`) as the page shows it."""
    event = envelope(row)
    data = event["data"] or {}
    changes: list[FieldChange] = []
    details: list[tuple[str, str]] = []
    if "before" in data and "after" in data:
        before, after = data["before"] or {}, data["after"] or {}
        names = list(before) + [name for name in after if name not in before]
        changes = [
            FieldChange(
                name,
                _shown(before.get(name)) if name in before else "",
                _shown(after.get(name)) if name in after else "",
                before.get(name) != after.get(name) or (name in before) != (name in after),
            )
            for name in names
        ]
        details = [
            (name, _shown(value)) for name, value in data.items() if name not in ("before", "after")
        ]
    else:
        details = [(name, _shown(value)) for name, value in data.items()]
    return AuditRow(event=event, agent_email=agent_email, changes=changes, details=details)


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# --- CSV ------------------------------------------------------------------------------------


def csv_cell(value: str) -> str:
    """`value` as a CSV cell no spreadsheet runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def csv_lines(read: Callable[[], Any], account_id: str, wanted: EventFilter) -> Iterator[str]:
    """The export: a header line, then one line per matching event, newest first (read a batch
    at a time through `read`, which opens a read-only connection)."""
    yield _csv_line(CSV_HEADER)
    for rows in audit_store.batches(read, account_id, wanted, batch_size=EXPORT_BATCH):
        for row in rows:
            yield _csv_line(_csv_fields(audit_row(row)))


def _csv_fields(row: AuditRow) -> list[str]:
    event = row.event
    actor = event["actor"]
    return [
        event["cursor"],
        event["timestamp"],
        event["type"],
        actor["type"],
        actor["id"] or "",
        actor["label"] or "",
        event["agent_id"] or "",
        " ".join(row.changed_fields),
        json.dumps(event["data"], ensure_ascii=False, separators=(",", ":"), sort_keys=True),
    ]


def _csv_line(values: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(value) for value in values])
    return buffer.getvalue()
