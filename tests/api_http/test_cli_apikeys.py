"""`deskgate apikeys create|revoke`: JSON out; bad input exits 2 with one line and writes nothing."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from deskgate.cli import main
from deskgate.store import events as event_store
from deskgate.store.models import ApiKey

from api_helpers import bearer
from helpers import table_rows


@pytest.fixture
def run(engine, database_url):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(
            main, list(args), env={"DESKGATE_DATABASE_URL": database_url}, catch_exceptions=False
        )

    return invoke


def test_create_prints_the_key_once_and_revoke_stops_it(run, db, client, make_account):
    account = make_account()
    result = run(
        "apikeys", "create", account.id, "--name", "Chat", "--scopes", "events:read,agents:read"
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert set(created) == {"id", "key", "name", "scopes"}
    assert created["scopes"] == ["agents:read", "events:read"]
    assert created["key"].startswith("dgk_")
    db.rollback()
    row = db.scalars(select(ApiKey)).one()
    assert (row.id, row.created_by) == (created["id"], "operator")
    assert row.key_hash == hashlib.sha256(created["key"].encode()).hexdigest()
    assert client.get("/api/v1/agents", headers=bearer(created["key"])).status_code == 200

    revoked = run("apikeys", "revoke", account.id, created["id"])
    assert revoked.exit_code == 0, revoked.output
    body = json.loads(revoked.stdout)
    assert (body["id"], body["name"]) == (created["id"], "Chat")
    assert body["revoked_at"].endswith("Z")
    assert client.get("/api/v1/agents", headers=bearer(created["key"])).status_code == 401
    db.rollback()
    assert [
        (e["type"], e["actor_type"])
        for e in event_store.page_after(
            db, account.id, 0, 9, types=["api_key.created", "api_key.revoked"]
        )
    ] == [
        ("api_key.created", "operator"),
        ("api_key.revoked", "operator"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("create", "acct_nope", "--name", "N", "--scopes", "agents:read"),
            "no account with id acct_nope",
        ),
        (
            ("create", "{account}", "--name", "N", "--scopes", "agents:write"),
            "Unknown scope 'agents:write'",
        ),
        (("create", "{account}", "--name", "N", "--scopes", ","), "Choose at least one scope"),
        (
            ("create", "{account}", "--name", " ", "--scopes", "agents:read"),
            "The name is required.",
        ),
        (("create", "{account}", "--name", "n" * 101, "--scopes", "agents:read"), "too long"),
        (("revoke", "{account}", "apikey_nope"), "No API key with id apikey_nope"),
        (("revoke", "acct_nope", "apikey_nope"), "no account with id acct_nope"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(run, db, make_account, args, message):
    account = make_account()
    before = table_rows(db)
    result = run("apikeys", *(a.format(account=account.id) for a in args))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert table_rows(db) == before


def test_a_key_of_another_account_is_not_revoked(run, db, make_account):
    first, second = make_account(), make_account()
    created = json.loads(
        run("apikeys", "create", first.id, "--name", "A", "--scopes", "agents:read").stdout
    )
    result = run("apikeys", "revoke", second.id, created["id"])
    assert result.exit_code == 2
    db.rollback()
    assert db.scalars(select(ApiKey)).one().revoked_at is None
