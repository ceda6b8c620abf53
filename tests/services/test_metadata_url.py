"""IdP metadata by URL: fetched over real HTTP (bounded), private targets refused, refreshed daily."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from deskgate.errors import InvalidInput
from deskgate.saml.certs import normalize_certificate_pem
from deskgate.services import metadata_fetch, sso, sso_refresh
from deskgate.store import accounts as account_store
from deskgate.store import certificates as certificate_store
from deskgate.store.base import make_sessionmaker
from deskgate.store.models import SSOConnection

from saml import samlfactory as f
from web.test_saml_acs import IDP_ENTITY, idp_metadata


@pytest.fixture
def metadata_server(serve):
    server = serve()
    return f"http://127.0.0.1:{server.port}", server.routes


def test_loopback_and_private_targets_are_refused_by_default(metadata_server):
    base, routes = metadata_server
    routes["/md"] = (200, idp_metadata().encode(), {})
    with pytest.raises(InvalidInput, match="private or loopback"):
        metadata_fetch.fetch_metadata(f"{base}/md", allow_private=False)
    for url in ("http://10.0.0.1/md", "http://169.254.169.254/latest/meta-data", "http://[::1]/md"):
        with pytest.raises(InvalidInput, match="private or loopback"):
            metadata_fetch.fetch_metadata(url, allow_private=False)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/md", "not a url"])
def test_only_http_urls_are_fetched(url):
    with pytest.raises(InvalidInput, match="http"):
        metadata_fetch.fetch_metadata(url, allow_private=True)


def test_fetch_follows_a_redirect_and_limits_size_and_status(metadata_server):
    base, routes = metadata_server
    routes["/md"] = (200, idp_metadata().encode(), {})
    routes["/moved"] = (302, b"", {"Location": "/md"})
    routes["/huge"] = (200, b"<x>" + b" " * (metadata_fetch.MAX_BYTES + 10) + b"</x>", {})
    assert b"IDPSSODescriptor" in metadata_fetch.fetch_metadata(f"{base}/moved", allow_private=True)
    with pytest.raises(InvalidInput, match="larger than 1 MiB"):
        metadata_fetch.fetch_metadata(f"{base}/huge", allow_private=True)
    with pytest.raises(InvalidInput, match="HTTP 404"):
        metadata_fetch.fetch_metadata(f"{base}/missing", allow_private=True)


def test_stale_metadata_is_refreshed_and_a_failed_refresh_keeps_the_working_config(
    metadata_server, engine, db, make_account
):
    base, routes = metadata_server
    routes["/md"] = (200, idp_metadata().encode(), {})
    account = make_account()
    now = dt.datetime.now(dt.UTC)
    row = account_store.get(db, account.id)
    sso.save_settings(
        db,
        row,
        sso.SSOSettingsForm(enabled=True, idp_kind="okta", metadata_url=f"{base}/md"),
        now=now,
        base_url="http://testserver",
        fetched_metadata=metadata_fetch.fetch_metadata(f"{base}/md", allow_private=True),
    )
    db.commit()
    sessions = make_sessionmaker(engine)

    def fetch(url: str) -> bytes:
        return metadata_fetch.fetch_metadata(url, allow_private=True)

    assert (
        sso_refresh.refresh_stale_metadata(sessions, fetch, now + dt.timedelta(hours=1)) == 0
    )  # fresh
    # The IdP rolled over to a new signing key: the daily refresh picks it up.
    routes["/md"] = (200, idp_metadata(f.keypair("idp-rollover")).encode(), {})
    assert (
        sso_refresh.refresh_stale_metadata(sessions, fetch, now + dt.timedelta(days=1, minutes=1))
        == 1
    )
    db.rollback()
    connection = db.get(SSOConnection, account.id)
    assert connection.idp_entity_id == IDP_ENTITY
    # The new certificate is accepted; the one the metadata dropped stays for the overlap.
    assert certificate_store.pems(db, account.id) == [
        normalize_certificate_pem(f.keypair("idp").certificate_pem),
        normalize_certificate_pem(f.keypair("idp-rollover").certificate_pem),
    ]
    rolled = certificate_store.pems(db, account.id)
    # Then the URL breaks: the working certificates stay, the error is recorded for the admin.
    routes.pop("/md")
    assert (
        sso_refresh.refresh_stale_metadata(sessions, fetch, now + dt.timedelta(days=2, minutes=2))
        == 0
    )
    db.rollback()
    connection = db.scalars(
        select(SSOConnection).where(SSOConnection.account_id == account.id)
    ).one()
    assert certificate_store.pems(db, account.id) == rolled
    assert "HTTP 404" in connection.metadata_error
