"""GET /api/v1/events: the account's events after a cursor, oldest first, in envelopes; the
cursor moves past what a `types` filter skips; bad cursors and limits are 400s."""

from __future__ import annotations

import pytest

from deskgate.services import events
from deskgate.store import events as event_store

from api_helpers import bearer, follow

SYSTEM = events.actors.system("test")
TYPES = ("sso.enabled", "sso.disabled", "domain.added")


@pytest.fixture
def logged(db, make_account, make_key):
    """An account with a key (event 1: api_key.created) and 60 more events of three types."""
    account = make_account()
    # Start the log here: the account's creation recorded its admin's agent.created.
    db.execute(event_store._EVENTS.delete().where(event_store._EVENTS.c.account_id == account.id))
    db.execute(event_store.EventCounter.__table__.delete())
    db.commit()
    key = make_key(account.id).key
    for n in range(60):
        data = {"domain": f"d{n}.example"} if n % 3 == 2 else {"before": None, "after": {"n": n}}
        events.record(db, account.id, TYPES[n % 3], SYSTEM, data)
        if n % 7 == 6:
            db.commit()  # several commits, several events each
    db.commit()
    stored = [events.envelope(row) for row in event_store.page_after(db, account.id, 0, 1000)]
    assert len(stored) == 61
    return account, key, stored


def test_the_first_page_starts_at_the_first_event(client, logged):
    account, key, stored = logged
    body = client.get("/api/v1/events", headers=bearer(key)).json()
    assert body == {"data": stored, "next_cursor": "61", "has_more": False}
    first = body["data"][0]
    assert first["type"] == "api_key.created" and first["cursor"] == "1"
    assert first["actor"] == {"type": "operator", "id": None, "label": "deskgate CLI"}
    assert first["account_id"] == account.id


@pytest.mark.parametrize("limit", [1, 5, 61, 1000])
def test_following_the_cursor_reads_every_event_once_in_order(client, logged, limit):
    _, key, stored = logged
    assert follow(client.get, "/api/v1/events", key, limit=limit) == stored


def test_a_page_says_where_to_continue(client, logged):
    _, key, _ = logged
    body = client.get("/api/v1/events?after=10&limit=5", headers=bearer(key)).json()
    assert [e["cursor"] for e in body["data"]] == ["11", "12", "13", "14", "15"]
    assert (body["next_cursor"], body["has_more"]) == ("15", True)
    caught_up = client.get("/api/v1/events?after=61", headers=bearer(key)).json()
    assert caught_up == {"data": [], "next_cursor": "61", "has_more": False}


def test_a_types_filter_keeps_those_types_and_moves_past_the_rest(client, logged):
    _, key, stored = logged
    wanted = ("sso.disabled", "domain.added")
    expected = [e for e in stored if e["type"] in wanted]
    got = follow(client.get, "/api/v1/events", key, limit=4, types=",".join(wanted))
    assert got == expected
    # Nothing of the type after cursor 50: the poll moves to the end instead of rereading.
    tail = client.get("/api/v1/events?after=50&types=api_key.revoked", headers=bearer(key))
    assert tail.json() == {"data": [], "next_cursor": "61", "has_more": False}


def test_new_events_are_read_after_the_cursor_of_the_last_poll(client, db, logged):
    account, key, _ = logged
    cursor = client.get("/api/v1/events", headers=bearer(key)).json()["next_cursor"]
    db.rollback()  # end the fixture's read (SQLite: a reader cannot become a writer)
    events.record(db, account.id, "sso.enabled", SYSTEM, {"before": None, "after": None})
    db.commit()
    body = client.get(f"/api/v1/events?after={cursor}", headers=bearer(key)).json()
    assert [(e["cursor"], e["type"]) for e in body["data"]] == [("62", "sso.enabled")]


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ("after=-1", "after must be the cursor of an event"),
        ("after=abc", "after must be the cursor of an event"),
        ("after=1.5", "after must be the cursor of an event"),
        ("after=" + "9" * 19, "after must be the cursor of an event"),
        ("after=", "after must be the cursor of an event"),
        ("after=62", "after=62 is past this account's last event (61)"),
        ("limit=0", "limit must be a whole number from 1 to 1000"),
        ("limit=1001", "limit must be"),
        ("limit=1e3", "limit must be"),
        ("types=agent.exploded", "Unknown event type 'agent.exploded'"),
        ("types=sso.enabled,nope", "Unknown event type 'nope'"),
    ],
)
def test_bad_parameters_are_400s_that_say_what_to_send(client, logged, query, mentions):
    _, key, _ = logged
    response = client.get(f"/api/v1/events?{query}", headers=bearer(key))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameter"
    assert mentions in response.json()["error"]


def test_an_account_without_events_reads_an_empty_log(client, db, make_account, make_key):
    account = make_account()
    key = make_key(account.id).key
    db.execute(event_store._EVENTS.delete())  # as if the key had been made before the log
    db.execute(event_store.EventCounter.__table__.delete())
    db.commit()
    body = client.get("/api/v1/events", headers=bearer(key)).json()
    assert body == {"data": [], "next_cursor": "0", "has_more": False}
    assert client.get("/api/v1/events?after=0", headers=bearer(key)).status_code == 200
