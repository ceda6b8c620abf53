"""Webhooks from real `deskgate serve` processes: a node killed with SIGKILL mid-delivery (the
delivery goes out again after the restart, once its lease runs out: at least once), and two
nodes on one database delivering many events (never one event from both at once, all
delivered, each agent's events in order)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import select

from deskgate.services import events, webhooks
from deskgate.services.events import actors
from deskgate.store.base import utcnow
from deskgate.store.models import WebhookDelivery

from support.webhook_receiver import HOLD, WebhookReceiver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_nodes(
    database_url: str, count: int = 1, **settings: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` `deskgate serve` nodes (one worker each) on the test database, started together;
    SIGTERM at the end unless killed."""
    env = {
        **os.environ,
        "DESKGATE_DATABASE_URL": database_url,
        "DESKGATE_SECRET_KEY": "test-secret-key-not-for-production",
        "DESKGATE_ALLOW_PRIVATE_WEBHOOK_URLS": "1",
        "DESKGATE_WEBHOOK_POLL_SECONDS": "0.1",
        "DESKGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS": "0.2",
        "DESKGATE_LOG_LEVEL": "warning",
        **{f"DESKGATE_{key.upper()}": value for key, value in settings.items()},
    }
    env.pop("DESKGATE_BASE_URL", None)
    ports = [_free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "deskgate", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 90
        for port, process in zip(ports, processes, strict=True):
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    assert time.monotonic() < deadline, "deskgate serve did not start"
                    time.sleep(0.2)
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()


def _add_endpoint(db, account_id: str, url: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    endpoint, secret = webhooks.add_endpoint(
        db,
        account_id,
        webhooks.EndpointForm(url=url, event_types=["agent.updated"]),
        actors.operator(),
        utcnow(),
        allow_private=True,
    )
    db.commit()
    return endpoint.id, secret


def _deliveries(db, endpoint_id: str) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    db.rollback()  # a fresh snapshot
    rows = db.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.event_seq)
    )
    found = list(rows)
    db.rollback()  # hold no read transaction open while the nodes write
    return found


def test_a_node_killed_mid_delivery_delivers_after_restart(db, make_account, database_url):
    account = make_account()

    def respond(_webhook_id: str, nth: int) -> int:
        return HOLD if nth == 1 else 200  # the first try hangs until the node is killed

    with WebhookReceiver(respond=respond) as receiver:
        endpoint_id, secret = _add_endpoint(db, account.id, receiver.url)
        receiver.secrets.append(secret)
        timeout = {"webhook_timeout_seconds": "3"}  # the lease: 3 s + 5 s
        with serve_nodes(database_url, **timeout) as [node]:
            events.record(db, account.id, "agent.updated", actors.operator(), agent_id="agt_k")
            db.commit()
            assert receiver.held.wait(20), "the node never sent the delivery"
            node.send_signal(signal.SIGKILL)
            node.wait(10)
        killed_at = time.monotonic()
        [row] = _deliveries(db, endpoint_id)
        assert (row.state, row.attempts) == ("delivering", 1)  # the dead node's lease
        with serve_nodes(database_url, **timeout):
            receiver.wait_for(lambda r: len(r.succeeded()) == 1, timeout=40)
            waited = time.monotonic() - killed_at
            deadline = time.monotonic() + 10
            while _deliveries(db, endpoint_id)[0].state != "succeeded":
                assert time.monotonic() < deadline
                time.sleep(0.1)
    [row] = _deliveries(db, endpoint_id)
    assert (row.state, row.attempts) == ("succeeded", 2)
    # Sent twice in all (at least once): the receiver saw the same webhook-id both times.
    assert receiver.holding == 1
    assert receiver.succeeded()[0].webhook_id == receiver.succeeded()[0].body["id"]
    assert receiver.succeeded()[0].verified_by == [secret]
    assert waited > 3  # not before the lease ran out


def test_two_nodes_deliver_every_event_once_in_order_per_agent(db, make_account, database_url):
    account = make_account()
    agents, per_agent = 10, 20
    lock = threading.Lock()
    in_progress: set[str] = set()
    overlaps: list[str] = []

    def respond(webhook_id: str, _nth: int) -> int:
        with lock:
            if webhook_id in in_progress:
                overlaps.append(webhook_id)
            in_progress.add(webhook_id)
        time.sleep(0.003)  # a receiver doing a little work
        with lock:
            in_progress.discard(webhook_id)
        return 200

    with WebhookReceiver(respond=respond) as receiver:
        endpoint_id, secret = _add_endpoint(db, account.id, receiver.url)
        receiver.secrets.append(secret)
        total = agents * per_agent
        with serve_nodes(database_url, count=2):
            started = time.monotonic()
            for round_ in range(per_agent):
                for agent in range(agents):
                    events.record(
                        db,
                        account.id,
                        "agent.updated",
                        actors.operator(),
                        {"n": round_},
                        agent_id=f"agt_{agent}",
                    )
                db.commit()
            receiver.wait_for(lambda r: len(r.received) >= total, timeout=120)
            elapsed = time.monotonic() - started
            time.sleep(0.5)  # anything sent twice would arrive now
    print(f"\n{total} deliveries by two nodes in {elapsed:.2f}s: {total / elapsed:.0f}/s")  # noqa: T201 - a measured figure
    ids = [r.webhook_id for r in receiver.received]
    assert not receiver.refused
    assert len(ids) == total == len(set(ids)), "an event was sent twice"
    assert not overlaps
    by_agent: dict[str, list[int]] = {}
    for got in receiver.received:
        by_agent.setdefault(got.body["agent_id"], []).append(int(got.body["cursor"]))
    assert len(by_agent) == agents
    for cursors in by_agent.values():
        assert cursors == sorted(cursors) and len(cursors) == per_agent
    assert {d.state for d in _deliveries(db, endpoint_id)} == {"succeeded"}
