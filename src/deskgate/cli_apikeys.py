"""`deskgate apikeys create|revoke`: API keys for operators and scripts."""

from __future__ import annotations

import click

from deskgate.cli_support import fail, load, print_json, transaction
from deskgate.services import api_keys
from deskgate.services.events import actors, timestamp
from deskgate.store import accounts as account_store
from deskgate.store.base import utcnow


@click.group("apikeys")
def apikeys() -> None:
    """API keys for /api/v1/agents and /api/v1/events (admins also manage them on Manage › API)."""


@apikeys.command("create")
@click.argument("account_id")
@click.option("--name", required=True, help="what the key is for, e.g. 'Chat service'")
@click.option("--scopes", required=True, help=f"comma-separated: {', '.join(api_keys.SCOPES)}")
def apikeys_create(account_id: str, name: str, scopes: str) -> None:
    """Create a key; prints {"id", "key"} (the key is shown this once)."""
    with transaction(load()) as db:
        if account_store.get(db, account_id) is None:
            fail(f"no account with id {account_id}")
        created = api_keys.create(
            db,
            account_id,
            name=name,
            scopes=scopes.split(","),
            actor=actors.operator(),
            created_by=api_keys.OPERATOR,
            now=utcnow(),
        )
    print_json(
        {"id": created.id, "key": created.key, "name": created.name, "scopes": created.scopes}
    )


@apikeys.command("revoke")
@click.argument("account_id")
@click.argument("key_id")
def apikeys_revoke(account_id: str, key_id: str) -> None:
    """Revoke a key: its next request is refused."""
    with transaction(load()) as db:
        if account_store.get(db, account_id) is None:
            fail(f"no account with id {account_id}")
        key = api_keys.revoke(db, account_id, key_id, actor=actors.operator(), now=utcnow())
        result = {
            "id": key.id,
            "name": key.name,
            "revoked_at": timestamp(key.revoked_at) if key.revoked_at else None,
        }
    print_json(result)
