"""0008_certs: each connection's JSON list of IdP certificates becomes rows."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import inspect, text

from deskgate.saml.certs import normalize_certificate_pem, sha256_fingerprint
from deskgate.store import migrate
from deskgate.store.base import make_engine

from saml import samlfactory as f
from store.test_migrations import empty_database_url  # noqa: F401  (the fixture)


def test_stored_certificates_become_rows_and_the_json_column_goes(empty_database_url):
    one, two = f.keypair("idp"), f.keypair("idp-next")
    engine = make_engine(empty_database_url)
    try:
        config = migrate.alembic_config(empty_database_url)
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0007_events")
            conn.execute(
                text(
                    "INSERT INTO accounts (id, name, plan, sso_token, created_at) "
                    "VALUES ('acc_1', 'Acme', 'scale-plus', 'tok', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO sso_connections (account_id, enabled, idp_kind, idp_certificates,"
                    " allow_idp_initiated, jit_enabled, jit_role, require_sso, allow_sha1,"
                    " email_domains, sign_in_match, sp_private_key_pem, sp_certificate_pem,"
                    " updated_at) VALUES ('acc_1', :yes, 'okta', :certs, :yes, :yes, 'agent', :no,"
                    " :no, '[]', 'email', 'k', 'c', CURRENT_TIMESTAMP)"
                ),
                {
                    "yes": True,
                    "no": False,
                    # bare base64 as metadata carries it, a duplicate, and junk (left out)
                    "certs": json.dumps(
                        [one.certificate_pem, two.certificate_b64, one.certificate_b64, "junk"]
                    ),
                },
            )
            conn.commit()
            command.upgrade(config, "head")
            conn.commit()
            rows = conn.execute(
                text(
                    "SELECT certificate_pem, fingerprint, subject, source FROM idp_certificates"
                    " ORDER BY subject"
                )
            ).all()
            columns = {c["name"] for c in inspect(conn).get_columns("sso_connections")}
    finally:
        engine.dispose()
    assert [(r.subject, r.source) for r in rows] == [
        ("CN=test idp", "metadata"),
        ("CN=test idp-next", "metadata"),
    ]
    assert rows[0].certificate_pem == normalize_certificate_pem(one.certificate_pem)
    assert rows[1].fingerprint == sha256_fingerprint(two.certificate_pem)
    assert "idp_certificates" not in columns and "sp_next_certificate_pem" in columns
