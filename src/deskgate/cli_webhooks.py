"""`deskgate webhooks add`: an account's webhook endpoint, for operators and scripts."""

from __future__ import annotations

import click

from deskgate.cli_support import fail, load, print_json, transaction
from deskgate.services import webhooks
from deskgate.services.events import actors
from deskgate.store import accounts as account_store
from deskgate.store.base import utcnow


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook endpoints (signed with Standard Webhooks)."""


@webhooks_group.command("add")
@click.argument("account_id")
@click.option("--url", required=True, help="where deskgate POSTs the events (https)")
@click.option(
    "--events",
    "event_types",
    default="",
    help="comma-separated event types, e.g. agent.created,agent.deactivated [default: every type]",
)
@click.option("--description", default="", help="a note for the admins")
def webhooks_add(account_id: str, url: str, event_types: str, description: str) -> None:
    """Add an endpoint; prints its id and its signing secret (whsec_…, shown only here)."""
    settings = load()
    with transaction(settings) as db:
        if account_store.get(db, account_id) is None:
            fail(f"no account with id {account_id}")
        endpoint, secret = webhooks.add_endpoint(
            db,
            account_id,
            webhooks.EndpointForm(
                url=url, event_types=event_types.split(","), description=description
            ),
            actors.operator(),
            utcnow(),
            allow_private=settings.allow_private_webhook_urls,
        )
    print_json({"id": endpoint.id, "secret": secret})
