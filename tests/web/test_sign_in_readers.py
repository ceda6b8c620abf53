"""The sign-in paths that only read never wait for SQLite's write lock: the session check
behind /api/v1/me and the console page, and the ACS's read of the connection (validation
included: the ACS queues for the lock only to write). SQLite only: a property of its runtime."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select, text, update

from deskgate.services import sso_sign_in
from deskgate.store.models import AgentSession

from helpers import sign_in
from test_saml_acs import path_of, post_acs, sso_account  # noqa: F401  (a fixture)


@pytest.fixture
def sqlite_only(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")


def _in_thread(action):
    results: list = []
    thread = threading.Thread(target=lambda: results.append(action()))
    thread.start()
    return thread, results


def test_the_session_check_proceeds_while_a_writer_holds_the_turn(
    sqlite_only, client, app, make_account
):
    account = make_account()
    sign_in(client, account.admin_email)
    with app.state.deskgate.sessions() as writer:
        writer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: holds the turn
        started = time.monotonic()
        thread, results = _in_thread(lambda: (client.get("/api/v1/me"), client.get("/console")))
        thread.join(timeout=5)
        assert not thread.is_alive(), "the session check waited for the writer"
        assert time.monotonic() - started < 2
        writer.rollback()
    me, console = results[0]
    assert me.status_code == 200 and me.json()["email"] == account.admin_email
    assert console.status_code == 200


def test_the_session_check_still_writes_what_is_due(client, make_account, db):
    account = make_account()
    sign_in(client, account.admin_email)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    db.execute(update(AgentSession).values(last_seen_at=long_ago))
    db.commit()
    assert client.get("/api/v1/me").status_code == 200
    db.rollback()
    assert db.scalar(select(AgentSession.last_seen_at)) > long_ago + dt.timedelta(minutes=59)
    # Expired: refused at once, and removed.
    db.execute(update(AgentSession).values(expires_at=long_ago))
    db.commit()
    assert client.get("/api/v1/me").status_code == 401
    db.rollback()
    assert db.scalar(select(AgentSession.id)) is None


def test_the_acs_reads_and_validates_while_a_writer_holds_the_turn(
    sqlite_only, app, sso_account, monkeypatch
):
    validated = threading.Event()
    validate = sso_sign_in.validate_response

    def spy(*args, **kwargs):
        verified = validate(*args, **kwargs)
        validated.set()
        return verified

    monkeypatch.setattr(sso_sign_in, "validate_response", spy)
    response_xml = sso_account.response()
    with app.state.deskgate.sessions() as writer:
        writer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: holds the turn
        thread, results = _in_thread(
            lambda: post_acs(sso_account.client, path_of(sso_account.acs), response_xml)
        )
        assert validated.wait(timeout=5), "the ACS waited for the writer before validating"
        assert thread.is_alive()  # and queues for the turn only to write the sign-in
        writer.rollback()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert results[0].status_code == 303, results[0].text[:300]
