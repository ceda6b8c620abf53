"""Manage › API: admins create keys (shown once) and revoke them; clear errors that write
nothing; agents and strangers are kept out."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from deskgate.services import agents as agent_service
from deskgate.store import events as event_store
from deskgate.store.models import ApiKey

from api_helpers import bearer
from helpers import TEST_PASSWORD, csrf_token, post_form, sign_in, table_rows

KEY = re.compile(r'<code id="new-api-key">(dgk_[A-Za-z0-9_-]+)</code>')


@pytest.fixture
def admin_client(client, make_account):
    account = make_account()
    assert sign_in(client, account.admin_email).status_code == 303
    client.account = account
    return client


def create(client, name="Chat service", scopes=("agents:read",)):
    page = client.get("/manage/api")
    data = {"csrf_token": csrf_token(page.text), "name": name, "scopes": list(scopes)}
    return client.post("/manage/api/keys", data=data)


def keys(db):
    db.rollback()
    return db.scalars(select(ApiKey)).all()


def test_an_admin_creates_a_key_that_is_shown_once_and_works(admin_client, db):
    response = create(admin_client, "Chat service", ["agents:read", "events:read"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    key = KEY.search(response.text).group(1)
    assert 'data-copy="#new-api-key"' in response.text
    [row] = keys(db)
    assert (row.name, row.scopes, row.created_by) == (
        "Chat service",
        ["agents:read", "events:read"],
        admin_client.account.admin_id,
    )
    listing = admin_client.get("/manage/api")
    assert key not in listing.text and "new-api-key" not in listing.text
    assert f"dgk_…{key[-4:]}" in listing.text and "Chat service" in listing.text
    assert "never" in listing.text  # not used yet
    assert admin_client.get("/api/v1/events", headers=bearer(key)).status_code == 200
    assert "never" not in admin_client.get("/manage/api").text.split("api-keys")[1]
    [event] = event_store.page_after(
        db, admin_client.account.id, 0, 10, types=["api_key.created", "api_key.revoked"]
    )
    assert (event["type"], event["actor_type"], event["actor_id"]) == (
        "api_key.created",
        "admin",
        admin_client.account.admin_id,
    )


@pytest.mark.parametrize(
    ("name", "scopes", "message"),
    [
        ("", ["agents:read"], "The name is required."),
        ("   ", ["agents:read"], "The name is required."),
        ("x" * 101, ["agents:read"], "The name is too long (101 characters; at most 100)."),
        ("Chat", [], "Choose at least one scope (agents:read, events:read)."),
        ("Chat", ["admin:write"], "Unknown scope &#39;admin:write&#39;"),
        ("Line\nbreak", ["agents:read"], "The name must be one line of visible characters"),
    ],
)
def test_bad_input_is_explained_and_writes_nothing(admin_client, db, name, scopes, message):
    before = table_rows(db)
    response = create(admin_client, name, scopes)
    assert response.status_code == 400
    assert message in response.text
    assert "new-api-key" not in response.text
    assert table_rows(db) == before


def test_revoking_a_key_stops_it_at_once(admin_client, db):
    key = KEY.search(create(admin_client).text).group(1)
    [row] = keys(db)
    page = admin_client.get("/manage/api")
    assert 'data-confirm="Revoke the API key' in page.text
    response = admin_client.post(
        f"/manage/api/keys/{row.id}/revoke", data={"csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 303
    after = admin_client.get("/manage/api").text
    assert "API key “Chat service” revoked" in after
    assert 'badge fail">revoked' in after
    assert admin_client.get("/api/v1/agents", headers=bearer(key)).status_code == 401
    db.rollback()
    assert [
        e["type"]
        for e in event_store.page_after(
            db, row.account_id, 0, 10, types=["api_key.created", "api_key.revoked"]
        )
    ] == [
        "api_key.created",
        "api_key.revoked",
    ]


def test_another_accounts_key_cannot_be_revoked(admin_client, new_client, make_account, db):
    other = make_account()
    stranger = new_client()
    sign_in(stranger, other.admin_email)
    create(stranger, "Theirs")
    [theirs] = keys(db)
    before = table_rows(db)
    page = admin_client.get("/manage/api")
    response = admin_client.post(
        f"/manage/api/keys/{theirs.id}/revoke", data={"csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 404
    assert "No API key with id" in response.text
    assert "Theirs" not in response.text
    assert table_rows(db) == before


def test_forms_without_the_csrf_token_are_refused(admin_client, db):
    admin_client.get("/manage/api")
    response = admin_client.post("/manage/api/keys", data={"name": "x", "scopes": ["agents:read"]})
    assert response.status_code == 403
    assert keys(db) == []


def test_only_admins_see_the_page(client, new_client, db, make_account):
    account = make_account()
    agent_service.add_agent(db, account.id, email="bo@example.com", password=TEST_PASSWORD)
    db.commit()
    assert client.get("/manage/api").status_code == 303  # to the sign-in page
    bo = new_client()
    sign_in(bo, "bo@example.com")
    assert bo.get("/manage/api").status_code == 403
    assert 'href="/manage/api"' not in bo.get("/console").text
    assert post_form(bo, "/console", "/manage/api/keys", {"name": "x"}).status_code == 403
    admin = new_client()
    sign_in(admin, account.admin_email)
    assert 'href="/manage/api"' in admin.get("/console").text
