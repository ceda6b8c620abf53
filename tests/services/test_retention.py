"""Retention on the real database: rows of every kind past their period go, live ones stay,
each transaction deletes a bounded batch, per-account caps hold, nodes may run it at once,
and both the serving loop and `deskgate retention run` do it."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from deskgate import ids
from deskgate.cli import main
from deskgate.services import retention
from deskgate.store.base import make_sessionmaker
from deskgate.store.models import (
    AgentSession,
    Event,
    FailedSignIn,
    LoginAttempt,
    SAMLRequest,
    ScimRequestLog,
    SeenAssertion,
)
from deskgate.web.app import create_app

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
POLICY = retention.RetentionPolicy(
    login_attempts_for=dt.timedelta(days=90),
    login_attempts_per_account=10_000,
    scim_request_log_for=dt.timedelta(days=30),
    scim_request_log_per_account=10_000,
    throttle_window=dt.timedelta(minutes=15),
    batch_size=1000,
)
TABLES = {
    "sessions": AgentSession,
    "saml_requests": SAMLRequest,
    "seen_assertions": SeenAssertion,
    "failed_sign_ins": FailedSignIn,
    "login_attempts": LoginAttempt,
    "scim_request_log": ScimRequestLog,
    "events": Event,
}
_serial = iter(range(1_000_000))


def _session(account, expires_at):
    n = next(_serial)
    return AgentSession(
        id=ids.new_id(ids.SESSION),
        token_hash=f"{n:064d}",
        agent_id=account.admin_id,
        account_id=account.id,
        method="password",
        created_at=NOW,
        last_seen_at=NOW,
        expires_at=expires_at,
    )


def _request(account, expires_at):
    return SAMLRequest(
        id=f"_req{next(_serial)}",
        account_id=account.id,
        relay_state="/",
        created_at=NOW,
        expires_at=expires_at,
        ip="203.0.113.9",
    )


def _seen(account, expires_at):
    return SeenAssertion(
        account_id=account.id, assertion_id=f"_a{next(_serial)}", expires_at=expires_at
    )


def _failure(at):
    return FailedSignIn(email_normalized="someone@example.com", ip="203.0.113.9", at=at)


def _attempt(account, at):
    return LoginAttempt(
        id=ids.new_id(ids.LOGIN_ATTEMPT),
        account_id=account.id,
        at=at,
        method="saml",
        succeeded=False,
        reason_code="signature_invalid",
        detail="x",
        ip="203.0.113.9",
    )


def _log(account, at):
    return ScimRequestLog(
        id=ids.new_id(ids.SCIM_REQUEST),
        account_id=account.id,
        at=at,
        method="GET",
        path="/scim/v2/Users",
        status=200,
        duration_ms=1.0,
    )


def _event(account, at):
    return Event(
        id=ids.new_id(ids.EVENT),
        account_id=account.id,
        seq=1_000 + next(_serial),  # numbers of their own: the account's counter is not used
        type="sso.updated",
        at=at,
        actor_type="system",
        actor_label="test",
        data={"before": None, "after": None},
    )


def _one_of_each(account, *, live: bool, margin: dt.timedelta = dt.timedelta(seconds=1)):
    """One row of every kind, `margin` inside or past what retention keeps."""
    second = margin
    sign = 1 if live else -1
    return [
        _session(account, NOW + sign * second),
        _request(account, NOW + sign * second),
        _seen(account, NOW + sign * second),
        _failure(NOW - POLICY.throttle_window + sign * second),
        _attempt(account, NOW - POLICY.login_attempts_for + sign * second),
        _log(account, NOW - POLICY.scim_request_log_for + sign * second),
        _event(account, NOW - POLICY.events_for + sign * second),
    ]


def counts(db) -> dict[str, int]:
    db.rollback()
    return {
        name: db.scalar(select(func.count()).select_from(model)) for name, model in TABLES.items()
    }


@pytest.fixture
def sessions(engine):
    return make_sessionmaker(engine)


def test_a_pass_removes_every_kind_of_row_past_its_period_and_keeps_live_ones(
    db, make_account, sessions
):
    account = make_account()
    baseline = counts(db)  # the account's own rows (none of these kinds yet)
    db.add_all(_one_of_each(account, live=False) + _one_of_each(account, live=True))
    db.commit()
    assert retention.run(sessions, POLICY, NOW) == dict.fromkeys(TABLES, 1)
    assert counts(db) == {name: baseline[name] + 1 for name in TABLES}
    # Idempotent: a second pass (or another node's) finds nothing to do.
    assert retention.run(sessions, POLICY, NOW) == dict.fromkeys(TABLES, 0)


def test_each_transaction_deletes_a_bounded_batch(db, make_account, engine):
    account = make_account()
    db.add_all([_attempt(account, NOW - dt.timedelta(days=100)) for _ in range(25)])
    db.add_all([_session(account, NOW - dt.timedelta(hours=1)) for _ in range(7)])
    db.commit()
    deleted_per_transaction: list[int] = []
    current = [0]

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE"):
            current[0] += cursor.rowcount

    def on_commit(conn):
        if current[0]:
            deleted_per_transaction.append(current[0])
        current[0] = 0

    event.listen(engine, "after_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        result = retention.run(
            make_sessionmaker(engine), POLICY.__class__(**{**POLICY.__dict__, "batch_size": 4}), NOW
        )
    finally:
        event.remove(engine, "after_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)
    assert (result["login_attempts"], result["sessions"]) == (25, 7)
    assert max(deleted_per_transaction) == 4
    assert sorted(deleted_per_transaction) == sorted([4] * 6 + [1] + [4, 3])
    assert counts(db)["login_attempts"] == 0


def test_per_account_caps_keep_each_accounts_newest_rows(db, make_account, sessions):
    noisy, quiet = make_account(), make_account()
    minute = dt.timedelta(minutes=1)
    db.add_all(
        [_attempt(noisy, NOW - i * minute) for i in range(12)]
        + [_attempt(quiet, NOW - i * minute) for i in range(3)]
    )
    db.add_all(
        [_log(noisy, NOW - i * minute) for i in range(9)]
        + [_log(quiet, NOW - i * minute) for i in range(2)]
    )
    db.commit()
    policy = POLICY.__class__(
        **{
            **POLICY.__dict__,
            "login_attempts_per_account": 5,
            "scim_request_log_per_account": 4,
            "batch_size": 3,
        }
    )
    result = retention.run(sessions, policy, NOW)
    assert (result["login_attempts"], result["scim_request_log"]) == (7, 5)
    db.rollback()
    kept = db.scalars(
        select(LoginAttempt.at)
        .where(LoginAttempt.account_id == noisy.id)
        .order_by(LoginAttempt.at.desc())
    ).all()
    assert kept == [NOW - i * minute for i in range(5)]  # the newest five
    assert db.scalar(select(func.count()).where(LoginAttempt.account_id == quiet.id)) == 3
    assert db.scalar(select(func.count()).where(ScimRequestLog.account_id == noisy.id)) == 4
    assert db.scalar(select(func.count()).where(ScimRequestLog.account_id == quiet.id)) == 2


def test_two_nodes_pruning_at_once_delete_each_row_once(db, make_account, sessions):
    account = make_account()
    db.add_all([_attempt(account, NOW - dt.timedelta(days=100)) for _ in range(300)])
    db.commit()
    policy = POLICY.__class__(**{**POLICY.__dict__, "batch_size": 10})
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def node() -> None:
        try:
            results.append(retention.run(sessions, policy, NOW))
        except BaseException as problem:  # noqa: BLE001 - reported below
            errors.append(problem)

    threads = [threading.Thread(target=node) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(r["login_attempts"] for r in results) == 300
    assert counts(db)["login_attempts"] == 0


def test_cli_retention_run_prints_json_counts(db, make_account, database_url):
    account = make_account()
    hour = dt.timedelta(hours=1)
    db.add_all(
        _one_of_each(account, live=False, margin=hour)
        + _one_of_each(account, live=True, margin=hour)
    )
    db.commit()
    result = CliRunner().invoke(
        main,
        ["retention", "run"],
        env={"DESKGATE_DATABASE_URL": database_url},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == dict.fromkeys(TABLES, 1)
    assert all(count >= 1 for count in counts(db).values())


def test_every_serving_node_prunes_on_a_timer(db, make_account, settings, engine):
    account = make_account()
    db.add(_session(account, NOW - dt.timedelta(hours=1)))
    db.commit()
    app = create_app(settings.model_copy(update={"retention_interval_seconds": 1}), engine=engine)
    with TestClient(app):
        deadline = time.monotonic() + 10
        while counts(db)["sessions"] and time.monotonic() < deadline:
            time.sleep(0.2)
    assert counts(db)["sessions"] == 0
