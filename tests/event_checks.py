"""Reading the events tests made, checked against the published JSON Schema (imported as
`event_checks`: the tests folder is on sys.path).

Every event read through `events_of` is validated against docs/events.schema.json, so every
event a test provokes is a schema check. With DESKGATE_EVENT_EXAMPLES=<file> set, the first
event of each type seen is kept in that JSON file (the README's examples come from there).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from deskgate.services.events import envelope
from deskgate.store.models import Event

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "events.schema.json"


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def check(event: dict[str, Any]) -> dict[str, Any]:
    """`event` (an envelope), after validating it against the schema."""
    errors = sorted(validator().iter_errors(event), key=lambda e: list(e.path))
    assert not errors, f"{event['type']} does not match the schema: {errors[0].message}\n{event}"
    _keep_example(event)
    return event


def events_of(db: Session, account_id: str, *types: str) -> list[dict[str, Any]]:
    """The account's committed events (of these types, if given), oldest first, each checked
    against the schema."""
    db.rollback()
    query = select(Event.__table__).where(Event.account_id == account_id)
    if types:
        query = query.where(Event.type.in_(types))
    rows = db.execute(query.order_by(Event.seq)).mappings()
    return [check(envelope(row)) for row in rows]


def after_creation(db: Session, account_id: str, *types: str) -> list[dict[str, Any]]:
    """`events_of`, without the account's first event (its first admin's agent.created)."""
    return [e for e in events_of(db, account_id, *types) if e["cursor"] != "1"]


def _keep_example(event: dict[str, Any]) -> None:
    target = os.environ.get("DESKGATE_EVENT_EXAMPLES")
    if not target:
        return
    path = Path(target)
    kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if event["type"] not in kept:
        kept[event["type"]] = event
        path.write_text(json.dumps(kept, indent=2, sort_keys=True), encoding="utf-8")
