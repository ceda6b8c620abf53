"""What anonymous requests can make the server write, over HTTP: ACS refusals recorded per
source IP and minute (the rest counted, not stored), SP-initiated sign-ins left pending per
source IP (then 429 + Retry-After), and attacker-chosen text bounded and neutralised before the
admin reads it."""

from __future__ import annotations

import base64
import datetime as dt
import unicodedata

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from deskgate.display_text import DISPLAY_LIMIT, for_display
from deskgate.store.models import LoginAttempt, SAMLRequest

from helpers import sign_in
from web.test_saml_acs import _request_id_from_redirect, path_of, post_acs, sso_account  # noqa: F401

ATTACKER, OTHER = "203.0.113.9", "198.51.100.7"
RECORDED_PER_MINUTE, PENDING = 4, 3


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "sso_refusals_recorded_per_ip_per_minute": RECORDED_PER_MINUTE,
            "sso_pending_requests_per_ip": PENDING,
        }
    )


@pytest.fixture
def from_ip(app):
    clients: list[TestClient] = []

    def make(ip: str) -> TestClient:
        clients.append(
            TestClient(
                app, base_url="http://testserver", follow_redirects=False, client=(ip, 40000)
            )
        )
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def garbage(marker: str = "x") -> str:
    """An unsigned, schema-invalid response: refused before any signature work."""
    xml = f'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_{marker}" Version="2.0"/>'
    return base64.b64encode(xml.encode()).decode()


def refusals(db, account_id: str, ip: str) -> list[LoginAttempt]:
    db.rollback()
    return list(
        db.scalars(
            select(LoginAttempt)
            .where(
                LoginAttempt.account_id == account_id,
                LoginAttempt.ip == ip,
                LoginAttempt.succeeded.is_(False),
            )
            .order_by(LoginAttempt.at, LoginAttempt.id)
        )
    )


# --- ACS refusals ------------------------------------------------------------------------


def test_acs_records_a_few_refusals_per_ip_a_minute_and_counts_the_rest(
    sso_account, from_ip, client, db
):
    attacker = from_ip(ATTACKER)
    for _ in range(RECORDED_PER_MINUTE + 7):
        assert post_acs(attacker, path_of(sso_account.acs), garbage()).status_code == 403
    rows = refusals(db, sso_account.account.id, ATTACKER)
    assert len(rows) == RECORDED_PER_MINUTE
    assert [r.suppressed for r in rows] == [0] * (RECORDED_PER_MINUTE - 1) + [7]

    # Another source is recorded as usual.
    assert post_acs(from_ip(OTHER), path_of(sso_account.acs), garbage()).status_code == 403
    assert len(refusals(db, sso_account.account.id, OTHER)) == 1

    # The admin still learns how many were not recorded.
    sign_in(client, sso_account.account.admin_email)
    assert f"7 more refusals from {ATTACKER} not recorded" in client.get("/manage/security").text

    # The cap never blocks a real sign-in from that address, and a new minute records again.
    assert post_acs(attacker, path_of(sso_account.acs), sso_account.response()).status_code == 303
    db.rollback()  # a fresh snapshot: SQLite refuses to write from one older than the app's writes
    db.execute(update(LoginAttempt).values(at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)))
    db.commit()
    post_acs(attacker, path_of(sso_account.acs), garbage())
    assert len(refusals(db, sso_account.account.id, ATTACKER)) == RECORDED_PER_MINUTE + 1


# --- SP-initiated sign-ins ---------------------------------------------------------------


def pending(db, account_id: str) -> int:
    db.rollback()
    return db.scalar(
        select(func.count()).select_from(SAMLRequest).where(SAMLRequest.account_id == account_id)
    )


def test_sp_initiated_sign_ins_left_pending_per_ip_are_capped_with_429(sso_account, from_ip, db):
    login = f"/api/v1/sso/{sso_account.token}/login/okta"
    attacker = from_ip(ATTACKER)
    started = [attacker.get(login) for _ in range(PENDING)]
    assert [r.status_code for r in started] == [303] * PENDING
    refused = attacker.get(login)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 601
    assert "Too many sign-ins" in refused.text
    assert pending(db, sso_account.account.id) == PENDING

    # Other sources are not affected.
    assert from_ip(OTHER).get(login).status_code == 303

    # Finishing a sign-in frees its slot.
    request_id = _request_id_from_redirect(started[0].headers["location"])
    answer = sso_account.response(sso_account.spec(in_response_to=request_id))
    assert post_acs(attacker, path_of(sso_account.acs), answer).status_code == 303
    assert attacker.get(login).status_code == 303
    assert attacker.get(login).status_code == 429

    # Expired requests no longer count.
    db.rollback()
    db.execute(
        update(SAMLRequest).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    db.commit()
    assert attacker.get(login).status_code == 303


# --- attacker-chosen text shown to admins ------------------------------------------------


def test_attacker_text_reaches_the_admin_bounded_and_without_invisible_characters(
    sso_account, from_ip, client, db
):
    # Not a valid xs:NCName, so the schema check quotes it back in the reason for the admin.
    marker = "_\u202e\u2066evil\u200b<script>" + "B" * 3000
    forged = sso_account.response(sso_account.spec(in_response_to=marker))
    assert post_acs(from_ip(ATTACKER), path_of(sso_account.acs), forged).status_code == 403
    [row] = refusals(db, sso_account.account.id, ATTACKER)
    assert "evil" in row.detail
    assert len(row.detail) == DISPLAY_LIMIT and row.detail.endswith("…")
    assert not [c for c in row.detail if unicodedata.category(c) in ("Cc", "Cf")]
    sign_in(client, sso_account.account.admin_email)
    page = client.get("/manage/security").text
    assert "evil&lt;script&gt;" in page and "<script>B" not in page


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        ("", ""),
        ("plain text", "plain text"),
        ("a\x00b\x1bc\x7fd\x85e", "abcd e"),
        ("line\nbreak\r\ttab", "line break  tab"),
        ("\u202egnp.exe\u202c", "gnp.exe"),
        ("zero\u200bwidth\ufeff\u2066iso\u2069", "zerowidthiso"),
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("ünïcödé ✓ 日本", "ünïcödé ✓ 日本"),
        ("x" * 600, "x" * (DISPLAY_LIMIT - 1) + "…"),
        ("\u200b" * 5000 + "tail", "…"),  # cut before filtering: still marked as cut
    ],
)
def test_for_display(given, stored):
    assert for_display(given) == stored


def test_a_sessions_user_agent_is_bounded_too(sso_account, from_ip, db):
    from deskgate.store.models import AgentSession

    browser = from_ip(OTHER)
    response = browser.post(
        path_of(sso_account.acs),
        data={"SAMLResponse": sso_account.response()},
        headers={"User-Agent": "Mozilla/5.0 \t" + "A" * 1000},
    )
    assert response.status_code == 303
    db.rollback()
    [user_agent] = db.scalars(select(AgentSession.user_agent)).all()
    assert user_agent == ("Mozilla/5.0  " + "A" * 1000)[:399] + "…"
