"""Migrations build, from an empty database, exactly the schema the models describe."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from deskgate.store import migrate
from deskgate.store.base import make_engine
from deskgate.store.models import Base


@pytest.fixture
def empty_database_url(tmp_path, database_url):
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = os.environ["DESKGATE_TEST_DATABASE_URL"]
    name = f"deskgate_empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_from_empty_matches_the_models_and_is_idempotent(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        assert inspect(engine).get_table_names() == []
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # every start runs it again: a no-op
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {
            "alembic_version"
        }
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == [], f"models and migrations differ: {differences}"
    finally:
        engine.dispose()


def test_agents_written_under_0001_keep_their_identity(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        config = migrate.alembic_config(empty_database_url)
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(
                text(
                    "INSERT INTO accounts (id, name, plan, sso_token, created_at) "
                    "VALUES ('acc_1', 'Acme', 'scale-plus', 'tok', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO agents (id, account_id, email, email_normalized, first_name, last_name,"
                    " display_name, role, active, source, enterprise, version, created_at, updated_at)"
                    " VALUES ('agt_1', 'acc_1', 'Ada.L@Example.com', 'ada.l@example.com', 'Ada', 'L',"
                    " 'Ada L', 'admin', :yes, 'password', '{}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"yes": True},
            )
            conn.execute(
                text(
                    "INSERT INTO sso_connections (account_id, enabled, idp_kind, idp_certificates,"
                    " allow_idp_initiated, jit_enabled, jit_role, require_sso, allow_sha1, email_domains,"
                    " sp_private_key_pem, sp_certificate_pem, updated_at) VALUES ('acc_1', :yes, 'okta',"
                    " '[]', :yes, :yes, 'agent', :no, :no, '[]', 'k', 'c', CURRENT_TIMESTAMP)"
                ),
                {"yes": True, "no": False},
            )
            conn.commit()
            command.upgrade(config, "head")
            conn.commit()
            agent = conn.execute(
                text("SELECT user_name, user_name_normalized, emails, email FROM agents")
            ).one()
            match = conn.execute(text("SELECT sign_in_match FROM sso_connections")).scalar_one()
        emails = agent.emails if isinstance(agent.emails, list) else json.loads(agent.emails)
        assert agent.user_name == "Ada.L@Example.com"
        assert agent.user_name_normalized == "ada.l@example.com"
        assert emails == [{"value": "Ada.L@Example.com", "type": "work", "primary": True}]
        assert agent.email == "Ada.L@Example.com"
        assert match == "email"  # what 0001 connections did
    finally:
        engine.dispose()


def test_0006_counts_the_agents_already_there(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        config = migrate.alembic_config(empty_database_url)
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0005_scim_log_ip")
            for account in ("acc_1", "acc_2"):
                conn.execute(
                    text(
                        "INSERT INTO accounts (id, name, plan, sso_token, created_at) VALUES"
                        " (:id, 'Acme', 'scale-plus', :id, CURRENT_TIMESTAMP)"
                    ),
                    {"id": account},
                )
            for n, (account, deleted) in enumerate(
                [("acc_1", False), ("acc_1", False), ("acc_1", True), ("acc_2", False)]
            ):
                conn.execute(
                    text(
                        "INSERT INTO agents (id, account_id, user_name, user_name_normalized, emails,"
                        " email, email_normalized, first_name, last_name, display_name, role,"
                        " active, source, enterprise, version, created_at, updated_at,"
                        " scim_deleted_at) VALUES (:id, :account, :name, :name, '[]', :name, :name,"
                        " '', '', '', 'agent', :yes, 'scim', '{}', 1, CURRENT_TIMESTAMP,"
                        " CURRENT_TIMESTAMP, :deleted)"
                    ),
                    {
                        "id": f"agt_{n}",
                        "account": account,
                        "name": f"u{n}@example.com",
                        "yes": True,
                        "deleted": "2026-01-01 00:00:00" if deleted else None,
                    },
                )
            conn.commit()
            command.upgrade(config, "head")
            conn.commit()
            counts = conn.execute(
                text("SELECT account_id, SUM(agents) FROM agent_counts GROUP BY account_id")
            ).all()
            assert sorted((account, int(n)) for account, n in counts) == [
                ("acc_1", 2),
                ("acc_2", 1),
            ]
            conn.execute(text("UPDATE agents SET scim_deleted_at = NULL WHERE id = 'agt_2'"))
            total = conn.scalar(
                text("SELECT SUM(agents) FROM agent_counts WHERE account_id = 'acc_1'")
            )
            assert total == 3
            conn.rollback()
    finally:
        engine.dispose()
