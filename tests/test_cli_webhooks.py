"""`deskgate webhooks add`: JSON with the id and the whsec_ secret; bad input exits 2 with one
line on stderr and writes nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from deskgate.cli import main
from deskgate.store.base import utcnow
from deskgate.store.models import Event, WebhookEndpoint

from helpers import table_rows


@pytest.fixture
def run(engine, database_url):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, private: bool = True):  # type: ignore[no-untyped-def]
        env = {
            "DESKGATE_DATABASE_URL": database_url,
            "DESKGATE_ALLOW_PRIVATE_WEBHOOK_URLS": "1" if private else "0",
        }
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def test_add_prints_the_id_and_a_usable_secret(run, make_account, db):
    account = make_account()
    result = run(
        "webhooks",
        "add",
        account.id,
        "--url",
        "http://127.0.0.1:9/hooks",
        "--events",
        "agent.created,agent.deactivated",
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed) == {"id", "secret"}
    assert printed["id"].startswith("whep_") and printed["secret"].startswith("whsec_")
    Webhook(printed["secret"]).sign("evt_1", utcnow(), b"{}")  # a valid Standard Webhooks secret
    db.rollback()
    endpoint = db.get(WebhookEndpoint, printed["id"])
    assert endpoint is not None and endpoint.account_id == account.id
    assert endpoint.event_types == ["agent.created", "agent.deactivated"]
    event = db.scalars(select(Event).where(Event.type == "webhook.created")).one()
    assert event.actor_type == "operator"


def test_every_type_when_no_events_given(run, make_account, db):
    account = make_account()
    result = run("webhooks", "add", account.id, "--url", "http://127.0.0.1:9/hooks")
    assert result.exit_code == 0
    db.rollback()
    assert db.get(WebhookEndpoint, json.loads(result.stdout)["id"]).event_types == []  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "private", "message"),
    [
        (("acct_nope", "--url", "http://127.0.0.1:9/x"), True, "no account with id acct_nope"),
        (("{account}", "--url", "not a url"), True, "The webhook URL must be an http(s) URL"),
        (("{account}", "--url", "https://127.0.0.1/x"), False, "points at 127.0.0.1"),
        (
            ("{account}", "--url", "http://127.0.0.1:9/x", "--events", "agent.created,nope"),
            True,
            "Unknown event type 'nope'",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    run, make_account, db, args, private, message
):
    account = make_account()
    before = table_rows(db)
    result = run("webhooks", "add", *[a.format(account=account.id) for a in args], private=private)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert table_rows(db) == before
