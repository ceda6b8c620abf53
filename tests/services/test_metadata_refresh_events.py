"""The metadata refresh records what it changed, as the system: a new IdP certificate is a
certificate.added (sso.metadata_refreshed is for the connection's other settings), and a daily
re-read of the same metadata records nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from deskgate.saml.certs import sha256_fingerprint
from deskgate.services import metadata_fetch, sso_refresh
from deskgate.store.base import make_sessionmaker
from deskgate.store.models import SSOConnection

from event_checks import events_of
from helpers import post_form, sign_in
from saml import samlfactory as f
from web.test_saml_acs import idp_metadata


def test_the_metadata_refresh_records_changed_certificates_only(
    serve: Any, engine: Any, make_account: Any, client: Any, db: Any
) -> None:
    server = serve()
    server.routes["/md"] = (200, idp_metadata().encode(), {})
    account = make_account()
    sign_in(client, account.admin_email)
    url = f"http://127.0.0.1:{server.port}/md"
    sessions = make_sessionmaker(engine)

    def fetch(u: str) -> bytes:
        return metadata_fetch.fetch_metadata(u, allow_private=True)

    form = {"idp_kind": "okta", "enabled": "on", "metadata_xml": idp_metadata()}
    post_form(client, "/manage/security", "/manage/security/sso", form)
    db.rollback()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    connection = db.get(SSOConnection, account.id)
    connection.metadata_url = url
    connection.metadata_fetched_at = later - dt.timedelta(days=3)
    db.commit()
    sso_refresh.refresh_stale_metadata(sessions, fetch, later)  # the same metadata
    server.routes["/md"] = (200, idp_metadata(f.keypair("idp-rollover")).encode(), {})
    sso_refresh.refresh_stale_metadata(sessions, fetch, later + dt.timedelta(days=2))

    assert events_of(db, account.id, "sso.metadata_refreshed") == []
    [added] = [
        e for e in events_of(db, account.id, "certificate.added") if e["actor"]["type"] == "system"
    ]
    assert added["actor"] == {"type": "system", "id": None, "label": "metadata refresh"}
    assert added["data"]["fingerprint"] == sha256_fingerprint(
        f.keypair("idp-rollover").certificate_pem
    )
    assert added["data"]["source"] == "metadata"
