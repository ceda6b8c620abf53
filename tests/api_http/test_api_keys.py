"""API keys as the data endpoints see them: only hashes stored, bearer check, scopes, accounts
kept apart, revocation at once, refused requests write nothing, last use noted sparingly."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re

import pytest
from sqlalchemy import select, update

from deskgate.services import api_keys
from deskgate.services.events import actors
from deskgate.store import events as event_store
from deskgate.store.base import utcnow
from deskgate.store.models import ApiKey

from api_helpers import bearer
from helpers import table_rows

ENDPOINTS = ("/api/v1/agents", "/api/v1/events")


def _row(db, key_id):
    db.rollback()
    return db.scalars(select(ApiKey).where(ApiKey.id == key_id)).one()


def test_a_key_is_recognisable_and_only_its_hash_is_stored(db, make_account, make_key):
    account = make_account()
    created = make_key(account.id, name="Chat service")
    assert re.fullmatch(r"dgk_[A-Za-z0-9_-]{43}", created.key)
    assert created.id.startswith("apikey_")
    row = _row(db, created.id)
    assert row.key_hash == hashlib.sha256(created.key.encode()).hexdigest()
    assert row.hint == created.key[-4:]
    assert (row.name, row.scopes, row.created_by) == (
        "Chat service",
        ["agents:read", "events:read"],
        "operator",
    )
    assert row.last_used_at is None and row.revoked_at is None
    secret = created.key[4:]
    assert secret not in repr(table_rows(db)), "the key itself is stored somewhere"


def test_creation_and_revocation_are_events_with_their_actor(db, make_account, make_key):
    account = make_account()
    created = make_key(account.id, scopes=["events:read"], name="Audit export")
    api_keys.revoke(
        db, account.id, created.id, actor=actors.admin(account.admin_id, "a@x.test"), now=utcnow()
    )
    db.commit()
    api_keys.revoke(db, account.id, created.id, actor=actors.operator(), now=utcnow())
    db.commit()  # revoking twice changes nothing, records nothing
    rows = event_store.page_after(
        db, account.id, 0, 10, types=["api_key.created", "api_key.revoked"]
    )
    assert [(r["type"], r["actor_type"], r["data"]) for r in rows] == [
        (
            "api_key.created",
            "operator",
            {"key_id": created.id, "name": "Audit export", "scopes": ["events:read"]},
        ),
        ("api_key.revoked", "admin", {"key_id": created.id, "name": "Audit export"}),
    ]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "missing_api_key"),
        ("Bearer", "missing_api_key"),
        ("Bearer dgk_" + "A" * 43, "invalid_api_key"),
        ("Bearer dgscim_notanapikey", "invalid_api_key"),
        ("Bearer " + "x" * 500, "invalid_api_key"),
    ],
)
def test_a_missing_or_unknown_key_is_a_401_that_writes_nothing(
    client, db, make_account, make_key, path, authorization, code
):
    make_key(make_account().id)
    before = table_rows(db)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="deskgate"')
    assert response.json()["code"] == code
    assert "Manage › API" in response.json()["error"]
    if code == "invalid_api_key":
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert table_rows(db) == before


@pytest.mark.parametrize(
    ("scopes", "path", "needed"),
    [
        (["events:read"], "/api/v1/agents", "agents:read"),
        (["events:read"], "/api/v1/agents/agt_01jd0000000000000000000000", "agents:read"),
        (["agents:read"], "/api/v1/events", "events:read"),
    ],
)
def test_a_key_without_the_scope_is_a_403_naming_it(
    client, make_account, make_key, scopes, path, needed
):
    key = make_key(make_account().id, scopes=scopes).key
    response = client.get(path, headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert needed in response.json()["error"]
    assert f'scope="{needed}"' in response.headers["www-authenticate"]


def test_the_bearer_scheme_is_case_insensitive(client, make_account, make_key):
    key = make_key(make_account().id).key
    assert (
        client.get("/api/v1/agents", headers={"Authorization": f"bearer {key}"}).status_code == 200
    )


def test_revocation_takes_effect_at_once(client, db, make_account, make_key):
    account = make_account()
    created = make_key(account.id)
    assert client.get("/api/v1/agents", headers=bearer(created.key)).status_code == 200
    api_keys.revoke(db, account.id, created.id, actor=actors.operator(), now=utcnow())
    db.commit()
    for path in ENDPOINTS:
        response = client.get(path, headers=bearer(created.key))
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_api_key"


def test_one_accounts_key_never_reads_another_accounts_data(client, db, make_account, make_key):
    first, second = make_account(), make_account()
    key = make_key(first.id).key
    make_key(second.id)  # an event in the second account
    agents = client.get("/api/v1/agents", headers=bearer(key)).json()["data"]
    assert [a["id"] for a in agents] == [first.admin_id]
    other = client.get(f"/api/v1/agents/{second.admin_id}", headers=bearer(key))
    assert other.status_code == 404
    assert other.json()["code"] == "not_found"
    own = client.get(f"/api/v1/agents/{first.admin_id}", headers=bearer(key))
    assert own.status_code == 200 and own.json()["id"] == first.admin_id
    events = client.get("/api/v1/events", headers=bearer(key)).json()["data"]
    assert {e["account_id"] for e in events} == {first.id}
    # A cursor read in the other account (it has events up to 2 too) shows nothing of it.
    assert client.get("/api/v1/events?after=2", headers=bearer(key)).json()["data"] == []


def test_last_use_is_noted_at_most_every_few_minutes(client, db, make_account, make_key):
    created = make_key(make_account().id)
    assert client.get("/api/v1/agents", headers=bearer(created.key)).status_code == 200
    first_use = _row(db, created.id).last_used_at
    assert first_use is not None and utcnow() - first_use < dt.timedelta(minutes=1)
    assert client.get("/api/v1/events", headers=bearer(created.key)).status_code == 200
    assert _row(db, created.id).last_used_at == first_use  # not due: nothing written
    stale = utcnow() - api_keys.TOUCH_INTERVAL - dt.timedelta(seconds=1)
    db.execute(update(ApiKey).where(ApiKey.id == created.id).values(last_used_at=stale))
    db.commit()
    assert client.get("/api/v1/agents", headers=bearer(created.key)).status_code == 200
    assert _row(db, created.id).last_used_at > first_use


def test_a_bad_parameter_is_refused_after_the_key_is_checked(client, make_account, make_key):
    key = make_key(make_account().id).key
    assert client.get("/api/v1/agents?limit=0").status_code == 401
    response = client.get("/api/v1/agents?limit=0", headers=bearer(key))
    assert response.status_code == 400
    assert response.json() == {
        "error": "limit must be a whole number from 1 to 1000 (default 100); received '0'.",
        "code": "invalid_parameter",
    }
    assert response.headers["cache-control"] == "no-store"


def test_the_request_log_names_the_route_and_account_never_the_key(
    client, make_account, make_key, caplog
):
    account = make_account()
    key = make_key(account.id).key
    caplog.set_level(logging.DEBUG)
    client.get(f"/api/v1/agents/{account.admin_id}?email=secret-email@x.io", headers=bearer(key))
    client.get("/api/v1/events", headers=bearer("dgk_" + "Z" * 43))
    lines = [r for r in caplog.records if r.name == "deskgate.request"]
    assert [(r.route, r.group, r.status, r.account_id) for r in lines] == [
        ("/api/v1/agents/{agent_id}", "api", 200, account.id),
        ("/api/v1/events", "api", 401, None),
    ]
    server = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the test's client
    logged = "\n".join(r.getMessage() for r in server) + repr([r.__dict__ for r in server])
    for secret in (key, key[4:], "Z" * 43, "secret-email"):
        assert secret not in logged
