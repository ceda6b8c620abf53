"""Every SCIM request of an account is logged (failures and 401s included), without the token or
a password; the token's last use is noted at most once a minute."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import select

from deskgate.store.models import ScimRequestLog, ScimToken

from scim_helpers import ScimAccount, create_user, fresh, patch_body, user_body


def test_each_request_is_logged_with_what_the_admin_needs(
    scim_for: Any, scim_account: ScimAccount, scim_log: Any
) -> None:
    okta = scim_for(scim_account, **{"User-Agent": "Okta SCIM Client 1.0.0"})
    okta.get("Users", params={"filter": 'userName eq "a@example.com"', "count": 100})
    okta.post("Users", json=user_body("a@example.com"))
    okta.post("Users", json=user_body("a@example.com"))
    okta.post("Users", content=b"{oops")
    okta.get("Users/agt_nope")
    rows = scim_log(scim_account.id)
    assert [(r.method, r.status) for r in rows] == [
        ("GET", 200),
        ("POST", 201),
        ("POST", 409),
        ("POST", 400),
        ("GET", 404),
    ]
    base = scim_account.base_path
    assert rows[0].path == f'{base}/Users?filter=userName eq "a@example.com"&count=100'
    assert rows[4].path == f"{base}/Users/agt_nope"
    assert all(r.client == "Okta SCIM Client 1.0.0" and r.duration_ms >= 0 for r in rows)
    assert rows[0].detail is None
    assert "already taken" in rows[2].detail and "not valid JSON" in rows[3].detail
    assert "agt_nope" in rows[4].detail


def test_401s_are_logged_for_an_existing_account_only(
    scim_for: Any, make_scim_account: Any, scim_log: Any, db: Any
) -> None:
    a, b = make_scim_account(), make_scim_account()
    scim_for(b, auth=f"Bearer {a.token}").get("Users")  # a's token on b's URL
    scim_for(b, auth="Bearer dgscim_wrong").get("Users")
    nowhere = ScimAccount("acct_x", "", "", a.token, "/scim/v2/acct_01doesnotexist00000000000")
    scim_for(nowhere).get("Users")
    assert [(r.status, r.method) for r in scim_log(b.id)] == [(401, "GET"), (401, "GET")]
    assert scim_log(a.id) == []
    total = fresh(db).scalars(select(ScimRequestLog)).all()
    assert len(total) == 2


def test_neither_the_token_nor_a_password_is_ever_logged(
    scim: Any, scim_for: Any, scim_account: ScimAccount, scim_log: Any
) -> None:
    secret = "S3cret-Passw0rd!"
    user = create_user(scim, "pw@example.com", password=secret)
    scim.put(f"Users/{user['id']}", json=user_body("pw@example.com", password=secret))
    scim.patch(
        f"Users/{user['id']}",
        json=patch_body({"op": "replace", "path": "password", "value": secret}),
    )
    scim.post("Users", json={"userName": "bad", "password": secret})
    scim.post("Users", json={"userName": 5, "password": secret})
    scim.patch(
        f"Users/{user['id']}",
        json=patch_body({"op": "replace", "value": {"password": secret, "active": "x"}}),
    )
    scim_for(scim_account, auth=f"Bearer {scim_account.token}x").get(
        f'Users?filter=userName eq "{secret}"'
    )
    rows = scim_log(scim_account.id)
    assert len(rows) == 7
    for row in rows:
        text = " ".join(str(value) for value in (row.method, row.path, row.client, row.detail))
        assert scim_account.token not in text
        assert secret not in text or row.path.endswith(
            f'"{secret}"'
        )  # only where the client put it in the URL


def test_token_last_used_is_noted_at_most_once_a_minute(
    scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    def last_used() -> dt.datetime | None:
        return (
            fresh(db)
            .scalars(select(ScimToken.last_used_at).where(ScimToken.account_id == scim_account.id))
            .one()
        )

    assert last_used() is None
    scim.get("ServiceProviderConfig")
    first = last_used()
    assert first is not None
    time.sleep(0.01)
    scim.get("ServiceProviderConfig")
    assert last_used() == first
    token = (
        fresh(db).scalars(select(ScimToken).where(ScimToken.account_id == scim_account.id)).one()
    )
    token.last_used_at = first - dt.timedelta(minutes=2)
    db.commit()
    scim.get("ServiceProviderConfig")
    assert last_used() > first


def test_unauthenticated_requests_are_logged_a_few_a_minute_per_source(
    app: Any, scim_account: ScimAccount, scim_log: Any, db: Any
) -> None:
    """Anyone can send 401s to a known SCIM URL: what one source makes us write is capped, and
    neither another source nor the IdP's own requests lose their rows."""
    from fastapi.testclient import TestClient

    def client(ip: str, token: str) -> TestClient:
        return TestClient(
            app,
            base_url=f"http://testserver{scim_account.base_path}/",
            headers={"Authorization": f"Bearer {token}"},
            client=(ip, 50000),
        )

    with (
        client("203.0.113.9", "dgscim_wrong") as attacker,
        client("198.51.100.7", "dgscim_wrong") as other,
    ):
        for _ in range(15):
            assert attacker.get("Users").status_code == 401
        assert other.get("Users").status_code == 401
    with client("203.0.113.9", scim_account.token) as idp:
        assert idp.get("Users").status_code == 200

    rows = scim_log(scim_account.id)
    by_source = [(r.ip, r.status) for r in rows]
    assert by_source.count(("203.0.113.9", 401)) == 10  # DESKGATE_SCIM_UNAUTHENTICATED_…_PER_MINUTE
    assert by_source.count(("198.51.100.7", 401)) == 1
    assert by_source.count(("203.0.113.9", 200)) == 1

    # A minute later the source is recorded again.
    session = fresh(db)
    for row in session.scalars(select(ScimRequestLog).where(ScimRequestLog.status == 401)):
        row.at -= dt.timedelta(minutes=2)
    session.commit()
    with client("203.0.113.9", "dgscim_wrong") as attacker:
        assert attacker.get("Users").status_code == 401
    assert [(r.ip, r.status) for r in scim_log(scim_account.id)].count(("203.0.113.9", 401)) == 11
