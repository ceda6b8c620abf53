"""The published JSON Schema of events: docs/events.schema.json is what `deskgate events
schema` prints, it is a valid draft 2020-12 schema, it covers every catalogued type, and it
refuses what an event must not be."""

from __future__ import annotations

import json

from click.testing import CliRunner

from deskgate.cli import main
from deskgate.services.events import AGENT_FIELDS, CATALOGUE
from deskgate.store.scim import SNAPSHOT_COLUMNS

from event_checks import SCHEMA_FILE, validator


def test_the_committed_schema_is_what_the_command_prints() -> None:
    result = CliRunner().invoke(main, ["events", "schema"])
    assert result.exit_code == 0, result.output
    assert result.output == SCHEMA_FILE.read_text(encoding="utf-8"), (
        "docs/events.schema.json is stale: uv run deskgate events schema > docs/events.schema.json"
    )


def test_the_schema_has_one_branch_per_catalogued_type() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert [branch["properties"]["type"]["const"] for branch in schema["oneOf"]] == list(CATALOGUE)
    assert schema["$defs"]["agent"]["required"] == list(AGENT_FIELDS)


def test_the_store_reads_every_snapshot_column() -> None:
    assert SNAPSHOT_COLUMNS == AGENT_FIELDS


def _event(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "id": "evt_01",
        "type": "scim_token.created",
        "timestamp": "2026-12-03T10:00:00.000000Z",
        "account_id": "acct_01",
        "cursor": "7",
        "actor": {"type": "admin", "id": "agt_01", "label": "ada@example.com"},
        "agent_id": None,
        "data": {"token_id": "scimtok_01", "hint": "a1b2"},
    }
    event.update(changes)
    return event


def test_the_schema_refuses_what_an_event_must_not_be() -> None:
    check = validator()
    assert check.is_valid(_event())
    assert not check.is_valid(_event(type="agent.exploded"))
    assert not check.is_valid(_event(data={"token_id": "scimtok_01"}))  # a field missing
    assert not check.is_valid(_event(data={"token_id": "t", "hint": "h", "token": "secret"}))
    assert not check.is_valid(_event(actor={"type": "hacker", "id": None, "label": None}))
    assert not check.is_valid(_event(cursor="0"))
    agent_created = _event(
        type="agent.created", agent_id="agt_02", data={"before": {}, "after": {}}
    )
    assert not check.is_valid(agent_created)
