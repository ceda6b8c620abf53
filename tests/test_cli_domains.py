"""`deskgate domains add|verify` against a real DNS server on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from deskgate.cli import main
from deskgate.store import events as event_store
from deskgate.store.models import DomainClaim, Event

from support.dns import dns_server  # noqa: F401  (the fixture)


@pytest.fixture
def run(engine, database_url, dns_server):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(
            main,
            list(args),
            env={
                "DESKGATE_DATABASE_URL": database_url,
                "DESKGATE_DNS_RESOLVER": dns_server.address,
            },
            catch_exceptions=False,
        )

    return invoke


def stored(db) -> tuple[int, int]:
    db.rollback()
    return (
        db.scalar(select(func.count()).select_from(DomainClaim)),
        db.scalar(select(func.count()).select_from(Event)),
    )


def test_add_prints_the_txt_record_and_verify_checks_it(run, make_account, db, dns_server):
    account = make_account()
    added = run("domains", "add", account.id, "Acme.TEST")
    assert added.exit_code == 0, added.output
    record = json.loads(added.stdout)
    assert set(record) == {"domain", "txt_name", "txt_value"}
    assert record["domain"] == "acme.test"
    assert record["txt_name"] == "_deskgate-verification.acme.test"
    assert record["txt_value"].startswith("deskgate-verification=")

    missing = run("domains", "verify", account.id, "acme.test")
    assert missing.exit_code == 0, missing.output  # valid input; the answer is "not yet"
    assert json.loads(missing.stdout) == {
        "domain": "acme.test",
        "verified": False,
        "reason": "No TXT record found at _deskgate-verification.acme.test.",
    }

    dns_server.txt[record["txt_name"]] = [record["txt_value"]]
    verified = run("domains", "verify", account.id, "acme.test")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout) == {"domain": "acme.test", "verified": True}
    db.rollback()
    assert [
        (e["type"], e["actor_type"])
        for e in event_store.page_after(
            db, account.id, 0, 10, types=["domain.added", "domain.verified", "domain.removed"]
        )
    ] == [("domain.added", "operator"), ("domain.verified", "operator")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("acct_nope", "acme.test"), "no account with id acct_nope"),
        (("{account}", "co.uk"), "public suffix"),
        (("{account}", "*.acme.test"), "wildcards"),
        (("{account}", "bad_name.test"), "not a valid internationalized domain name"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(run, make_account, db, args, message):
    account = make_account()
    before = stored(db)
    for command in ("add", "verify"):
        result = run("domains", command, *(a.format(account=account.id) for a in args))
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1
        assert result.stdout == ""
    assert stored(db) == before


def test_a_domain_verified_by_another_account_exits_2(run, make_account, db, dns_server):
    owner, other = make_account(), make_account()
    record = json.loads(run("domains", "add", owner.id, "acme.test").stdout)
    dns_server.txt[record["txt_name"]] = [record["txt_value"]]
    assert json.loads(run("domains", "verify", owner.id, "acme.test").stdout)["verified"]
    before = stored(db)
    for command in ("add", "verify"):
        result = run("domains", command, other.id, "acme.test")
        assert result.exit_code == 2
        assert "acme.test is already verified by another deskgate account" in result.stderr
    assert stored(db) == before


def test_verify_of_an_unclaimed_domain_exits_2(run, make_account):
    account = make_account()
    result = run("domains", "verify", account.id, "acme.test")
    assert result.exit_code == 2
    assert "acme.test is not one of this account's domains: add it first." in result.stderr


def test_an_account_without_scale_plus_cannot_claim(run, make_account, db):
    account = make_account(plan="scale")
    result = run("domains", "add", account.id, "acme.test")
    assert result.exit_code == 2 and "Scale Plus" in result.stderr
    assert stored(db)[0] == 0
