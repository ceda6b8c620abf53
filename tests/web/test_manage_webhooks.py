"""Manage › Webhooks: add (secret shown once), edit, disable, rotate, delete, the delivery log
and Resend; admins only, CSRF-checked; refused input changes nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from deskgate.services import events
from deskgate.services.events import actors
from deskgate.store.base import utcnow
from deskgate.store.models import Event, WebhookDelivery, WebhookEndpoint

from helpers import csrf_token, post_form, sign_in, table_rows

URL = "http://127.0.0.1:9/hooks"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"allow_private_webhook_urls": True})


@pytest.fixture
def admin_client(client, make_account):  # type: ignore[no-untyped-def]
    account = make_account()
    assert sign_in(client, account.admin_email).status_code == 303
    client.account = account
    return client


def add(client, **fields):  # type: ignore[no-untyped-def]
    data = {"url": URL, "description": "", "enabled": "on", **fields}
    return post_form(client, "/manage/webhooks", "/manage/webhooks", data)


def endpoints(db):  # type: ignore[no-untyped-def]
    db.rollback()
    return list(db.scalars(select(WebhookEndpoint)))


def test_add_shows_the_secret_once_and_records_an_event(admin_client, db):
    page = admin_client.get("/manage/webhooks")
    assert page.status_code == 200 and 'href="/manage/webhooks"' in page.text
    response = add(admin_client, event_types=["agent.created", "agent.deactivated"])
    assert response.status_code == 200
    [endpoint] = endpoints(db)
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', response.text).group(1)  # type: ignore[union-attr]
    assert secret == endpoint.secret
    assert endpoint.event_types == ["agent.created", "agent.deactivated"]
    assert endpoint.enabled and endpoint.url == URL
    assert secret not in admin_client.get("/manage/webhooks").text  # only once
    assert secret not in admin_client.get(f"/manage/webhooks/{endpoint.id}").text
    [event] = db.scalars(select(Event).where(Event.type == "webhook.created"))
    assert event.actor_type == "admin" and event.data["after"]["url"] == URL
    assert secret not in repr(event.data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://x.example/"}, "must be an http(s) URL"),
        ({"url": ""}, "Give the URL"),
        ({"event_types": ["agent.exploded"]}, "Unknown event type &#39;agent.exploded&#39;"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(admin_client, db, fields, message):
    before = table_rows(db, exclude=("sessions",))
    response = add(admin_client, **fields)
    assert response.status_code == 400
    assert message in response.text
    assert table_rows(db, exclude=("sessions",)) == before


def test_private_addresses_are_refused_unless_allowed(client, make_account, db, app):
    app.state.deskgate = app.state.deskgate.__class__(
        **{
            **app.state.deskgate.__dict__,
            "settings": app.state.deskgate.settings.model_copy(
                update={"allow_private_webhook_urls": False}
            ),
        }
    )
    account = make_account()
    sign_in(client, account.admin_email)
    response = add(client, url="https://127.0.0.1/hooks")
    assert response.status_code == 400
    assert "points at 127.0.0.1, a private or loopback address" in response.text
    response = add(client, url="http://93.184.215.14/hooks")
    assert "must use https" in response.text
    assert endpoints(db) == []


def test_edit_disable_rotate_and_delete(admin_client, db):
    add(admin_client)
    [endpoint] = endpoints(db)
    path = f"/manage/webhooks/{endpoint.id}"
    page = admin_client.get(path).text
    assert f'name="url" value="{URL}"' in page  # the form starts from the stored values
    assert 'name="enabled" value="on" checked' in page
    response = post_form(
        admin_client,
        path,
        path,
        {
            "url": URL + "/v2",
            "description": "chat",
            "event_types": ["agent.updated"],
            "enabled": "on",
        },
    )
    assert response.status_code == 303
    [endpoint] = endpoints(db)
    assert (endpoint.url, endpoint.description, endpoint.event_types) == (
        URL + "/v2",
        "chat",
        ["agent.updated"],
    )
    response = post_form(admin_client, path, f"{path}/enabled", {"enabled": "false"})
    assert response.status_code == 303 and not endpoints(db)[0].enabled

    old = endpoints(db)[0].secret
    page = post_form(admin_client, path, f"{path}/rotate", {})
    assert page.status_code == 200
    [endpoint] = endpoints(db)
    assert endpoint.previous_secret == old and endpoint.secret != old
    assert endpoint.secret in page.text and old not in page.text
    hours = (endpoint.previous_secret_expires_at - utcnow()).total_seconds() / 3600
    assert 23.9 < hours <= 24
    webhook_events = select(Event).where(Event.type.like("webhook.%")).order_by(Event.seq)
    types = [e.type for e in db.scalars(webhook_events)]
    assert types == [
        "webhook.created",
        "webhook.updated",
        "webhook.updated",
        "webhook.secret_rotated",
    ]
    rotated = db.scalars(select(Event).where(Event.type == "webhook.secret_rotated")).one()
    assert rotated.data["webhook_id"] == endpoint.id and endpoint.secret not in repr(rotated.data)

    response = post_form(admin_client, path, f"{path}/delete", {})
    assert response.status_code == 303 and endpoints(db) == []


def test_delivery_log_and_resend(admin_client, db):
    add(admin_client, event_types=["agent.updated"])
    [endpoint] = endpoints(db)
    account_id = admin_client.account.id
    events.record(db, account_id, "agent.updated", actors.operator(), agent_id="agt_1")
    db.commit()
    event = db.scalars(select(Event).where(Event.type == "agent.updated")).one()
    db.add(
        WebhookDelivery(
            id="whdel_1",
            account_id=account_id,
            endpoint_id=endpoint.id,
            event_id=event.id,
            event_seq=event.seq,
            event_type=event.type,
            agent_id="agt_1",
            state="pending",
            attempts=2,
            next_attempt_at=utcnow(),
            last_status_code=500,
            last_latency_ms=12.3,
            last_error="HTTP 500 (expected 2xx).",
        )
    )
    db.commit()
    path = f"/manage/webhooks/{endpoint.id}"
    page = admin_client.get(path)
    assert page.status_code == 200
    for shown in ("agent.updated", event.id, "pending", "500", "12 ms", "HTTP 500 (expected 2xx)."):
        assert shown in page.text
    response = post_form(admin_client, path, f"{path}/deliveries/whdel_1/resend", {})
    assert response.status_code == 303
    db.rollback()
    copies = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)).all()
    assert len(copies) == 2 and {c.attempts for c in copies} == {0, 2}
    # Another endpoint's path, or another account's delivery: not found.
    response = post_form(
        admin_client, path, "/manage/webhooks/whep_x/deliveries/whdel_1/resend", {}
    )
    assert response.status_code == 404


def test_non_admins_and_other_accounts_are_refused(admin_client, new_client, make_account, db):
    add(admin_client)
    [endpoint] = endpoints(db)
    other = make_account()
    stranger = new_client()
    sign_in(stranger, other.admin_email)
    assert stranger.get(f"/manage/webhooks/{endpoint.id}").status_code == 404
    page = stranger.get("/manage/webhooks")
    assert URL not in page.text
    token = csrf_token(page.text)
    for action in ("rotate", "delete"):
        response = stranger.post(
            f"/manage/webhooks/{endpoint.id}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 404
    # An agent who is not an admin.
    agent = new_client()
    webhooks_account = admin_client.account
    post_form(
        admin_client,
        "/manage/agents",
        "/manage/agents",
        {
            "email": "bo@example.com",
            "first_name": "Bo",
            "last_name": "B",
            "role": "agent",
            "password": "correct horse battery staple",
        },
    )
    sign_in(agent, "bo@example.com", "correct horse battery staple")
    assert agent.get("/manage/webhooks").status_code == 403
    assert webhooks_account.id
    # Without the CSRF token.
    response = admin_client.post(f"/manage/webhooks/{endpoint.id}/delete", data={})
    assert response.status_code == 403
    assert len(endpoints(db)) == 1
