"""The daily metadata refresh: one broken connection never stalls the others, its failure is
recorded on it (and shown to its admin), and it waits before the next try."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from deskgate.saml.certs import normalize_certificate_pem
from deskgate.services import metadata_fetch, sso, sso_refresh
from deskgate.store import accounts as account_store
from deskgate.store import certificates as certificate_store
from deskgate.store.base import make_sessionmaker
from deskgate.store.models import SSOConnection

from helpers import sign_in
from saml import samlfactory as f
from web.test_saml_acs import IDP_ENTITY, idp_metadata

START = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)


def _fetch(url: str) -> bytes:
    return metadata_fetch.fetch_metadata(url, allow_private=True)


@pytest.fixture
def idp_server(serve):
    server = serve()
    server.routes["/md"] = (200, idp_metadata().encode(), {})
    return server


def _connect(db, make_account, url: str, saved_at: dt.datetime):  # type: ignore[no-untyped-def]
    account = make_account()
    sso.save_settings(
        db,
        account_store.get(db, account.id),
        sso.SSOSettingsForm(enabled=True, idp_kind="okta", metadata_url=url),
        now=saved_at,
        base_url="http://testserver",
        fetched_metadata=_fetch(url),
        allow_private_urls=True,
    )
    db.commit()
    return account


def _connection(db, account) -> SSOConnection:  # type: ignore[no-untyped-def]
    db.rollback()
    return db.scalars(select(SSOConnection).where(SSOConnection.account_id == account.id)).one()


def test_broken_connections_do_not_stall_the_others(idp_server, engine, db, make_account):
    base = f"http://127.0.0.1:{idp_server.port}"
    for path in ("/space", "/bad-port", "/ok"):
        idp_server.routes[path] = idp_server.routes["/md"]
    # Saved in this order, so the broken ones come first in every pass.
    space = _connect(db, make_account, f"{base}/space", START)
    bad_port = _connect(db, make_account, f"{base}/bad-port", START + dt.timedelta(minutes=1))
    healthy = _connect(db, make_account, f"{base}/ok", START + dt.timedelta(minutes=2))
    original = certificate_store.pems(db, space.id)

    # A day later: one IdP's SSO Location now holds a space, another redirects to port 99999,
    # and the third rolled over to a new signing key.
    broken = f.idp_metadata_xml(entity_id=IDP_ENTITY, sso_url="https://idp.example.test/s so")
    idp_server.routes["/space"] = (200, broken.encode(), {})
    idp_server.routes["/bad-port"] = (302, b"", {"Location": "http://127.0.0.1:99999/md"})
    idp_server.routes["/ok"] = (200, idp_metadata(f.keypair("idp-rollover")).encode(), {})
    sessions = make_sessionmaker(engine)
    first_pass = START + dt.timedelta(days=1, minutes=5)

    assert sso_refresh.refresh_stale_metadata(sessions, _fetch, first_pass) == 1

    rolled = _connection(db, healthy)
    # The new certificate is accepted; the one the metadata dropped stays for the overlap.
    assert certificate_store.pems(db, healthy.id) == [
        *original,
        normalize_certificate_pem(f.keypair("idp-rollover").certificate_pem),
    ]
    assert rolled.metadata_fetched_at == first_pass and rolled.metadata_error is None
    for account, reason in (
        (space, "'https://idp.example.test/s so' contains whitespace"),
        (bad_port, "99999"),
    ):
        connection = _connection(db, account)
        assert reason in connection.metadata_error
        assert connection.metadata_refresh_failed_at == first_pass
        assert certificate_store.pems(db, account.id) == original  # the working configuration stays
        assert connection.metadata_fetched_at < START + dt.timedelta(minutes=5)

    # The broken ones wait before their next try instead of being fetched on every pass ...
    asked = len(idp_server.requests)
    assert (
        sso_refresh.refresh_stale_metadata(sessions, _fetch, first_pass + dt.timedelta(hours=1))
        == 0
    )
    assert len(idp_server.requests) == asked
    # ... and once fixed, the next try after the wait picks the metadata up and clears the error.
    idp_server.routes["/space"] = (200, idp_metadata(f.keypair("idp-rollover")).encode(), {})
    later = first_pass + sso_refresh.METADATA_RETRY_AFTER + dt.timedelta(minutes=1)
    assert sso_refresh.refresh_stale_metadata(sessions, _fetch, later) == 1
    fixed = _connection(db, space)
    assert (fixed.metadata_error, fixed.metadata_refresh_failed_at, fixed.metadata_fetched_at) == (
        None,
        None,
        later,
    )
    assert _connection(db, bad_port).metadata_refresh_failed_at == later


def test_an_unexpected_failure_is_recorded_on_its_connection(idp_server, engine, db, make_account):
    base = f"http://127.0.0.1:{idp_server.port}"
    idp_server.routes["/other"] = idp_server.routes["/md"]
    first = _connect(db, make_account, f"{base}/md", START)
    second = _connect(db, make_account, f"{base}/other", START + dt.timedelta(minutes=1))

    def fetch(url: str) -> bytes:  # a bug below the service, for the first connection only
        if url.endswith("/md"):
            raise RuntimeError("\x00boom")
        return _fetch(url)

    when = START + dt.timedelta(days=2)
    assert sso_refresh.refresh_stale_metadata(make_sessionmaker(engine), fetch, when) == 1
    assert "unexpected error (RuntimeError)" in _connection(db, first).metadata_error
    assert _connection(db, second).metadata_fetched_at == when


def test_the_admin_sees_when_and_why_the_refresh_failed(
    idp_server, engine, db, make_account, client
):
    base = f"http://127.0.0.1:{idp_server.port}"
    account = _connect(db, make_account, f"{base}/md", START)
    idp_server.routes["/md"] = (200, b"<html>maintenance</html>", {})
    sso_refresh.refresh_stale_metadata(
        make_sessionmaker(engine), _fetch, START + dt.timedelta(days=1, hours=1)
    )

    sign_in(client, account.admin_email)
    page = client.get("/manage/security").text
    assert (
        "Automatic refresh of the metadata URL failed at 2026-01-06 09:00 UTC: The IdP metadata can&#39;t be used: "
        "expected SAML metadata (md:EntityDescriptor), got html. Sign-in keeps using the metadata read at "
        "2026-01-05 08:00 UTC"
    ) in page
