"""The dispatcher in-process against a real receiver on 127.0.0.1 and the real database:
signatures verified with `standardwebhooks`, rotation overlap, retries with backoff, per-agent
order, give-up, leases, redirects, timeouts and the SSRF guard at send time."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from deskgate.errors import InvalidInput
from deskgate.services import events, webhooks
from deskgate.services.events import actors, envelope
from deskgate.services.webhook_dispatch import Dispatcher, DispatchPolicy
from deskgate.store import webhooks as webhook_store
from deskgate.store.base import make_sessionmaker, utcnow
from deskgate.store.models import Event, WebhookAttempt, WebhookDelivery

from helpers import run_async
from support.webhook_receiver import HOLD, WebhookReceiver

FAST = DispatchPolicy(timeout=2.0, poll=0.05, retry_delays=(0.1,), allow_private=True)


def run_until(dispatcher: Dispatcher, done: Callable[[], bool], timeout: float = 20) -> None:
    async def main() -> None:
        task = asyncio.create_task(dispatcher.run_forever())
        deadline = time.monotonic() + timeout
        try:
            while not done():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "dispatcher did not finish in time"
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_async(main)


@pytest.fixture
def dispatcher(engine):  # type: ignore[no-untyped-def]
    def make(policy: DispatchPolicy = FAST, **options) -> Dispatcher:  # type: ignore[no-untyped-def]
        return Dispatcher(make_sessionmaker(engine), policy, **options)

    return make


def add_endpoint(db, account_id, url, types=(), resolve=None, **form):  # type: ignore[no-untyped-def]
    endpoint, secret = webhooks.add_endpoint(
        db,
        account_id,
        webhooks.EndpointForm(url=url, event_types=list(types), **form),
        actors.operator(),
        utcnow(),
        allow_private=True,
        **({"resolve": resolve} if resolve else {}),
    )
    db.commit()
    return endpoint, secret


def record(db, account_id, type_="agent.updated", agent_id="agt_1", n=1):  # type: ignore[no-untyped-def]
    for i in range(n):
        events.record(db, account_id, type_, actors.operator(), {"n": i}, agent_id=agent_id)
    db.commit()


def deliveries(db, endpoint_id):  # type: ignore[no-untyped-def]
    db.rollback()  # a fresh snapshot (SQLite: a read transaction sees its start)
    return list(
        db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.event_seq, WebhookDelivery.created_at)
        )
    )


def first_is(db, endpoint_id, state=None, min_attempts=1):  # type: ignore[no-untyped-def]
    rows = deliveries(db, endpoint_id)
    return bool(rows) and rows[0].attempts >= min_attempts and state in (None, rows[0].state)


def test_every_delivery_is_signed_and_carries_the_event(db, make_account, dispatcher):
    account = make_account()
    with WebhookReceiver() as receiver:
        endpoint, secret = add_endpoint(db, account.id, receiver.url)
        receiver.secrets.append(secret)
        assert secret.startswith("whsec_")
        record(db, account.id, "agent.created", "agt_a", n=3)
        record(db, account.id, "group.created", None)
        # webhook.created (recorded with the endpoint) + 4
        run_until(
            dispatcher(),
            lambda: [d.state for d in deliveries(db, endpoint.id)] == ["succeeded"] * 5,
        )
    assert not receiver.refused
    rows = {row.id: row for row in db.scalars(select(Event))}
    for got in receiver.received:
        assert got.verified_by == [secret]
        assert got.headers["content-type"] == "application/json"
        assert got.headers["webhook-id"] == got.body["id"]
        assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 30
        assert got.body == envelope(
            {
                column: getattr(rows[got.webhook_id], column)
                for column in [c.name for c in Event.__table__.c]
            }
        )
    assert sorted(r.body["type"] for r in receiver.received) == [
        "agent.created",
        "agent.created",
        "agent.created",
        "group.created",
        "webhook.created",
    ]
    attempts = db.scalars(select(WebhookAttempt)).all()
    assert len(attempts) == 5 and all(a.status_code == 204 for a in attempts)


def test_a_rotation_signs_with_both_secrets_for_the_overlap(db, make_account, dispatcher):
    account = make_account()
    with WebhookReceiver() as receiver:
        endpoint, old = add_endpoint(db, account.id, receiver.url, types=["agent.updated"])
        _, new = webhooks.rotate_secret(db, account.id, endpoint.id, actors.operator(), utcnow())
        db.commit()
        receiver.secrets.extend([old, new])
        record(db, account.id, n=2)
        run_until(dispatcher(), lambda: len(receiver.succeeded()) == 2)
        for got in receiver.received:
            assert got.verified_by == [old, new]
            assert len(got.headers["webhook-signature"].split(" ")) == 2
        # The overlap over, only the new secret signs.
        db.execute(update(webhook_store.ENDPOINTS).values(previous_secret_expires_at=utcnow()))
        db.commit()
        record(db, account.id)
        run_until(dispatcher(), lambda: len(receiver.succeeded()) == 3)
    assert receiver.received[-1].verified_by == [new]
    assert not receiver.refused


def test_fails_three_times_then_succeeds_and_later_events_of_the_agent_wait(
    db, make_account, dispatcher
):
    account = make_account()
    failing: list[str] = []  # the id of agt_x's first event: refused three times

    def respond(webhook_id: str, nth: int) -> int:
        return 500 if webhook_id in failing and nth <= 3 else 200

    with WebhookReceiver(respond=respond) as receiver:
        endpoint, secret = add_endpoint(db, account.id, receiver.url, types=["agent.updated"])
        receiver.secrets.append(secret)
        record(db, account.id, agent_id="agt_x")  # fails 3 times
        record(db, account.id, agent_id="agt_x", n=2)  # must wait for it
        record(db, account.id, agent_id="agt_y")  # another agent: not held up
        failing.append(
            db.scalars(
                select(Event.id).where(Event.agent_id == "agt_x").order_by(Event.seq)
            ).first()
        )
        db.rollback()  # hold no read transaction open while the dispatcher writes
        policy = DispatchPolicy(timeout=2.0, poll=0.05, retry_delays=(0.3,), allow_private=True)
        run_until(dispatcher(policy), lambda: len(receiver.succeeded()) == 4)
    got = [(r.body["agent_id"], r.body["data"]["n"], r.status) for r in receiver.received]
    x = [(n, status) for agent, n, status in got if agent == "agt_x"]
    assert x == [(0, 500), (0, 500), (0, 500), (0, 200), (0, 200), (1, 200)]
    # agt_y went out while agt_x's first event was in backoff.
    assert got.index(("agt_y", 0, 200)) < got.index(("agt_x", 0, 200))
    rows = deliveries(db, endpoint.id)
    assert (rows[0].state, rows[0].attempts) == ("succeeded", 4)
    assert rows[0].last_status_code == 200 and rows[0].last_error is None
    assert (
        len(
            db.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == rows[0].id)).all()
        )
        == 4
    )


def test_gives_up_after_the_retry_period_and_unblocks_the_agent(db, make_account, dispatcher):
    account = make_account()
    with WebhookReceiver(respond=lambda _id, _n: 503) as receiver:
        endpoint, secret = add_endpoint(db, account.id, receiver.url, types=["agent.updated"])
        receiver.secrets.append(secret)
        record(db, account.id, n=2)
        policy = DispatchPolicy(
            timeout=2.0,
            poll=0.05,
            retry_delays=(0.1,),
            retry_for=dt.timedelta(seconds=0.35),
            allow_private=True,
        )
        run_until(
            dispatcher(policy),
            lambda: [d.state for d in deliveries(db, endpoint.id)] == ["failed", "failed"],
        )
    rows = deliveries(db, endpoint.id)
    assert all(2 <= r.attempts <= 6 for r in rows)
    assert rows[0].last_status_code == 503
    assert rows[0].last_error == "HTTP 503 (expected 2xx)."


def test_a_redirect_is_a_failure_and_is_not_followed(db, make_account, dispatcher):
    account = make_account()
    with WebhookReceiver(respond=lambda _id, _n: 302) as receiver:
        endpoint, secret = add_endpoint(db, account.id, receiver.url, types=["agent.updated"])
        receiver.secrets.append(secret)
        record(db, account.id)
        run_until(dispatcher(), lambda: first_is(db, endpoint.id, min_attempts=2))
    row = deliveries(db, endpoint.id)[0]
    assert row.last_status_code == 302
    assert "redirects are not followed" in (row.last_error or "")


def test_no_answer_within_the_timeout_is_a_failure(db, make_account, dispatcher):
    account = make_account()
    with WebhookReceiver(respond=lambda _id, _n: HOLD) as receiver:
        endpoint, secret = add_endpoint(db, account.id, receiver.url, types=["agent.updated"])
        receiver.secrets.append(secret)
        record(db, account.id)
        policy = DispatchPolicy(timeout=0.5, poll=0.05, retry_delays=(60,), allow_private=True)
        run_until(dispatcher(policy), lambda: first_is(db, endpoint.id, "pending"))
    row = deliveries(db, endpoint.id)[0]
    assert row.last_error == "No answer within 0.5 seconds."
    assert row.last_status_code is None


def test_an_expired_lease_is_sent_again(db, make_account, dispatcher, engine):
    """A node that died mid-send: its lease runs out and the delivery goes out again."""
    account = make_account()
    with WebhookReceiver() as receiver:
        endpoint, secret = add_endpoint(db, account.id, receiver.url, types=["agent.updated"])
        receiver.secrets.append(secret)
        record(db, account.id)
        sessions = make_sessionmaker(engine)
        dead = Dispatcher(sessions, FAST)
        claimed = dead.prepare(10)  # claimed, never sent: the node "died"
        assert len(claimed) == 1
        assert deliveries(db, endpoint.id)[0].state == "delivering"
        assert dead.prepare(10) == []  # the lease holds
        db.execute(
            update(webhook_store.DELIVERIES).values(
                next_attempt_at=utcnow() - dt.timedelta(seconds=1)
            )
        )
        db.commit()
        run_until(dispatcher(), lambda: first_is(db, endpoint.id, "succeeded"))
        # The dead node's late finish does not overwrite the newer attempt.
        late = webhook_store.Outcome(utcnow(), 500, 1.0, "late", "pending", utcnow())
        with sessions() as session:
            assert webhook_store.finish(session, claimed[0], late) is False
            session.commit()
    row = deliveries(db, endpoint.id)[0]
    assert (row.state, row.attempts) == ("succeeded", 2)


def test_filters_and_disabled_endpoints(db, make_account, dispatcher):
    account = make_account()
    with WebhookReceiver() as receiver:
        _, secret = add_endpoint(db, account.id, receiver.url, types=["agent.deactivated"])
        off, off_secret = add_endpoint(db, account.id, receiver.url + "?off", enabled=False)
        receiver.secrets.extend([secret, off_secret])
        record(db, account.id, "agent.updated")
        record(db, account.id, "agent.deactivated")
        run_until(dispatcher(), lambda: len(receiver.succeeded()) == 1)
        assert [r.body["type"] for r in receiver.received] == ["agent.deactivated"]
        assert deliveries(db, off.id) == []
        # Re-enabled, it gets what happens from then on, not what it missed.
        webhooks.set_enabled(db, account.id, off.id, True, actors.operator(), utcnow())
        db.commit()
        record(db, account.id, "agent.reactivated")
        run_until(
            dispatcher(),
            lambda: (
                len(deliveries(db, off.id)) == 2
                and all(d.state == "succeeded" for d in deliveries(db, off.id))
            ),
        )
    assert [d.event_type for d in deliveries(db, off.id)] == [
        "webhook.updated",
        "agent.reactivated",
    ]


def test_resend_is_a_new_delivery_with_the_same_webhook_id(db, make_account, dispatcher):
    account = make_account()
    with WebhookReceiver() as receiver:
        endpoint, secret = add_endpoint(db, account.id, receiver.url, types=["agent.updated"])
        receiver.secrets.append(secret)
        record(db, account.id)
        run_until(dispatcher(), lambda: len(receiver.succeeded()) == 1)
        webhooks.resend(db, account.id, deliveries(db, endpoint.id)[0].id, utcnow())
        db.commit()
        run_until(dispatcher(), lambda: len(receiver.succeeded()) == 2)
    assert receiver.received[0].webhook_id == receiver.received[1].webhook_id
    assert receiver.received[0].headers["webhook-signature"] != "" and not receiver.refused


PRIVATE = {"hooks.internal.test": ["10.1.2.3"], "hooks.public.test": ["93.184.215.14"]}


def fake_dns(host: str, port: int) -> list[str]:
    return PRIVATE.get(host, [])


def test_a_private_address_is_refused_at_save(db, make_account):
    account = make_account()
    form = webhooks.EndpointForm(url="https://hooks.internal.test/x", event_types=[])
    with pytest.raises(InvalidInput, match=re.escape("points at 10.1.2.3, a private or loopback")):
        webhooks.add_endpoint(
            db, account.id, form, actors.operator(), utcnow(), allow_private=False, resolve=fake_dns
        )
    for url, message in [
        ("http://hooks.public.test/x", "must use https"),
        ("https://127.0.0.1/x", "points at 127.0.0.1"),
        ("https://[::1]/x", "points at ::1"),
        ("ftp://hooks.public.test/x", "must be an http(s) URL"),
        ("https://user:pw@hooks.public.test/x", "user name or password"),
        ("https://nowhere.test/x", "could not be found"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            webhooks.check_url(url, allow_private=False, resolve=fake_dns)
    assert webhooks.check_url("https://hooks.public.test/x", allow_private=False, resolve=fake_dns)


def test_a_name_that_now_resolves_privately_is_refused_at_send(db, make_account, dispatcher):
    account = make_account()
    endpoint, _ = add_endpoint(
        db, account.id, "https://hooks.public.test/x", types=["agent.updated"], resolve=fake_dns
    )
    db.execute(update(webhook_store.ENDPOINTS).values(url="https://hooks.internal.test/x"))
    db.commit()
    record(db, account.id)
    policy = DispatchPolicy(timeout=2.0, poll=0.05, retry_delays=(60,), allow_private=False)
    run_until(dispatcher(policy, resolve=fake_dns), lambda: first_is(db, endpoint.id, "pending"))
    row = deliveries(db, endpoint.id)[0]
    assert "points at 10.1.2.3, a private or loopback address" in (row.last_error or "")


def test_finished_deliveries_are_pruned_after_their_retention(db, make_account, dispatcher):
    account = make_account()
    endpoint, _ = add_endpoint(db, account.id, "http://127.0.0.1:9/x", types=["agent.updated"])
    record(db, account.id, n=3)
    keeper = dispatcher(dataclasses.replace(FAST, keep_finished_for=dt.timedelta(days=30)))
    keeper.prepare(0)  # fan-out only
    old = utcnow() - dt.timedelta(days=31)
    rows = deliveries(db, endpoint.id)
    states = {rows[0].id: "succeeded", rows[1].id: "failed", rows[2].id: "pending"}
    for delivery_id, state in states.items():
        db.execute(
            update(webhook_store.DELIVERIES)
            .where(webhook_store.DELIVERIES.c.id == delivery_id)
            .values(state=state, updated_at=old, next_attempt_at=utcnow() + dt.timedelta(hours=1))
        )
    db.commit()
    assert keeper.prune(utcnow()) == 2
    assert [d.state for d in deliveries(db, endpoint.id)] == ["pending"]  # still to send


def test_an_endpoint_deleted_mid_send_is_no_error(db, make_account, dispatcher):
    account = make_account()
    endpoint, _ = add_endpoint(db, account.id, "http://127.0.0.1:9/x", types=["agent.updated"])
    record(db, account.id)
    sender = dispatcher()
    [claimed] = sender.prepare(10)
    webhooks.delete_endpoint(db, account.id, endpoint.id, actors.operator())
    db.commit()
    outcome = webhook_store.Outcome(utcnow(), 200, 1.0, None, "succeeded", utcnow())
    sender.record([(claimed, outcome)])  # nothing to record it on, and no error
    assert deliveries(db, endpoint.id) == []


def test_the_default_backoff_schedule_and_the_three_day_limit():
    policy = DispatchPolicy()
    start = utcnow()
    now, waits = start, []
    for attempts in range(1, 30):
        retry_at = policy.retry_at(attempts, start, now)
        if retry_at is None:
            break
        waits.append((retry_at - now).total_seconds())
        now = retry_at
    assert waits[:10] == [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800]
    assert now - start <= dt.timedelta(days=3) < now + dt.timedelta(hours=8) - start
    assert DispatchPolicy(timeout=10).lease == dt.timedelta(seconds=15)


def test_a_bad_retry_schedule_is_refused_at_startup():
    from deskgate.config import load_settings

    with pytest.raises(ValueError, match="DESKGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS"):
        load_settings({"DESKGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS": "5,soon"})
    assert load_settings(
        {"DESKGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS": "1,2.5"}
    ).webhook_retry_delays == (1.0, 2.5)
