from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from deskgate.cli import main
from deskgate.store.models import Account, Agent


@pytest.fixture
def run(engine, database_url):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(
            main, list(args), env={"DESKGATE_DATABASE_URL": database_url}, catch_exceptions=False
        )

    return invoke


def counts(db):
    db.rollback()
    return db.scalar(select(func.count()).select_from(Account)), db.scalar(
        select(func.count()).select_from(Agent)
    )


NAMES = ("--admin-first-name", "Olga", "--admin-last-name", "Ops")


def test_accounts_create_prints_json_with_a_generated_password(run, db):
    result = run(
        "accounts",
        "create",
        "--name",
        "Acme",
        "--plan",
        "scale-plus",
        "--admin-email",
        "ops@acme.test",
        *NAMES,
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert set(created) == {"account_id", "sso_token", "admin_email", "admin_password"}
    assert created["admin_email"] == "ops@acme.test"
    assert len(created["sso_token"]) >= 16
    assert all(c.isalnum() or c in "-_" for c in created["sso_token"])
    listed = json.loads(run("agents", "list", created["account_id"], "--json").stdout)
    assert listed == [
        {
            "id": listed[0]["id"],
            "email": "ops@acme.test",
            "first_name": "Olga",
            "last_name": "Ops",
            "role": "admin",
            "active": True,
            "source": "password",
        }
    ]


def test_given_password_is_not_echoed(run):
    result = run(
        "accounts",
        "create",
        "--name",
        "Acme",
        "--plan",
        "free",
        "--admin-email",
        "a@acme.test",
        *NAMES,
        "--admin-password",
        "a long enough password",
    )
    assert result.exit_code == 0
    assert "admin_password" not in json.loads(result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plan", "gold", "--admin-email", "a@acme.test"], "Unknown plan 'gold'"),
        (["--plan", "free", "--admin-email", "not-an-email"], "is not a valid email address"),
        (
            ["--plan", "free", "--admin-email", "a@acme.test", "--admin-password", "short"],
            "at least 10 characters",
        ),
        (
            ["--plan", "free", "--admin-email", "a@acme.test", "--admin-first-name", " "],
            "admin first name is required",
        ),
        (
            ["--plan", "free", "--admin-email", "a@acme.test", "--admin-last-name", ""],
            "admin last name is required",
        ),
    ],
)
def test_accounts_create_with_bad_input_exits_2_and_writes_nothing(run, db, args, message):
    before = counts(db)
    result = run("accounts", "create", "--name", "Acme", *NAMES, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert counts(db) == before


@pytest.mark.parametrize("missing", ["--admin-first-name", "--admin-last-name"])
def test_accounts_create_requires_the_admins_names(run, db, missing):
    given = [
        arg
        for pair in zip(NAMES[::2], NAMES[1::2], strict=False)
        if pair[0] != missing
        for arg in pair
    ]
    result = run(
        "accounts",
        "create",
        "--name",
        "Acme",
        "--plan",
        "free",
        "--admin-email",
        "a@acme.test",
        *given,
    )
    assert result.exit_code == 2
    assert f"Missing option '{missing}'" in result.output
    assert counts(db) == (0, 0)


def test_accounts_create_with_an_empty_name_exits_2(run, db):
    result = run(
        "accounts",
        "create",
        "--name",
        "  ",
        "--plan",
        "free",
        "--admin-email",
        "a@acme.test",
        *NAMES,
    )
    assert result.exit_code == 2
    assert "name is required" in result.stderr
    assert counts(db) == (0, 0)


def test_agents_list_for_an_unknown_account_exits_2(run):
    result = run("agents", "list", "acct_nope", "--json")
    assert result.exit_code == 2
    assert result.stderr.strip() == "deskgate: no account with id acct_nope"


def test_console_script_runs_migrations_and_creates_accounts(tmp_path):
    env = {**os.environ, "DESKGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "deskgate",
            "accounts",
            "create",
            "--name",
            "X",
            "--plan",
            "scale",
            "--admin-email",
            "x@x.test",
            *NAMES,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["admin_email"] == "x@x.test"
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "deskgate",
            "accounts",
            "create",
            "--name",
            "X",
            "--plan",
            "nope",
            "--admin-email",
            "x@x.test",
            *NAMES,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("deskgate: Unknown plan 'nope'")


def test_serve_with_two_workers_answers_and_stops_on_sigterm(tmp_path):
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DESKGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "DESKGATE_LOG_LEVEL": "warning",
    }
    env.pop("DESKGATE_BASE_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deskgate",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--demo",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert response.status_code == 200
        for _ in range(20):  # whichever worker takes the connection serves the same app
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {
                "status": "ok"
            }
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode is not None
    assert f"deskgate demo is at http://127.0.0.1:{port}/login" in out
