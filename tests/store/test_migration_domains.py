"""0010_domains: every domain an account had becomes an unverified claim with its own fresh token."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from deskgate.store import migrate
from deskgate.store.base import make_engine

from store.test_migrations import empty_database_url  # noqa: F401  (the fixture)


def test_existing_domains_become_unverified_claims(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        config = migrate.alembic_config(empty_database_url)
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0009_apikeys")
            for account in ("acc_1", "acc_2", "acc_3"):
                conn.execute(
                    text(
                        "INSERT INTO accounts (id, name, plan, sso_token, created_at) VALUES"
                        " (:id, 'Acme', 'scale-plus', :id, CURRENT_TIMESTAMP)"
                    ),
                    {"id": account},
                )
            for account, domains in (("acc_1", '["acme.test", "Acme.example"]'), ("acc_3", "[]")):
                conn.execute(
                    text(
                        "INSERT INTO sso_connections (account_id, enabled, idp_kind,"
                        " allow_idp_initiated, jit_enabled, jit_role,"
                        " require_sso, allow_sha1, email_domains, sign_in_match,"
                        " sp_private_key_pem, sp_certificate_pem, updated_at) VALUES (:a, :yes,"
                        " 'okta', :yes, :yes, 'agent', :no, :no, :d, 'email', 'k', 'c',"
                        " CURRENT_TIMESTAMP)"
                    ),
                    {"a": account, "d": domains, "yes": True, "no": False},
                )
            for domain, account in (
                ("acme.test", "acc_1"),
                ("acme.example", "acc_1"),
                ("beta.test", "acc_2"),
            ):
                conn.execute(
                    text("INSERT INTO sso_domains (domain, account_id) VALUES (:d, :a)"),
                    {"d": domain, "a": account},
                )
            conn.commit()
            command.upgrade(config, "head")
            conn.commit()
            claims = conn.execute(
                text(
                    "SELECT account_id, domain, token, verified_at FROM domain_claims"
                    " ORDER BY account_id, domain"
                )
            ).all()
            assert [(c.account_id, c.domain, c.verified_at) for c in claims] == [
                ("acc_1", "acme.example", None),
                ("acc_1", "acme.test", None),
                ("acc_2", "beta.test", None),
            ]
            tokens = [c.token for c in claims]
            assert len(set(tokens)) == 3 and all(len(t) >= 32 for t in tokens)
            inspector = inspect(conn)
            assert "sso_domains" not in inspector.get_table_names()
            columns = {c["name"] for c in inspector.get_columns("sso_connections")}
            assert "email_domains" not in columns

            # Back down: verified claims return to sso_domains, one account each.
            conn.execute(
                text(
                    "UPDATE domain_claims SET verified_at = CURRENT_TIMESTAMP WHERE domain = 'acme.test'"
                )
            )
            conn.commit()
            command.downgrade(config, "0009_apikeys")
            conn.commit()
            assert conn.execute(text("SELECT domain, account_id FROM sso_domains")).all() == [
                ("acme.test", "acc_1")
            ]
            command.upgrade(config, "head")
            conn.commit()
    finally:
        engine.dispose()
