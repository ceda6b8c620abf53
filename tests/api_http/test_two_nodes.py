"""Two `deskgate serve` processes on one database, as operators run several app nodes: writers
create agents (SCIM) and API keys (Manage › API) through both while a client follows
GET /api/v1/events through both, a few events a page. The client reads every event exactly
once, in order, with no gap (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deskgate.services import events, scim_credentials
from deskgate.store import events as event_store
from deskgate.store.base import utcnow
from deskgate.store.models import Account

from api_helpers import bearer
from helpers import TEST_PASSWORD, csrf_token

WRITERS, ROUNDS = 2, 10
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "DESKGATE_DATABASE_URL": database_url,
        "DESKGATE_SECRET_KEY": "two-nodes-share-this-secret-key",
        "DESKGATE_LOG_LEVEL": "warning",
    }
    for name in ("DESKGATE_BASE_URL", "PROMETHEUS_MULTIPROC_DIR", "DESKGATE_METRICS_BIND"):
        env.pop(name, None)
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [sys.executable, "-m", "deskgate", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "node did not start"
        time.sleep(0.2)


@pytest.fixture
def two_nodes(engine, database_url, tmp_path) -> Iterator[list[str]]:
    started = [_start(database_url, tmp_path / f"node{n}.log") for n in range(2)]
    try:
        for n, (process, base) in enumerate(started):
            _wait_ready(process, base, tmp_path / f"node{n}.log")
        yield [base for _, base in started]
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, _ in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for n, (process, _) in enumerate(started):
            # One worker is uvicorn itself, which stops gracefully and then re-raises SIGTERM.
            assert process.returncode in (0, -signal.SIGTERM), (
                tmp_path / f"node{n}.log"
            ).read_text()


def _writer(nodes: list[str], account, scim_token: str, n: int, made: list[str]) -> None:
    with httpx.Client(timeout=60) as browser, httpx.Client(timeout=60) as idp:
        login = browser.get(f"{nodes[n % 2]}/login")
        signed_in = browser.post(
            f"{nodes[n % 2]}/login",
            data={
                "csrf_token": csrf_token(login.text),
                "email": account.admin_email,
                "password": TEST_PASSWORD,
                "next": "",
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        for round_ in range(ROUNDS):
            here, there = nodes[(n + round_) % 2], nodes[(n + round_ + 1) % 2]
            email = f"w{n}r{round_}@example.com"
            created = idp.post(
                f"{here}/scim/v2/{account.id}/Users",
                headers={**bearer(scim_token), "Content-Type": "application/scim+json"},
                json={
                    "schemas": [USER_SCHEMA],
                    "userName": email,
                    "name": {"givenName": "W", "familyName": str(round_)},
                    "emails": [{"primary": True, "value": email, "type": "work"}],
                    "active": True,
                },
            )
            assert created.status_code == 201, created.text
            page = browser.get(f"{there}/manage/api")
            key = browser.post(
                f"{there}/manage/api/keys",
                data={
                    "csrf_token": csrf_token(page.text),
                    "name": f"writer {n} round {round_}",
                    "scopes": ["agents:read"],
                },
            )
            assert key.status_code == 200, key.text
            made.append(f"writer {n} round {round_}")


def test_a_client_following_the_cursor_across_nodes_reads_every_event_once_in_order(
    two_nodes, db, make_account, make_key
):
    account = make_account()
    row = db.get(Account, account.id)
    scim_token = scim_credentials.issue(db, row, base_url="http://x", now=utcnow()).token
    db.commit()
    reader = make_key(account.id, scopes=["events:read"]).key  # event 1
    made: list[str] = []
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            _writer(two_nodes, account, scim_token, n, made)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in writers:
        thread.start()
    seen: list[dict[str, object]] = []
    polls_while_writing = 0
    cursor = "0"
    with httpx.Client(timeout=60) as client:
        for poll in range(100_000):
            writing = any(thread.is_alive() for thread in writers)
            response = client.get(
                f"{two_nodes[poll % 2]}/api/v1/events",
                params={"after": cursor, "limit": 3},
                headers=bearer(reader),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            seen.extend(body["data"])
            cursor = body["next_cursor"]
            polls_while_writing += writing
            if not writing and not body["has_more"]:
                break
    for thread in writers:
        thread.join()
    assert not failures, failures
    assert len(made) == WRITERS * ROUNDS
    assert polls_while_writing >= 10, "the client did not read while the writers wrote"

    db.rollback()
    stored = [events.envelope(r) for r in event_store.page_after(db, account.id, 0, 100_000)]
    assert seen == stored  # every event exactly once, in order
    assert [int(e["cursor"]) for e in seen] == list(range(1, len(seen) + 1))  # no gap
    created = [e["data"]["name"] for e in seen if e["type"] == "api_key.created"]
    assert sorted(created) == sorted(["test key", *made])
    agents_created = [e for e in seen if e["type"] == "agent.created"]
    # Every agent made through either node is read once too (and the account's first admin).
    assert len(agents_created) == WRITERS * ROUNDS + 1
