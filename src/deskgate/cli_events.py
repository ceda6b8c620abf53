"""`deskgate events`: what operators and integrators need to know about events."""

from __future__ import annotations

import click

from deskgate.cli_support import print_json
from deskgate.services.event_schema import event_schema


@click.group("events")
def events_group() -> None:
    """The event log (audit log, GET /api/v1/events, webhooks)."""


@events_group.command("schema")
def events_schema() -> None:
    """Print the JSON Schema (draft 2020-12) of an event, one branch per event type."""
    print_json(event_schema())
