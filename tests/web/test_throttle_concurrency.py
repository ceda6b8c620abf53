"""Simultaneous wrong passwords over real HTTP: no more than the limit ever reach the password
check, however many arrive at once (checking and recording a failure is one atomic step)."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from sqlalchemy import func, select

from deskgate.store.models import FailedSignIn

from helpers import csrf_token, race
from support.server import serve_app


@pytest.fixture
def live_server(app):
    with serve_app(app) as origin:
        yield origin


def guesses(live_server: str, emails: list[str], source_ips: list[str] | None = None) -> list:
    """Post a wrong password for each email, all at once, each from its own browser
    (from source_ips[n], a loopback address, when given)."""
    tokens: dict[int, str] = {}

    def open_form(client, n: int) -> None:
        tokens[n] = csrf_token(client.get(f"{live_server}/login").text)

    def guess(client, n: int):
        return client.post(
            f"{live_server}/login",
            data={
                "csrf_token": tokens[n],
                "email": emails[n],
                "password": f"wrong guess {n}",
            },
        )

    return race(
        len(emails),
        guess,
        prepare=open_form,
        transport=(lambda n: httpx.HTTPTransport(local_address=source_ips[n]))
        if source_ips
        else None,
    )


def failures_recorded(db, **where) -> int:
    db.rollback()
    query = select(func.count()).select_from(FailedSignIn)
    for column, value in where.items():
        query = query.where(getattr(FailedSignIn, column) == value)
    return db.scalar(query)


def test_twenty_simultaneous_guesses_for_one_email_stop_at_the_limit(
    live_server, make_account, db, settings
):
    account = make_account()
    limit = settings.login_failure_limit
    responses = guesses(live_server, [account.admin_email] * 20)
    assert Counter(r.status_code for r in responses) == {401: limit, 429: 20 - limit}
    assert failures_recorded(db, email_normalized=account.admin_email) == limit


def test_simultaneous_guesses_from_one_ip_stop_at_its_limit(
    live_server, make_account, db, settings
):
    make_account()
    ip_limit = settings.login_failure_limit * 4
    responses = guesses(live_server, [f"probe{n}@example.com" for n in range(ip_limit + 6)])
    assert Counter(r.status_code for r in responses) == {401: ip_limit, 429: 6}
    assert failures_recorded(db, ip="127.0.0.1") == ip_limit


def test_simultaneous_guesses_for_one_email_from_several_ips_stop_at_the_email_limit(
    live_server, make_account, db, settings
):
    account = make_account()
    limit = settings.login_failure_limit
    ips = [f"127.0.0.{2 + n % 3}" for n in range(15)]
    responses = guesses(live_server, [account.admin_email] * 15, ips)
    assert Counter(r.status_code for r in responses) == {401: limit, 429: 15 - limit}
    assert failures_recorded(db, email_normalized=account.admin_email) == limit
    for ip in set(ips):
        assert failures_recorded(db, ip=ip) <= limit
